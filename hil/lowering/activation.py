"""Activations: LOGISTIC, HARD_SWISH, RELU, RELU6, RELU_N1_TO_1 (tables) and SOFTMAX.

An int8 op with one input has only 256 possible inputs, so the host evaluates TFLite's
reference arithmetic for each of them and the device does one table lookup per element: exact
by construction and faster than any arithmetic on a Cortex-M0+. SOFTMAX depends on a whole row;
the host tabulates exp(x - max) as TFLite's fixed-point exp computes it, the device sums and
normalises with TFLite's fixed-point reciprocal (firmware/kernels/hil_softmax_s8.c).
"""

from __future__ import annotations

import math

import numpy as np

from hil.errors import ModelError
from hil.graph import Graph, Operator, Quantization
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.common import (
    RELU_RANGES,
    activation_range,
    lut_call,
    require_dtype,
    tensor_quant,
)
from hil.lowering.quant import (
    INT8_VALUES,
    clamp_int8,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    rounding_divide_by_pot,
    rounding_doubling_high_mul,
    truncating_divide_by_pot,
)
from hil.lowering.registry import register

INT32_MAX = 2**31 - 1


def _f32(x: float) -> np.float32:
    return np.float32(x)


# --- single-input ops as tables -------------------------------------------------------------

def logistic_table(in_q: Quantization, out_q: Quantization) -> np.ndarray:
    """TFLite's int8 LOGISTIC: float32 sigmoid of the dequantized input, rounded half away."""
    x = _f32(in_q.scale[0]) * (INT8_VALUES - in_q.zero_point[0]).astype(np.float32)
    # exp in double rounded to float32 is what a correctly rounded expf returns.
    e = np.exp(-x.astype(np.float64)).astype(np.float32)
    y = np.float32(1.0) / (np.float32(1.0) + e)
    scaled = y * (np.float32(1.0) / _f32(out_q.scale[0]))
    wide = scaled.astype(np.float64)  # + 0.5 is exact in double, not in float32
    rounded = np.sign(wide) * np.floor(np.abs(wide) + 0.5)
    return clamp_int8(rounded.astype(np.int64) + out_q.zero_point[0])


def _int16_multiplier(real: float) -> tuple[int, int]:
    """A Q15 multiplier and exponent: the Q31 one rounded to its top 16 bits, saturating."""
    m32, exponent = quantize_multiplier(real)
    if m32 >= INT32_MAX - (1 << 15):
        return 2**15 - 1, exponent
    return (m32 + (1 << 15)) >> 16, exponent


def _sat_shift_left16(x: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=np.int64) << shift, -(2**15), 2**15 - 1)


def hard_swish_table(in_q: Quantization, out_q: Quantization) -> np.ndarray:
    """TFLite's int8 HARD_SWISH: x * relu6(x + 3) / 6 in int16 fixed point.

    The input is lifted to a 'hires' scale (input_scale / 128); one Q15 multiplier takes it to
    the output scale, another to the 'reluish' scale 3/32768 on which relu6(x + 3) / 6 is a
    saturating shift and an offset. Multipliers come from float32 scales, as in TFLite.
    """
    hires_scale = _f32(1.0 / 128.0) * _f32(in_q.scale[0])
    out_mult, out_exp = _int16_multiplier(float(hires_scale / _f32(out_q.scale[0])))
    relu_mult, relu_exp = _int16_multiplier(float(hires_scale / _f32(3.0 / 32768.0)))
    if out_exp > 0:
        raise ModelError(
            f"HARD_SWISH output scale {out_q.scale[0]} is below input scale / 128; TFLite "
            "rejects this quantization too: re-convert the model"
        )
    hires = (INT8_VALUES - in_q.zero_point[0]) * 128
    on_output_scale = rounding_doubling_high_mul(hires, out_mult, bits=16)
    reluish = hires
    if relu_exp > 0:
        reluish = _sat_shift_left16(reluish, relu_exp - 1)
    reluish = rounding_doubling_high_mul(reluish, relu_mult, bits=16)
    if relu_exp > 0:
        reluish = _sat_shift_left16(reluish, 1)
    if relu_exp < 0:
        reluish = rounding_divide_by_pot(reluish, -relu_exp)
    reluish = (reluish + (1 << 15)) >> 1  # [-1, 1] -> [0, 1] in Q15: relu6(x + 3) / 6
    product = truncating_divide_by_pot(reluish * on_output_scale, 15)  # doubling high mul
    out = rounding_divide_by_pot(product, -out_exp) + out_q.zero_point[0]
    return clamp_int8(out)


def relu_table(op_name: str, in_q: Quantization, out_q: Quantization) -> np.ndarray:
    """TFLite's standalone int8 ReLU family: requantize to the output scale, then clamp.

    The multiplier is in_scale / out_scale divided in float32, as the reference kernel does.
    """
    lo, hi = activation_range(op_name, out_q)
    mult, shift = quantize_multiplier(float(_f32(in_q.scale[0]) / _f32(out_q.scale[0])))
    scaled = multiply_by_quantized_multiplier(INT8_VALUES - in_q.zero_point[0], mult, shift)
    return np.clip(scaled + out_q.zero_point[0], lo, hi).astype(np.int8)


