"""Turning raw facts into the figures DESIGN.md defines: flash/RAM, latency, correctness.

* Flash and static RAM come from the ELF's section headers (pyelftools), not from Berkeley
  `size`, which counts a reserved stack section as .bss.
* Latency: the device reports counts of its time source; what a count means depends on that
  source (instructions under QEMU icount, cycles from DWT, ticks of a timer).
* Correctness: device outputs against the reference interpreter's, in units of one LSB.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section
from elftools.elf.segments import Segment

from hil.errors import BuildError, HilError

#: A correct output may differ from the reference by rounding at most this much (in LSB).
MAX_LSB_DIFF = 1.0


@dataclass(frozen=True)
class ElfSizes:
    """Memory an image needs. `sections` maps each counted section to its byte size."""

    flash_bytes: int
    static_ram_bytes: int
    data_bytes: int
    bss_bytes: int
    sections: dict[str, int] = field(default_factory=dict)


def _is_reserved_stack(name: str) -> bool:
    """The stack section only reserves room; its real use is measured by stack painting."""
    return "stack" in name.lower()


def elf_sizes(elf_path: str | Path) -> ElfSizes:
    """Flash = read-only alloc sections + the initial image of .data; static RAM = .data + .bss.

    A writable section with file contents whose load address (LMA) differs from its run
    address is initialised data: its bytes sit in flash and it occupies RAM. Writable sections
    loaded in place (e.g. .init_array kept in flash) count as flash only. NOBITS sections are
    RAM, except the reserved stack.
    """
    path = Path(elf_path)
    try:
        with path.open("rb") as fh:
            elf = ELFFile(fh)
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
            flash = ram = data = bss = 0
            counted: dict[str, int] = {}
            for sec in elf.iter_sections():
                flags, size = sec["sh_flags"], sec["sh_size"]
                if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                    continue
                if sec["sh_type"] == "SHT_NOBITS":
                    if _is_reserved_stack(sec.name):
                        continue
                    bss += size
                    ram += size
                elif flags & SH_FLAGS.SHF_WRITE and _load_address(loads, sec) != sec["sh_addr"]:
                    data += size
                    ram += size
                    flash += size
                else:
                    flash += size
                counted[sec.name] = size
    except (ELFError, OSError) as exc:
        raise BuildError(f"cannot read the firmware image {path}: {exc}") from exc
    return ElfSizes(flash, ram, data, bss, counted)


#: Objects of the bench's own runtime (protocol buffers, layer counts, board port): everything
#: else in RAM (the generated model, the kernels, a backend's library, the C library) is what a
#: deployment of the model needs as well.
_RUNTIME_ARCHIVE = "libhil_platform.a("
_MAP_INPUT = re.compile(r"^ (\.\S+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*))?$")
_MAP_PLACED = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def model_static_ram(map_path: str | Path) -> int | None:
    """Bytes of static RAM (.data and .bss) that are not the bench runtime's own objects,
    from the linker's map file (model.map, written beside model.elf): the model's part of
    `static_ram_bytes` (docs/measurement.md, model RAM). None when there is no map to read."""
    try:
        lines = Path(map_path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    total = 0
    in_ram = False
    pending = False  # an input section's name line, its address/size/file on the next line
    for line in lines:
        if line and not line[0].isspace():
            in_ram = line.split()[0] in (".data", ".bss")
            pending = False
            continue
        if not in_ram:
            continue
        m = _MAP_INPUT.match(line)
        if m and not m.group(1).startswith("*"):
            if m.group(4) is None:
                pending = True
                continue
            size, source = int(m.group(3), 16), m.group(4)
        elif pending and (p := _MAP_PLACED.match(line)):
            size, source = int(p.group(2), 16), p.group(3)
        else:
            pending = False
            continue
        pending = False
        if _RUNTIME_ARCHIVE not in source:
            total += size
    return total


def _load_address(loads: list[Segment], sec: Section) -> int:
    """Where the loader puts the section's bytes (LMA), from the PT_LOAD segment holding it."""
    addr = sec["sh_addr"]
    for seg in loads:
        if seg["p_vaddr"] <= addr < seg["p_vaddr"] + max(seg["p_memsz"], 1):
            return seg["p_paddr"] + (addr - seg["p_vaddr"])
    return addr


