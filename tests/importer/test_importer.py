"""The .tflite importer: what it reads (cross-checked against the interpreter's own view of
the same file) and how it refuses what the bench cannot run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from hil.errors import HilError, ModelError, UnsupportedOpError
from hil.importer import load_tflite, load_tflite_bytes
from hil.lowering import supported_ops

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models"


def shared_model(name: str) -> Path:
    path = SHARED / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is missing (the MLPerf Tiny test models live in ../shared/models)")
    return path


@pytest.mark.parametrize("name", ["conv_same_s2_relu6", "depthwise_mult2_dilated_same"])
def test_tensors_match_the_interpreters_view(name: str, tiny_model: Callable[..., Path]) -> None:
    path = tiny_model(name)
    graph = load_tflite(path)
    interp = Interpreter(str(path))
    details = {d["index"]: d for d in interp.get_tensor_details()}
    assert graph.name == name
    assert graph.inputs == [d["index"] for d in interp.get_input_details()]
    assert graph.outputs == [d["index"] for d in interp.get_output_details()]
    for t in graph.tensors:
        d = details[t.index]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"])
        assert np.dtype(t.dtype) == d["dtype"]
        qp = d["quantization_parameters"]
        if t.quant is None:
            assert qp["scales"].size == 0
        else:
            np.testing.assert_allclose(t.quant.scale, qp["scales"], rtol=1e-7)
            assert list(t.quant.zero_point) == qp["zero_points"].tolist()
            assert t.quant.axis == qp["quantized_dimension"]
        if t.is_constant:
            assert t.data is not None
            np.testing.assert_array_equal(t.data, interp.get_tensor(t.index))


def test_conv_options_and_per_channel_weights(tiny_model: Callable[..., Path]) -> None:
    graph = load_tflite(tiny_model("conv_same_s2_relu6"))
    (op,) = graph.operators
    assert op.op == "CONV_2D"
    assert op.options["padding"] == "SAME"
    assert (op.options["stride_h"], op.options["stride_w"]) == (2, 2)
    assert op.options["fused_activation_function"] == "RELU6"
    assert (op.options["dilation_h_factor"], op.options["dilation_w_factor"]) == (1, 1)
    weights, bias = graph.tensor(op.inputs[1]), graph.tensor(op.inputs[2])
    assert weights.dtype == "int8" and weights.shape == (6, 3, 3, 3)
    assert weights.quant is not None and weights.quant.per_channel
    assert len(weights.quant.scale) == 6 and weights.quant.axis == 0
    assert set(weights.quant.zero_point) == {0}
    assert bias.dtype == "int32" and bias.data is not None and bias.data.shape == (6,)
    inp = graph.tensor(graph.inputs[0])
    assert inp.quant is not None and not inp.quant.per_channel and inp.data is None


def test_depthwise_options_and_channel_axis(tiny_model: Callable[..., Path]) -> None:
    graph = load_tflite(tiny_model("depthwise_mult2_dilated_same"))
    (op,) = graph.operators
    assert op.op == "DEPTHWISE_CONV_2D"
    assert op.options["depth_multiplier"] == 2
    assert op.options["dilation_h_factor"] == 2
    weights = graph.tensor(op.inputs[1])
    assert weights.shape == (1, 3, 3, 6)
    assert weights.quant is not None and weights.quant.axis == 3


def test_fully_connected_keep_num_dims_and_mean_options(tiny_model: Callable[..., Path]) -> None:
    (fc,) = load_tflite(tiny_model("dense_3d")).operators
    assert fc.op == "FULLY_CONNECTED"
    assert fc.options["keep_num_dims"] is True
    assert fc.options["weights_format"] == "DEFAULT"
    (mean,) = load_tflite(tiny_model("gap2d_keepdims")).operators
    assert mean.op == "MEAN" and mean.options == {"keep_dims": True}


def test_float_edges_are_allowed(tiny_model: Callable[..., Path]) -> None:
    graph = load_tflite(tiny_model("conv_same_s2_relu6", "int8_float_io"))
    assert [op.op for op in graph.operators] == ["QUANTIZE", "CONV_2D", "DEQUANTIZE"]
    assert graph.tensor(graph.inputs[0]).dtype == "float32"
    assert graph.tensor(graph.outputs[0]).dtype == "float32"


def test_wakeword_model_imports() -> None:
    graph = load_tflite(shared_model("mlperf-tiny-streaming-wakeword"), check_support=False)
    assert graph.name == "mlperf-tiny-streaming-wakeword"
    assert [op.op for op in graph.operators] == [
        *["DEPTHWISE_CONV_2D", "CONV_2D"] * 4,
        "RESHAPE",
        "FULLY_CONNECTED",
        "SOFTMAX",
    ]
    assert graph.tensor(graph.inputs[0]).shape == (1, 30, 1, 40)
    dw = graph.tensor(graph.operators[0].inputs[1])
    assert dw.quant is not None and dw.quant.axis == 3 and len(dw.quant.scale) == 40
    # With the support check: either every op has a lowering, or the refusal names the gap.
    missing = {op.op for op in graph.operators} - set(supported_ops())
    if missing:
        with pytest.raises(UnsupportedOpError) as info:
            load_tflite(shared_model("mlperf-tiny-streaming-wakeword"))
        assert all(name in str(info.value) for name in missing)
    else:
        load_tflite(shared_model("mlperf-tiny-streaming-wakeword"))


def test_toycar_model_imports() -> None:
    graph = load_tflite(shared_model("mlperf-tiny-toycar-autoencoder"))
    assert [op.op for op in graph.operators] == ["FULLY_CONNECTED"] * 10
    assert graph.tensor(graph.inputs[0]).shape == (1, 640)
    assert graph.tensor(graph.outputs[0]).shape == (1, 640)
    first = graph.operators[0]
    assert first.options["fused_activation_function"] == "RELU"
    assert graph.tensor(first.inputs[1]).shape == (128, 640)


# --- refusals ---------------------------------------------------------------------------


def test_float_model_is_refused_with_the_conversion_recipe(
    tiny_model: Callable[..., Path],
) -> None:
    with pytest.raises(ModelError, match="float model") as info:
        load_tflite(tiny_model("dense_relu", "float"))
    assert "representative_dataset" in str(info.value)
    assert "TFLITE_BUILTINS_INT8" in str(info.value)


def test_dynamic_range_model_names_the_float_activation(tiny_model: Callable[..., Path]) -> None:
    """Int8 weights with float activations in the middle: not runnable, and not 'float'."""
    with pytest.raises(UnsupportedOpError, match="float32 activation") as info:
        load_tflite(tiny_model("dense_relu", "dynamic"))
    assert "FULLY_CONNECTED (operator 0)" in str(info.value)


def test_int16_activations_are_refused(tiny_model: Callable[..., Path]) -> None:
    with pytest.raises(UnsupportedOpError, match="int16 activations"):
        load_tflite(tiny_model("dense_relu", "int16x8"))


def test_unsupported_op_lists_what_is_supported(tiny_model: Callable[..., Path]) -> None:
    if "TANH" in supported_ops():
        pytest.skip("TANH has a lowering now; this test needs an op without one")
    with pytest.raises(UnsupportedOpError) as info:
        load_tflite(tiny_model("tanh"))
    message = str(info.value)
    assert "TANH (operator 0)" in message
    assert "Supported: " in message and "CONV_2D" in message and "MEAN" in message


@pytest.fixture(scope="module")
def good_bytes(tiny_model: Callable[..., Path]) -> bytes:
    return tiny_model("conv_same_s2_relu6").read_bytes()


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.99])
def test_truncated_file_is_a_model_error(good_bytes: bytes, fraction: float) -> None:
    with pytest.raises(ModelError, match=r"corrupt|truncated|too small"):
        load_tflite_bytes(good_bytes[: int(len(good_bytes) * fraction)], "cut")


@pytest.mark.parametrize("seed", range(5))
def test_garbage_with_the_right_identifier_is_a_model_error(seed: int) -> None:
    data = bytearray(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8))
    data[4:8] = b"TFL3"
    with pytest.raises(ModelError, match="corrupt"):
        load_tflite_bytes(bytes(data), "garbage")


def test_corrupt_file_message_names_its_path(good_bytes: bytes, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.tflite"
    path.parent.mkdir()
    path.write_bytes(good_bytes[: len(good_bytes) // 2])
    with pytest.raises(ModelError, match=r"corrupt|truncated") as info:
        load_tflite(path)
    assert str(path) in str(info.value)


def test_wrong_identifier_is_named(good_bytes: bytes) -> None:
    data = good_bytes[:4] + b"ONNX" + good_bytes[8:]
    with pytest.raises(ModelError, match="identifier is b'ONNX'"):
        load_tflite_bytes(data, "m")


def test_missing_tiny_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_tflite(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match="is a directory"):
        load_tflite(tmp_path)
    (tmp_path / "tiny.tflite").write_bytes(b"TFL3")
    with pytest.raises(ModelError, match="too small"):
        load_tflite(tmp_path / "tiny.tflite")


def test_errors_are_hil_errors_for_the_cli(good_bytes: bytes) -> None:
    """The CLI prints HilError messages without a traceback: every refusal must be one."""
    for data in (b"", good_bytes[:100], good_bytes[:4] + b"XXXX" + good_bytes[8:]):
        with pytest.raises(HilError):
            load_tflite_bytes(data)
