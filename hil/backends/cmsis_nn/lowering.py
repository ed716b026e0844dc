"""Per-op lowering to CMSIS-NN's arm_*_s8 functions, with per-op fallback to the own kernels.

Every op first goes through the own lowering, which checks it (shapes, quantization, options)
and computes what both need on the host: weights in the model's layout (OHWI for CONV_2D,
[1, KH, KW, C_OUT] for DEPTHWISE_CONV_2D, [C_OUT][depth] for FULLY_CONNECTED, which is what
CMSIS-NN reads), biases, per-channel Q31 multipliers and shifts (CMSIS-NN's convention too:
shift > 0 is a left shift). Where CMSIS-NN has a kernel and its restrictions hold, the layer
calls it instead; otherwise the own call stays and `note` says why.

Parameter structs and dims are `static const` (flash); the scratch buffer comes from the arena
(`ctx.scratch`), sized by `buffers` for the board's core. A non-success status traps (a
HardFault the bench reports): the host checks every restriction first, so it means a bench bug.
"""

from __future__ import annotations

from collections.abc import Callable

from hil.graph import Graph, Operator
from hil.lowering import lower as lower_own
from hil.lowering.activation import softmax_scaling
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.common import (
    fused_activation_range,
    operand,
    padding_before,
    scale_of,
    tensor_quant,
    zero_point_of,
)
from hil.lowering.elementwise import add_params, mul_params

from . import buffers

#: Ops this backend runs with CMSIS-NN (when the restrictions below hold).
CMSIS_NN_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "MUL",
    "SOFTMAX",
)

#: Why an op always runs on the own kernel.
_NO_KERNEL: dict[str, str] = {
    "MEAN": "CMSIS-NN has no MEAN kernel",
    "LOGISTIC": "CMSIS-NN has no int8 LOGISTIC kernel (own: lookup table)",
    "HARD_SWISH": "CMSIS-NN has no int8 HARD_SWISH kernel (own: lookup table)",
    "RELU": "own lookup table (CMSIS-NN's int8 ReLUs assume zero point 0)",
    "RELU6": "own lookup table (CMSIS-NN's int8 ReLUs assume zero point 0)",
    "RELU_N1_TO_1": "CMSIS-NN has no RELU_N1_TO_1 kernel (own: lookup table)",
    "QUANTIZE": "CMSIS-NN has no QUANTIZE kernel",
    "DEQUANTIZE": "CMSIS-NN has no DEQUANTIZE kernel",
    "RESHAPE": "data movement only (own copy, or none when aliased)",
    "EXPAND_DIMS": "data movement only (own copy, or none when aliased)",
    "SQUEEZE": "data movement only (own copy, or none when aliased)",
    "PAD": "data movement only (own kernel)",
    "PADV2": "data movement only (own kernel)",
    "CONCATENATION": "data movement only (own kernel)",
}

#: CMSIS-NN keeps some dims in uint16_t.
_DIM_MAX = 0xFFFF
_TRAP = "    __builtin_trap(); /* CMSIS-NN refused its arguments: a bench bug */"


