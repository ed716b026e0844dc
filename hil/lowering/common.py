"""What the per-op lowerings share: operand checks, TFLite's activation clamp and padding
arithmetic, the C parameter struct, and the constants of kernels that take weights.

One implementation of each, so that every op family rounds a clamp bound, names a bad operand
and lays out a weighted layer's call the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering.base import CArray, LowerContext, LoweredOp
from hil.lowering.quant import quantize_multipliers

INT8_MIN, INT8_MAX = -128, 127

# --- operands -----------------------------------------------------------------------------


def operand(graph: Graph, op: Operator, slot: int, role: str) -> Tensor:
    """The op's quantized int8 input `slot` (or output when slot < 0: -1 is the first output).

    Messages name the op and the operand's role ("input", "output"), so a user can find it.
    """
    ids = op.inputs if slot >= 0 else op.outputs
    pos = slot if slot >= 0 else -slot - 1
    if pos >= len(ids) or ids[pos] < 0:
        raise ModelError(f"operator {op.index} ({op.op}) has no {role} operand")
    t = graph.tensor(ids[pos])
    if t.dtype != "int8" or t.quant is None:
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


def require_dtype(graph: Graph, op: Operator, index: int, dtypes: tuple[str, ...]) -> Tensor:
    """Tensor `index`, after checking its element type is one the kernel handles."""
    t = graph.tensor(index)
    if t.dtype not in dtypes:
        raise UnsupportedOpError(
            f"operator {op.index} ({op.op}): tensor {t.name!r} is {t.dtype}; "
            f"the bench supports {' or '.join(dtypes)} here"
        )
    return t


def tensor_quant(graph: Graph, index: int, op: Operator) -> Quantization:
    """The per-tensor quantization of an int8 operand, or an error naming the operator."""
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


def scale_of(t: Tensor) -> float:
    """Per-tensor scale of a tensor `operand` has checked."""
    assert t.quant is not None
    return t.quant.scale[0]


def zero_point_of(t: Tensor) -> int:
    """Per-tensor zero point of a tensor `operand` has checked."""
    assert t.quant is not None
    return t.quant.zero_point[0]


# --- TFLite's activation clamp and padding ------------------------------------------------

#: Real-valued clamp range of each ReLU flavour, standalone or fused (None: unbounded above).
RELU_RANGES: dict[str, tuple[float, float | None]] = {
    "RELU": (0.0, None),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def activation_range(activation: str, out_q: Quantization) -> tuple[int, int]:
    """int8 clamp bounds of an activation on the output's scale.

    Each bound is zero_point + round(limit / scale) with the division in float32, as TFLite
    computes it, so the clamp agrees with the reference even when limit / scale lands near .5.
    """
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    if activation not in RELU_RANGES:
        raise UnsupportedOpError(
            f"fused activation {activation} is not supported; supported: NONE, "
            f"{', '.join(RELU_RANGES)}"
        )
    lo_real, hi_real = RELU_RANGES[activation]
    scale, zp = np.float32(out_q.scale[0]), int(out_q.zero_point[0])

    def bound(limit: float) -> int:
        return zp + _round_half_away(float(np.float32(limit) / scale))

    lo = max(INT8_MIN, bound(lo_real))
    hi = INT8_MAX if hi_real is None else min(INT8_MAX, bound(hi_real))
    return lo, hi


def fused_activation_range(op: Operator, out: Tensor) -> tuple[int, int]:
    """The clamp of `op`'s fused activation on its (checked, per-tensor quantized) output."""
    assert out.quant is not None
    try:
        return activation_range(str(op.options.get("fused_activation_function", "NONE")), out.quant)
    except UnsupportedOpError as exc:
        raise UnsupportedOpError(f"operator {op.index} ({op.op}): {exc}") from None


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


# --- C building blocks --------------------------------------------------------------------