def _unary_operands(graph: Graph, op: Operator) -> tuple[int, int, Quantization, Quantization]:
    src, dst = op.inputs[0], op.outputs[0]
    require_dtype(graph, op, src, ("int8",))
    require_dtype(graph, op, dst, ("int8",))
    return src, dst, tensor_quant(graph, src, op), tensor_quant(graph, dst, op)


@register("LOGISTIC")
def lower_logistic(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    src, dst, in_q, out_q = _unary_operands(graph, op)
    return lut_call(ctx, src, dst, graph.tensor(dst).size, logistic_table(in_q, out_q))


@register("HARD_SWISH")
def lower_hard_swish(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    src, dst, in_q, out_q = _unary_operands(graph, op)
    return lut_call(ctx, src, dst, graph.tensor(dst).size, hard_swish_table(in_q, out_q))


@register(*RELU_RANGES)
def lower_relu(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    src, dst, in_q, out_q = _unary_operands(graph, op)
    return lut_call(ctx, src, dst, graph.tensor(dst).size, relu_table(op.op, in_q, out_q))


# --- softmax -------------------------------------------------------------------------------

#: Integer bits of the scaled input difference fed to the fixed-point exp (TFLite uses 5).
SCALED_DIFF_INTEGER_BITS = 5


def _q31(real: float) -> int:
    return round(real * 2**31)


def _exp_on_quarter_interval(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8."""
    exp_minus_eighth = _q31(math.exp(-1.0 / 8.0))
    x = a + (1 << 28)  # a + 1/8
    mul = rounding_doubling_high_mul  # product of two fixed-point numbers
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    poly = rounding_divide_by_pot(mul(rounding_divide_by_pot(x4, 2) + x3, _q31(1 / 3)) + x2, 1)
    return exp_minus_eighth + mul(exp_minus_eighth, x + poly)


def exp_on_negative_values(a: np.ndarray) -> np.ndarray:
    """exp(a) for a <= 0 given in Q5.26, result in Q0.31: gemmlowp's fixed-point algorithm.

    The fractional part modulo 1/4 goes through a polynomial; each set bit of the rest
    multiplies by the constant exp(-2^k).
    """
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - SCALED_DIFF_INTEGER_BITS
    quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    result = _exp_on_quarter_interval(a_mod_quarter_minus_quarter << SCALED_DIFF_INTEGER_BITS)
    remainder = a_mod_quarter_minus_quarter - a
    for k in range(-2, SCALED_DIFF_INTEGER_BITS):
        bit = 1 << (frac_bits + k)
        factor = _q31(math.exp(-(2.0**k)))
        result = np.where(remainder & bit, rounding_doubling_high_mul(result, factor), result)
    return np.where(a == 0, INT32_MAX, result)


def softmax_scaling(in_scale: float, beta: float) -> tuple[int, int, int]:
    """TFLite's int8 softmax input scaling: (Q31 multiplier, left shift, input radius) of
    beta * scale on the Q5.26 difference scale (PreprocessSoftmaxScaling, CalculateInputRadius);
    differences below -radius give exp 0. CMSIS-NN's arm_softmax_s8 takes the same three."""
    real = min(float(beta) * float(in_scale) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), 2**31 - 1.0)
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ModelError(
            f"SOFTMAX with beta * input scale = {beta * in_scale:g} is below 2^-26: every "
            "output would be equal; TFLite rejects it too. Check the model's quantization"
        )
    radius = math.floor(
        ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
        / (1 << left_shift)
    )
    return mult, left_shift, radius


def softmax_exp_table(in_scale: float, beta: float) -> np.ndarray:
    """exp(beta * scale * (x - max)) in Q0.31 for x - max = 0, -1, ..., -255 (TFLite's int8 path).

    Differences below TFLite's cut-off (where the scaled difference would not fit Q5.26) are 0:
    the reference kernel skips them in the sum and outputs the minimum, which a zero entry gives
    the same way.
    """
    mult, left_shift, radius = softmax_scaling(in_scale, beta)
    diffs = -np.arange(256, dtype=np.int64)
    rescaled = rounding_doubling_high_mul(diffs * (1 << left_shift), mult)
    table = exp_on_negative_values(np.where(diffs >= -radius, rescaled, 0))
    return np.where(diffs >= -radius, table, 0).astype(np.int32)


@register("SOFTMAX")
def lower_softmax(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
    """int8 softmax over the last axis; TFLite fixes the output at scale 1/256, zero point -128."""
    src, dst, in_q, out_q = _unary_operands(graph, op)
    if abs(out_q.scale[0] * 256.0 - 1.0) > 1e-3 or out_q.zero_point[0] != -128:
        raise ModelError(
            f"operator {op.index} (SOFTMAX): int8 output must have scale 1/256 and zero point "
            f"-128 (TFLite's convention), got {out_q.scale[0]} and {out_q.zero_point[0]}"
        )
    shape = graph.tensor(src).shape
    depth = shape[-1] if shape else 1
    rows = graph.tensor(src).size // max(depth, 1)
    name = f"{ctx.prefix}_exp"
    beta = float(op.options.get("beta", 1.0))
    return LoweredOp(
        call=(f"hil_softmax_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {rows}, {depth}, "
              f"{name});"),
        constants=[CArray(name, "int32_t", softmax_exp_table(float(in_q.scale[0]), beta))],
    )
