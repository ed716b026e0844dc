"""The bench's physical inventory: which probe and serial port belong to which board instance.

A board type (`boards/pico/board.toml`) says how to build for and talk to a Pico; the hardware
map says where the Picos on this bench are, the way Zephyr's twister keeps its hardware map
apart from board definitions. A lab with three Picos lists three entries of one type:

```toml
[[board]]
id = "pico-1"                  # any name, unique in the file
type = "pico"                  # a folder under boards/
probe = "E6614103E7XXXXXX"     # pyOCD unique id of the probe wired to it
port = "/dev/ttyACM0"          # optional: else found by serial_number or the probe's id
serial_number = "E6614103E7XXXXXX"  # optional: USB serial number of its UART
uf2_drive = "/media/lab/RPI-RP2"    # optional: where its BOOTSEL drive mounts
```

The file is `--hardware-map PATH`, else `$HIL_HARDWARE_MAP`, else `hardware-map.toml` in the
working directory if present. `hil doctor --write-map PATH` writes a first one. A run claims
one instance at a time (an advisory lock per instance), so parallel workers of `hil search`
share a lab without two of them flashing the same board.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.errors import BoardError, ConnectError

ENV = "HIL_HARDWARE_MAP"
DEFAULT_NAME = "hardware-map.toml"
_KEYS = {"id", "type", "probe", "port", "serial_number", "uf2_drive", "notes"}


@dataclass(frozen=True)
class BoardInstance:
    """One physical board on the bench."""

    id: str
    type: str
    probe: str | None = None
    port: str | None = None
    serial_number: str | None = None
    uf2_drive: str | None = None
    notes: str = ""


def map_path(given: str | Path | None = None) -> Path | None:
    """The hardware map to use: `given`, else $HIL_HARDWARE_MAP, else ./hardware-map.toml if
    it exists, else None (no map: --probe/--port or discovery decide)."""
    if given:
        return Path(given)
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    local = Path(DEFAULT_NAME)
    return local if local.is_file() else None


def load_hardware_map(path: str | Path) -> list[BoardInstance]:
    """Read and check a hardware map: unknown keys, missing id/type and duplicate ids are
    BoardErrors naming the file and the entry."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BoardError(f"cannot read the hardware map {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BoardError(f"hardware map {path} is not valid TOML: {exc}") from exc
    unknown_top = sorted(set(data) - {"board"})
    if unknown_top:
        raise BoardError(
            f"hardware map {path}: unknown table(s) {', '.join(unknown_top)}; it holds "
            "[[board]] entries only"
        )
    entries = data.get("board", [])
    if not isinstance(entries, list):
        raise BoardError(f"hardware map {path}: 'board' must be [[board]] entries")
    instances: list[BoardInstance] = []
    for n, entry in enumerate(entries, 1):
        where = f"hardware map {path}, entry {n}"
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise BoardError(
                f"{where}: unknown key(s) {', '.join(unknown)}; an entry takes "
                f"{', '.join(sorted(_KEYS))}"
            )
        for key in ("id", "type"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise BoardError(f"{where}: {key!r} must be a non-empty string")
        for key in _KEYS - {"id", "type"}:
            if key in entry and not isinstance(entry[key], str):
                raise BoardError(f"{where}: {key!r} must be a string, not {entry[key]!r}")
        if entry["type"] == "FIXME":
            raise BoardError(
                f"{where} ({entry['id']}): set type to the board wired to probe "
                f"{entry.get('probe', '?')} (e.g. pico, nano33ble; `hil boards` lists them)"
            )
        if any(i.id == entry["id"] for i in instances):
            raise BoardError(f"{where}: id {entry['id']!r} is used twice")
        instances.append(BoardInstance(**entry))
    return instances


def dump_hardware_map(instances: Sequence[BoardInstance], comment: str = "") -> str:
    """TOML text of `instances` (strings are written JSON-escaped, which TOML accepts)."""
    lines = [f"# {line}" for line in comment.splitlines()]
    for inst in instances:
        lines += ["", "[[board]]"]
        for key in ("id", "type", "probe", "port", "serial_number", "uf2_drive", "notes"):
            value = getattr(inst, key)
            if value:
                lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def select(
    instances: Sequence[BoardInstance],
    board_type: str,
    *,
    probe: str | None = None,
    port: str | None = None,
) -> list[BoardInstance]:
    """The instances of `board_type` matching --probe/--port when given (or naming `board_type`
    as an instance id); a BoardError saying what the map holds when none do."""
    by_id = [i for i in instances if i.id == board_type]
    pool = by_id or [i for i in instances if i.type == board_type]
    if probe:
        pool = [i for i in pool if i.probe and i.probe.lower() == probe.lower()]
    if port:
        pool = [i for i in pool if i.port == port]
    return pool


def _lock_dir() -> Path:
    from hil.build import cache_dir

    return cache_dir() / "locks"


@contextlib.contextmanager
def claim(
    candidates: Sequence[BoardInstance], *, timeout_s: float = 600.0, poll_s: float = 0.5
) -> Iterator[BoardInstance]:
    """Hold one free instance among `candidates` (first free one, waiting up to `timeout_s`
    while all are in use by other runs); released on exit."""
    if not candidates:
        raise ConnectError("no board instance to claim")
    locks = _lock_dir()
    locks.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    while True:
        for inst in candidates:
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", inst.id)
            handle = open(locks / f"board-{name}.lock", "w")  # noqa: SIM115 (closed below)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            try:
                yield inst
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() >= deadline:
            ids = ", ".join(i.id for i in candidates)
            raise ConnectError(
                f"every board instance of this type ({ids}) stayed in use by other runs for "
                f"{timeout_s:.0f} s; wait for them or add boards to the hardware map"
            )
        time.sleep(poll_s)