def c_params(ctype: str, name: str, fields: Mapping[str, int | str]) -> str:
    """A `static const` parameter struct, one designated field per line (lands in flash).

    Integer fields are written as numbers, string fields as given (an address constant such
    as a scratch buffer's `((void *)(hil_arena + ...))`)."""
    body = "\n".join(
        f"    .{k} = {v if isinstance(v, str) else int(v)}," for k, v in fields.items()
    )
    return f"static const {ctype} {name} = {{\n{body}\n}};"


def params_call(ctx: LowerContext, ctype: str, fields: Mapping[str, int | str], kernel: str,
                *args: str) -> str:
    """The layer's parameter struct (`<prefix>_params`) and `kernel(&<prefix>_params, args...)`."""
    name = f"{ctx.prefix}_params"
    return f"{c_params(ctype, name, fields)}\n{kernel}(&{name}, {', '.join(args)});"


def lut_call(ctx: LowerContext, src: int, dst: int, n: int, table: np.ndarray) -> LoweredOp:
    """An int8 -> int8 op as one table lookup per element (table indexed by x + 128)."""
    name = f"{ctx.prefix}_lut"
    return LoweredOp(
        call=f"hil_lookup_table_s8({ctx.tensor_ref(src)}, {ctx.tensor_ref(dst)}, {n}, {name});",
        constants=[CArray(name, "int8_t", np.asarray(table, dtype=np.int8))],
    )


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


def weighted_layer(
    ctx: LowerContext,
    op: Operator,
    kernel: str,
    params: tuple[str, dict[str, int]],
    tensors: tuple[Tensor, Tensor, Tensor | None, Tensor],
    channels: int,
    macs: int,
    *,
    weight_sums: np.ndarray | None = None,
    scratch_bytes: int = 0,
) -> LoweredOp:
    """A layer of a kernel with int8 weights, called as
    `kernel(&params, input, weights, bias, out_mult, out_shift, output)`.

    `params` is the C struct type and its fields; `tensors` is (input, weights, bias or None,
    output); `channels` counts the output channels (one bias and multiplier each). Weights are
    emitted in the model's own layout, which is the one the kernels read.

    With `ctx.arch` set (the own backend), the call is specialised through the parameters'
    precomputed fields (hil_kernels_conv.h, docs/kernels.md): weights with one scale get one
    multiplier (`per_tensor`); `weight_sums` (per output channel) fold the input zero point into
    the bias (`bias_folded`) when the result fits int32; `scratch_bytes` of working memory are
    planned in the arena (`scratch`). Without it the constants are the plain per-channel ones
    that other backends reuse for their own calls.
    """
    ctype, fields = params
    fields = dict(fields)
    inp, weights, bias, out = tensors
    p = ctx.prefix
    constants = [CArray(f"{p}_w", "int8_t", np.asarray(weights.data, np.int8).ravel())]
    requant = requant_arrays(ctx, op, inp, weights, out, channels)
    bias_consts, bias_ref = bias_operand(ctx, op, bias, channels)  # checks the bias
    if ctx.arch and weight_sums is not None:
        base = np.zeros(channels, np.int64) if bias is None else np.asarray(bias.data, np.int64)
        folded = base.ravel() - zero_point_of(inp) * np.asarray(weight_sums, np.int64).ravel()
        if folded.size == channels and np.all(np.abs(folded) < 2**31 - 1):
            bias_consts = [CArray(f"{p}_bias", "int32_t", folded.astype(np.int32))]
            bias_ref = f"{p}_bias"
            fields["bias_folded"] = 1
    constants += bias_consts
    assert weights.quant is not None
    if ctx.arch and len(weights.quant.scale) == 1:
        requant = [CArray(a.name, a.ctype, a.data[:1]) for a in requant]
        fields["per_tensor"] = 1
    constants += requant
    if ctx.arch and scratch_bytes > 0:
        fields["scratch"] = ctx.scratch(scratch_bytes)
        fields["scratch_bytes"] = scratch_bytes
    call = params_call(
        ctx, ctype, fields, kernel, ctx.tensor_ref(inp.index), f"{p}_w", bias_ref, f"{p}_mult",
        f"{p}_shift", ctx.tensor_ref(out.index),
    )
    return LoweredOp(call, constants, macs)
