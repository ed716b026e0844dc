"""Scratch-buffer sizes and kernel dispatch of CMSIS-NN's s8 wrappers, per core, on the host.

CMSIS-NN's `*_get_buffer_size` functions answer for the core they are compiled for (plain C,
DSP or MVE), so the host reproduces their rules (CMSIS-NN v7: `arm_convolve_get_buffer_sizes_s8.c`,
`arm_depthwise_conv_get_buffer_sizes_s8.c`, `arm_avgpool_get_buffer_sizes_s8.c`,
`arm_fully_connected_get_buffer_sizes_s8.c`) for "scalar" (Cortex-M0/M0+/M3) and "dsp"
(Cortex-M4/M7/M33 with the DSP extension; GCC). tests/backends/test_cmsis_nn_buffers.py checks
these against the real functions of the user's checkout compiled for the host (the plain getter
gives the scalar size there, the `_dsp` variant the DSP size), so a CMSIS-NN release that
changes a rule fails that test instead of corrupting memory on the device.

The wrappers' dispatch (which kernel runs) is reproduced as well, for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALAR = "scalar"
DSP = "dsp"
ARCHES = (SCALAR, DSP)


@dataclass(frozen=True)
class ConvGeometry:
    """What CMSIS-NN's conv/depthwise rules look at (NHWC; filter h, w; stride, pad, dilation)."""

    batches: int
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int = 1
    stride_w: int = 1
    pad_h: int = 0
    pad_w: int = 0
    dilation_h: int = 1
    dilation_w: int = 1
    filter_c: int | None = None  # the filter's input depth (conv; in_c unless grouped)


def _round_up4(n: int) -> int:
    return (n + 3) // 4 * 4


def conv_kernel(g: ConvGeometry) -> str:
    """The function arm_convolve_wrapper_s8 dispatches to (non-MVE cores)."""
    filter_c = g.in_c if g.filter_c is None else g.filter_c
    one_by_one = (
        g.pad_w == 0 and g.pad_h == 0 and g.k_w == 1 and g.k_h == 1
        and g.dilation_w == 1 and g.dilation_h == 1 and g.in_c == filter_c
    )  # fmt: skip
    if one_by_one:
        return "arm_convolve_1x1_s8_fast" if g.stride_w == 1 and g.stride_h == 1 else (
            "arm_convolve_1x1_s8"
        )
    one_by_n = (
        g.in_h == 1 and g.dilation_w == 1 and g.k_h == 1
        and (g.stride_w * g.in_c) % 4 == 0 and g.in_c == filter_c
    )  # fmt: skip
    # Without MVE, arm_convolve_1_x_n_s8 only calls arm_convolve_s8.
    return "arm_convolve_1_x_n_s8" if one_by_n else "arm_convolve_s8"


def conv_buffer_size(g: ConvGeometry, arch: str) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size on `arch` (GCC: the 1x1-fast DSP term is 0)."""
    _check(arch)
    if conv_kernel(g).startswith("arm_convolve_1x1"):
        return 0
    # im2col of two output pixels, as int16: 2 * roundup4(KH*KW*C_IN) * sizeof(int16_t)
    return 4 * _round_up4(g.k_h * g.k_w * g.in_c)


def depthwise_kernel(g: ConvGeometry) -> str:
    """The function arm_depthwise_conv_wrapper_s8 dispatches to (non-MVE cores)."""
    if g.out_c == g.in_c and g.batches == 1 and g.dilation_w == 1 and g.dilation_h == 1:
        if g.k_w == 3 and g.k_h == 3 and g.pad_h <= 1 and g.pad_w <= 1:
            return "arm_depthwise_conv_3x3_s8"
        return "arm_depthwise_conv_s8_opt"
    return "arm_depthwise_conv_s8"


def depthwise_buffer_size(g: ConvGeometry, arch: str) -> int:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size on `arch`: only the DSP `_opt` path
    needs one (C_IN * KH * KW int16 values). The getter tests in.c == out.c, not ch_mult."""
    _check(arch)
    if arch == DSP and depthwise_kernel(g) == "arm_depthwise_conv_s8_opt":
        return 2 * g.in_c * g.k_h * g.k_w
    return 0


def fully_connected_buffer_size(out_c: int, arch: str) -> int:
    """arm_fully_connected_s8_get_buffer_size: only MVE keeps kernel sums there."""
    _check(arch)
    return 0


def avgpool_buffer_size(out_w: int, channels: int, arch: str) -> int:
    """arm_avgpool_s8_get_buffer_size: one int32 accumulator per channel on DSP cores."""
    _check(arch)
    return 4 * channels if arch == DSP else 0


def _check(arch: str) -> None:
    if arch not in ARCHES:
        raise ValueError(f"unknown CMSIS-NN core class {arch!r}; known: {', '.join(ARCHES)}")
