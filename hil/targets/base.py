"""What the bench needs from a target, and the registry of target kinds.

A target is where an ELF runs: QEMU for the emulated boards, a physical board flashed with
pyOCD, or a Pico that takes a UF2 copy. `session(elf)` is a context manager that loads and
starts the image and yields a URL for `hil.link.DeviceLink` (`socket://127.0.0.1:PORT` for
QEMU, `/dev/ttyACM0` for a board), and stops or releases the target on exit, whatever
happened inside.

Kinds are modules, one per kind (`KINDS`): each defines `RUN_FIELDS` (its `[run]` table:
unknown keys are an error), `TARGET` (its Target class) and may define `parse_run(table,
where)` for checks across fields. Loading an image (QEMU, pyOCD, UF2 copy) is the kind's
business; the serial link that talks to the running firmware is `hil.link` plus, on a
physical board, `hil.serial_ports` to find the port.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hil.errors import BoardError, TargetError

if TYPE_CHECKING:
    from hil.boards import Board

#: Target kinds ([run] kind) and the module of each.
KINDS: dict[str, str] = {
    "qemu": "hil.targets.qemu",
    "pyocd": "hil.targets.pyocd",
    "uf2": "hil.targets.uf2",
}

_REQUIRED = object()


@dataclass(frozen=True)
class Field:
    """One key of a kind's [run] table: its type(s), default (absent: required), and an
    optional check returning what is wrong with a value (None when it is fine)."""

    types: type | tuple[type, ...]
    default: Any = _REQUIRED
    check: Callable[[Any], str | None] | None = None
    help: str = ""


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be positive"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def validate_table(
    table: Mapping[str, Any], fields: Mapping[str, Field], where: str, prefix: str = "run."
) -> dict[str, Any]:
    """`table` checked against `fields`: unknown keys and wrong types are BoardErrors naming
    the key (as `prefix` + key, e.g. 'run.machine') and what is allowed; absent keys get their
    defaults."""
    unknown = sorted(set(table) - set(fields))
    if unknown:
        names = ", ".join(f"{prefix}{k}" for k in unknown)
        raise BoardError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {names}; this table takes "
            f"{', '.join(sorted(fields))} (see docs/boards.md)"
        )
    out: dict[str, Any] = {}
    for key, spec in fields.items():
        label = f"{prefix}{key}"
        if key not in table:
            if spec.default is _REQUIRED:
                raise BoardError(f"{where}: missing key {label!r}; see docs/boards.md")
            out[key] = spec.default
            continue
        value = table[key]
        types = spec.types if isinstance(spec.types, tuple) else (spec.types,)
        if float in types and int not in types and isinstance(value, int):
            value = float(value)  # 15 is as good as 15.0 for a timeout
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or wrong_bool:
            names = " or ".join(t.__name__ for t in types)
            raise BoardError(f"{where}: {label!r} must be {names}, not {value!r}")
        if isinstance(value, list):
            value = tuple(value)
        problem = spec.check(value) if spec.check is not None else None
        if problem:
            raise BoardError(f"{where}: {label!r} {problem} (got {value!r})")
        out[key] = value
    return out


def kind_module(kind: str) -> ModuleType:
    """The module of target kind `kind` (imported on first use: pyOCD is slow to import)."""
    if kind not in KINDS:
        raise BoardError(f"unknown target kind {kind!r}; known: {', '.join(KINDS)}")
    return importlib.import_module(KINDS[kind])


def parse_run_table(kind: str, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The [run] table validated by its kind's module (the `kind` key itself removed)."""
    module = kind_module(kind)
    rest = {k: v for k, v in table.items() if k != "kind"}
    parse = getattr(module, "parse_run", None)
    if parse is not None:
        return dict(parse(rest, where, "run."))
    return validate_table(rest, module.RUN_FIELDS, where, "run.")


def parse_uf2_table(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A board's [uf2] table (the no-probe path of a board flashed with pyOCD otherwise)."""
    return dict(kind_module("uf2").parse_run(table, where, "uf2."))


@dataclass(frozen=True)
class TargetOptions:
    """Per-run choices about a physical board: which probe and serial port (else the hardware
    map or discovery decides), the hardware map file, whether a locked nRF52 may be mass-erased
    (`unlock`), and whether to load the image by UF2 copy instead of the board's own kind."""

    probe: str | None = None
    port: str | None = None
    hardware_map: Path | None = None
    unlock: bool = False
    uf2: bool = False
    uf2_drive: Path | None = None


class Target(ABC):
    """A place to run images built for one board."""

    #: The link timeout's parts (see link_timeout). The defaults are QEMU's on a loaded host:
    #: at worst 20 M instructions per second, 40 instructions per MAC in the slowest kernels.
    base_timeout_s: float = 20.0
    slowest_counts_per_s: float = 20e6
    worst_counts_per_mac: float = 40.0

    def __init__(self, board: Board, options: TargetOptions | None = None) -> None:
        self.board = board
        self.options = options or TargetOptions()

    @abstractmethod
    def session(self, elf: Path) -> AbstractContextManager[str]:
        """Start `elf`, yield the serial URL of its host link, stop it on exit.

        Errors raised inside the `with` block by the link (timeouts, lost connection) come out
        explained by what the target saw, e.g. the emulator's exit code and messages.
        """

    @abstractmethod
    def check_tools(self) -> None:
        """Raise ToolchainError naming what to install if a program this target needs is
        missing. `hil.profile` calls it before building, so a missing emulator or flashing
        tool is reported at once, not after a build."""

    @abstractmethod
    def version(self) -> str:
        """What runs the images and its version (e.g. QEMU's `--version` line), for reports."""

    def link_timeout(self, macs: int) -> float:
        """Seconds the host link waits for one inference (and any other answer) of a model
        with `macs` multiply-accumulates: a base for the link plus the slowest plausible
        inference on this kind of target."""
        return self.base_timeout_s + macs * self.worst_counts_per_mac / self.slowest_counts_per_s

    def provenance(self) -> dict[str, str]:
        """Facts about the board instance for the report (serial number, probe), once a
        session has run; empty for emulators."""
        return {}


def _with_connection(options: TargetOptions, connection: Mapping[str, Any]) -> TargetOptions:
    """Options from the command line, completed by what the board name carried after '?'."""
    if not connection:
        return options
    hardware_map = connection.get("hardware_map")
    return TargetOptions(
        probe=options.probe or connection.get("probe"),
        port=options.port or connection.get("port"),
        hardware_map=options.hardware_map or (Path(hardware_map) if hardware_map else None),
        unlock=options.unlock or bool(connection.get("unlock", False)),
        uf2=options.uf2 or bool(connection.get("uf2", False)),
        uf2_drive=options.uf2_drive,
    )


def open_target(board: Board, options: TargetOptions | None = None) -> Target:
    """The target for `board`, chosen by its board.toml `[run] kind` (or the UF2 path when
    `options.uf2` asks for it and the board has a [uf2] table)."""
    options = _with_connection(options or TargetOptions(), board.connection)
    kind = board.run.kind
    if options.uf2 and kind != "uf2":
        if board.uf2 is None:
            raise TargetError(
                f"board {board.name} has no UF2 boot loader ([uf2] in its board.toml); "
                f"drop --uf2 and flash it with its {kind!r} target"
            )
        kind = "uf2"
    if kind == "qemu" and (options.probe or options.port or options.unlock):
        raise TargetError(
            f"{board.name} runs in QEMU: --probe, --port and --unlock are for physical boards"
        )
    target_class: type[Target] = kind_module(kind).TARGET
    return target_class(board, options)
