"""Finding the smallest TFLM arena that works, by asking TFLM on the device.

TFLM plans its arena at run time (`AllocateTensors`): tensors, its own bookkeeping and the
kernels' scratch buffers, whose sizes depend on the core (CMSIS-NN's DSP kernels want more
scratch than the plain-C ones) and on 32-bit pointer sizes. A host run of the tflite-micro
Python package would measure a 64-bit build with other kernels, so the figure is measured
where it counts: a probe image with a generous static arena sets the model up on the target
in an arena of the size the host asks for, runs one inference and reports whether set-up
worked, `arena_used_bytes()` and where TFLM put each I/O tensor.

The first try gives TFLM all of the probe's arena. Its `arena_used_bytes()` is not the arena
to provision: while AllocateTensors plans, TFLM's memory planner takes its lists from the
free space, which the figure leaves out, so an arena of the used size rounded up to TFLM's
16-byte alignment fails for small models ("Too many buffers"). So the host bisects between
that size and the probe's for the smallest arena that works, in 16-byte steps, booting the
probe again for every try. Not one image trying sizes in a loop: in an arena a few bytes too
small TFLM's `SingleArenaBufferAllocator` can compute its free space below zero (an unsigned
wrap in `AllocateTemp` and `GetAvailableMemory` when the aligned temp pointer passes the
tail), hand out memory it does not have, and fault or corrupt its own bookkeeping (seen on
the zoo's softmax: a HardFault in the greedy planner, tensors of a garbage type). So a try
counts only when it faults nothing, sets up, runs, and lays out exactly what the full arena
did (same used size, same I/O offsets); a fault, a hang or any other answer counts as
"too small". The final image provisions the size found.

The result is cached per model, TFLM version, kernels, flags and board, so the probe runs
once; later profiles of the same model build the final image straight away.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hil.errors import (
    HilError,
    ModelError,
    ModelTooLargeError,
    TargetFault,
    TargetTimeout,
    UnsupportedOpError,
)

if TYPE_CHECKING:
    from hil.boards import Board
    from hil.build import Library
    from hil.codegen import GeneratedProject

#: TFLM's arena alignment (`MicroArenaBufferAlignment()`).
ALIGNMENT = 16
#: Share of the board's RAM the probe image gives TFLM's arena.
PROBE_RAM_SHARE = 5 / 8
#: Size of the status block's message (TFLM's log lines).
MESSAGE_BYTES = 192
#: Bumped when the status block or the probe changes, so old cached figures are not reused.
PROBE_VERSION = 3

_MAGIC = 0x4C465448  # "HTFL"
_HEADER = struct.Struct("<6I")
# Status codes of the probe image (firmware/templates/tflm/model.cc.j2).
_OK, _BAD_SCHEMA, _RESOLVER_FULL, _ALLOCATE_FAILED, _IO_MISMATCH, _INVOKE_FAILED, _NOT_READY = (
    range(7)
)
#: Instructions per second QEMU reaches at worst on a loaded host; instructions per MAC of
#: TFLM's reference kernels on a Cortex-M0 at worst (for the link's timeout).
_SLOWEST_IPS = 20e6
_WORST_INSTRUCTIONS_PER_MAC = 60


@dataclass(frozen=True)
class ArenaFit:
    """What the probe learnt: the arena TFLM uses once set up (`arena_used_bytes()`), the
    smallest arena its set-up accepts (what the final image provisions), where it put each
    input and output tensor (byte offsets in the arena, -1 outside it), and the profiler
    events of one inference."""

    used_bytes: int
    provisioned_bytes: int
    offsets: tuple[int, ...]
    events: int


def probe_arena_bytes(board: Board) -> int:
    """The probe image's arena: a generous share of the board's RAM, 16-aligned."""
    return int(board.ram_bytes * PROBE_RAM_SHARE) // ALIGNMENT * ALIGNMENT


def status_bytes(num_io: int) -> int:
    """Size of the probe image's status block (mirrors `struct Status` in the template)."""
    return _HEADER.size + 4 * num_io + MESSAGE_BYTES


@dataclass(frozen=True)
class Status:
    """The probe image's status block, decoded."""

    code: int
    arena_used: int
    arena_bytes: int
    invokes: int
    events: int
    offsets: tuple[int, ...]
    message: str


def parse_status(data: bytes, num_io: int) -> Status:
    """Decode the status block; HilError when it is not one (a wrong or damaged image)."""
    if len(data) != status_bytes(num_io):
        raise HilError(
            f"the TFLM probe image answered with a {len(data)}-byte status block, expected "
            f"{status_bytes(num_io)}: rebuild it (clear $HIL_CACHE_DIR/projects)"
        )
    magic, code, used, size, invokes, events = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise HilError(f"the TFLM probe image's status block has magic 0x{magic:08x}")
    offsets = struct.unpack_from(f"<{num_io}i", data, _HEADER.size)
    raw = data[_HEADER.size + 4 * num_io :].split(b"\0", 1)[0]
    message = raw.decode("ascii", errors="replace").strip().rstrip(";").strip()
    return Status(code, used, size, invokes, events, tuple(offsets), message)


