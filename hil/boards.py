"""Boards the bench can build for and run on, read from `boards/<name>/board.toml`.

Adding a board means adding a folder: its board.toml (schema in docs/architecture.md), linker
script and port.c (the vector table and start-up code are the runtime's, the same for every
board). Nothing here lists boards by name.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import BoardError

#: The repository's board folders (hil/../boards).
BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"

#: Timing sources a report can name (docs: "Measurement, defined once").
TIMING_SOURCES = ("qemu-icount", "dwt-cyccnt", "systick", "rp2040-timer")
#: How a board's image is started: in QEMU, or flashed with pyOCD.
RUN_KINDS = ("qemu", "pyocd")
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table"}


@dataclass(frozen=True)
class RunConfig:
    """How to start an image: `kind` picks the target; QEMU needs `machine` (and extra args)."""

    kind: str
    machine: str | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class SerialConfig:
    """The host link's UART settings (ignored by QEMU's TCP serial, used on real boards)."""

    baudrate: int


@dataclass(frozen=True)
class Board:
    """One board as described by its board.toml; `root` is the board's folder."""

    name: str
    description: str
    core: str
    cpu_flags: tuple[str, ...]
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    timing_source: str
    run: RunConfig
    serial: SerialConfig
    root: Path
    stands_in_for: str | None = None


def list_boards(boards_dir: Path | None = None) -> list[Board]:
    """Every board folder under `boards_dir` (default: the repository's boards/), by name."""
    root = boards_dir or BOARDS_DIR
    return [load_board(p.parent.name, boards_dir=root) for p in sorted(root.glob("*/board.toml"))]


def _known_names(root: Path) -> str:
    names = sorted(p.parent.name for p in root.glob("*/board.toml"))
    return ", ".join(names) if names else "(none)"


def load_board(name: str, *, boards_dir: Path | None = None) -> Board:
    """Read and check `boards_dir/<name>/board.toml` (default: the repository's boards/)."""
    root = boards_dir or BOARDS_DIR
    path = root / name / "board.toml"
    if not name or "/" in name or "\\" in name or not path.is_file():
        raise BoardError(
            f"unknown board {name!r}; known boards: {_known_names(root)} "
            f"(a board is a folder with a board.toml under {root})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BoardError(f"{path} is not valid TOML: {exc}; fix the file") from exc
    return _parse(data, path)


def _parse(data: dict[str, Any], path: Path) -> Board:
    def get(table: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
        label = f"{where}{key}"
        if key not in table:
            raise BoardError(f"{path}: missing key {label!r}; see docs/architecture.md")
        value = table[key]
        # bool is an int subclass: a number field must not accept true/false.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BoardError(f"{path}: {label!r} must be {_TYPE_NAMES[kind]}, not {value!r}")
        return value

    def strings(table: dict[str, Any], key: str, where: str = "") -> tuple[str, ...]:
        value = get(table, key, list, where)
        if not all(isinstance(v, str) for v in value):
            raise BoardError(f"{path}: {where}{key!r} must be a list of strings, not {value!r}")
        return tuple(value)

    def positive(key: str) -> int:
        value = get(data, key, int)
        if value <= 0:
            raise BoardError(f"{path}: {key!r} must be positive, not {value}")
        return value

    run_table = get(data, "run", dict)
    kind = get(run_table, "kind", str, "run.")
    if kind not in RUN_KINDS:
        raise BoardError(f"{path}: run.kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
    machine = get(run_table, "machine", str, "run.") if kind == "qemu" else None
    extra = strings(run_table, "extra_args", "run.") if "extra_args" in run_table else ()
    serial_table = get(data, "serial", dict)
    timing = get(data, "timing_source", str)
    if timing not in TIMING_SOURCES:
        raise BoardError(
            f"{path}: timing_source {timing!r} is not one of {', '.join(TIMING_SOURCES)}"
        )
    name = get(data, "name", str)
    if name != path.parent.name:
        raise BoardError(f"{path}: name {name!r} differs from its folder {path.parent.name!r}")
    stands_in_for = get(data, "stands_in_for", str) if "stands_in_for" in data else None
    return Board(
        name=name,
        description=get(data, "description", str),
        core=get(data, "core", str),
        cpu_flags=strings(data, "cpu_flags"),
        clock_hz=positive("clock_hz"),
        flash_bytes=positive("flash_bytes"),
        ram_bytes=positive("ram_bytes"),
        timing_source=timing,
        run=RunConfig(kind=kind, machine=machine, extra_args=extra),
        serial=SerialConfig(baudrate=get(serial_table, "baudrate", int, "serial.")),
        root=path.parent,
        stands_in_for=stands_in_for,
    )
