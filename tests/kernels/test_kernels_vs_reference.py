"""The convolution-family kernels, as lowered, against TFLite's reference interpreter.

Every model is a tiny Keras layer converted to int8. Each operator of the family is lowered
and run natively (host gcc) on the interpreter's own input to that operator, and its output
must equal the interpreter's bit for bit. Comparing per operator lets models whose wrapper ops
(the RESHAPEs around Conv1D) belong to other families still test the layer in between.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from support.native import compile_graph

from hil.graph import Graph
from hil.importer import load_tflite
from hil.lowering import lower
from hil.lowering.base import LowerContext

FAMILY = {
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
}
TRIALS = 6
MODELS = {
    "conv_same_s2_relu6": "CONV_2D",
    "conv_valid_dilated_relu": "CONV_2D",
    "conv_same_rect_strides": "CONV_2D",
    "conv1d_same_relu": "CONV_2D",
    "conv1d_valid_s2": "CONV_2D",
    "depthwise_mult2_dilated_same": "DEPTHWISE_CONV_2D",
    "depthwise_s2_valid_relu": "DEPTHWISE_CONV_2D",
    "depthwise_same_relu6": "DEPTHWISE_CONV_2D",
    "dense_relu": "FULLY_CONNECTED",
    "dense_3d": "FULLY_CONNECTED",
    "avgpool_same_s2": "AVERAGE_POOL_2D",
    "avgpool_valid": "AVERAGE_POOL_2D",
    "maxpool_same_s2": "MAX_POOL_2D",
    "maxpool_valid": "MAX_POOL_2D",
    "gap2d": "MEAN",
    "gap2d_keepdims": "MEAN",
    "gap1d": "MEAN",
}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"


def compare_ops(model: Path, workdir: Path, trials: int = TRIALS) -> dict[str, tuple[int, int]]:
    """Per family op of `model`: (max abs difference, mismatching elements) over `trials`
    random int8 inputs, each op fed the interpreter's own input tensor."""
    graph = load_tflite(model, check_support=False)
    interp = Interpreter(
        str(model),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    natives = {
        op.index: compile_graph(
            Graph(f"{graph.name}_op{op.index}", graph.tensors, [op], [op.inputs[0]], op.outputs),
            workdir,
        )
        for op in graph.operators
        if op.op in FAMILY
    }
    assert natives, f"{model.name} has no operator of the family"
    rng = np.random.default_rng(1)
    (detail,) = interp.get_input_details()
    result: dict[str, tuple[int, int]] = {}
    for _ in range(trials):
        x = rng.integers(-128, 128, detail["shape"], dtype=np.int8)
        interp.set_tensor(detail["index"], x)
        interp.invoke()
        for index, native in natives.items():
            op = graph.operators[index]
            (ours,) = native.run([interp.get_tensor(op.inputs[0])])
            ref = interp.get_tensor(op.outputs[0])
            diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
            key = f"{op.op}#{index}"
            worst, bad = result.get(key, (0, 0))
            result[key] = (max(worst, int(diff.max())), bad + int((diff != 0).sum()))
    return result


@pytest.mark.parametrize("name", sorted(MODELS))
def test_layer_matches_reference_bit_for_bit(
    name: str, tiny_model: Callable[..., Path], tmp_path: Path
) -> None:
    model = tiny_model(name)
    ops = [op.op for op in load_tflite(model, check_support=False).operators]
    assert MODELS[name] in ops, f"converter produced {ops}"
    result = compare_ops(model, tmp_path)
    for key, (worst, bad) in result.items():
        assert worst <= 1, f"{name} {key}: max abs diff {worst} LSB (limit 1)"
        assert bad == 0, f"{name} {key}: {bad} elements differ by 1 LSB; expected bit-exact"


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("mlperf-tiny-streaming-wakeword", 9),  # 4 depthwise, 4 conv (H=1 shapes), 1 dense
        ("mlperf-tiny-toycar-autoencoder", 10),  # dense only, per-tensor weights
    ],
)
def test_real_model_layers_match_reference(name: str, ops: int, tmp_path: Path) -> None:
    model = SHARED / f"{name}.tflite"
    if not model.exists():
        pytest.skip(f"{model} is missing (the MLPerf Tiny test models live in ../shared/models)")
    result = compare_ops(model, tmp_path, trials=3)
    assert len(result) == ops
    assert {key: v for key, v in result.items() if v != (0, 0)} == {}


@pytest.mark.parametrize(
    "name", ["mlperf-tiny-streaming-wakeword", "mlperf-tiny-toycar-autoencoder"]
)
def test_whole_real_model_runs_natively_bit_exact(name: str, tmp_path: Path) -> None:
    """The whole graph, chained through the arena, reproduces the interpreter's output."""
    model = SHARED / f"{name}.tflite"
    if not model.exists():
        pytest.skip(f"{model} is missing (the MLPerf Tiny test models live in ../shared/models)")
    graph = load_tflite(model)
    native = compile_graph(graph, tmp_path)
    interp = Interpreter(str(model), experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
    rng = np.random.default_rng(7)
    for _ in range(3):
        x = rng.integers(-128, 128, inp["shape"], dtype=np.int8)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        np.testing.assert_array_equal(native.run([x])[0], interp.get_tensor(out["index"]))


def _lowered(model: Path, op_name: str) -> tuple[Graph, int, int]:
    graph = load_tflite(model, check_support=False)
    op = next(o for o in graph.operators if o.op == op_name)
    ctx = LowerContext(tensor_ref=lambda i: f"T{i}", prefix="lx")
    return graph, op.index, lower(graph, op, ctx).macs


@pytest.mark.parametrize(
    ("name", "op", "macs"),
    [
        ("conv_same_s2_relu6", "CONV_2D", 5 * 5 * 6 * (3 * 3 * 3)),  # out HxWxC * kernel volume
        ("depthwise_mult2_dilated_same", "DEPTHWISE_CONV_2D", 9 * 9 * 6 * 3 * 3),
        ("dense_3d", "FULLY_CONNECTED", 5 * 16 * 24),  # 5 rows of a 16 -> 24 matrix
        ("gap2d", "MEAN", 5 * 7 * 8),
    ],
)
def test_macs_count_the_layer_arithmetic(
    name: str, op: str, macs: int, tiny_model: Callable[..., Path]
) -> None:
    assert _lowered(tiny_model(name), op)[2] == macs
