"""Flashing a board through pyOCD's Python API, never interactively and never without a bound.

One `flash_image` call: pick the probe by its unique id (no prompt: pyOCD asks on stdin when
several probes are present and nothing chose one), check that it can drive the chip (the
RP2040 needs SWD multidrop sequences), open a session with the board's target type and
`auto_unlock` off (a locked nRF52 is only mass-erased when the user passed --unlock), check
the chip's identity register, program the image (one retry on a flash failure), verify it,
reset and run. Every pyOCD call runs under a timeout; on a timeout the probe is closed and
the board released. pyOCD's exceptions become the bench's errors (hil.errors), each saying
what to do.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hil.errors import (
    ConnectError,
    FlashError,
    HilError,
    NoProbeError,
    ProbeCapabilityError,
    TargetLockedError,
    ToolchainError,
    WrongTargetError,
)

T = TypeVar("T")
LOG = logging.getLogger(__name__)
#: How long a RP2040 needs after reset for the boot ROM and boot2 to turn XIP back on.
_XIP_SETTLE_S = 0.2


@dataclass(frozen=True)
class ProbeSettings:
    """What `flash_image` needs from a board's [run] table."""

    target: str
    needs_swd_multidrop: bool = False
    frequency: int = 4_000_000
    connect_mode: str = "halt"
    verify: str = "read-back"  # read-back | after-reset | none
    chip_id: Mapping[str, int] | None = None
    connect_timeout_s: float = 30.0
    flash_timeout_s: float = 120.0

    @classmethod
    def from_run(cls, run: Mapping[str, Any]) -> ProbeSettings:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in run.items() if k in keys})


@dataclass(frozen=True)
class FlashResult:
    """What happened: the probe used, how long it took, how many programming attempts."""

    probe_id: str
    probe_description: str
    seconds: float
    attempts: int
    verified: str


def _pyocd() -> Any:
    try:
        import pyocd  # noqa: F401
        from pyocd.core import exceptions
        from pyocd.core.helpers import ConnectHelper
        from pyocd.flash.file_programmer import FileProgrammer
        from pyocd.probe.debug_probe import DebugProbe
    except ImportError as exc:  # pinned in requirements.lock; a broken venv
        raise ToolchainError(
            f"pyOCD cannot be imported ({exc}); reinstall the bench's Python packages "
            "(scripts/setup.sh)"
        ) from exc
    return exceptions, ConnectHelper, FileProgrammer, DebugProbe


