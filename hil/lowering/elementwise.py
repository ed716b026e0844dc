"""ADD and MUL: int8 binary ops with numpy-style broadcasting and a fused activation.

The kernels walk a 4-D output row by row with per-input strides (0 on broadcast dims). The
host right-aligns the operand shapes, drops size-1 dims and merges dims that are contiguous in
both inputs, so Keras Add of equal shapes is one flat row and a squeeze-excitation gate
(NHWC * 1x1x1xC) is H*W rows of C.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.common import c_params, fused_activation_range, require_dtype, tensor_quant
from hil.lowering.quant import quantize_multiplier
from hil.lowering.registry import register

#: Dims the broadcast walker handles (firmware HIL_BROADCAST_DIMS).
BROADCAST_DIMS = 4
#: ADD lifts both inputs by this many bits before rescaling them (TFLite's int8 choice).
ADD_LEFT_SHIFT = 20


def broadcast_geometry(shape1: Sequence[int], shape2: Sequence[int],
                       out_shape: Sequence[int]) -> np.ndarray:
    """Output dims and both inputs' element strides, merged and padded to 4 dims (int32[12]).

    Raises UnsupportedOpError when the shapes do not broadcast to `out_shape` or need more than
    four dims after merging.
    """
    rank = len(out_shape)
    if len(shape1) > rank or len(shape2) > rank:
        raise UnsupportedOpError(f"shapes {shape1} and {shape2} do not broadcast to {out_shape}")
    dims: list[int] = []
    strides: list[list[int]] = [[], []]
    for which, shape in enumerate((shape1, shape2)):
        padded = [1] * (rank - len(shape)) + list(shape)
        stride = 1
        for d in range(rank - 1, -1, -1):
            if padded[d] not in (1, out_shape[d]):
                raise UnsupportedOpError(
                    f"shapes {shape1} and {shape2} do not broadcast to {out_shape}"
                )
            strides[which].insert(0, stride if padded[d] == out_shape[d] and padded[d] > 1 else 0)
            stride *= padded[d]
    m1: list[int] = []
    m2: list[int] = []
    for d in range(rank):
        n = out_shape[d]
        if n == 1:
            continue
        s1, s2 = strides[0][d], strides[1][d]
        if dims and m1[-1] == s1 * n and m2[-1] == s2 * n:
            dims[-1] *= n  # contiguous with the outer dim in both inputs: one dim
            m1[-1], m2[-1] = s1, s2
        else:
            dims.append(n)
            m1.append(s1)
            m2.append(s2)
    if not dims:
        dims, m1, m2 = [1], [0], [0]
    if len(dims) > BROADCAST_DIMS:
        raise UnsupportedOpError(
            f"broadcasting {shape1} with {shape2} needs {len(dims)} dims; the kernels handle "
            f"{BROADCAST_DIMS}"
        )
    pad = BROADCAST_DIMS - len(dims)
    return np.array([1] * pad + dims + [0] * pad + m1 + [0] * pad + m2, dtype=np.int32)


def _operands(graph: Graph, op: Operator) -> tuple[list[Quantization], tuple[int, int]]:
    """Quantizations of (input1, input2, output) and the fused activation's clamp range."""
    if len(op.inputs) != 2 or len(op.outputs) != 1:
        raise ModelError(f"operator {op.index} ({op.op}) needs two inputs and one output")
    for t in (*op.inputs, op.outputs[0]):
        require_dtype(graph, op, t, ("int8",))
    quants = [tensor_quant(graph, t, op) for t in (*op.inputs, op.outputs[0])]
    return quants, fused_activation_range(op, graph.tensor(op.outputs[0]))


def _binary_layer(graph: Graph, op: Operator, ctx: LowerContext, kernel: str,
          params: dict[str, int]) -> LoweredOp:
    in1, in2 = op.inputs
    out = op.outputs[0]
    geometry = broadcast_geometry(graph.tensor(in1).shape, graph.tensor(in2).shape,
                                  graph.tensor(out).shape)
    name = f"{ctx.prefix}_shape"
    call = (
        f"{c_params(f'{kernel}_params_t', 'params', params)}\n"
        f"{kernel}({ctx.tensor_ref(in1)}, {ctx.tensor_ref(in2)}, {ctx.tensor_ref(out)}, "
        f"{name}, &params);"
    )
    return LoweredOp(call=call, constants=[CArray(name, "int32_t", geometry)])


def _smaller_than_one(real: float, what: str) -> tuple[int, int]:
    mult, shift = quantize_multiplier(real)
    if shift > 0:
        raise ModelError(f"ADD {what} multiplier {real} is not below 1; re-convert the model")
    return mult, shift


def add_params(graph: Graph, op: Operator) -> dict[str, int]:
    """TFLite int8 ADD: per-input multipliers to twice the larger input scale, then one output
    multiplier, all computed in double from the float32 scales (also CMSIS-NN's arguments)."""
    (q1, q2, qo), (act_min, act_max) = _operands(graph, op)
    s1, s2, so = (float(q.scale[0]) for q in (q1, q2, qo))
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = _smaller_than_one(s1 / twice_max, "input 1")
    m2, sh2 = _smaller_than_one(s2 / twice_max, "input 2")
    mo, sho = _smaller_than_one(twice_max / ((1 << ADD_LEFT_SHIFT) * so), "output")
    return {
        "input1_offset": -q1.zero_point[0], "input2_offset": -q2.zero_point[0],
        "output_offset": qo.zero_point[0],
        "input1_multiplier": m1, "input1_shift": sh1,
        "input2_multiplier": m2, "input2_shift": sh2,
        "output_multiplier": mo, "output_shift": sho,
        "left_shift": ADD_LEFT_SHIFT, "act_min": act_min, "act_max": act_max,
    }


@register("ADD")
def lower_add(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    return _binary_layer(graph, op, ctx, "hil_add_s8", add_params(graph, op))


def mul_params(graph: Graph, op: Operator) -> dict[str, int]:
    """TFLite int8 MUL: one multiplier scale1 * scale2 / output_scale, computed in float32."""
    (q1, q2, qo), (act_min, act_max) = _operands(graph, op)
    real = np.float32(q1.scale[0]) * np.float32(q2.scale[0]) / np.float32(qo.scale[0])
    mult, shift = quantize_multiplier(float(real))
    return {
        "input1_offset": -q1.zero_point[0], "input2_offset": -q2.zero_point[0],
        "output_offset": qo.zero_point[0], "output_multiplier": mult, "output_shift": shift,
        "act_min": act_min, "act_max": act_max,
    }


@register("MUL")
def lower_mul(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    lowered = _binary_layer(graph, op, ctx, "hil_mul_s8", mul_params(graph, op))
    lowered.macs = graph.tensor(op.outputs[0]).size
    return lowered
