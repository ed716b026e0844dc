"""Tiny single-op Keras models converted to .tflite, for importer and kernel tests.

Each spec builds one layer (plus whatever the converter wraps around it, e.g. RESHAPEs for
Conv1D) with seeded random weights and biases, and converts it with one of the quantization
modes of tests/support/convert.py, which also caches the result on disk (the `tiny_model`
fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.convert import cached_model, session_cache_dir, tensorflow, to_tflite

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

#: Bump when a spec changes (the cache key holds name, mode and input shape, not the layer).
TINY_MODELS_VERSION = "1"


def convert(name: str, mode: str = "int8", seed: int = 0) -> bytes:
    """Build spec `name` with seeded random weights and convert it in the given mode."""
    tensorflow()
    import keras

    shape, layer = SPECS[name]
    rng = np.random.default_rng(seed)
    inp = keras.Input(shape, batch_size=1)
    model = keras.Model(inp, layer(keras)(inp))
    model.set_weights([rng.normal(0.0, 0.4, w.shape).astype(np.float32) for w in model.weights])

    def representative() -> Any:
        # Off-centre range so the input zero point is not 0 (exercises the kernels' offsets).
        for _ in range(16):
            yield [rng.uniform(-0.6, 1.4, (1, *shape)).astype(np.float32)]

    return to_tflite(model, representative, mode)


@pytest.fixture(scope="session")
def tiny_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Path]:
    """`tiny_model(name, mode="int8")` -> path of the converted model (mode: one of
    support.convert.MODES), converted
    on first use and cached like the zoo's."""
    cache_dir = session_cache_dir(request, tmp_path_factory, "tinyml-hil-tiny")

    def get(name: str, mode: str = "int8") -> Path:
        key = f"{name}-{mode}-{SPECS[name][0]}-{TINY_MODELS_VERSION}"
        return cached_model(cache_dir, name, key, lambda: convert(name, mode))

    return get
