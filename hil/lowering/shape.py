"""Data movement: RESHAPE / EXPAND_DIMS / SQUEEZE, PAD / PADV2 and CONCATENATION.

None of these does arithmetic (MACs 0) except CONCATENATION of an input whose quantization
differs from the output's: TFLite's int8 kernel refuses those (its converter makes the scales
equal), so the bench requantizes such an input as TFLite's int8 -> int8 QUANTIZE would.
"""

from __future__ import annotations

import math

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.common import require_dtype, tensor_quant
from hil.lowering.quant import requantize_table
from hil.lowering.registry import register

#: Rank the pad kernel handles (lower ranks are padded with leading 1s).
PAD_DIMS = 4


@register("RESHAPE", "EXPAND_DIMS", "SQUEEZE")
def lower_reshape(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """Same bytes under a new shape: a copy, or nothing when the planner aliases the two."""
    src, dst = op.inputs[0], op.outputs[0]
    t_in, t_out = graph.tensor(src), graph.tensor(dst)
    if t_in.nbytes != t_out.nbytes or t_in.dtype != t_out.dtype:
        raise ModelError(
            f"operator {op.index} ({op.op}) turns {t_in.shape} {t_in.dtype} into "
            f"{t_out.shape} {t_out.dtype}: not the same bytes; the model file is inconsistent"
        )
    return LoweredOp(
        call=f"hil_reshape({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {t_in.nbytes}u);"
    )


def _constant_operand(graph: Graph, op: Operator, position: int, what: str) -> np.ndarray:
    if len(op.inputs) <= position or op.inputs[position] < 0:
        raise ModelError(f"operator {op.index} ({op.op}) has no {what} input")
    t = graph.tensor(op.inputs[position])
    if t.data is None:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): {what} {t.name!r} is computed at run time; the "
            "bench supports only constant ones (convert with a fixed input shape)"
        )
    return np.asarray(t.data)


@register("PAD", "PADV2")
def lower_pad(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """Constant padding; the pad value is the output zero point (PAD) or the given one (PADV2)."""
    src, dst = op.inputs[0], op.outputs[0]
    t_in = require_dtype(graph, op, src, ("int8",))
    t_out = require_dtype(graph, op, dst, ("int8",))
    paddings = _constant_operand(graph, op, 1, "paddings").astype(np.int64).reshape(-1, 2)
    rank = len(t_in.shape)
    if paddings.shape[0] != rank or (paddings < 0).any():
        raise ModelError(
            f"operator {op.index} ({op.op}): paddings {paddings.tolist()} do not fit input shape "
            f"{t_in.shape} (one non-negative [before, after] pair per dim)"
        )
    if rank > PAD_DIMS:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) pads a {rank}-D tensor; the kernel handles up to "
            f"{PAD_DIMS} dims"
        )
    want = tuple(int(d + b + a) for d, (b, a) in zip(t_in.shape, paddings, strict=True))
    if want != tuple(t_out.shape):
        raise ModelError(
            f"operator {op.index} ({op.op}): padding {t_in.shape} by {paddings.tolist()} gives "
            f"{want}, but the output is {t_out.shape}"
        )
    if op.op == "PADV2":
        pad_value = int(_constant_operand(graph, op, 2, "constant_values").ravel()[0])
    else:
        pad_value = int(tensor_quant(graph, dst, op).zero_point[0])
    lead = PAD_DIMS - rank
    geometry = np.array(
        [1] * lead + list(t_in.shape) + [0] * lead + paddings[:, 0].tolist()
        + [1] * lead + list(t_out.shape),
        dtype=np.int32,
    )
    name = f"{ctx.prefix}_geometry"
    return LoweredOp(
        call=f"hil_pad_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {name}, {pad_value});",
        constants=[CArray(name, "int32_t", geometry)],
    )


@register("CONCATENATION")
def lower_concatenation(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """Each input's slabs go to their place in the output (one kernel call per input)."""
    dst = op.outputs[0]
    t_out = require_dtype(graph, op, dst, ("int8",))
    act = op.options.get("fused_activation_function", "NONE")
    if act != "NONE":
        raise UnsupportedOpError(
            f"operator {op.index} (CONCATENATION) has fused activation {act}; only NONE is "
            "supported"
        )
    rank = len(t_out.shape)
    axis = int(op.options.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ModelError(
            f"operator {op.index} (CONCATENATION): axis {op.options.get('axis')} is outside "
            f"the output's {rank} dims"
        )
    out_q = tensor_quant(graph, dst, op)
    outer = math.prod(t_out.shape[:axis])
    out_bytes = math.prod(t_out.shape[axis:])
    calls: list[str] = []
    constants: list[CArray] = []
    offset = 0
    for k, src in enumerate(op.inputs):
        t_in = require_dtype(graph, op, src, ("int8",))
        if len(t_in.shape) != rank or any(
            t_in.shape[d] != t_out.shape[d] for d in range(rank) if d != axis
        ):
            raise ModelError(
                f"operator {op.index} (CONCATENATION): input {t_in.shape} does not fit output "
                f"{t_out.shape} along axis {axis}"
            )
        in_q = tensor_quant(graph, src, op)
        table = "0"
        if (in_q.scale[0], in_q.zero_point[0]) != (out_q.scale[0], out_q.zero_point[0]):
            table = f"{ctx.prefix}_requant{k}"
            constants.append(CArray(table, "int8_t", requantize_table(in_q, out_q)))
        in_bytes = math.prod(t_in.shape[axis:])
        calls.append(
            f"hil_concatenation_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)} + {offset}, "
            f"{outer}, {in_bytes}, {out_bytes}, {table});"
        )
        offset += in_bytes
    if offset != out_bytes:
        raise ModelError(
            f"operator {op.index} (CONCATENATION): inputs add up to {offset} elements per slab "
            f"along axis {axis}, the output has {out_bytes}"
        )
    return LoweredOp(call="\n".join(calls), constants=constants)
