"""CONV_2D and DEPTHWISE_CONV_2D to hil_conv2d_s8 / hil_depthwise_conv2d_s8."""

from __future__ import annotations

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Tensor
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.common import (
    constant,
    fused_activation_range,
    operand,
    padding_before,
    weighted_layer,
    zero_point_of,
)
from hil.lowering.fuse import FUSED_PAD
from hil.lowering.registry import register


def _nhwc(op: Operator, t: Tensor, role: str) -> tuple[int, int, int, int]:
    if len(t.shape) != 4:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): {role} {t.name!r} has shape {t.shape}; the kernel "
            "needs a 4-D NHWC tensor"
        )
    n, h, w, c = t.shape
    return n, h, w, c


@register("CONV_2D", "DEPTHWISE_CONV_2D")
def lower_conv(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """Both convolutions share geometry and requantization; only weight layout differs."""
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    weights = constant(graph, op, 1, "weights", "int8")
    if weights is None or weights.quant is None:
        raise UnsupportedOpError(f"operator {op.index} ({op.op}) needs quantized int8 weights")
    bias = constant(graph, op, 2, "bias", "int32")
    batches, in_h, in_w, in_c = _nhwc(op, inp, "input")
    out_n, out_h, out_w, out_c = _nhwc(op, out, "output")
    w_o, k_h, k_w, w_i = _nhwc(op, weights, "weights")
    if depthwise:
        if w_o != 1 or w_i != out_c or out_c % in_c:
            raise UnsupportedOpError(
                f"operator {op.index} ({op.op}): weights {weights.shape} do not match input "
                f"channels {in_c} and output channels {out_c}"
            )
    elif w_o != out_c or w_i != in_c:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): weights {weights.shape} do not match input channels "
            f"{in_c} and output channels {out_c} (grouped convolution is not supported)"
        )
    if out_n != batches:
        raise ModelError(f"operator {op.index} ({op.op}): batch {batches} in, {out_n} out")
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    dil_h = int(op.options.get("dilation_h_factor", 1))
    dil_w = int(op.options.get("dilation_w_factor", 1))
    act_min, act_max = fused_activation_range(op, out)
    # A PAD fused into this conv (hil.lowering.fuse): its rows and columns come first, the
    # conv's own padding is that of the padded input.
    top, left, bottom, right = op.options.get(FUSED_PAD, (0, 0, 0, 0))
    fields = {
        "batches": batches,
        "in_h": in_h,
        "in_w": in_w,
        "in_c": in_c,
        "out_h": out_h,
        "out_w": out_w,
        "out_c": out_c,
        "k_h": k_h,
        "k_w": k_w,
        "stride_h": stride_h,
        "stride_w": stride_w,
        "dilation_h": dil_h,
        "dilation_w": dil_w,
        "pad_top": top
        + padding_before(op, "height", in_h + top + bottom, out_h, k_h, stride_h, dil_h),
        "pad_left": left
        + padding_before(op, "width", in_w + left + right, out_w, k_w, stride_w, dil_w),
        "depth_multiplier": out_c // in_c if depthwise else 1,
        "in_zp": zero_point_of(inp),
        "out_zp": zero_point_of(out),
        "act_min": act_min,
        "act_max": act_max,
    }
    kernel = "hil_depthwise_conv2d_s8" if depthwise else "hil_conv2d_s8"
    macs_per_output = k_h * k_w * (1 if depthwise else in_c)
    sums = None
    if depthwise and out_c == in_c:
        # Multiplier 1: the kernel multiplies raw inputs against bias - in_zp * sum(w).
        sums = np.asarray(weights.data, np.int64).reshape(-1, out_c).sum(axis=0)
    return weighted_layer(
        ctx,
        op,
        kernel,
        ("hil_conv_params_t", fields),
        (inp, weights, bias, out),
        out_c,
        batches * out_h * out_w * out_c * macs_per_output,
        weight_sums=sums,
        scratch_bytes=scratch_bytes(fields, depthwise, ctx.arch),
    )


#: Largest working memory a conv asks the planner for; beyond it the kernel takes one pixel
#: at a time, or its own stack (HIL_KERNELS_STACK_BUFFER), or its portable loops.
SCRATCH_CAP = 16384


def _column_bytes(taps: int, pixels: int, arch: str) -> int:
    """hil_gemm_col_words * 4: int16 pairs in groups of four taps plus a four-tap tail per pixel
    (DSP), or one int32 per tap and pixel (scalar)."""
    if arch == "dsp":
        return 4 * ((taps >> 2) * 2 * pixels + 2 * pixels)
    return 4 * taps * pixels


def scratch_bytes(f: dict[str, int], depthwise: bool, arch: str) -> int:
    """Working memory of the own conv kernels for this layer on `arch` ("dsp", "scalar"; ""
    asks for none): the column buffer of a block of output pixels (two on the DSP path, four
    on the scalar one, one if that exceeds SCRATCH_CAP; a raw window as well when the DSP path
    gathers input channels that are not a multiple of four), or for a depthwise layer with
    multiplier 1 the sums and the tap table (and for windows that leave the input a second
    table and a pixel of zero points). Mirrors the C (hil_gemm_s8.h,
    hil_conv2d_s8.c, hil_depthwise_conv2d_s8.c), which checks the size it is given."""
    if not arch:
        return 0
    taps = f["k_h"] * f["k_w"]
    if depthwise:
        if f["depth_multiplier"] != 1:
            return 0
        ch = f["in_c"]
        inside = f["pad_top"] == 0 and f["pad_left"] == 0 and all(
            (f[f"out_{a}"] - 1) * f[f"stride_{a}"] + (f[f"k_{a}"] - 1) * f[f"dilation_{a}"]
            < f[f"in_{a}"]
            for a in ("h", "w")
        )
        return 4 * (ch + 2 * taps + (0 if inside else 2 * taps + -(-ch // 4)))
    k = taps * f["in_c"]
    pixels = f["out_h"] * f["out_w"]
    block = 2 if arch == "dsp" else 4
    pointwise = taps == 1 and f["stride_h"] == 1 and f["stride_w"] == 1 and (
        f["in_h"] == f["out_h"] and f["in_w"] == f["out_w"]
    )
    if pointwise:
        pixels *= f["batches"]
    stage = k if arch == "dsp" and f["in_c"] % 4 and not pointwise else 0
    for n in (block, 1):
        if n <= pixels or n == 1:
            need = _column_bytes(k, n, arch) + stage
            if need <= SCRATCH_CAP:
                return need
    return 0
