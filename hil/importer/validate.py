"""Checks on what a sound flatbuffer may still get wrong: options tables and quantization.

A file can be structurally valid and still carry an options table of the wrong type for its
operator, a stride of 0, a scale of NaN or a zero point of 2^40. Downstream code (the lowering's
multiplier arithmetic, the reference interpreter) would fail on these with a raw exception, an
abort, or a false "outputs differ" blaming the bench. The importer refuses them here instead,
naming the operator or tensor and the bad value.
"""

from __future__ import annotations

import math

import numpy as np
import tflite

from hil.errors import ModelError
from hil.graph import Graph, Operator, Quantization, Tensor

_OPTIONS_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOptions).items() if not k.startswith("_")
}
_OPTIONS_CODES: dict[str, int] = {v: k for k, v in _OPTIONS_NAMES.items()}

#: The options table each op the bench lowers carries (None: no table, type must be NONE).
#: Other ops are checked against the table named after them when the schema has one.
EXPECTED_OPTIONS: dict[str, str | None] = {
    "ADD": "AddOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "L2_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "EXPAND_DIMS": "ExpandDimsOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "HARD_SWISH": "HardSwishOptions",
    "LOGISTIC": None,
    "MEAN": "ReducerOptions",
    "MUL": "MulOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "QUANTIZE": "QuantizeOptions",
    "RELU": None,
    "RELU6": None,
    "RELU_N1_TO_1": None,
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "SQUEEZE": "SqueezeOptions",
}
#: Ops whose parameters live only in their options: without the table TFLite runs them with
#: zeros (stride 0, beta 0), so a missing table is refused like a wrong one.
OPTIONS_REQUIRED = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D", "SOFTMAX"}
)
#: Option fields that must be at least 1 wherever they appear.
_POSITIVE_OPTIONS = (
    "stride_h",
    "stride_w",
    "dilation_h_factor",
    "dilation_w_factor",
    "filter_height",
    "filter_width",
)

#: Zero points each element type can hold.
_ZERO_POINT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
#: The smallest normal float32: a smaller scale has no finite float32 reciprocal, which the
#: QUANTIZE and LOGISTIC kernels compute.
MIN_SCALE = float(np.finfo(np.float32).tiny)
_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: Axis of the output channels in each weighted op's filter (per-channel scales run along it).
_CHANNEL_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
_REDO = "the file is corrupt or was quantized wrongly: re-convert it with the TFLite converter"


def _tensor_label(t: Tensor) -> str:
    return f"tensor {t.index} ({t.name!r})"


def _op_label(op: Operator | int, name: str | None = None) -> str:
    if isinstance(op, Operator):
        return f"operator {op.index} ({op.op})"
    return f"operator {op} ({name})"


def expected_options(op_name: str) -> str | None:
    """Name of the options table `op_name` takes (None: none), or "" when it is not known."""
    if op_name in EXPECTED_OPTIONS:
        return EXPECTED_OPTIONS[op_name]
    derived = op_name.title().replace("_", "") + "Options"
    return derived if derived in _OPTIONS_CODES else ""


def check_options_type(index: int, op_name: str, options_type: int, has_table: bool,
                       where: str) -> None:
    """Refuse an options table whose type is not the operator's (a corrupt type byte).

    TFLite reads options through the type byte; a wrong one makes it parse another table's
    bytes as this op's parameters, which aborted the reference interpreter.
    """
    label = _op_label(index, op_name)
    got = _OPTIONS_NAMES.get(options_type)
    if got is None:
        raise ModelError(
            f"{where} is corrupt: {label} has builtin options type {options_type}, which no "
            "TFLite schema defines; re-export the model"
        )
    expected = expected_options(op_name)
    if got == "NONE" or not has_table:
        if op_name in OPTIONS_REQUIRED:
            raise ModelError(
                f"{where} is corrupt: {label} has no options table ({expected} expected, "
                f"type is {got}); without it TFLite would run it with zero strides/sizes. "
                "Re-export the model"
            )
        return
    if expected == "":  # an op the bench does not know: only the range can be checked
        return
    if got != expected:
        want = expected or "NONE (this operator takes no options)"
        raise ModelError(
            f"{where} is corrupt: {label} has builtin options of type {got} "
            f"({options_type}), expected {want}; re-export the model"
        )