def bounded(fn: Callable[[], T], seconds: float, what: str, error: type[HilError],
            release: Callable[[], None] | None = None) -> T:  # fmt: skip
    """Run `fn` in a worker thread for at most `seconds`; on a timeout call `release` (close
    the probe, which makes a stuck USB transfer fail) and raise `error`."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name=f"hil-pyocd-{what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        if release is not None:
            closer = threading.Thread(target=release, daemon=True)
            closer.start()
            closer.join(5.0)
        raise error(
            f"{what} took more than {seconds:g} s and was abandoned; the probe was closed and "
            "the board released. Check the probe's USB connection and the SWD wiring, or raise "
            "the timeout in the board's [run] table"
        )
    if "error" in box:
        raise box["error"]
    return box["value"]


def choose_probe(unique_id: str | None) -> Any:
    """The connected DebugProbe with `unique_id` (exact, case-insensitive), or the only one when
    none is named; NoProbeError listing what is connected otherwise."""
    _, connect_helper, _, _ = _pyocd()
    probes = connect_helper.get_all_connected_probes(blocking=False)
    listed = ", ".join(f"{p.unique_id} ({p.description})" for p in probes) or "none"
    if unique_id:
        exact = [p for p in probes if p.unique_id.lower() == unique_id.lower()]
        if exact:
            return exact[0]
        raise NoProbeError(
            f"no debug probe with id {unique_id} is connected (connected: {listed}); plug it "
            "in, check its USB cable and udev rules (docs/bench-setup.md), or fix the id in "
            "the hardware map (`hil doctor` lists probes)"
        )
    if len(probes) == 1:
        return probes[0]
    if not probes:
        raise NoProbeError(
            "no debug probe is connected; plug one in (docs/bench-setup.md: wiring and udev "
            "rules), or use --uf2 on a Pico without a probe"
        )
    raise NoProbeError(
        f"{len(probes)} debug probes are connected ({listed}); say which one with --probe ID "
        "or in the hardware map"
    )


def check_capabilities(probe: Any, settings: ProbeSettings) -> None:
    """Open the probe long enough to read its capabilities; the RP2040 needs SWD sequences."""
    exceptions, _, _, debug_probe = _pyocd()
    if not settings.needs_swd_multidrop:
        return
    try:
        probe.open()
        try:
            capabilities = set(probe.capabilities)
        finally:
            probe.close()
    except exceptions.Error as exc:
        raise ConnectError(
            f"cannot open debug probe {probe.unique_id}: {exc}; replug it, check that no other "
            "program (openocd, another pyocd) uses it"
        ) from exc
    if debug_probe.Capability.SWD_SEQUENCE not in capabilities:
        raise ProbeCapabilityError(
            f"debug probe {probe.unique_id} ({probe.description}) cannot send SWD multidrop "
            f"sequences, which the {settings.target} needs: use a CMSIS-DAP probe with protocol "
            "1.2 or later (the Raspberry Pi Debug Probe, or debugprobe firmware on a Pico), or "
            "update this probe's firmware"
        )


#: The nRF52 CTRL-AP's IDR, version bits (31:28) masked.
_CTRL_AP_IDR = 0x02880000


def _is_locked(target: Any) -> bool:
    """An nRF52 whose CTRL-AP (checked by its IDR, so another chip never looks locked) reports
    APPROTECT enabled; False for other chips or on errors."""
    check = getattr(target, "is_locked", None)
    ctrl_ap = getattr(target, "ctrl_ap", None)
    if check is None or ctrl_ap is None:
        return False
    if (getattr(ctrl_ap, "idr", 0) or 0) & 0x0FFFFFFF != _CTRL_AP_IDR:
        return False
    try:
        return bool(check())
    except Exception:
        return False


def _locked_error(probe_id: str, settings: ProbeSettings) -> TargetLockedError:
    return TargetLockedError(
        f"the {settings.target} behind probe {probe_id} is locked (APPROTECT): its memory "
        "cannot be read or written. Run again with --unlock to mass-erase it; that erases the "
        "whole chip, the Arduino bootloader included (docs/bench-setup.md says how to put it "
        "back)"
    )


def _new_session(connect_helper: Any, probe: Any, settings: ProbeSettings, unlock: bool) -> Any:
    """A pyOCD session for the probe, not opened yet: no prompt (the exact unique id, never
    blocking), no config file from the working directory, no unlock unless asked."""
    return connect_helper.session_with_chosen_probe(
        blocking=False,
        unique_id=probe.unique_id,
        auto_open=False,
        target_override=settings.target,
        auto_unlock=unlock,
        connect_mode=settings.connect_mode,
        frequency=settings.frequency,
        no_config=True,
        resume_on_disconnect=True,
        hide_programming_progress=True,
        chip_erase="sector",
        smart_flash=False,
    )


def open_session(probe: Any, settings: ProbeSettings, *, unlock: bool) -> Any:
    """An opened pyOCD session on `probe` for the board's target."""
    exceptions, connect_helper, _, _ = _pyocd()
    try:
        session = _new_session(connect_helper, probe, settings, unlock)
    except exceptions.TargetSupportError as exc:
        raise WrongTargetError(
            f"pyOCD does not know the target {settings.target!r} ({exc}); fix [run] target in "
            "the board's board.toml (`pyocd list --targets` lists them)"
        ) from exc
    if session is None:
        raise NoProbeError(
            f"debug probe {probe.unique_id} went away before the session opened; replug it"
        )

    def release() -> None:
        try:
            session.close()
        except Exception:
            with contextlib.suppress(Exception):
                session.probe.close()

    try:
        bounded(session.open, settings.connect_timeout_s, f"connecting to the {settings.target}",
                ConnectError, release)  # fmt: skip
    except exceptions.TargetSupportError as exc:
        release()
        text = str(exc)
        if "SWD sequence" in text:
            raise ProbeCapabilityError(
                f"debug probe {probe.unique_id} cannot drive the {settings.target}: {text}"
            ) from exc
        raise WrongTargetError(
            f"pyOCD does not know the target {settings.target!r} ({text}); fix [run] target "
            "in the board's board.toml (`pyocd list --targets` lists them)"
        ) from exc
    except HilError:
        raise
    except Exception as exc:  # pyOCD fails some connects with KeyError and the like
        target = session.board.target if session.board is not None else None
        locked = target is not None and _is_locked(target)
        release()
        if locked:
            raise _locked_error(probe.unique_id, settings) from exc
        reason = str(exc).rstrip(".")
        raise ConnectError(
            f"cannot connect to the {settings.target} through probe {probe.unique_id}: {reason}. "
            "Check the SWD wiring (SWCLK, SWDIO, GND), that the board is powered, and that it "
            f"is a {settings.target}"
        ) from exc
    if _is_locked(session.target):
        release()
        raise _locked_error(probe.unique_id, settings)
    return session


