"""QUANTIZE and DEQUANTIZE: float32 <-> int8 at the graph edges, int8 -> int8 requantization.

Also holds the host-side simulation of TFLite's integer requantization (the doubling high
multiply and the rounding shift). Single-input int8 ops are lowered to a 256-entry lookup
table, and building those tables needs exactly the integer arithmetic the reference kernels do,
evaluated for every possible input.
"""

from __future__ import annotations

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.quant import quantize_multiplier
from hil.lowering.registry import register

#: Every int8 value, in the order a lookup table is indexed (table[x + 128]).
INT8_VALUES = np.arange(-128, 128, dtype=np.int64)


def c_float(value: float) -> str:
    """An exact C float literal (hex float) for a float32 value."""
    return float.hex(float(np.float32(value))) + "f"


def tensor_quant(graph: Graph, index: int, op: Operator) -> Quantization:
    """The per-tensor quantization of an int8 operand, or a ModelError naming the operator."""
    t = graph.tensor(index)
    q = t.quant
    if q is None or not q.scale:
        raise ModelError(
            f"operator {op.index} ({op.op}): tensor {t.name!r} has no quantization parameters; "
            "convert the model with full-integer post-training quantization"
        )
    if q.per_channel:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): tensor {t.name!r} is quantized per channel, "
            "which this op supports only per tensor"
        )
    return q


def require_dtype(graph: Graph, op: Operator, index: int, dtypes: tuple[str, ...]) -> Tensor:
    """The tensor, after checking its element type is one the kernel handles."""
    t = graph.tensor(index)
    if t.dtype not in dtypes:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): tensor {t.name!r} is {t.dtype}; "
            f"the bench supports {' or '.join(dtypes)} here"
        )
    return t


def truncating_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """x / 2^exponent rounded toward zero, as C integer division does."""
    x = np.asarray(x, dtype=np.int64)
    return np.where(x >= 0, x >> exponent, -((-x) >> exponent))


def rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int, bits: int = 32) -> np.ndarray:
    """High half of 2*a*b for `bits`-bit operands, rounding half away from zero.

    The one product that overflows (both operands the most negative value) saturates.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    frac = bits - 1
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << (frac - 1), 1 - (1 << (frac - 1)))
    lowest = -(1 << frac)
    return np.where((a == lowest) & (b == lowest), (1 << frac) - 1,
                    truncating_divide_by_pot(nudged, frac))


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """x * multiplier * 2^(shift - 31) as the reference kernels round it (double rounding)."""
    left = max(shift, 0)
    x = np.asarray(x, dtype=np.int64) * (1 << left)
    return rounding_divide_by_pot(rounding_doubling_high_mul(x, multiplier), max(-shift, 0))


def clamp_int8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def requantize_table(in_q: Quantization, out_q: Quantization,
                     lo: int = -128, hi: int = 127) -> np.ndarray:
    """int8 -> int8 table of TFLite's integer requantization, clamped to [lo, hi].

    The multiplier is in_scale / out_scale with float32 scales divided in double, as the
    reference QUANTIZE (int8 -> int8) computes it.
    """
    mult, shift = quantize_multiplier(float(in_q.scale[0]) / float(out_q.scale[0]))
    scaled = multiply_by_quantized_multiplier(INT8_VALUES - in_q.zero_point[0], mult, shift)
    return np.clip(scaled + out_q.zero_point[0], lo, hi).astype(np.int8)


def lut_call(ctx: LowerContext, src: int, dst: int, n: int, table: np.ndarray) -> LoweredOp:
    """An int8 -> int8 op as one table lookup per element (table indexed by x + 128)."""
    name = f"{ctx.prefix}_lut"
    return LoweredOp(
        call=f"hil_lookup_table_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {n}, {name});",
        constants=[CArray(name, "int8_t", np.asarray(table, dtype=np.int8))],
    )


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