def check_option_values(op: Operator, where: str) -> None:
    """Strides, dilations and filter sizes of at least 1; a finite softmax beta."""
    for key in _POSITIVE_OPTIONS:
        value = op.options.get(key)
        if value is not None and value < 1:
            raise ModelError(
                f"{where} is corrupt: {_op_label(op)} has {key} = {value} (must be at least 1); "
                "re-export the model"
            )
    beta = op.options.get("beta")
    if beta is not None and not (math.isfinite(beta) and beta > 0):
        raise ModelError(
            f"{where} is corrupt: {_op_label(op)} has beta = {beta} (must be a positive "
            "number); re-export the model"
        )


def check_tensor_quantization(t: Tensor, where: str) -> None:
    """Scales positive, finite and normal; zero points inside the element type.

    The quantized dimension is not checked here: the bench uses per-channel parameters only
    for weights (checked per operator), and real models carry odd dimensions elsewhere (e.g. a
    bias with quantized_dimension 3) that TFLM runs.
    """
    q = t.quant
    if q is None:
        return
    label = _tensor_label(t)
    for c, s in enumerate(q.scale):
        if not (math.isfinite(s) and s >= MIN_SCALE):
            which = f"scale[{c}]" if len(q.scale) > 1 else "scale"
            problem = "not a positive finite number" if not (s > 0 and math.isfinite(s)) else (
                f"below the smallest normal float32 ({MIN_SCALE:.3g})"
            )
            raise ModelError(f"{where}: {label} has {which} = {s!r}, {problem}; {_REDO}")
    lo, hi = _ZERO_POINT_RANGES.get(t.dtype, (-(2**63), 2**63 - 1))
    for c, z in enumerate(q.zero_point):
        if not lo <= z <= hi:
            which = f"zero_point[{c}]" if len(q.zero_point) > 1 else "zero_point"
            raise ModelError(
                f"{where}: {label} is {t.dtype} with {which} = {z}, outside [{lo}, {hi}]; {_REDO}"
            )


def _per_tensor(graph: Graph, index: int) -> Quantization | None:
    """The tensor's quantization when it is per-tensor (what requantizing ops need), else None."""
    if index < 0:
        return None
    q = graph.tensor(index).quant
    return q if q is not None and len(q.scale) == 1 else None


