"""Lowering of elementwise, activation and shape ops: geometry, clear errors, cross-compiling.

Hand-built graphs cover what converted models rarely contain: inconsistent or unsupported
operands (each must raise a HilError that names the problem) and concatenation inputs whose
quantization differs from the output's.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from support.native import compile_graph

from hil.errors import HilError, ModelError, UnsupportedOpError
from hil.graph import Graph, Operator, Quantization, Tensor
from hil.lowering import lower
from hil.lowering.base import LowerContext
from hil.lowering.elementwise import broadcast_geometry

KERNELS = Path(__file__).resolve().parents[2] / "firmware" / "kernels"
Q = Quantization((0.05,), (3,))
SOFTMAX_Q = Quantization((1.0 / 256.0,), (-128,))


def _graph(op: str, in_shapes: list[tuple[int, ...]], out_shape: tuple[int, ...],
           options: dict | None = None, quants: list[Quantization | None] | None = None,
           dtype: str = "int8", constants: dict[int, np.ndarray] | None = None) -> Graph:
    """One operator over fresh tensors: inputs 0..n-1, output n."""
    quants = quants or [Q] * (len(in_shapes) + 1)
    constants = constants or {}
    tensors = [
        Tensor(i, f"t{i}", shape, dtype if i not in constants else str(constants[i].dtype),
               quants[i] if i not in constants else None, constants.get(i))
        for i, shape in enumerate(in_shapes)
    ]
    n = len(in_shapes)
    tensors.append(Tensor(n, f"t{n}", out_shape, dtype, quants[n]))
    inputs = [i for i in range(n) if i not in constants]
    return Graph("g", tensors, [Operator(0, op, list(range(n)), [n], options or {})], inputs, [n])


def _lower(graph: Graph) -> None:
    lower(graph, graph.operators[0], LowerContext(lambda i: f"T{i}", "l0"))


def test_squeeze_excitation_broadcast_becomes_rows_of_channels() -> None:
    geometry = broadcast_geometry((1, 6, 5, 8), (1, 1, 1, 8), (1, 6, 5, 8))
    assert geometry.tolist() == [1, 1, 30, 8, 0, 0, 8, 1, 0, 0, 0, 1]


def test_equal_shapes_become_one_flat_row() -> None:
    assert broadcast_geometry((2, 3, 4), (2, 3, 4), (2, 3, 4)).tolist()[:4] == [1, 1, 1, 24]


@pytest.mark.parametrize(
    ("graph", "error", "words"),
    [
        (_graph("ADD", [(1, 4, 3), (1, 4, 2)], (1, 4, 3)), UnsupportedOpError, "broadcast"),
        (_graph("MUL", [(2, 1, 3, 1, 5), (1, 4, 1, 6, 1)], (2, 4, 3, 6, 5)),
         UnsupportedOpError, "dims"),
        (_graph("ADD", [(4,), (4,)], (4,), {"fused_activation_function": "TANH"}),
         UnsupportedOpError, "TANH"),
        (_graph("ADD", [(4,), (4,)], (4,), quants=[Q, None, Q]), ModelError, "quantization"),
        (_graph("MUL", [(4,), (4,)], (4,), quants=[Q, Quantization((0.1, 0.2), (0, 0)), Q]),
         UnsupportedOpError, "per channel"),
        (_graph("LOGISTIC", [(4,)], (4,), dtype="float32"), UnsupportedOpError, "float32"),
        (_graph("SOFTMAX", [(2, 5)], (2, 5)), ModelError, "1/256"),
        (_graph("PAD", [(1, 3, 3, 2), (4, 2)], (1, 5, 5, 2)), UnsupportedOpError, "constant"),
        (_graph("PAD", [(1, 3, 3, 2), (4, 2)], (1, 5, 5, 2),
                constants={1: np.array([[0, 0], [1, 1], [1, 1], [0, 1]], np.int32)}),
         ModelError, "output is"),
        (_graph("CONCATENATION", [(1, 2, 3), (1, 4, 3)], (1, 6, 3), {"axis": 2}),
         ModelError, "does not fit"),
        (_graph("RESHAPE", [(2, 3)], (7,)), ModelError, "same bytes"),
    ],
    ids=["add-shapes", "mul-5d", "add-act", "no-quant", "per-channel", "float-logistic",
         "softmax-scale", "pad-runtime", "pad-shape", "concat-shape", "reshape-bytes"],
)
def test_bad_operands_raise_a_clear_error(graph: Graph, error: type[HilError],
                                          words: str) -> None:
    with pytest.raises(error, match=words):
        _lower(graph)


def test_softmax_with_tflite_output_quantization_lowers() -> None:
    _lower(_graph("SOFTMAX", [(2, 5)], (2, 5), quants=[Q, SOFTMAX_Q]))


def test_concatenation_requantizes_inputs_of_another_scale(tmp_path: Path) -> None:
    """An input quantized differently from the output goes through the same requantization as
    an int8 -> int8 QUANTIZE (checked against TFLite in test_elementwise_kernels.py)."""
    q_a, q_b, q_out = Quantization((0.02,), (-5,)), Q, Quantization((0.03,), (1,))
    concat = _graph("CONCATENATION", [(2, 3), (2, 4)], (2, 7), {"axis": -1},
                    quants=[q_a, q_b, q_out])
    requant = _graph("QUANTIZE", [(2, 3)], (2, 3), quants=[q_a, q_out])
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (2, 3), dtype=np.int8)
    b = rng.integers(-128, 128, (2, 4), dtype=np.int8)
    joined = compile_graph(concat, tmp_path / "concat").run([a, b])[0]
    np.testing.assert_array_equal(joined[:, :3], compile_graph(requant, tmp_path / "q").run([a])[0])
    np.testing.assert_array_equal(
        joined[:, 3:], compile_graph(_graph("QUANTIZE", [(2, 4)], (2, 4), quants=[q_b, q_out]),
                                     tmp_path / "qb").run([b])[0])


def test_pad_value_of_padv2_and_rank_below_four(tmp_path: Path) -> None:
    paddings = np.array([[1, 0], [2, 1]], np.int32)
    graph = _graph("PADV2", [(2, 3), (2, 2), ()], (3, 6),
                   constants={1: paddings, 2: np.array(-7, np.int8)})
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    out = compile_graph(graph, tmp_path).run([x])[0]
    np.testing.assert_array_equal(out, np.pad(x, paddings, constant_values=-7))


KERNEL_SOURCES = ["hil_broadcast_s8.c", "hil_add_s8.c", "hil_mul_s8.c", "hil_lookup_table_s8.c",
                  "hil_softmax_s8.c", "hil_quantize_f32_s8.c", "hil_dequantize_s8_f32.c",
                  "hil_reshape.c", "hil_pad_s8.c", "hil_concatenation_s8.c"]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc missing")
@pytest.mark.parametrize("cpu", [
    ["-mcpu=cortex-m0plus", "-mthumb"],
    ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
], ids=["cortex-m0plus", "cortex-m4f"])
def test_kernels_cross_compile_without_warnings(cpu: list[str], tmp_path: Path) -> None:
    for src in KERNEL_SOURCES:
        proc = subprocess.run(
            ["arm-none-eabi-gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Wconversion", "-Werror",
             *cpu, "-c", str(KERNELS / src), "-o", str(tmp_path / "k.o")],
            capture_output=True, text=True, check=False,
        )
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("depth", [1, 3, 7, 300, 1000, 4000])
def test_softmax_of_a_constant_row_is_uniform(depth: int, tmp_path: Path) -> None:
    """exp sums of 512 or more equal maxima need a shift past 31 bits, which TFLite's reference
    kernel leaves undefined (the interpreter aborts): the kernel rounds those results to 0."""
    graph = _graph("SOFTMAX", [(1, depth)], (1, depth), {"beta": 1.0}, quants=[Q, SOFTMAX_Q])
    out = compile_graph(graph, tmp_path).run([np.full((1, depth), 9, np.int8)])[0]
    expected = min(round(256 / depth) - 128, 127)
    np.testing.assert_array_equal(out, np.full((1, depth), expected, np.int8))
