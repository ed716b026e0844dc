"""A structurally sound file with one bad field: the importer refuses it and says which.

Each model here is a converted tiny model with exactly one field edited in place
(tests/support/tflite_mutate.py): an operator's options type or an option value, a tensor's
scale, zero point, number of quantization parameters, or name. Before these checks, such files
were accepted and then aborted the reference interpreter (exit 134, no message), ended in a raw
ValueError from the lowering, or in a false "outputs differ" that blamed the bench.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tflite
from support.tflite_mutate import (
    set_name_bytes,
    set_option_field,
    set_options_type,
    set_scale,
    set_vector_length,
    set_zero_point,
)

import hil
from hil.errors import ModelError
from hil.importer import load_tflite, load_tflite_bytes

HIL = Path(sys.executable).with_name("hil")

# conv_same_s2_relu6: operator 0 is CONV_2D over tensor 0 (input, zero point -52), weights
# tensor 2 (per-channel over 6 output channels), bias tensor 1, output tensor 3.
CONV_INPUT, CONV_BIAS, CONV_WEIGHTS, CONV_OUTPUT = 0, 1, 2, 3
#: Conv2DOptions.stride_w is schema field 1 (vtable slot 4 + 2 * 1), the fused activation 3.
STRIDE_W_SLOT, ACTIVATION_SLOT = 6, 10


@pytest.fixture(scope="module")
def conv(tiny_model: Callable[..., Path]) -> bytes:
    data = tiny_model("conv_same_s2_relu6").read_bytes()
    graph = load_tflite_bytes(data)
    assert [t.dtype for t in graph.tensors] == ["int8", "int32", "int8", "int8"]
    assert graph.operators[0].inputs == [CONV_INPUT, CONV_WEIGHTS, CONV_BIAS]
    return data


def refusal(data: bytes) -> str:
    with pytest.raises(ModelError) as info:
        load_tflite_bytes(data, "m")
    return str(info.value)


def tensor_named(message: str, graph_data: bytes, index: int) -> bool:
    name = load_tflite_bytes(graph_data).tensor(index).name
    return f"tensor {index} ({name!r})" in message


# --- builtin options ------------------------------------------------------------------------


def test_options_of_another_operator_are_refused(conv: bytes) -> None:
    message = refusal(set_options_type(conv, 0, tflite.BuiltinOptions.AddOptions))
    assert "operator 0 (CONV_2D)" in message
    assert "AddOptions" in message and "Conv2DOptions" in message


@pytest.mark.parametrize("code", [200, 255])
def test_options_type_outside_the_schema_is_refused(conv: bytes, code: int) -> None:
    message = refusal(set_options_type(conv, 0, code))
    assert "operator 0 (CONV_2D)" in message and str(code) in message


def test_missing_options_of_a_convolution_are_refused(conv: bytes) -> None:
    """TFLite would run it with stride 0; the bench would silently assume 1."""
    message = refusal(set_options_type(conv, 0, tflite.BuiltinOptions.NONE))
    assert "operator 0 (CONV_2D)" in message and "no options table" in message


def test_missing_options_with_tflite_defaults_are_accepted(
    tiny_model: Callable[..., Path],
) -> None:
    """FULLY_CONNECTED without options means what the bench assumes (no activation)."""
    data = tiny_model("dense_3d").read_bytes()
    graph = load_tflite_bytes(set_options_type(data, 0, tflite.BuiltinOptions.NONE))
    assert graph.operators[0].op == "FULLY_CONNECTED" and graph.operators[0].options == {}


@pytest.mark.parametrize("stride", [0, -3])
def test_stride_below_one_is_refused(conv: bytes, stride: int) -> None:
    message = refusal(set_option_field(conv, 0, STRIDE_W_SLOT, "<i", stride))
    assert f"stride_w = {stride}" in message and "operator 0 (CONV_2D)" in message


def test_enum_option_outside_the_schema_is_refused(conv: bytes) -> None:
    message = refusal(set_option_field(conv, 0, ACTIVATION_SLOT, "<b", 123))
    assert "fused_activation_function = 123" in message and "operator 0 (CONV_2D)" in message


def test_corrupt_options_type_never_reaches_the_reference(conv: bytes, tmp_path: Path) -> None:
    """The case that aborted the bench's own process (exit 134): now a one-line error."""
    path = tmp_path / "bad-options.tflite"
    path.write_bytes(set_options_type(conv, 0, tflite.BuiltinOptions.Pool2DOptions))
    proc = subprocess.run(
        [str(HIL), "profile", str(path), "--quiet"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"operator 0 \(CONV_2D\).*Pool2DOptions", proc.stderr)


# --- quantization parameters ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf"), float("-inf"), 1e-45])
def test_bad_scale_is_refused_naming_tensor_and_value(conv: bytes, scale: float) -> None:
    message = refusal(set_scale(conv, CONV_OUTPUT, scale))
    assert tensor_named(message, conv, CONV_OUTPUT)
    assert f"scale = {float(np.float32(scale))!r}" in message


def test_bad_per_channel_scale_names_the_channel(conv: bytes) -> None:
    message = refusal(set_scale(conv, CONV_WEIGHTS, -1.0, channel=4))
    assert tensor_named(message, conv, CONV_WEIGHTS) and "scale[4] = -1.0" in message


@pytest.mark.parametrize(("tensor", "scale"), [(CONV_OUTPUT, 1e-30), (CONV_INPUT, 1e30)])
def test_scale_whose_multiplier_overflows_is_refused(
    conv: bytes, tensor: int, scale: float
) -> None:
    """input scale * weight scale / output scale must fit the kernels' Q31 multiplier and
    shift (below 2^30); before, the lowering raised a raw ValueError."""
    message = refusal(set_scale(conv, tensor, scale))
    assert "operator 0 (CONV_2D)" in message and "multiplier" in message
    assert tensor_named(message, conv, tensor)
    assert f"scale {float(np.float32(scale))!r}" in message


def test_multiplier_overflow_of_an_op_without_weights_is_refused(
    tiny_model: Callable[..., Path],
) -> None:
    """MEAN requantizes by input scale / output scale: the same Q31 bound applies."""
    data = tiny_model("gap2d_keepdims").read_bytes()
    (mean,) = load_tflite_bytes(data).operators
    message = refusal(set_scale(data, mean.outputs[0], 1e-30))
    assert "operator 0 (MEAN)" in message and "input scale / output scale" in message


def test_small_but_representable_scales_are_accepted(conv: bytes) -> None:
    """The bound is the real one: a multiplier just under 2^30 still imports."""
    graph = load_tflite_bytes(conv)
    s_in = graph.tensor(CONV_INPUT).quant.scale[0]  # type: ignore[union-attr]
    w_max = max(graph.tensor(CONV_WEIGHTS).quant.scale)  # type: ignore[union-attr]
    out_scale = s_in * w_max / 2**29  # multiplier 2^29
    load_tflite_bytes(set_scale(conv, CONV_OUTPUT, out_scale))


@pytest.mark.parametrize(("tensor", "zero_point"), [(CONV_INPUT, -129), (CONV_OUTPUT, 128),
                                                    (CONV_OUTPUT, 2**40), (CONV_BIAS, 2**40)])
def test_zero_point_outside_the_type_is_refused(conv: bytes, tensor: int, zero_point: int) -> None:
    message = refusal(set_zero_point(conv, tensor, zero_point))
    assert tensor_named(message, conv, tensor) and str(zero_point) in message
    assert "outside [" in message


def test_int8_weights_with_a_zero_point_are_refused(conv: bytes) -> None:
    message = refusal(set_zero_point(conv, CONV_WEIGHTS, 3, channel=2))
    assert tensor_named(message, conv, CONV_WEIGHTS)
    assert "zero_point[2] = 3" in message and "operator 0 (CONV_2D)" in message


def test_scales_and_zero_points_of_different_lengths_are_refused(conv: bytes) -> None:
    message = refusal(set_vector_length(conv, CONV_WEIGHTS, "zero_point", 4))
    assert tensor_named(message, conv, CONV_WEIGHTS) and "6 scales and 4 zero points" in message


def test_per_channel_scales_must_cover_the_output_channels(conv: bytes) -> None:
    shorter = set_vector_length(set_vector_length(conv, CONV_WEIGHTS, "scale", 4),
                                CONV_WEIGHTS, "zero_point", 4)
    message = refusal(shorter)
    assert tensor_named(message, conv, CONV_WEIGHTS)
    assert "4 per-channel scales" in message and "6 output channels" in message


def test_bad_quantization_is_refused_before_anything_runs(conv: bytes) -> None:
    """Through the public API: the import step refuses it, no build, no reference."""
    with pytest.raises(ModelError, match="scale = nan"):
        hil.profile(set_scale(conv, CONV_OUTPUT, float("nan")), "qemu-m4", progress=False)


# --- tensor names ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"\xff", b"\xc3(", b"\xed\xa0\x80"])
def test_name_that_is_not_utf8_is_refused(conv: bytes, raw: bytes) -> None:
    message = refusal(set_name_bytes(conv, CONV_OUTPUT, raw))
    assert "tensor 3" in message and "not valid UTF-8" in message


def test_name_that_is_not_utf8_is_one_line_at_the_command_line(
    conv: bytes, tmp_path: Path
) -> None:
    """It used to end in a UnicodeDecodeError traceback from the reference's tensor details."""
    path = tmp_path / "bad-name.tflite"
    path.write_bytes(set_name_bytes(conv, CONV_OUTPUT, b"\xff"))
    proc = subprocess.run(
        [str(HIL), "profile", str(path), "--quiet"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "not valid UTF-8" in proc.stderr


def test_odd_but_valid_utf8_names_are_kept(conv: bytes) -> None:
    graph = load_tflite_bytes(set_name_bytes(conv, CONV_OUTPUT, "é\x00".encode()))
    assert graph.tensor(CONV_OUTPUT).name.startswith("é\x00")


# --- real models stay accepted --------------------------------------------------------------


def test_bundled_models_pass_every_check() -> None:
    models = Path(__file__).resolve().parents[2] / "examples" / "models"
    for path in sorted(models.glob("*.tflite")):
        load_tflite(path)