def _multipliers(graph: Graph, op: Operator) -> list[tuple[float, str, list[int]]]:
    """(real multiplier, formula, tensors whose scales make it) of each requantization the
    lowering of `op` computes, with the lowering's own formulas (float64 unless noted)."""
    ins = [_per_tensor(graph, i) for i in op.inputs]
    outs = [_per_tensor(graph, i) for i in op.outputs]
    if not op.outputs or outs[0] is None or not ins or ins[0] is None:
        return []
    s_in, s_out = ins[0].scale[0], outs[0].scale[0]
    src, out = op.inputs[0], op.outputs[0]
    f32 = np.float32
    if op.op in _WEIGHTED_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
        wq = graph.tensor(op.inputs[1]).quant
        if wq is None:
            return []
        real = s_in * max(wq.scale) / s_out
        return [(real, "input scale * weight scale / output scale", [src, op.inputs[1], out])]
    if op.op == "ADD" and len(ins) == 2 and ins[1] is not None:
        twice_max = 2.0 * max(s_in, ins[1].scale[0])
        formula = "2 * max(input scales) / (2^20 * output scale)"
        return [(twice_max / (2**20 * s_out), formula, [*op.inputs, out])]
    if op.op == "MUL" and len(ins) == 2 and ins[1] is not None:
        with np.errstate(over="ignore"):
            real = float(f32(s_in) * f32(ins[1].scale[0]) / f32(s_out))
        return [(real, "input1 scale * input2 scale / output scale, in float32", [*op.inputs, out])]
    if op.op == "HARD_SWISH":
        hires = float(f32(1.0 / 128.0) * f32(s_in))
        return [(hires / s_out, "input scale / 128 / output scale", [src, out]),
                (hires / (3.0 / 32768.0), "input scale / 128 / (3 / 32768)", [src])]
    if op.op == "SOFTMAX":
        beta = float(op.options.get("beta", 1.0))
        return [(min(beta * s_in * 2**26, 2**31 - 1.0), "beta * input scale * 2^26", [src])]
    if op.op in ("MEAN", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1", "CONCATENATION"):
        # CONCATENATION requantizes each of its inputs; the others one.
        pairs = zip(op.inputs, ins, strict=True) if op.op == "CONCATENATION" else [(src, ins[0])]
        found = []
        for index, q in pairs:
            if q is not None:
                with np.errstate(over="ignore"):
                    real32 = float(f32(q.scale[0]) / f32(s_out))
                ratio = max(q.scale[0] / s_out, real32)
                found.append((ratio, "input scale / output scale", [index, out]))
        return found
    return []


def _representable(real: float) -> bool:
    """Whether the lowering can turn `real` into a Q31 multiplier and shift."""
    from hil.lowering.quant import quantize_multiplier

    try:
        quantize_multiplier(real)
    except (ValueError, OverflowError):
        return False
    return True


def check_operator_quantization(graph: Graph, op: Operator, where: str) -> None:
    """Symmetric int8 weights with per-channel scales along the output channels, and
    requantization multipliers the kernels' Q31 arithmetic can hold."""
    if op.op in _WEIGHTED_OPS and len(op.inputs) > 1 and op.inputs[1] >= 0:
        w = graph.tensor(op.inputs[1])
        if w.is_constant and w.dtype == "int8" and w.quant is not None:
            bad = [(c, z) for c, z in enumerate(w.quant.zero_point) if z != 0]
            if bad:
                c, z = bad[0]
                which = f"zero_point[{c}]" if len(w.quant.zero_point) > 1 else "zero_point"
                raise ModelError(
                    f"{where}: {_tensor_label(w)}, the int8 weights of {_op_label(op)}, has "
                    f"{which} = {z}; TFLite int8 weights are symmetric (zero point 0): {_REDO}"
                )
            axis = _CHANNEL_AXIS[op.op]
            channels = w.shape[axis] if len(w.shape) > axis else None
            if w.quant.per_channel and len(w.quant.scale) != channels:
                # TFLite indexes per-channel scales by output channel, whatever dimension the
                # file declares; what must agree is their number.
                raise ModelError(
                    f"{where}: {_tensor_label(w)}, the weights of {_op_label(op)}, has "
                    f"{len(w.quant.scale)} per-channel scales (quantized_dimension "
                    f"{w.quant.axis}) for {channels} output channels (dimension {axis} of "
                    f"shape {w.shape}); {_REDO}"
                )
    for real, formula, indices in _multipliers(graph, op):
        if not _representable(real):
            scales = ", ".join(
                f"{_tensor_label(t)} scale {max(t.quant.scale)!r}"
                for t in (graph.tensor(i) for i in indices)
                if t.quant is not None
            )
            raise ModelError(
                f"{where}: {_op_label(op)} needs a requantization multiplier of {real:.4g} = "
                f"{formula}, too large for the int8 kernels' 32-bit fixed point (below 2^30); "
                f"{scales}: {_REDO}"
            )
    _check_activation_bounds(graph, op, where)


def _check_activation_bounds(graph: Graph, op: Operator, where: str) -> None:
    """limit / output scale of a RELU6 or RELU_N1_TO_1 clamp must be a finite float32."""
    act = op.op if op.op in ("RELU6", "RELU_N1_TO_1") else op.options.get(
        "fused_activation_function"
    )
    limit = {"RELU6": 6.0, "RELU_N1_TO_1": 1.0}.get(str(act))
    if limit is None or not op.outputs or (q := _per_tensor(graph, op.outputs[0])) is None:
        return
    with np.errstate(over="ignore"):
        bound = np.float32(limit) / np.float32(q.scale[0])
    if not np.isfinite(bound):
        t = graph.tensor(op.outputs[0])
        raise ModelError(
            f"{where}: {_op_label(op)} clamps to {act} on output {_tensor_label(t)} with scale "
            f"{q.scale[0]!r}: {limit:g} / scale overflows float32; {_REDO}"
        )


def check_quantization(graph: Graph, where: str) -> None:
    """All quantization checks on an imported graph (see the module docstring)."""
    for t in graph.tensors:
        check_tensor_quantization(t, where)
    for op in graph.operators:
        check_operator_quantization(graph, op, where)
