"""Elementwise, activation, quantize and shape kernels against TFLite's reference interpreter.

Each model is one Keras layer converted with full-integer quantization; the graph is imported,
lowered and run natively (tests/support/native.py), and its outputs must equal those of
ai-edge-litert's BUILTIN_REF kernels bit for bit. Models of single-input ops have 256 input
elements, so one inference with a permutation of every int8 value checks the whole lookup table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.convert import cached_model, session_cache_dir
from support.native import NativeModel, compile_graph
from zoo import ZooEntry, convert

from hil.importer import load_tflite
from hil.reference import reference_outputs

#: 256 elements: one inference sees every int8 value once.
TABLE_SHAPE = (4, 4, 16)
#: Bump when a model's layer function changes (shapes are part of the cache key already).
MODELS_VERSION = "1"


def _add_broadcast(k: Any, a: Any, b: Any) -> Any:
    return k.ops.add(a, b)


#: name -> (layer function of the Keras inputs, input shapes without batch, float I/O)
MODELS: dict[str, tuple[Callable[..., Any], list[tuple[int, ...]], bool]] = {
    "add": (lambda k, a, b: k.layers.Add()([a, b]), [(6, 6, 8), (6, 6, 8)], False),
    "add_relu": (lambda k, a, b: k.layers.ReLU()(k.layers.Add()([a, b])),
                 [(6, 6, 8), (6, 6, 8)], False),
    "add_broadcast": (_add_broadcast, [(3, 5, 8), (5, 1)], False),
    "mul": (lambda k, a, b: k.layers.Multiply()([a, b]), [(6, 6, 8), (6, 6, 8)], False),
    "mul_se": (lambda k, a, b: k.layers.Multiply()([a, b]), [(6, 6, 8), (1, 1, 8)], False),
    "mul_scalar": (lambda k, a: k.layers.ReLU(6.0)(a * 3.0), [TABLE_SHAPE], False),
    "softmax": (lambda k, a: k.layers.Softmax()(a), [(64, 10)], False),
    "softmax_wide": (lambda k, a: k.layers.Softmax()(a * 4.0), [(2, 300)], False),
    "sigmoid": (lambda k, a: k.layers.Activation("sigmoid")(a), [TABLE_SHAPE], False),
    "hard_swish": (lambda k, a: k.layers.Activation("hard_swish")(a), [TABLE_SHAPE], False),
    # Input scales below and far above the first model's take HARD_SWISH's other shift paths.
    "hard_swish_narrow": (lambda k, a: k.layers.Activation("hard_swish")(a * 0.1),
                          [TABLE_SHAPE], False),
    "hard_swish_wide": (lambda k, a: k.layers.Activation("hard_swish")(a * 8.0),
                        [TABLE_SHAPE], False),
    "relu": (lambda k, a: k.layers.ReLU()(a), [TABLE_SHAPE], False),
    "relu6": (lambda k, a: k.layers.ReLU(6.0)(a), [TABLE_SHAPE], False),
    "pad": (lambda k, a: k.layers.ZeroPadding2D(((1, 2), (0, 3)))(a), [(5, 4, 3)], False),
    "concat": (lambda k, a, b: k.layers.Concatenate()([a, b * 3.0]), [(4, 4, 3), (4, 4, 5)],
               False),
    "concat_axis1": (lambda k, a, b: k.layers.Concatenate(axis=1)([a, b]),
                     [(2, 3, 4), (5, 3, 4)], False),
    "requantize": (lambda k, a: k.layers.Concatenate()([a, k.layers.Softmax()(a)]), [(3, 8)],
                   False),
    "reshape": (lambda k, a: k.layers.Reshape((16, 6))(a), [(4, 4, 6)], False),
    "flatten": (lambda k, a: k.layers.Flatten()(a), [(4, 4, 6)], False),
    "float_io": (lambda k, a, b: k.layers.Activation("sigmoid")(k.layers.Add()([a, b])),
                 [(5, 7), (5, 7)], True),
}

#: Ops each model must contain, so a converter change cannot silently test something else.
EXPECTED_OPS: dict[str, set[str]] = {
    "add": {"ADD"}, "add_relu": {"ADD"}, "add_broadcast": {"ADD"}, "mul": {"MUL"},
    "mul_se": {"MUL"}, "mul_scalar": {"MUL"}, "softmax": {"SOFTMAX"},
    "softmax_wide": {"MUL", "SOFTMAX"}, "sigmoid": {"LOGISTIC"}, "hard_swish": {"HARD_SWISH"},
    "hard_swish_narrow": {"MUL", "HARD_SWISH"}, "hard_swish_wide": {"MUL", "HARD_SWISH"},
    "relu": {"RELU"}, "relu6": {"RELU6"}, "pad": {"PAD"}, "concat": {"MUL", "CONCATENATION"},
    "concat_axis1": {"CONCATENATION"}, "requantize": {"SOFTMAX", "QUANTIZE", "CONCATENATION"},
    "reshape": {"RESHAPE"}, "flatten": {"RESHAPE"},
    "float_io": {"QUANTIZE", "ADD", "LOGISTIC", "DEQUANTIZE"},
}


def _build(name: str) -> Callable[[Any], Any]:
    layer, shapes, _ = MODELS[name]

    def build(k: Any) -> Any:
        inputs = [k.Input(s, batch_size=1) for s in shapes]
        return k.Model(inputs, layer(k, *inputs))

    return build


@pytest.fixture(scope="session")
def model_path(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`model_path(name)` -> the converted .tflite, cached across sessions in pytest's cache."""
    cache_dir = session_cache_dir(request, tmp_path_factory, "tinyml-hil-elementwise")

    def get(name: str) -> Path:
        _, shapes, float_io = MODELS[name]
        key = f"{name}-{shapes}-{float_io}-{MODELS_VERSION}"
        entry = ZooEntry(name, _build(name), frozenset(), float_io)
        return cached_model(cache_dir, name, key, lambda: convert(entry))

    return get


