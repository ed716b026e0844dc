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
