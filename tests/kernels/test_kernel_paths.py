"""Every implementation path of the conv-family kernels gives TFLite's results, bit for bit.

The kernel library is compiled natively in each of its variants (hil_kernels_path.h): the
portable loops, the generic blocked path of cores without DSP (with the 16-bit-multiply
requantization of Cortex-M0 as well), and the DSP path through C models of the SMLAD family;
all under AddressSanitizer and UndefinedBehaviorSanitizer. Each runs the seeded cases of
kernel_cases.py against a numpy model of the reference kernels. The inline assembly of the two
cores runs in test_kernels_qemu.py; here its C counterpart does. The library built for the
boards' cores must not call run-time helpers (division, 64-bit multiply).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from kernel_cases import Case, c_source, random_cases

from hil.boards import load_board

KERNELS = Path(__file__).resolve().parents[2] / "firmware" / "kernels"
VARIANTS = {
    "portable": ["-DHIL_KERNELS_PORTABLE"],
    "generic": [],
    "generic-mul32": ["-DHIL_KERNELS_MUL32"],
    "dsp": ["-DHIL_KERNELS_EMULATE_DSP"],
}
MAIN = """
#include <stdint.h>
#include <stdio.h>
extern const uint32_t hil_num_cases;
int32_t hil_case_check(uint32_t i);
int main(void)
{
    for (uint32_t i = 0; i < hil_num_cases; ++i) {
        printf("%ld\\n", (long)hil_case_check(i));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return random_cases(seed=11, conv=40, depthwise=24, fc=16)


def failures(cases: list[Case], counts: list[int]) -> dict[str, str]:
    """Case name -> what went wrong, for every case whose count is not 0."""
    out = {}
    for c, n in zip(cases, counts, strict=True):
        if n:
            wrong, guard = n % 1000, n // 1000
            out[c.name] = f"{wrong} of {c.expected.size} bytes differ" + (
                f", {guard} bytes written past the output" if guard else ""
            )
    return out


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_matches_the_reference_model(
    variant: str, cases: list[Case], tmp_path: Path
) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("needs the host gcc")
    (tmp_path / "cases.c").write_text(c_source(cases))
    (tmp_path / "main.c").write_text(MAIN)
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    flags = ["-std=c99", "-O1", "-g", "-Wall", "-Wextra", "-Werror", f"-I{KERNELS}"]
    sources = [str(p) for p in sorted(KERNELS.glob("*.c"))]
    exe = tmp_path / "cases"
    cmd = ["gcc", *flags, *VARIANTS[variant], *sanitize, *sources,
           str(tmp_path / "cases.c"), str(tmp_path / "main.c"), "-o", str(exe), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "sanitize" in proc.stderr:  # no libasan/libubsan here
        cmd = [c for c in cmd if c not in sanitize]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    counts = [int(line) for line in run.stdout.split()]
    assert failures(cases, counts) == {}


#: Run-time helpers a kernel must not call: division (ARMv6-M has no divide instruction) and
#: 64-bit multiplies and shifts (Cortex-M0 has no SMULL).
FORBIDDEN = re.compile(
    r"__aeabi_(u?idiv(mod)?|u?ldivmod|lmul|llsl|llsr|lasr)|__(u?div|u?mod)[sd]i3"
)
#: The float conversion kernels use the soft-float helpers on a core without an FPU.
FLOAT_KERNELS = {"hil_quantize_f32_s8", "hil_dequantize_s8_f32"}


@pytest.mark.parametrize("board_name", ["qemu-m0", "qemu-m4"])
def test_kernel_library_calls_no_runtime_helpers(board_name: str, tmp_path: Path) -> None:
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-nm") is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    board = load_board(board_name)
    undefined: dict[str, list[str]] = {}
    for src in sorted(KERNELS.glob("*.c")):
        obj = tmp_path / f"{src.stem}.o"
        subprocess.run(
            ["arm-none-eabi-gcc", *board.cpu_flags, "-std=c99", "-O2", "-ffunction-sections",
             f"-I{KERNELS}", "-c", str(src), "-o", str(obj)],
            check=True,
        )
        nm = subprocess.run(["arm-none-eabi-nm", "-u", str(obj)], capture_output=True,
                            text=True, check=True)
        names = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
        bad = [n for n in names if FORBIDDEN.search(n)]
        if src.stem not in FLOAT_KERNELS:
            bad += [n for n in names if n.startswith("__aeabi_") and n not in bad]
        if bad:
            undefined[src.stem] = bad
    assert undefined == {}