def _inputs(model: NativeModel, rng: np.random.Generator, exhaustive: bool) -> list[np.ndarray]:
    out = []
    for index in model.graph.inputs:
        t = model.graph.tensor(index)
        if t.dtype == "float32":
            out.append(_float_input(t.shape, rng))
        elif exhaustive and t.size == 256:
            out.append(rng.permutation(np.arange(-128, 128)).astype(np.int8).reshape(t.shape))
        else:
            out.append(rng.integers(-128, 128, t.shape, dtype=np.int8))
    return out


def _float_input(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Normal values plus the hard cases: out of range, and exact ties of x / scale."""
    x = rng.normal(0.0, 2.0, shape).astype(np.float32).ravel()
    x[:4] = [1e6, -1e6, 0.0, -0.0]
    return x.reshape(shape)


def _compare(name: str, path: Path, tmp_path: Path, seeds: int = 3) -> NativeModel:
    graph = load_tflite(path)
    assert EXPECTED_OPS[name] <= {op.op for op in graph.operators}, [
        op.op for op in graph.operators
    ]
    model = compile_graph(graph, tmp_path)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        inputs = _inputs(model, rng, exhaustive=seed == 0)
        ours = model.run(inputs)
        ref = reference_outputs(path, inputs)
        for o, r in zip(ours, ref, strict=True):
            assert o.shape == r.shape and o.dtype == r.dtype
            np.testing.assert_array_equal(o, r, err_msg=f"{name}, seed {seed}")
    return model


@pytest.mark.parametrize("name", [n for n in MODELS if n != "float_io"])
def test_int8_model_matches_reference(name: str, model_path: Callable[[str], Path],
                                      tmp_path: Path) -> None:
    _compare(name, model_path(name), tmp_path)


def test_float_io_quantize_dequantize_match_reference(model_path: Callable[[str], Path],
                                                      tmp_path: Path) -> None:
    """QUANTIZE at the input edge, DEQUANTIZE at the output, bitwise equal floats.

    Inputs include exact ties (k + 0.5) * scale, where x * (1 / scale) may round the other
    way than x / scale: the kernel must decide ties by the division, as TFLite does.
    """
    path = model_path("float_io")
    model = _compare("float_io", path, tmp_path)
    graph = model.graph
    quantize = next(op for op in graph.operators if op.inputs[0] == graph.inputs[0])
    assert quantize.op == "QUANTIZE"
    scale = np.float32(graph.tensor(quantize.outputs[0]).quant.scale[0])
    ties = (np.arange(-140, 140, dtype=np.float32) + np.float32(0.5)) * scale
    shape = graph.tensor(graph.inputs[0]).shape
    n = int(np.prod(shape))
    for start in range(0, ties.size, n):
        x = np.resize(ties[start:start + n], shape).astype(np.float32)
        inputs = [x, np.zeros(shape, np.float32)]
        np.testing.assert_array_equal(model.run(inputs)[0], reference_outputs(path, inputs)[0])


def test_softmax_rows_near_their_maximum(model_path: Callable[[str], Path],
                                         tmp_path: Path) -> None:
    """Rows whose elements all sit close to the row maximum make every exp term count, so the
    fixed-point sum and reciprocal decide the output; plus constant and one-hot rows."""
    path = model_path("softmax")
    model = compile_graph(load_tflite(path), tmp_path)
    rng = np.random.default_rng(7)
    shape = model.graph.tensor(model.graph.inputs[0]).shape
    for spread in (2, 8, 24, 64):
        top = rng.integers(-128 + spread, 128, (*shape[:-1], 1))
        x = (top - rng.integers(0, spread + 1, shape)).astype(np.int8)
        x[0, 0] = 5
        x[0, 1] = -128
        x[0, 1, 3] = 127
        np.testing.assert_array_equal(model.run([x])[0], reference_outputs(path, [x])[0],
                                      err_msg=f"spread {spread}")