def explain(status: Status, *, model: str, board: Board) -> HilError:
    """The error a failed probe stands for, with TFLM's own words."""
    said = f" TFLM said: {status.message}" if status.message else ""
    if status.code == _ALLOCATE_FAILED:
        kib = status.arena_bytes / 1024
        if "Didn't find op" in status.message:
            return UnsupportedOpError(
                f"TFLM found no kernel for an op of model {model!r} in the generated resolver "
                f"on {board.name}.{said} The resolver is generated from the model's ops, so "
                "this is a bench bug: please report it."
            )
        if any(word in status.message for word in ("Requested", "missing:", "too small")):
            return ModelTooLargeError(
                f"TFLM could not lay out model {model!r} in a {kib:,.0f} KiB arena on "
                f"{board.name} ({board.ram_bytes / 1024:,.0f} KiB of RAM).{said} Make the "
                "model smaller or pick a board with more RAM (`hil boards`)."
            )
        return UnsupportedOpError(
            f"TFLM refused model {model!r} while preparing it on {board.name}.{said} Use "
            "another backend, or a TFLM version that supports the model."
        )
    if status.code == _BAD_SCHEMA:
        return ModelError(f"TFLM cannot read model {model!r}.{said} Re-export the model.")
    if status.code == _IO_MISMATCH:
        return ModelError(
            f"TFLM's inputs and outputs of model {model!r} differ from what the bench read "
            f"from the file.{said}"
        )
    if status.code == _INVOKE_FAILED:
        return UnsupportedOpError(
            f"TFLM failed to run model {model!r} on {board.name}.{said} Use another backend, "
            "or a TFLM version that supports the model."
        )
    return HilError(
        f"the TFLM probe image of model {model!r} failed on {board.name} (status "
        f"{status.code}).{said} This is a bench bug: please report it."
    )


def find_arena(
    project: GeneratedProject,
    board: Board,
    libraries: Sequence[Library],
    *,
    key: str,
    model_name: str,
) -> ArenaFit:
    """Build the probe `project` once and find the smallest arena that works on `board` (or
    read the figure cached under `key`)."""
    from hil.build import build, cache_errors, prepare_cache_dir

    cache = prepare_cache_dir() / "tflm-arena" / f"{key}.json"
    cached = _read(cache)
    if cached is not None:
        return cached
    what = f"{model_name} (TFLM arena probe)"
    built = build(project.out_dir, board, model_name=what, libraries=libraries)

    def attempt(size: int) -> Status | None:
        return try_arena(built.elf, project, board, size)

    full = attempt(0)
    if full is None:
        raise HilError(
            f"the TFLM probe image of model {model_name!r} faulted on {board.name} with all "
            f"of its {probe_arena_bytes(board):,}-byte arena: a bench or TFLM bug, please "
            "report it"
        )
    if full.code != _OK:
        raise explain(full, model=model_name, board=board)
    if full.invokes != 1 or full.events != len(project.layers):
        raise HilError(
            f"the TFLM probe of model {model_name!r} ran {full.invokes} inference(s) with "
            f"{full.events} operator events, expected 1 with {len(project.layers)}: a bench "
            "bug, please report it"
        )

    def works(size: int) -> bool:
        got = attempt(size)
        return (
            got is not None
            and got.code == _OK
            and got.invokes == 1
            and got.arena_used == full.arena_used
            and got.offsets == full.offsets
        )

    fit = ArenaFit(full.arena_used, smallest_arena(full.arena_used, full.arena_bytes, works),
                   full.offsets, full.events)  # fmt: skip
    with cache_errors():
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"used_bytes": fit.used_bytes,
                                   "provisioned_bytes": fit.provisioned_bytes,
                                   "offsets": list(fit.offsets), "events": fit.events}) + "\n")
        os.replace(tmp, cache)
    return fit


#: What TFLM needed beyond `arena_used_bytes()` stayed below this on every model measured (at
#: most 652 bytes: the planner's lists), so the search tries it first and bisects below it.
FIRST_MARGIN = 1024


def smallest_arena(used: int, largest: int, works: Callable[[int], bool]) -> int:
    """The smallest multiple of ALIGNMENT in (used rounded up - ALIGNMENT, `largest`] for which
    `works` holds (`largest` is known to work; below `used` nothing can): FIRST_MARGIN above
    the used size first, then bisection (about 7 tries instead of 13 for a 160 KiB probe)."""
    bad = -(-used // ALIGNMENT) * ALIGNMENT - ALIGNMENT
    good = largest
    guess = bad + ALIGNMENT + FIRST_MARGIN
    if guess < largest:
        if works(guess):
            good = guess
        else:
            bad = guess
    while good - bad > ALIGNMENT:
        mid = (bad + (good - bad) // 2) // ALIGNMENT * ALIGNMENT
        if works(mid):
            good = mid
        else:
            bad = mid
    return good


def try_arena(elf: Path, project: GeneratedProject, board: Board, size: int) -> Status | None:
    """Boot the probe image, give TFLM `size` bytes of arena (0: all of the probe's), run one
    inference; the status block, or None when the image faulted, hung or lost the link."""
    from hil.link import DeviceLink
    from hil.targets import open_target

    num_io = len(project.inputs) + len(project.outputs) + len(project.debug_tensors)
    timeout = 20.0 + project.macs * _WORST_INSTRUCTIONS_PER_MAC / _SLOWEST_IPS
    try:
        with (
            open_target(board).session(elf) as url,
            DeviceLink(url, timeout=timeout, baudrate=board.serial.baudrate) as link,
        ):
            link.expect_model(project.model_id)
            link.write_input(len(project.inputs), struct.pack("<I", size))
            link.run(1, 0)
            return parse_status(link.read_output(0), num_io)
    except (TargetFault, TargetTimeout):
        return None


def _read(path: Path) -> ArenaFit | None:
    try:
        data = json.loads(path.read_text())
        return ArenaFit(int(data["used_bytes"]), int(data["provisioned_bytes"]),
                        tuple(int(o) for o in data["offsets"]), int(data["events"]))
    except (OSError, ValueError, LookupError, TypeError):
        return None
