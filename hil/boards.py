"""Boards the bench can build for and run on, read from `boards/<name>/board.toml`.

Adding a board means adding a folder: its board.toml (schema in docs/architecture.md), linker
script and port.c (the vector table and start-up code are the runtime's, the same for every
board). Nothing here lists boards by name.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.errors import BoardError

#: The repository's board folders (hil/../boards).
BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"

#: Timing sources a report can name (docs: "Measurement, defined once"). systick-cycles:
#: SysTick on the processor clock (cycles, on a core without a cycle counter).
TIMING_SOURCES = ("qemu-icount", "dwt-cyccnt", "systick-cycles", "systick", "rp2040-timer")
#: How a board's image is started: in QEMU, flashed with pyOCD, or copied as a UF2 file
#: (one module per kind under hil/targets/, each validating its own [run] table).
RUN_KINDS = ("qemu", "pyocd", "uf2")
#: Files `hil build` can write beside the ELF ([image] formats).
IMAGE_FORMATS = ("bin", "hex", "uf2")
#: What a board name may carry after "?" to pick a physical instance (see load_board).
SPEC_KEYS = ("probe", "port", "hardware_map", "uf2", "unlock")
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table"}


class Settings(Mapping[str, Any]):
    """A validated, read-only table of a board.toml ([run], [uf2], [memory])."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._values)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __repr__(self) -> str:
        return f"Settings({self._values!r})"


@dataclass(frozen=True)
class RunConfig:
    """How to start an image: `kind` picks the target (hil/targets/<kind>.py), `settings` is
    the [run] table as that kind validated it (defaults filled in). QEMU's `machine` and
    `extra_args` are kept as attributes for the code that reads them."""

    kind: str
    machine: str | None = None
    extra_args: tuple[str, ...] = ()
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True)
class SerialConfig:
    """The host link's UART settings (ignored by QEMU's TCP serial, used on real boards).
    `usb_ids` ("VID:PID", hex) are USB serial devices that may carry the link, for finding
    the port when neither the hardware map nor --port names it."""

    baudrate: int
    usb_ids: tuple[str, ...] = ()


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
    #: Files `hil build` writes besides the ELF ([image] formats; default a .bin).
    image_formats: tuple[str, ...] = ("bin",)
    #: The no-probe UF2 path ([uf2]: family_id, drive_label, timeouts), or None.
    uf2: Settings | None = None
    #: Where code, weights and activations live and cache settings, for reports ([memory]).
    memory: Settings = field(default_factory=Settings)
    #: The physical instance a board name asked for ("pico?probe=...&port=..."), if any.
    connection: Settings = field(default_factory=Settings)


def list_boards(boards_dir: Path | None = None) -> list[Board]:
    """Every board folder under `boards_dir` (default: the repository's boards/), by name."""
    root = boards_dir or BOARDS_DIR
    return [load_board(p.parent.name, boards_dir=root) for p in sorted(root.glob("*/board.toml"))]


def _known_names(root: Path) -> str:
    names = sorted(p.parent.name for p in root.glob("*/board.toml"))
    return ", ".join(names) if names else "(none)"


def load_board(name: str, *, boards_dir: Path | None = None) -> Board:
    """Read and check `boards_dir/<name>/board.toml` (default: the repository's boards/).

    `name` may carry a physical board instance after "?", as a board list of `hil search` or
    `hil check` can: "pico?probe=E6614103E7A1B2C3&port=/dev/ttyACM0" (keys: SPEC_KEYS, as the
    command line's --probe, --port, --hardware-map, --uf2, --unlock); they end up in
    `Board.connection`, which `hil.targets.open_target` uses where no option overrides them.
    """
    name, _, query = name.partition("?")
    board = _load(name, boards_dir)
    if query:
        board = dataclasses.replace(board, connection=Settings(_parse_spec(name, query)))
    return board


def _parse_spec(name: str, query: str) -> dict[str, Any]:
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=False, strict_parsing=True)
    except ValueError as exc:
        raise BoardError(f"board {name!r}: cannot read {query!r} ({exc}); write "
                         f"{name}?probe=ID&port=/dev/ttyACM0") from exc  # fmt: skip
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key not in SPEC_KEYS:
            raise BoardError(
                f"board {name!r}: unknown option {key!r} after '?'; use {', '.join(SPEC_KEYS)}"
            )
        if key in ("uf2", "unlock"):
            if value.lower() not in ("1", "true", "yes", "0", "false", "no"):
                raise BoardError(f"board {name!r}: {key}={value!r} must be true or false")
            out[key] = value.lower() in ("1", "true", "yes")
        else:
            out[key] = value
    return out


def _load(name: str, boards_dir: Path | None) -> Board:
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

    from hil.targets.base import parse_run_table, parse_uf2_table

    run_table = get(data, "run", dict)
    kind = get(run_table, "kind", str, "run.")
    if kind not in RUN_KINDS:
        raise BoardError(f"{path}: run.kind {kind!r} is not one of {', '.join(RUN_KINDS)}")
    settings = Settings(parse_run_table(kind, run_table, str(path)))
    machine = settings.get("machine")
    extra = tuple(settings.get("extra_args", ()))
    serial_table = get(data, "serial", dict)
    usb_ids = strings(serial_table, "usb_ids", "serial.") if "usb_ids" in serial_table else ()
    for usb_id in usb_ids:
        if not re.fullmatch(r"[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}", usb_id):
            raise BoardError(f"{path}: serial.usb_ids entry {usb_id!r} is not VID:PID in hex")
    image_table = get(data, "image", dict) if "image" in data else {"formats": ["bin"]}
    formats = strings(image_table, "formats", "image.")
    unknown = [f for f in formats if f not in IMAGE_FORMATS]
    if unknown or set(image_table) - {"formats"}:
        raise BoardError(
            f"{path}: [image] takes only formats, a list of {', '.join(IMAGE_FORMATS)}"
        )
    uf2 = None
    if "uf2" in data:
        uf2 = Settings(parse_uf2_table(get(data, "uf2", dict), str(path)))
    elif kind == "uf2":
        uf2 = settings
    if "uf2" in formats and uf2 is None:
        raise BoardError(f"{path}: [image] formats has uf2 but there is no [uf2] family_id")
    memory_table = get(data, "memory", dict) if "memory" in data else {}
    for key in memory_table:
        get(memory_table, key, str, "memory.")
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
        run=RunConfig(kind=kind, machine=machine, extra_args=extra, settings=settings),
        serial=SerialConfig(
            baudrate=get(serial_table, "baudrate", int, "serial."), usb_ids=tuple(usb_ids)
        ),
        root=path.parent,
        stands_in_for=stands_in_for,
        image_formats=tuple(formats),
        uf2=uf2,
        memory=Settings(memory_table),
    )
