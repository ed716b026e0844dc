"""Lowering of the convolution family on hand-made graphs: the host-side arithmetic (padding,
activation clamp, MEAN multiplier) and the refusals, each naming the operator and the fix."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hil.errors import ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering import lower
from hil.lowering.base import LowerContext, LoweredOp
from hil.lowering.pool import mean_multiplier

KERNELS = Path(__file__).resolve().parents[2] / "firmware" / "kernels"
OWN_KERNELS = [
    "hil_conv2d_s8",
    "hil_gemm_s8",
    "hil_depthwise_conv2d_s8",
    "hil_fully_connected_s8",
    "hil_pool_s8",
    "hil_mean_s8",
]
Q_IN = Quantization((0.05,), (-3,))
Q_OUT = Quantization((0.1,), (5,))


def act(i: int, shape: tuple[int, ...], q: Quantization = Q_IN) -> Tensor:
    return Tensor(i, f"t{i}", shape, "int8", q)


def const(i: int, data: np.ndarray, q: Quantization | None = None) -> Tensor:
    return Tensor(i, f"c{i}", data.shape, str(data.dtype), q, data)


def conv_graph(
    out_shape: tuple[int, ...] = (1, 4, 4, 2), w_zp: int = 0, **options: object
) -> Graph:
    weights = np.ones((2, 3, 3, 3), np.int8)
    tensors = [
        act(0, (1, 8, 8, 3)),
        const(1, weights, Quantization((0.01, 0.02), (w_zp, 0), 0)),
        const(2, np.zeros(2, np.int32)),
        act(3, out_shape, Q_OUT),
    ]
    opts = {"padding": "SAME", "stride_h": 2, "stride_w": 2, "fused_activation_function": "NONE"}
    opts.update(options)
    return Graph("g", tensors, [Operator(0, "CONV_2D", [0, 1, 2], [3], opts)], [0], [3])


def run_lower(graph: Graph, index: int = 0) -> LoweredOp:
    ctx = LowerContext(tensor_ref=lambda i: f"T{i}", prefix="l0")
    return lower(graph, graph.operators[index], ctx)


def field(call: str, name: str) -> int:
    m = re.search(rf"\.{name} = (-?\d+),", call)
    assert m, f"no field {name} in {call}"
    return int(m.group(1))


def test_conv_call_carries_geometry_padding_and_per_channel_requantization() -> None:
    lowered = run_lower(conv_graph(fused_activation_function="RELU6"))
    call = lowered.call
    assert "hil_conv2d_s8(&l0_params, T0, l0_w, l0_bias, l0_mult, l0_shift, T3);" in call
    # SAME, 8 -> 4 with k=3, s=2: total padding (4-1)*2+3-8 = 1, the smaller half (0) first.
    assert (field(call, "pad_top"), field(call, "pad_left")) == (0, 0)
    assert (field(call, "in_zp"), field(call, "out_zp")) == (-3, 5)
    # RELU6 in the output domain: [zp, zp + round(6 / 0.1)] = [5, 65].
    assert (field(call, "act_min"), field(call, "act_max")) == (5, 65)
    consts = {c.name: c for c in lowered.constants}
    mult, shift = consts["l0_mult"].data, consts["l0_shift"].data
    real = mult.astype(np.float64) * 2.0 ** (shift.astype(np.float64) - 31)
    np.testing.assert_allclose(real, [0.05 * 0.01 / 0.1, 0.05 * 0.02 / 0.1], rtol=1e-9)
    assert lowered.macs == 4 * 4 * 2 * 3 * 3 * 3


def test_conv_without_bias_passes_a_null_pointer() -> None:
    graph = conv_graph()
    graph.operators[0].inputs[2] = -1
    lowered = run_lower(graph)
    assert "(const int32_t *)0" in lowered.call
    assert "l0_bias" not in {c.name for c in lowered.constants}


@pytest.mark.parametrize(
    ("graph", "error", "words"),
    [
        (conv_graph(out_shape=(1, 3, 3, 2)), ModelError, ["output height is 3", "SAME"]),
        (conv_graph(fused_activation_function="TANH"), UnsupportedOpError, ["TANH", "RELU6"]),
        (conv_graph(w_zp=4), UnsupportedOpError, ["zero point", "symmetric"]),
        (conv_graph(padding="EXPLICIT"), UnsupportedOpError, ["padding"]),
    ],
)
def test_conv_refusals_name_the_problem(graph: Graph, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        run_lower(graph)
    assert "operator 0 (CONV_2D)" in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_grouped_convolution_is_refused() -> None:
    graph = conv_graph()
    graph.tensors[0] = act(0, (1, 8, 8, 6))  # 6 input channels, weights have 3: two groups
    with pytest.raises(UnsupportedOpError, match="grouped convolution"):
        run_lower(graph)


def test_fully_connected_flattens_and_refuses_shuffled_weights() -> None:
    tensors = [
        act(0, (2, 3, 4)),
        const(1, np.ones((5, 12), np.int8), Quantization((0.02,), (0,))),
        act(2, (2, 5), Q_OUT),
    ]
    op = Operator(0, "FULLY_CONNECTED", [0, 1, -1], [2], {"weights_format": "DEFAULT"})
    graph = Graph("g", tensors, [op], [0], [2])
    call = run_lower(graph).call
    assert (field(call, "batches"), field(call, "in_n"), field(call, "out_n")) == (2, 12, 5)
    op.options["weights_format"] = "SHUFFLED4x16INT8"
    with pytest.raises(UnsupportedOpError, match="SHUFFLED4x16INT8"):
        run_lower(graph)


def test_mean_over_adjacent_axes_and_refusal_of_scattered_axes() -> None:
    tensors = [act(0, (1, 5, 7, 8)), const(1, np.array([2, 1], np.int32)), act(2, (1, 8), Q_OUT)]
    graph = Graph("g", tensors, [Operator(0, "MEAN", [0, 1], [2], {"keep_dims": False})], [0], [2])
    call = run_lower(graph).call
    assert (field(call, "outer"), field(call, "reduce"), field(call, "inner")) == (1, 35, 8)
    tensors[1] = const(1, np.array([1, 3], np.int32))
    tensors[2] = act(2, (1, 7), Q_OUT)
    with pytest.raises(UnsupportedOpError, match="adjacent axes"):
        run_lower(graph)


def test_mean_multiplier_folds_the_count_into_the_q31_multiplier() -> None:
    mult, shift = mean_multiplier(0.05, 0.1, 35)
    assert 0 < mult < 2**31
    assert mult * 2.0 ** (shift - 31) == pytest.approx(0.05 / (0.1 * 35), rel=1e-8)


def test_pooling_refuses_requantization() -> None:
    tensors = [act(0, (1, 4, 4, 2)), act(1, (1, 2, 2, 2), Q_OUT)]
    opts = {
        "padding": "VALID",
        "stride_h": 2,
        "stride_w": 2,
        "filter_height": 2,
        "filter_width": 2,
        "fused_activation_function": "NONE",
    }
    graph = Graph("g", tensors, [Operator(0, "MAX_POOL_2D", [0], [1], opts)], [0], [1])
    with pytest.raises(ModelError, match="quantization differ"):
        run_lower(graph)


CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}


@pytest.mark.parametrize("compiler", ["gcc", "cortex-m0plus", "cortex-m4f"])
def test_kernels_compile_warning_free(compiler: str, tmp_path: Path) -> None:
    """Portable C99: host gcc and arm-none-eabi-gcc -O2 for both cores, warnings as errors."""
    cc = "gcc" if compiler == "gcc" else "arm-none-eabi-gcc"
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Wconversion", "-pedantic", "-Werror"]
    for name in OWN_KERNELS:
        cmd = [
            cc,
            *flags,
            *CPU_FLAGS.get(compiler, []),
            "-c",
            str(KERNELS / f"{name}.c"),
            "-o",
            str(tmp_path / f"{name}.o"),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr


def run_lower_for(graph: Graph, arch: str, index: int = 0) -> tuple[LoweredOp, list[int]]:
    """Lower as the own backend does for a core class; also the scratch sizes asked for."""
    asked: list[int] = []

    def scratch(nbytes: int) -> str:
        asked.append(nbytes)
        return "((void *)(hil_arena + 0))"

    ctx = LowerContext(tensor_ref=lambda i: f"T{i}", prefix="l0", scratch=scratch, arch=arch)
    return lower(graph, graph.operators[index], ctx), asked


def fc_graph(bias: bool = True) -> Graph:
    weights = np.arange(-30, 30, dtype=np.int8).reshape(5, 12)
    tensors = [
        act(0, (2, 12)),
        const(1, weights, Quantization((0.02,), (0,))),
        const(2, np.arange(5, dtype=np.int32) * 100),
        act(3, (2, 5), Q_OUT),
    ]
    op = Operator(0, "FULLY_CONNECTED", [0, 1, 2 if bias else -1], [3], {})
    return Graph("g", tensors, [op], [0], [3])


@pytest.mark.parametrize("bias", [True, False])
def test_specialised_fully_connected_folds_the_zero_point_and_shares_one_multiplier(
    bias: bool,
) -> None:
    graph = fc_graph(bias)
    lowered, asked = run_lower_for(graph, "scalar")
    consts = {c.name: c.data for c in lowered.constants}
    w = graph.tensor(1).data.astype(np.int64)
    base = np.arange(5) * 100 if bias else np.zeros(5)
    np.testing.assert_array_equal(consts["l0_bias"], base - (-3) * w.sum(axis=1))  # in_zp -3
    assert (field(lowered.call, "bias_folded"), field(lowered.call, "per_tensor")) == (1, 1)
    assert consts["l0_mult"].size == consts["l0_shift"].size == 1
    assert asked == [] and ".scratch" not in lowered.call  # raw rows: no buffer


def test_plain_lowering_keeps_the_constants_other_backends_reuse() -> None:
    """Without a core class (the CMSIS-NN backend lowers with the own kernels and passes their
    constants to its own calls): the model's bias and one multiplier per channel."""
    lowered = run_lower(fc_graph())
    consts = {c.name: c.data for c in lowered.constants}
    np.testing.assert_array_equal(consts["l0_bias"], np.arange(5) * 100)
    assert consts["l0_mult"].size == 5
    assert "bias_folded" not in lowered.call and "per_tensor" not in lowered.call


