"""Target kind "pyocd": flash the image through a debug probe with pyOCD, then talk to the
firmware over the board's serial port (hil.serial_ports, hil.link).

[run] keys (unknown keys are an error): target (pyOCD target name), needs_swd_multidrop,
frequency, connect_mode (halt | under-reset | pre-reset | attach), verify (read-back |
after-reset | none), chip_id ({address, mask, value}: the chip's identity register),
connect_timeout_s, flash_timeout_s, and the physical kinds' timeouts (hil.targets.physical).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hil.firmware_image import load_segments, to_bin
from hil.targets.base import Field, TargetOptions, one_of, positive, validate_table
from hil.targets.physical import TIMEOUT_FIELDS, PhysicalTarget
from hil.targets.probe import ProbeSettings, flash_image


def _chip_id(value: Any) -> str | None:
    if value is None:
        return None
    keys = {"address", "mask", "value"}
    if set(value) != keys or not all(isinstance(value[k], int) for k in keys):
        return "must be a table {address, mask, value} of integers"
    return None


RUN_FIELDS = {
    "target": Field(str, help="pyOCD target type, e.g. rp2040, nrf52840"),
    "needs_swd_multidrop": Field(bool, False),
    "frequency": Field(int, 4_000_000, positive, "SWD clock in Hz"),
    "connect_mode": Field(str, "halt", one_of("halt", "under-reset", "pre-reset", "attach")),
    "verify": Field(str, "read-back", one_of("read-back", "after-reset", "none")),
    "chip_id": Field((dict, type(None)), None, _chip_id),
    "connect_timeout_s": Field(float, 30.0, positive),
    "flash_timeout_s": Field(float, 120.0, positive),
    **TIMEOUT_FIELDS,
}


def parse_run(table: dict[str, Any], where: str, prefix: str = "run.") -> dict[str, Any]:
    return validate_table(table, RUN_FIELDS, where, prefix)


class PyocdTarget(PhysicalTarget):
    """Runs images on a board flashed through a debug probe."""

    def __init__(self, board: Any, options: TargetOptions | None = None) -> None:
        super().__init__(board, options)
        self.settings = board.run.settings
        self._provenance: dict[str, str] = {}

    def check_tools(self) -> None:
        from hil.targets.probe import _pyocd

        _pyocd()

    def version(self) -> str:
        import pyocd

        probe = self._provenance.get("probe")
        return f"pyOCD {pyocd.__version__}" + (f" via probe {probe}" if probe else "")

    @contextlib.contextmanager
    def session(self, elf: Path) -> Iterator[str]:
        base, data = to_bin(load_segments(elf))
        settings = ProbeSettings.from_run(self.settings)
        with self.claimed() as inst:
            result = flash_image(
                settings, base, data, probe_id=inst.probe or self.options.probe,
                unlock=self.options.unlock,
            )  # fmt: skip
            url = self.await_firmware(self.port_finder(inst, result.probe_id))
            self._provenance = self._facts(
                inst, url, probe=result.probe_id, probe_description=result.probe_description,
                serial=result.probe_id, flashed=f"{len(data)} bytes at 0x{base:08x} in "
                f"{result.seconds:.1f} s, verify {result.verified}",
            )  # fmt: skip
            yield url


TARGET = PyocdTarget