@dataclass(frozen=True)
class Latency:
    """Median latency over the measured runs, in the timing source's unit and in ms."""

    counts: int
    ms: float
    note: str
    per_run: list[int] = field(default_factory=list)


def convert_counts(
    counts: int | float, timing_source: str, counts_per_second: int, clock_hz: int
) -> tuple[int, float]:
    """One device count value -> (latency_counts, latency_ms) for `timing_source`.

    qemu-icount: the device counts a timer that runs on QEMU's virtual clock, where one
    instruction takes 1 ns, so instructions = counts * 1e9 / counts_per_second and ms treats
    one instruction as one cycle of the represented board's clock. Every other source already
    counts in its own unit (cycles or ticks) at counts_per_second.
    """
    if counts_per_second <= 0:
        raise HilError(f"the target reported a time counter of {counts_per_second} Hz")
    if timing_source == "qemu-icount":
        instructions = round(counts * 1e9 / counts_per_second)
        return instructions, instructions / clock_hz * 1e3
    return round(counts), counts / counts_per_second * 1e3


def timing_note(timing_source: str, clock_hz: int, counts_per_second: int, represents: str) -> str:
    """The words a report prints next to the latency so nobody mistakes what was counted.

    `represents` names the board whose clock the ms figure assumes (for an emulated board,
    the physical board it stands in for).
    """
    mhz = f"{clock_hz / 1e6:g} MHz"
    if timing_source == "qemu-icount":
        return (
            f"instructions executed under QEMU (-icount shift=0), not cycles; ms assumes one "
            f"instruction per cycle at the {mhz} clock of {represents}"
        )
    if timing_source == "dwt-cyccnt":
        return f"CPU cycles from the DWT cycle counter at {mhz}"
    if timing_source == "systick-cycles":
        return (
            f"CPU cycles from SysTick on the processor clock at {mhz} (the core has no cycle "
            f"counter; the 1 MHz TIMER cross-checked the clock at start-up)"
        )
    return f"{timing_source} ticks at {counts_per_second:,} Hz (CPU clock {mhz})"


def latency(
    per_run: Sequence[int],
    timing_source: str,
    counts_per_second: int,
    clock_hz: int,
    represents: str,
) -> Latency:
    """Median of the per-run counts, converted as `convert_counts` describes."""
    if not per_run:
        raise HilError("the target reported no measured runs; ask for at least one run")
    median = statistics.median(per_run)
    counts, ms = convert_counts(median, timing_source, counts_per_second, clock_hz)
    runs = [convert_counts(c, timing_source, counts_per_second, clock_hz)[0] for c in per_run]
    note = timing_note(timing_source, clock_hz, counts_per_second, represents)
    return Latency(counts, ms, note, runs)


@dataclass(frozen=True)
class Comparison:
    """Device outputs against the reference: exact-match rate and worst difference in LSB."""

    exact_rate: float
    max_abs_diff: float
    elements: int

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= MAX_LSB_DIFF


def compare_outputs(
    got: Sequence[np.ndarray],
    expected: Sequence[np.ndarray],
    lsb: Sequence[float | None] | None = None,
) -> Comparison:
    """Compare every output element. `lsb[i]` is the step of output i for float outputs (the
    scale of the int8 tensor it was dequantized from); integer outputs count in their own units.
    """
    if len(got) != len(expected):
        raise HilError(f"the target returned {len(got)} outputs, the reference {len(expected)}")
    exact = total = 0
    worst = 0.0
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        g_arr, e_arr = np.asarray(g).ravel(), np.asarray(e).ravel()
        if g_arr.size != e_arr.size:
            raise HilError(
                f"output {i} has {g_arr.size} elements on the target, {e_arr.size} in the "
                "reference: the generated model and the reference disagree on its shape"
            )
        diff = np.abs(g_arr.astype(np.float64) - e_arr.astype(np.float64))
        step = lsb[i] if lsb is not None and lsb[i] else 1.0
        diff = diff / step
        if g_arr.dtype.kind == "f":
            diff = np.where(np.isnan(g_arr) & np.isnan(e_arr), 0.0, diff)
            diff = np.nan_to_num(diff, nan=np.inf)
            exact += int(np.count_nonzero(diff < 1e-6))
        else:
            exact += int(np.count_nonzero(diff == 0))
        total += g_arr.size
        if diff.size:
            worst = max(worst, float(diff.max()))
    return Comparison(exact / total if total else 1.0, worst, total)
