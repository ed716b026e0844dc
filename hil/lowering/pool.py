"""AVERAGE_POOL_2D, MAX_POOL_2D and MEAN to hil_avgpool_s8 / hil_maxpool_s8 / hil_mean_s8.

Pooling does no multiplies; `macs` counts one accumulate (or compare) per window element, so
per-layer cost per operation stays comparable with the convolutions around it.
"""

from __future__ import annotations

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.common import (
    fused_activation_range,
    operand,
    padding_before,
    params_call,
    scale_of,
    zero_point_of,
)
from hil.lowering.quant import quantize_multiplier
from hil.lowering.registry import register

_POOL_KERNELS = {"AVERAGE_POOL_2D": "hil_avgpool_s8", "MAX_POOL_2D": "hil_maxpool_s8"}


@register(*_POOL_KERNELS)
def lower_pool(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    if len(inp.shape) != 4 or len(out.shape) != 4:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) needs 4-D NHWC tensors, got {inp.shape} -> {out.shape}"
        )
    if (scale_of(inp), zero_point_of(inp)) != (scale_of(out), zero_point_of(out)):
        raise ModelError(
            f"operator {op.index} ({op.op}): input and output quantization differ; TFLite int8 "
            "pooling requires them equal (re-convert the model with the TFLite converter)"
        )
    batches, in_h, in_w, channels = inp.shape
    _, out_h, out_w, out_c = out.shape
    if out_c != channels:
        raise ModelError(f"operator {op.index} ({op.op}): {channels} channels in, {out_c} out")
    k_h, k_w = int(op.options["filter_height"]), int(op.options["filter_width"])
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    act_min, act_max = fused_activation_range(op, out)
    fields = {
        "batches": batches,
        "in_h": in_h,
        "in_w": in_w,
        "channels": channels,
        "out_h": out_h,
        "out_w": out_w,
        "k_h": k_h,
        "k_w": k_w,
        "stride_h": stride_h,
        "stride_w": stride_w,
        "pad_top": padding_before(op, "height", in_h, out_h, k_h, stride_h),
        "pad_left": padding_before(op, "width", in_w, out_w, k_w, stride_w),
        "act_min": act_min,
        "act_max": act_max,
    }
    call = params_call(
        ctx, "hil_pool_params_t", fields, _POOL_KERNELS[op.op], ctx.tensor_ref(inp.index),
        ctx.tensor_ref(out.index),
    )
    return LoweredOp(call, [], out.size * k_h * k_w)


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """Q31 multiplier and shift for in_scale / (out_scale * count), the way TFLite's int8 MEAN
    forms it: quantize in_scale / out_scale first, then fold 1/count into the multiplier with
    as many extra bits of precision as fit (up to floor(log2 count), 32, and 31 + shift).

    Quantizing the whole ratio directly differs from the reference by 1 LSB on some inputs;
    this two-step form matched the reference interpreter exactly in every trial.
    """
    mult, shift = quantize_multiplier(in_scale / out_scale)
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (mult << extra) // count, shift - extra


@register("MEAN")
def lower_mean(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """MEAN over contiguous axes (what Keras GlobalAveragePooling1D/2D produces)."""
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    if len(op.inputs) < 2 or op.inputs[1] < 0 or not graph.tensor(op.inputs[1]).is_constant:
        raise UnsupportedOpError(f"operator {op.index} ({op.op}) needs constant axes")
    axes_data = graph.tensor(op.inputs[1]).data
    assert axes_data is not None
    rank = len(inp.shape)
    axes = sorted({int(a) % rank for a in np.asarray(axes_data).ravel()} if rank else set())
    if not axes or axes != list(range(axes[0], axes[-1] + 1)):
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) reduces axes {np.asarray(axes_data).tolist()} of "
            f"shape {inp.shape}; supported: a non-empty run of adjacent axes (as Keras "
            "GlobalAveragePooling1D/2D emits)"
        )
    outer = int(np.prod(inp.shape[: axes[0]], dtype=np.int64))
    reduce = int(np.prod(inp.shape[axes[0] : axes[-1] + 1], dtype=np.int64))
    inner = int(np.prod(inp.shape[axes[-1] + 1 :], dtype=np.int64))
    if out.size != outer * inner or reduce == 0:
        raise ModelError(
            f"operator {op.index} ({op.op}): output shape {out.shape} does not match reducing "
            f"axes {axes} of {inp.shape}"
        )
    mult, shift = mean_multiplier(scale_of(inp), scale_of(out), reduce)
    fields = {
        "outer": outer,
        "reduce": reduce,
        "inner": inner,
        "in_zp": zero_point_of(inp),
        "out_zp": zero_point_of(out),
        "multiplier": mult,
        "shift": shift,
    }
    call = params_call(
        ctx, "hil_mean_params_t", fields, "hil_mean_s8", ctx.tensor_ref(inp.index),
        ctx.tensor_ref(out.index),
    )
    return LoweredOp(call, [], inp.size)
