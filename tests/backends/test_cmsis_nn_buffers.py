"""The host's scratch-buffer rules (hil.backends.cmsis_nn.buffers) against the real
`*_get_buffer_size` functions of the CMSIS_NN_ROOT checkout, compiled for the host.

On a host the plain getter has neither DSP nor MVE (the Cortex-M0/M3 size) and the `_dsp`
variant gives the Cortex-M4/M7 size, so one host program checks both core classes.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from hil.backends.cmsis_nn import buffers

_SOURCES = (
    "ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c",
    "ConvolutionFunctions/arm_depthwise_conv_get_buffer_sizes_s8.c",
    "PoolingFunctions/arm_avgpool_get_buffer_sizes_s8.c",
    "FullyConnectedFunctions/arm_fully_connected_get_buffer_sizes_s8.c",
)

#: Reads "<kind> n h w c out_c kh kw sh sw ph pw dh dw" lines, prints "<scalar> <dsp>" sizes.
_HARNESS = r"""
#include <stdio.h>
#include "arm_nnfunctions.h"

int main(void)
{
    char kind[8];
    int n, h, w, c, oc, kh, kw, sh, sw, ph, pw, dh, dw;
    while (scanf("%7s %d %d %d %d %d %d %d %d %d %d %d %d %d", kind, &n, &h, &w, &c, &oc, &kh,
                 &kw, &sh, &sw, &ph, &pw, &dh, &dw) == 14) {
        const cmsis_nn_dims in = {n, h, w, c}, out = {n, h, w, oc};
        long a, b;
        if (kind[0] == 'c') {
            cmsis_nn_conv_params p = {0};
            p.stride.w = sw; p.stride.h = sh; p.padding.w = pw; p.padding.h = ph;
            p.dilation.w = dw; p.dilation.h = dh;
            const cmsis_nn_dims f = {oc, kh, kw, c};
            a = arm_convolve_wrapper_s8_get_buffer_size(&p, &in, &f, &out);
            b = arm_convolve_wrapper_s8_get_buffer_size_dsp(&p, &in, &f, &out);
        } else if (kind[0] == 'd') {
            cmsis_nn_dw_conv_params p = {0};
            p.ch_mult = oc / c; p.stride.w = sw; p.stride.h = sh; p.padding.w = pw;
            p.padding.h = ph; p.dilation.w = dw; p.dilation.h = dh;
            const cmsis_nn_dims f = {1, kh, kw, oc};
            a = arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &f, &out);
            b = arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp(&p, &in, &f, &out);
        } else if (kind[0] == 'a') {
            a = arm_avgpool_s8_get_buffer_size(w, c);
            b = arm_avgpool_s8_get_buffer_size_dsp(w, c);
        } else {
            const cmsis_nn_dims f = {c, 1, 1, oc};
            a = arm_fully_connected_s8_get_buffer_size(&f);
            b = arm_fully_connected_s8_get_buffer_size_dsp(&f);
        }
        printf("%ld %ld\n", a, b);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def getters(cmsis_nn_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("host gcc not installed (Debian package gcc)")
    work = tmp_path_factory.mktemp("getters")
    (work / "main.c").write_text(_HARNESS)
    exe = work / "getters"
    sources = [str(cmsis_nn_root / "Source" / s) for s in _SOURCES]
    subprocess.run(
        ["gcc", "-O1", f"-I{cmsis_nn_root / 'Include'}", "-o", str(exe), str(work / "main.c"),
         *sources],
        check=True, capture_output=True,
    )  # fmt: skip
    return exe


def _cases(seed: int, n: int) -> list[tuple[str, buffers.ConvGeometry]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(n):
        kind = rng.choice("cdaf")
        c = rng.choice([1, 2, 3, 4, 8, 13, 16, 32])
        k_h, k_w = rng.choice([(1, 1), (3, 3), (1, 3), (3, 1), (5, 5), (2, 3)])
        g = buffers.ConvGeometry(
            batches=rng.choice([1, 1, 1, 2]),
            in_h=rng.choice([1, 1, 5, 12]),
            in_w=rng.choice([1, 7, 16]),
            in_c=c,
            out_c=c * rng.choice([1, 1, 2]) if kind == "d" else rng.choice([1, 4, 10, 24]),
            k_h=k_h,
            k_w=k_w,
            stride_h=rng.choice([1, 2]),
            stride_w=rng.choice([1, 2, 3]),
            pad_h=rng.choice([0, 0, 1, 2]),
            pad_w=rng.choice([0, 0, 1, 2]),
            dilation_h=rng.choice([1, 1, 2]),
            dilation_w=rng.choice([1, 1, 2]),
        )
        cases.append((kind, g))
    return cases


def _python_sizes(kind: str, g: buffers.ConvGeometry) -> tuple[int, int]:
    def size(arch: str) -> int:
        if kind == "c":
            return buffers.conv_buffer_size(g, arch)
        if kind == "d":
            return buffers.depthwise_buffer_size(g, arch)
        if kind == "a":
            return buffers.avgpool_buffer_size(g.in_w, g.in_c, arch)
        return buffers.fully_connected_buffer_size(g.out_c, arch)

    return size(buffers.SCALAR), size(buffers.DSP)


def test_scratch_sizes_match_the_checkouts_getters_on_both_core_classes(getters: Path) -> None:
    cases = _cases(seed=7, n=600)
    lines = [
        f"{kind} {g.batches} {g.in_h} {g.in_w} {g.in_c} {g.out_c} {g.k_h} {g.k_w} "
        f"{g.stride_h} {g.stride_w} {g.pad_h} {g.pad_w} {g.dilation_h} {g.dilation_w}"
        for kind, g in cases
    ]
    out = subprocess.run(
        [str(getters)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
    ).stdout.split("\n")
    mismatches = []
    for (kind, g), line, row in zip(cases, lines, out, strict=False):
        real = tuple(int(v) for v in row.split())
        if real != _python_sizes(kind, g):
            mismatches.append(f"{line}: checkout {real}, bench {_python_sizes(kind, g)}")
    assert not mismatches, "\n".join(mismatches[:20])
    # The sample covers the interesting paths (im2col, 1x1, 3x3, DSP-only buffers).
    kinds = {buffers.conv_kernel(g) for k, g in cases if k == "c"}
    kinds |= {buffers.depthwise_kernel(g) for k, g in cases if k == "d"}
    assert len(kinds) == 7, kinds