class _Fallback(Exception):
    """This op runs on the own kernel; `reason` goes into the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def make_lowering(arch: str) -> Callable[[Graph, Operator, LowerContext], LoweredOp]:
    """The lowering function for a core class ("scalar" or "dsp", see `buffers`)."""

    def lower(graph: Graph, op: Operator, ctx: LowerContext) -> LoweredOp:
        own = lower_own(graph, op, ctx)  # checks the op; its constants are reused below
        fn = _LOWERINGS.get(op.op)
        if fn is None:
            own.note = _NO_KERNEL.get(op.op, f"CMSIS-NN has no {op.op} kernel")
            return own
        try:
            return fn(graph, op, ctx, own, arch)
        except _Fallback as fb:
            own.note = fb.reason
            return own

    return lower


def _status_call(call: str) -> str:
    return f"if ({call} != ARM_CMSIS_NN_SUCCESS) {{\n{_TRAP}\n}}"


def _dims(name: str, n: int, h: int, w: int, c: int) -> str:
    return f"static const cmsis_nn_dims {name} = {{.n = {n}, .h = {h}, .w = {w}, .c = {c}}};"


def _tile(w: int, h: int) -> str:
    return f"{{.w = {w}, .h = {h}}}"


def _ctx(ctx: LowerContext, nbytes: int) -> str:
    return f"const cmsis_nn_context ctx = {{.buf = {ctx.scratch(nbytes)}, .size = {nbytes}}};"


def _check_dims(*values: int) -> None:
    if any(v > _DIM_MAX for v in values):
        raise _Fallback(f"a dimension above {_DIM_MAX} (CMSIS-NN keeps some in 16 bits)")


def _weights_names(own: LoweredOp, prefix: str) -> tuple[str, str]:
    names = {c.name for c in own.constants}
    bias = f"{prefix}_bias" if f"{prefix}_bias" in names else "(const int32_t *)0"
    return f"{prefix}_w", bias


def _conv(graph: Graph, op: Operator, ctx: LowerContext, own: LoweredOp, arch: str) -> LoweredOp:
    depthwise = op.op == "DEPTHWISE_CONV_2D"
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    batches, in_h, in_w, in_c = inp.shape
    _, out_h, out_w, out_c = out.shape
    weights = graph.tensor(op.inputs[1])
    k_h, k_w = weights.shape[1], weights.shape[2]
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    dil_h = int(op.options.get("dilation_h_factor", 1))
    dil_w = int(op.options.get("dilation_w_factor", 1))
    pad_h = padding_before(op, "height", in_h, out_h, k_h, stride_h, dil_h)
    pad_w = padding_before(op, "width", in_w, out_w, k_w, stride_w, dil_w)
    _check_dims(batches, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w)
    in_zp = zero_point_of(inp)
    if not -127 <= -in_zp <= 128:
        raise _Fallback(f"input zero point {in_zp} outside CMSIS-NN's offset range")
    act_min, act_max = fused_activation_range(op, out)
    geometry = buffers.ConvGeometry(
        batches, in_h, in_w, in_c, out_c, k_h, k_w, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w
    )
    p = ctx.prefix
    w_name, bias_name = _weights_names(own, p)
    common = (
        f".input_offset = {-in_zp}, .output_offset = {zero_point_of(out)}, "
        f".stride = {_tile(stride_w, stride_h)}, .padding = {_tile(pad_w, pad_h)}, "
        f".dilation = {_tile(dil_w, dil_h)}, .activation = {{.min = {act_min}, .max = {act_max}}}"
    )
    if depthwise:
        kernel = buffers.depthwise_kernel(geometry)
        scratch = buffers.depthwise_buffer_size(geometry, arch)
        params = (
            f"static const cmsis_nn_dw_conv_params params = {{{common}, "
            f".ch_mult = {out_c // in_c}}};"
        )
        filt = _dims("filter_dims", 1, k_h, k_w, out_c)
        fn, params_type = "arm_depthwise_conv_wrapper_s8", "params"
    else:
        kernel = buffers.conv_kernel(geometry)
        scratch = buffers.conv_buffer_size(geometry, arch)
        params = f"static const cmsis_nn_conv_params params = {{{common}}};"
        filt = _dims("filter_dims", out_c, k_h, k_w, in_c)
        fn, params_type = "arm_convolve_wrapper_s8", "params"
    call = "\n".join(
        [
            params,
            "static const cmsis_nn_per_channel_quant_params quant = "
            f"{{.multiplier = (int32_t *){p}_mult, .shift = (int32_t *){p}_shift}};",
            _dims("input_dims", batches, in_h, in_w, in_c),
            filt,
            _dims("bias_dims", 1, 1, 1, out_c),
            _dims("output_dims", batches, out_h, out_w, out_c),
            _ctx(ctx, scratch),
            _status_call(
                f"{fn}(&ctx, &{params_type}, &quant, &input_dims, {ctx.tensor_ref(inp.index)}, "
                f"&filter_dims, {w_name}, &bias_dims, {bias_name}, &output_dims, "
                f"{ctx.tensor_ref(out.index)})"
            ),
        ]
    )
    return LoweredOp(call, own.constants, own.macs, kernel=kernel)


def _fully_connected(
    graph: Graph, op: Operator, ctx: LowerContext, own: LoweredOp, arch: str
) -> LoweredOp:
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    weights = graph.tensor(op.inputs[1])
    out_n, in_n = weights.shape
    batches = inp.size // in_n
    _check_dims(batches)
    in_zp = zero_point_of(inp)
    if not -127 <= -in_zp <= 128:
        raise _Fallback(f"input zero point {in_zp} outside CMSIS-NN's offset range")
    act_min, act_max = fused_activation_range(op, out)
    p = ctx.prefix
    w_name, bias_name = _weights_names(own, p)
    assert weights.quant is not None
    per_channel = len(weights.quant.scale) > 1
    if per_channel:
        fn = "arm_fully_connected_per_channel_s8"
        quant = (
            "static const cmsis_nn_per_channel_quant_params quant = "
            f"{{.multiplier = (int32_t *){p}_mult, .shift = (int32_t *){p}_shift}};"
        )
    else:
        fn = "arm_fully_connected_s8"
        mult = next(c for c in own.constants if c.name == f"{p}_mult").data
        shift = next(c for c in own.constants if c.name == f"{p}_shift").data
        quant = (
            "static const cmsis_nn_per_tensor_quant_params quant = "
            f"{{.multiplier = {int(mult[0])}, .shift = {int(shift[0])}}};"
        )
    scratch = buffers.fully_connected_buffer_size(out_n, arch)
    call = "\n".join(
        [
            "static const cmsis_nn_fc_params params = {"
            f".input_offset = {-in_zp}, .filter_offset = 0, "
            f".output_offset = {zero_point_of(out)}, "
            f".activation = {{.min = {act_min}, .max = {act_max}}}}};",
            quant,
            _dims("input_dims", batches, 1, 1, in_n),
            _dims("filter_dims", in_n, 1, 1, out_n),
            _dims("bias_dims", 1, 1, 1, out_n),
            _dims("output_dims", batches, 1, 1, out_n),
            _ctx(ctx, scratch),
            _status_call(
                f"{fn}(&ctx, &params, &quant, &input_dims, {ctx.tensor_ref(inp.index)}, "
                f"&filter_dims, {w_name}, &bias_dims, {bias_name}, &output_dims, "
                f"{ctx.tensor_ref(out.index)})"
            ),
        ]
    )
    return LoweredOp(call, own.constants, own.macs, kernel=fn)


def _pool(graph: Graph, op: Operator, ctx: LowerContext, own: LoweredOp, arch: str) -> LoweredOp:
    inp = operand(graph, op, 0, "input")
    out = operand(graph, op, -1, "output")
    batches, in_h, in_w, channels = inp.shape
    _, out_h, out_w, _ = out.shape
    k_h, k_w = int(op.options["filter_height"]), int(op.options["filter_width"])
    stride_h, stride_w = int(op.options.get("stride_h", 1)), int(op.options.get("stride_w", 1))
    pad_h = padding_before(op, "height", in_h, out_h, k_h, stride_h)
    pad_w = padding_before(op, "width", in_w, out_w, k_w, stride_w)
    _check_dims(batches, in_h, in_w, channels, out_h, out_w, k_h, k_w)
    act_min, act_max = fused_activation_range(op, out)
    avg = op.op == "AVERAGE_POOL_2D"
    fn = "arm_avgpool_s8" if avg else "arm_max_pool_s8"
    scratch = buffers.avgpool_buffer_size(out_w, channels, arch) if avg else 0
    call = "\n".join(
        [
            "static const cmsis_nn_pool_params params = {"
            f".stride = {_tile(stride_w, stride_h)}, .padding = {_tile(pad_w, pad_h)}, "
            f".activation = {{.min = {act_min}, .max = {act_max}}}}};",
            _dims("input_dims", batches, in_h, in_w, channels),
            _dims("filter_dims", 1, k_h, k_w, 1),
            _dims("output_dims", batches, out_h, out_w, channels),
            _ctx(ctx, scratch),
            _status_call(
                f"{fn}(&ctx, &params, &input_dims, {ctx.tensor_ref(inp.index)}, &filter_dims, "
                f"&output_dims, {ctx.tensor_ref(out.index)})"
            ),
        ]
    )
    return LoweredOp(call, [], own.macs, kernel=fn)


def _elementwise(
    graph: Graph, op: Operator, ctx: LowerContext, own: LoweredOp, arch: str
) -> LoweredOp:
    in1, in2 = op.inputs
    out = op.outputs[0]
    shapes = [tuple(graph.tensor(t).shape) for t in (in1, in2, out)]
    if not shapes[0] == shapes[1] == shapes[2]:
        raise _Fallback(
            f"broadcasts {shapes[0]} with {shapes[1]}; CMSIS-NN's elementwise kernels need equal "
            "shapes"
        )
    for t in (in1, in2):
        zp = int(tensor_quant(graph, t, op).zero_point[0])
        if not -127 <= -zp <= 128:
            raise _Fallback(f"input zero point {zp} outside CMSIS-NN's offset range")
    n = graph.tensor(out).size
    a, b, y = ctx.tensor_ref(in1), ctx.tensor_ref(in2), ctx.tensor_ref(out)
    if op.op == "ADD":
        q = add_params(graph, op)
        fn = "arm_elementwise_add_s8"
        args = (
            f"{a}, {b}, {q['input1_offset']}, {q['input1_multiplier']}, {q['input1_shift']}, "
            f"{q['input2_offset']}, {q['input2_multiplier']}, {q['input2_shift']}, "
            f"{q['left_shift']}, {y}, {q['output_offset']}, {q['output_multiplier']}, "
            f"{q['output_shift']}, {q['act_min']}, {q['act_max']}, {n}"
        )
    else:
        q = mul_params(graph, op)
        fn = "arm_elementwise_mul_s8"
        args = (
            f"{a}, {b}, {q['input1_offset']}, {q['input2_offset']}, {y}, {q['output_offset']}, "
            f"{q['output_multiplier']}, {q['output_shift']}, {q['act_min']}, {q['act_max']}, {n}"
        )
    return LoweredOp(_status_call(f"{fn}({args})"), [], own.macs, kernel=fn)


def _softmax(graph: Graph, op: Operator, ctx: LowerContext, own: LoweredOp, arch: str) -> LoweredOp:
    src, dst = op.inputs[0], op.outputs[0]
    inp = graph.tensor(src)
    depth = inp.shape[-1] if inp.shape else 1
    rows = inp.size // max(depth, 1)
    mult, left_shift, radius = softmax_scaling(scale_of(inp), float(op.options.get("beta", 1.0)))
    if left_shift > 31:
        raise _Fallback(f"input scaling shift {left_shift} outside CMSIS-NN's [0, 31]")
    call = (
        f"arm_softmax_s8({ctx.tensor_ref(src)}, {rows}, {depth}, {mult}, {left_shift}, "
        f"{-radius}, {ctx.tensor_ref(dst)});"
    )
    return LoweredOp(call, [], own.macs, kernel="arm_softmax_s8")


_LOWERINGS: dict[str, Callable[[Graph, Operator, LowerContext, LoweredOp, str], LoweredOp]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _elementwise,
    "MUL": _elementwise,
    "SOFTMAX": _softmax,
}
