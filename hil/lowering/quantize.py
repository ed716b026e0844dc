"""QUANTIZE and DEQUANTIZE: float32 <-> int8 at the graph edges, int8 -> int8 requantization.

An int8 -> int8 QUANTIZE is a 256-entry lookup table of TFLite's integer requantization
(hil.lowering.quant.requantize_table); the float edges have their own kernels.
"""

from __future__ import annotations

import numpy as np

from hil.graph import Graph, Operator
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.common import lut_call, require_dtype, tensor_quant
from hil.lowering.quant import requantize_table
from hil.lowering.registry import register


def c_float(value: float) -> str:
    """An exact C float literal (hex float) for a float32 value."""
    return float.hex(float(np.float32(value))) + "f"


@register("QUANTIZE")
def lower_quantize(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """float32 -> int8 (the input edge of a float-I/O model) or int8 -> int8 requantization."""
    src, dst = op.inputs[0], op.outputs[0]
    t_in = require_dtype(graph, op, src, ("float32", "int8"))
    t_out = require_dtype(graph, op, dst, ("int8",))
    out_q = tensor_quant(graph, dst, op)
    if t_in.dtype == "int8":
        return lut_call(ctx, src, dst, t_out.size, requantize_table(tensor_quant(graph, src, op),
                                                                    out_q))
    scale = np.float32(out_q.scale[0])
    call = (
        f"hil_quantize_f32_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {t_out.size}, "
        f"{c_float(scale)}, {c_float(np.float32(1.0) / scale)}, {int(out_q.zero_point[0])});"
    )
    return LoweredOp(call=call)


@register("DEQUANTIZE")
def lower_dequantize(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """int8 -> float32 (the output edge of a float-I/O model)."""
    src, dst = op.inputs[0], op.outputs[0]
    t_in = require_dtype(graph, op, src, ("int8",))
    require_dtype(graph, op, dst, ("float32",))
    q = tensor_quant(graph, src, op)
    call = (
        f"hil_dequantize_s8_f32({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {t_in.size}, "
        f"{c_float(q.scale[0])}, {int(q.zero_point[0])});"
    )
    return LoweredOp(call=call)
