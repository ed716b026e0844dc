"""CONV_2D and DEPTHWISE_CONV_2D to hil_conv2d_s8 / hil_depthwise_conv2d_s8.

Also holds the helpers the convolution-family lowerings share (fully_connected.py, pool.py):
operand checks, TFLite's activation clamp and padding arithmetic, and the C parameter struct.
"""

from __future__ import annotations

import math

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Tensor
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.quant import quantize_multipliers
from hil.lowering.registry import register

INT8_MIN, INT8_MAX = -128, 127


def operand(graph: Graph, op: Operator, slot: int, role: str, *, int8: bool = True) -> Tensor:
    """The op's input `slot` (or output when slot < 0: -1 is the first output), checked.

    With `int8` the tensor must be int8 with per-tensor quantization (activations) or
    per-channel quantization (weights); the message names the op and the operand's role.
    """
    ids = op.inputs if slot >= 0 else op.outputs
    pos = slot if slot >= 0 else -slot - 1
    if pos >= len(ids) or ids[pos] < 0:
        raise ModelError(f"operator {op.index} ({op.op}) has no {role} operand")
    t = graph.tensor(ids[pos])
    if int8 and (t.dtype != "int8" or t.quant is None):
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): {role} {t.name!r} is {t.dtype}"
            f"{'' if t.quant else ' without quantization'}; the kernel needs quantized int8"
        )
    return t


def constant(graph: Graph, op: Operator, slot: int, role: str, dtype: str) -> Tensor | None:
    """The op's constant input (weights, bias) or None when the optional slot is empty."""
    if slot >= len(op.inputs) or op.inputs[slot] < 0:
        return None
    t = graph.tensor(op.inputs[slot])
    if not t.is_constant or t.dtype != dtype:
        kind = "constant" if t.is_constant else "computed at run time"
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): {role} {t.name!r} is {t.dtype} and {kind}; "
            f"the kernel needs a constant {dtype} {role}"
        )
    return t


def scale_of(t: Tensor) -> float:
    assert t.quant is not None
    return t.quant.scale[0]


def zero_point_of(t: Tensor) -> int:
    assert t.quant is not None
    return t.quant.zero_point[0]


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def activation_range(op: Operator, out: Tensor) -> tuple[int, int]:
    """TFLite's clamp for a fused activation, in the output's quantized domain.

    The bound is zero_point + round(limit / scale) computed in float32, as TFLite does, so
    the clamp agrees with the reference even when limit / scale lands near .5.
    """
    act = op.options.get("fused_activation_function", "NONE")
    scale, zp = np.float32(scale_of(out)), zero_point_of(out)

    def q(limit: float) -> int:
        return zp + _round_half_away(float(np.float32(limit) / scale))

    limits = {
        "NONE": (INT8_MIN, INT8_MAX),
        "RELU": (max(INT8_MIN, q(0.0)), INT8_MAX),
        "RELU6": (max(INT8_MIN, q(0.0)), min(INT8_MAX, q(6.0))),
        "RELU_N1_TO_1": (max(INT8_MIN, q(-1.0)), min(INT8_MAX, q(1.0))),
    }
    if act not in limits:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}) has fused activation {act}; supported: "
            f"{', '.join(limits)}"
        )
    return limits[act]


