"""Measurement definitions: ELF sizes, count conversion per timing source, output comparison."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hil.errors import BuildError, HilError
from hil.measure import compare_outputs, convert_counts, elf_sizes, latency

LINKER_SCRIPT = """
MEMORY { FLASH (rx) : ORIGIN = 0x0, LENGTH = 64K
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 16K }
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) } > FLASH
  .rodata : { *(.rodata*) } > FLASH
  .data : { *(.data*) } > RAM AT > FLASH
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  .stack (NOLOAD) : { . = ALIGN(8); . += 4096; } > RAM
}
"""

SOURCE = """
#include <stdint.h>
const int8_t weights[1000] = {1, 2, 3};
int32_t counter = 5;
int32_t table[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static uint8_t arena[3000];
int main(void) { arena[counter] = (uint8_t)weights[table[counter & 7]]; return arena[7]; }
void _start(void) { main(); for (;;) {} }
"""


@pytest.fixture(scope="module")
def small_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    d = tmp_path_factory.mktemp("elf")
    (d / "link.ld").write_text(LINKER_SCRIPT)
    (d / "main.c").write_text(SOURCE)
    elf = d / "fw.elf"
    subprocess.run(
        [
            "arm-none-eabi-gcc",
            "-mcpu=cortex-m0",
            "-mthumb",
            "-O1",
            "-nostdlib",
            "-T",
            d / "link.ld",
            "-o",
            elf,
            d / "main.c",
        ],
        check=True,
    )
    return elf


def _headers(elf: Path) -> dict[str, tuple[str, int, str]]:
    """name -> (type, size, flags) from readelf, independent of pyelftools."""
    out = subprocess.run(
        ["arm-none-eabi-readelf", "-SW", elf], check=True, capture_output=True, text=True
    ).stdout
    rows = {}
    for m in re.finditer(
        r"\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+([A-Z]*)\s", out
    ):
        rows[m.group(1)] = (m.group(2), int(m.group(3), 16), m.group(4))
    return rows


def test_elf_sizes_follow_the_section_headers(small_elf: Path) -> None:
    h = _headers(small_elf)
    sizes = elf_sizes(small_elf)
    assert h[".stack"][1] >= 4096  # reserved, not static RAM
    assert sizes.data_bytes == h[".data"][1] == 36
    assert sizes.bss_bytes == h[".bss"][1] >= 3000
    assert sizes.static_ram_bytes == h[".data"][1] + h[".bss"][1]
    assert sizes.flash_bytes == h[".text"][1] + h[".rodata"][1] + h[".data"][1]
    assert ".stack" not in sizes.sections


def test_elf_sizes_reject_a_file_that_is_no_elf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"not an elf at all")
    with pytest.raises(BuildError, match="cannot read the firmware image"):
        elf_sizes(bad)


def test_counts_convert_per_timing_source() -> None:
    # QEMU icount: SysTick at 25 MHz, 1 instruction = 1 ns -> 40 instructions per tick.
    assert convert_counts(1000, "qemu-icount", 25_000_000, 64_000_000) == (40_000, 0.625)
    counts, ms = convert_counts(64_000, "dwt-cyccnt", 64_000_000, 64_000_000)
    assert (counts, ms) == (64_000, 1.0)
    assert convert_counts(1500, "rp2040-timer", 1_000_000, 125_000_000) == (1500, 1.5)
    with pytest.raises(HilError, match="0 Hz"):
        convert_counts(1, "systick", 0, 1)


def test_latency_is_the_median_and_says_what_it_counted() -> None:
    lat = latency([30, 10, 20], "qemu-icount", 25_000_000, 64_000_000, "qemu-m4")
    assert lat.counts == 800 and lat.per_run == [1200, 400, 800]
    assert "instructions" in lat.note and "64 MHz" in lat.note and "not cycles" in lat.note
    assert "cycles" in latency([5], "dwt-cyccnt", 64_000_000, 64_000_000, "nano").note
    with pytest.raises(HilError, match="no measured runs"):
        latency([], "systick", 1, 1, "b")


def test_compare_outputs_counts_lsb() -> None:
    ref = [np.array([1, 2, 3, 4], np.int8), np.array([[-128, 127]], np.int8)]
    same = compare_outputs(ref, ref)
    assert (same.exact_rate, same.max_abs_diff, same.passed) == (1.0, 0.0, True)
    off_by_one = compare_outputs([np.array([1, 2, 3, 5], np.int8), ref[1]], ref)
    assert off_by_one.exact_rate == 5 / 6 and off_by_one.max_abs_diff == 1 and off_by_one.passed
    wrong = compare_outputs([ref[0], np.array([[-128, 125]], np.int8)], ref)
    assert wrong.max_abs_diff == 2 and not wrong.passed
    # Float outputs count in steps of the scale they were dequantized with.
    f = compare_outputs(
        [np.array([0.5, 0.75], np.float32)], [np.array([0.5, 0.5], np.float32)], lsb=[0.125]
    )
    assert f.max_abs_diff == 2 and f.exact_rate == 0.5
    with pytest.raises(HilError, match="elements"):
        compare_outputs([np.zeros(3)], [np.zeros(4)])
