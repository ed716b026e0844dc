"""FULLY_CONNECTED to hil_fully_connected_s8.

TFLite flattens an input of any rank to [size / in_n, in_n] (in_n = the weights' second
dimension); keep_num_dims only changes the output's shape, not the arithmetic.
"""

from __future__ import annotations

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.common import (
    constant,
    fused_activation_range,
    operand,
    weighted_layer,
    zero_point_of,
)
from hil.lowering.registry import register


@register("FULLY_CONNECTED")
def lower_fully_connected(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    weights = constant(graph, op, 1, "weights", "int8")
    if weights is None or weights.quant is None or len(weights.shape) != 2:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) needs constant, quantized 2-D int8 weights"
        )
    fmt = op.options.get("weights_format", "DEFAULT")
    if fmt != "DEFAULT":
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) has weights_format {fmt}; only DEFAULT is supported"
        )
    bias = constant(graph, op, 2, "bias", "int32")
    out_n, in_n = weights.shape
    if in_n == 0 or inp.size % in_n:
        raise ModelError(
            f"operator {op.index} ({op.op}): input {inp.name!r} of shape {inp.shape} cannot be "
            f"flattened into rows of {in_n} (the weights' input size)"
        )
    batches = inp.size // in_n
    if out.size != batches * out_n:
        raise ModelError(
            f"operator {op.index} ({op.op}): output shape {out.shape} is not {batches} x {out_n}"
        )
    act_min, act_max = fused_activation_range(op, out)
    fields = {
        "batches": batches,
        "in_n": in_n,
        "out_n": out_n,
        "in_zp": zero_point_of(inp),
        "out_zp": zero_point_of(out),
        "act_min": act_min,
        "act_max": act_max,
    }
    return weighted_layer(
        ctx,
        op,
        "hil_fully_connected_s8",
        ("hil_fc_params_t", fields),
        (inp, weights, bias, out),
        out_n,
        batches * in_n * out_n,
        # The own kernel multiplies raw input rows against bias - in_zp * sum(w): no buffer.
        weight_sums=np.asarray(weights.data, np.int64).sum(axis=1),
    )