def padding_before(
    op: Operator, axis: str, in_size: int, out_size: int, k: int, stride: int, dilation: int = 1
) -> int:
    """Rows (or columns) of implicit padding before the input, as TFLite computes them.

    SAME pads (out-1)*stride + effective_k - in in total, the smaller half first; VALID pads
    nothing. The output size from the model is checked against the padding mode.
    """
    padding = op.options.get("padding", "VALID")
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        expected = -(-in_size // stride)
    elif padding == "VALID":
        expected = (in_size - eff + stride) // stride
    else:
        raise UnsupportedOpError(f"operator {op.index} ({op.op}) has padding {padding!r}")
    if expected != out_size:
        raise ModelError(
            f"operator {op.index} ({op.op}): output {axis} is {out_size}, but {padding} padding "
            f"with input {in_size}, kernel {k}, stride {stride}, dilation {dilation} gives "
            f"{expected}"
        )
    if padding == "VALID":
        return 0
    return max(0, (out_size - 1) * stride + eff - in_size) // 2


def c_params(ctype: str, name: str, fields: dict[str, int]) -> str:
    """A `static const` parameter struct, one designated field per line (lands in flash)."""
    body = "\n".join(f"    .{k} = {int(v)}," for k, v in fields.items())
    return f"static const {ctype} {name} = {{\n{body}\n}};"


def requant_arrays(
    ctx: LowerContext, op: Operator, inp: Tensor, weights: Tensor, out: Tensor, channels: int
) -> list[CArray]:
    """Per-channel Q31 multipliers and shifts for in_scale * w_scale[c] / out_scale.

    A per-tensor weight scale is repeated for every channel, so one kernel serves both.
    """
    assert weights.quant is not None
    if any(z != 0 for z in weights.quant.zero_point):
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): weights {weights.name!r} have a non-zero zero point; "
            "TFLite int8 weights are symmetric: re-quantize with the TFLite converter"
        )
    w_scale = np.asarray(weights.quant.scale, dtype=np.float64)
    if w_scale.size not in (1, channels):
        raise ModelError(
            f"operator {op.index} ({op.op}): weights {weights.name!r} have {w_scale.size} scales "
            f"for {channels} output channels"
        )
    # TFLite forms the effective scale in double from the float32 scales.
    real = scale_of(inp) * np.broadcast_to(w_scale, (channels,)) / scale_of(out)
    mult, shift = quantize_multipliers(real)
    return [
        CArray(f"{ctx.prefix}_mult", "int32_t", mult),
        CArray(f"{ctx.prefix}_shift", "int32_t", shift),
    ]


def bias_operand(
    ctx: LowerContext, op: Operator, bias: Tensor | None, channels: int
) -> tuple[list[CArray], str]:
    """The bias constant (if the model has one) and the C expression the kernel call passes."""
    if bias is None:
        return [], "(const int32_t *)0"
    if bias.size != channels:
        raise ModelError(
            f"operator {op.index} ({op.op}): bias {bias.name!r} has {bias.size} values for "
            f"{channels} output channels"
        )
    name = f"{ctx.prefix}_bias"
    return [CArray(name, "int32_t", np.asarray(bias.data, np.int32).ravel())], name


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
    act_min, act_max = activation_range(op, out)
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
        "pad_top": padding_before(op, "height", in_h, out_h, k_h, stride_h, dil_h),
        "pad_left": padding_before(op, "width", in_w, out_w, k_w, stride_w, dil_w),
        "depth_multiplier": out_c // in_c if depthwise else 1,
        "in_zp": zero_point_of(inp),
        "out_zp": zero_point_of(out),
        "act_min": act_min,
        "act_max": act_max,
    }
    p = ctx.prefix
    constants = [CArray(f"{p}_w", "int8_t", np.asarray(weights.data, np.int8).ravel())]
    bias_consts, bias_ref = bias_operand(ctx, op, bias, out_c)
    constants += bias_consts
    constants += requant_arrays(ctx, op, inp, weights, out, out_c)
    kernel = "hil_depthwise_conv2d_s8" if depthwise else "hil_conv2d_s8"
    call = (
        c_params("hil_conv_params_t", f"{p}_params", fields)
        + f"\n{kernel}(&{p}_params, {ctx.tensor_ref(inp.index)}, {p}_w, "
        + f"{bias_ref}, {p}_mult, {p}_shift, "
        + f"{ctx.tensor_ref(out.index)});"
    )
    macs_per_output = k_h * k_w * (1 if depthwise else in_c)
    return LoweredOp(call, constants, batches * out_h * out_w * out_c * macs_per_output)