def check_identity(session: Any, settings: ProbeSettings, probe_id: str) -> None:
    """Read the chip's identity register ([run] chip_id) and compare it with the board's."""
    if not settings.chip_id:
        return
    exceptions, _, _, _ = _pyocd()
    address, mask, value = (settings.chip_id[k] for k in ("address", "mask", "value"))
    try:
        found = session.target.read32(address)
    except exceptions.Error as exc:
        raise WrongTargetError(
            f"cannot read the identity register 0x{address:08x} of the chip behind probe "
            f"{probe_id} ({exc}): it is probably not a {settings.target}"
        ) from exc
    if found & mask != value:
        raise WrongTargetError(
            f"the chip behind probe {probe_id} is not a {settings.target}: its identity "
            f"register 0x{address:08x} reads 0x{found:08x}, expected 0x{value:08x} under mask "
            f"0x{mask:08x}. Is the probe wired to the right board (hardware map)?"
        )


def _program(session: Any, base: int, data: bytes, settings: ProbeSettings) -> int:
    """Program `data` at `base`; one retry on a flash failure. Returns the attempts made."""
    exceptions, _, file_programmer, _ = _pyocd()
    for attempt in (1, 2):
        try:
            file_programmer(session, chip_erase="sector", smart_flash=False).program(
                io.BytesIO(data), file_format="bin", base_address=base
            )
            return attempt
        except exceptions.FlashFailure as exc:
            if attempt == 2:
                where = f" at 0x{exc.address:08x}" if getattr(exc, "address", None) else ""
                raise FlashError(
                    f"writing the image into the {settings.target}'s flash failed twice{where}: "
                    f"{exc}. Power-cycle the board and try again; a board that keeps failing "
                    "may have worn-out or protected flash"
                ) from exc
            LOG.warning("flash failure (%s), retrying once", exc)
    raise AssertionError("unreachable")


def _verify(session: Any, base: int, data: bytes, settings: ProbeSettings) -> None:
    target = session.target
    if settings.verify == "after-reset":
        # Programming leaves the RP2040's XIP off: run the boot ROM and boot2 again first.
        target.reset()
        time.sleep(_XIP_SETTLE_S)
    back = bytes(target.read_memory_block8(base, len(data)))
    if back != data:
        first = next(i for i, (a, b) in enumerate(zip(back, data, strict=True)) if a != b)
        raise FlashError(
            f"the {settings.target}'s flash does not hold the image after programming: first "
            f"difference at 0x{base + first:08x} (read 0x{back[first]:02x}, wrote "
            f"0x{data[first]:02x}). Try again; if it persists the flash part or the probe's "
            "connection is faulty"
        )


def _reset_and_run(session: Any) -> None:
    from pyocd.core.target import Target as PyocdTarget

    target = session.target
    target.reset()
    if target.get_state() == PyocdTarget.State.HALTED:
        target.resume()


def flash_image(
    settings: ProbeSettings, base: int, data: bytes, *, probe_id: str | None, unlock: bool
) -> FlashResult:
    """Program `data` at `base` on the board behind the probe, verify it, reset and run it."""
    start = time.monotonic()
    probe = choose_probe(probe_id)
    check_capabilities(probe, settings)
    session = open_session(probe, settings, unlock=unlock)
    exceptions, _, _, _ = _pyocd()

    def release() -> None:
        try:
            session.close()
        except Exception:
            with contextlib.suppress(Exception):
                session.probe.close()

    try:
        check_identity(session, settings, probe.unique_id)

        def program_verify_run() -> int:
            attempts = _program(session, base, data, settings)
            if settings.verify != "none":
                _verify(session, base, data, settings)
            _reset_and_run(session)
            return attempts

        try:
            attempts = bounded(program_verify_run, settings.flash_timeout_s,
                               f"flashing the {settings.target}", FlashError, release)  # fmt: skip
        except exceptions.Error as exc:
            raise FlashError(
                f"flashing the {settings.target} through probe {probe.unique_id} failed: {exc}"
            ) from exc
        return FlashResult(probe.unique_id, probe.description, time.monotonic() - start,
                           attempts, settings.verify)  # fmt: skip
    finally:
        release()
