"""Tiny single-op Keras models converted to .tflite, for importer and kernel tests.

Each spec builds one layer (plus whatever the converter wraps around it, e.g. RESHAPEs for
Conv1D) with seeded random weights and biases, and converts it with one of the quantization
modes below. Conversion takes a fraction of a second per model after TensorFlow's import, so
models are converted once per pytest session (see the `tiny_model` fixture).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: name -> (input shape without batch, layer factory taking the keras module)
SPECS: dict[str, tuple[tuple[int, ...], Callable[[Any], Any]]] = {
    "conv_same_s2_relu6": (
        (9, 10, 3),
        lambda k: k.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu6"),
    ),
    "conv_valid_dilated_relu": (
        (11, 8, 4),
        lambda k: k.layers.Conv2D(5, (3, 2), dilation_rate=(2, 1), activation="relu"),
    ),
    "conv_same_rect_strides": (
        (7, 9, 2),
        lambda k: k.layers.Conv2D(4, (2, 3), strides=(1, 2), padding="same"),
    ),
    "conv1d_same_relu": (
        (16, 4),
        lambda k: k.layers.Conv1D(6, 3, padding="same", activation="relu"),
    ),
    "conv1d_valid_s2": ((21, 3), lambda k: k.layers.Conv1D(5, 4, strides=2)),
    "depthwise_mult2_dilated_same": (
        (9, 9, 3),
        lambda k: k.layers.DepthwiseConv2D(3, depth_multiplier=2, dilation_rate=2, padding="same"),
    ),
    "depthwise_s2_valid_relu": (
        (10, 11, 4),
        lambda k: k.layers.DepthwiseConv2D(3, strides=2, activation="relu"),
    ),
    "depthwise_same_relu6": (
        (6, 7, 8),
        lambda k: k.layers.DepthwiseConv2D((3, 2), padding="same", activation="relu6"),
    ),
    "dense_relu": ((64,), lambda k: k.layers.Dense(40, activation="relu")),
    "dense_3d": ((5, 16), lambda k: k.layers.Dense(24)),
    "avgpool_same_s2": ((9, 10, 5), lambda k: k.layers.AveragePooling2D(3, 2, padding="same")),
    "avgpool_valid": ((8, 9, 3), lambda k: k.layers.AveragePooling2D((2, 3))),
    "maxpool_same_s2": ((9, 10, 5), lambda k: k.layers.MaxPooling2D(3, 2, padding="same")),
    "maxpool_valid": ((8, 8, 3), lambda k: k.layers.MaxPooling2D(2)),
    "gap2d": ((5, 7, 8), lambda k: k.layers.GlobalAveragePooling2D()),
    "gap2d_keepdims": ((4, 4, 8), lambda k: k.layers.GlobalAveragePooling2D(keepdims=True)),
    "gap1d": ((13, 6), lambda k: k.layers.GlobalAveragePooling1D()),
    "tanh": ((16,), lambda k: k.layers.Activation("tanh")),
}

#: int8: full-integer with int8 I/O (what the bench runs); int8_float_io: full-integer with
#: float I/O (QUANTIZE/DEQUANTIZE at the edges); float: no quantization; dynamic: int8 weights
#: with float activations; int16x8: int16 activations with int8 weights.
MODES = ("int8", "int8_float_io", "float", "dynamic", "int16x8")


def _keras() -> tuple[Any, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already set by an earlier conversion
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    return tf, keras


def convert(name: str, mode: str = "int8", seed: int = 0) -> bytes:
    """Build spec `name` with seeded random weights and convert it in the given mode."""
    tf, keras = _keras()
    shape, layer = SPECS[name]
    rng = np.random.default_rng(seed)
    inp = keras.Input(shape, batch_size=1)
    model = keras.Model(inp, layer(keras)(inp))
    model.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in model.weights])

    def representative() -> Any:
        # Off-centre range so the input zero point is not 0 (exercises the kernels' offsets).
        for _ in range(16):
            yield [rng.uniform(-0.6, 1.4, (1, *shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode in ("int8", "int8_float_io", "int16x8"):
        conv.representative_dataset = representative
    if mode in ("int8", "int8_float_io"):
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode == "int8":
        conv.inference_input_type = conv.inference_output_type = tf.int8
    if mode == "int16x8":
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected..."
        return conv.convert()


_CACHE: dict[tuple[str, str], Path] = {}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """`tiny_model(name, mode="int8")` -> path of the converted model, once per session."""
    root = tmp_path_factory.mktemp("tiny_models")

    def get(name: str, mode: str = "int8") -> Path:
        key = (name, mode)
        if key not in _CACHE:
            path = root / (name if mode == "int8" else f"{name}_{mode}")
            path = path.with_suffix(".tflite")
            path.write_bytes(convert(name, mode))
            _CACHE[key] = path
        return _CACHE[key]

    return get