def depthwise_graph(multiplier: int) -> Graph:
    weights = np.arange(1, 1 + 9 * 4 * multiplier, dtype=np.int8).reshape(1, 3, 3, 4 * multiplier)
    tensors = [
        act(0, (1, 6, 6, 4)),
        const(1, weights, Quantization((0.01,) * 4 * multiplier, (0,) * 4 * multiplier, 3)),
        const(2, np.zeros(4 * multiplier, np.int32)),
        act(3, (1, 6, 6, 4 * multiplier), Q_OUT),
    ]
    opts = {"padding": "SAME", "stride_h": 1, "stride_w": 1, "depth_multiplier": multiplier,
            "fused_activation_function": "NONE"}  # fmt: skip
    op = Operator(0, "DEPTHWISE_CONV_2D", [0, 1, 2], [3], opts)
    return Graph("g", tensors, [op], [0], [3])


def test_specialised_depthwise_folds_the_bias_and_plans_its_buffers() -> None:
    lowered, asked = run_lower_for(depthwise_graph(1), "dsp")
    consts = {c.name: c.data for c in lowered.constants}
    sums = depthwise_graph(1).tensor(1).data.astype(np.int64).reshape(9, 4).sum(axis=0)
    np.testing.assert_array_equal(consts["l0_bias"], 3 * sums)  # 0 - (-3) * sum(w)
    assert field(lowered.call, "bias_folded") == 1
    # sums (4 channels) + two tap tables (2 x 9 pairs) + one pixel of zero points (4 bytes)
    assert asked == [4 * (4 + 4 * 9 + 1)] == [field(lowered.call, "scratch_bytes")]
    assert ".scratch = ((void *)(hil_arena + 0))," in lowered.call
    other, asked = run_lower_for(depthwise_graph(2), "dsp")  # multiplier 2: the general loop
    assert "bias_folded" not in other.call and asked == []


@pytest.mark.parametrize(("arch", "expected"), [("scalar", 4 * 27 * 4), ("dsp", 112 + 27)])
def test_conv_scratch_holds_a_block_of_pixels_for_the_core(arch: str, expected: int) -> None:
    """8x8x3 input, 3x3, stride 2 -> 4x4: K = 27 taps; four pixels of int32 taps on the scalar
    path; on the DSP path two pixels of int16 pairs (6 groups + a 4-tap tail each, 112 bytes)
    plus the 27-byte raw window (3 input channels are not a multiple of four)."""
    lowered, asked = run_lower_for(conv_graph(), arch)
    assert asked == [expected] == [field(lowered.call, "scratch_bytes")]
    assert "bias_folded" not in lowered.call  # padding: a conv keeps subtracting the zero point
