"""A zoo of small int8 .tflite models: one per op family the bench supports, plus whole networks.

Each entry builds a Keras 3 model (`keras.Input(shape, batch_size=1)`, so the converter emits no
SHAPE/STRIDED_SLICE/PACK ops), gives it seeded random weights (BatchNorm statistics included, so
folding is not trivial) and converts it with full-integer post-training quantization on random
calibration data. `ops` is the set of TFLite builtin ops the converted model must contain: a
unit test checks it, so a converter upgrade that changes the graph is noticed instead of
silently testing something else.

Conversion takes seconds per model, so `zoo_model_path` caches each .tflite on disk
(tests/support/convert.py) under a key of entry name + ZOO_VERSION + TensorFlow version. Bump
ZOO_VERSION when a builder changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from support.convert import cached_model, tensorflow, to_tflite

ZOO_VERSION = "4"


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: how to build it, the ops it must convert to, and whether its I/O is float."""

    name: str
    build: Callable[[Any], Any]  # (keras module) -> keras.Model
    ops: frozenset[str]
    float_io: bool = False


ZOO: dict[str, ZooEntry] = {}


def _entry(*ops: str, float_io: bool = False) -> Callable[[Callable], Callable]:
    def register(fn: Callable) -> Callable:
        ZOO[fn.__name__] = ZooEntry(fn.__name__, fn, frozenset(ops), float_io)
        return fn

    return register


# --- one op family each -------------------------------------------------------------------


@_entry("CONV_2D")
def conv_bn_relu(k: Any) -> Any:
    """Conv2D without bias + BatchNorm + ReLU: BN folds into the conv weights, ReLU fuses."""
    x = inp = k.Input((12, 12, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.ReLU()(x)
    x = k.layers.Conv2D(6, 3, strides=2, padding="valid", activation="relu6")(x)
    return k.Model(inp, x)


@_entry("DEPTHWISE_CONV_2D")
def depthwise(k: Any) -> Any:
    """Depthwise conv with depth multiplier 2, stride 2 and dilation (each a kernel parameter)."""
    x = inp = k.Input((11, 11, 4), batch_size=1)
    x = k.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6")(x)
    x = k.layers.DepthwiseConv2D(3, strides=2, padding="valid")(x)
    x = k.layers.DepthwiseConv2D(3, dilation_rate=2, padding="same")(x)
    return k.Model(inp, x)


@_entry("DEPTHWISE_CONV_2D", "CONV_2D")
def separable(k: Any) -> Any:
    x = inp = k.Input((10, 10, 6), batch_size=1)
    x = k.layers.SeparableConv2D(12, 3, padding="same", activation="relu")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "RESHAPE")
def conv1d(k: Any) -> Any:
    """Keras Conv1D converts to RESHAPE (adding H=1) + CONV_2D + RESHAPE."""
    x = inp = k.Input((40, 6), batch_size=1)
    x = k.layers.Conv1D(10, 5, padding="same", activation="relu")(x)
    x = k.layers.Conv1D(8, 3, strides=2)(x)
    return k.Model(inp, x)


@_entry("FULLY_CONNECTED")
def dense(k: Any) -> Any:
    x = inp = k.Input((48,), batch_size=1)
    x = k.layers.Dense(32, activation="relu")(x)
    x = k.layers.Dense(10)(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "AVERAGE_POOL_2D")
def avgpool(k: Any) -> Any:
    """Average pooling, VALID and SAME (SAME divides by the in-bounds count at the edges)."""
    x = inp = k.Input((13, 13, 4), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k.layers.AveragePooling2D(2)(x)
    x = k.layers.AveragePooling2D(3, strides=2, padding="same")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "MAX_POOL_2D")
def maxpool(k: Any) -> Any:
    x = inp = k.Input((13, 13, 4), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same")(x)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.MaxPooling2D(3, strides=2, padding="same")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "RESHAPE", "MEAN")
def gap1d(k: Any) -> Any:
    x = inp = k.Input((32, 5), batch_size=1)
    x = k.layers.Conv1D(12, 3, activation="relu")(x)
    x = k.layers.GlobalAveragePooling1D()(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "MEAN", "FULLY_CONNECTED")
def gap2d(k: Any) -> Any:
    x = inp = k.Input((9, 9, 3), batch_size=1)
    x = k.layers.Conv2D(16, 3, activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(5)(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "ADD")
def add_block(k: Any) -> Any:
    """A ResNet basic block: ADD of two branches with different scales, ReLU fused into ADD."""
    x = inp = k.Input((10, 10, 8), batch_size=1)
    y = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = k.layers.Conv2D(8, 3, padding="same")(y)
    x = k.layers.ReLU()(k.layers.Add()([x, y]))
    return k.Model(inp, x)


@_entry("CONV_2D", "MEAN", "MUL")
def mul_se(k: Any) -> Any:
    """MobileNetV3 squeeze-excitation: MUL broadcasts a 1x1xC gate over HxWxC.

    The converter folds hard-sigmoid's relu6(x + 3) / 6 into the gate conv and the MUL.
    """
    x = inp = k.Input((8, 8, 12), batch_size=1)
    x = k.layers.Conv2D(12, 1, activation="relu")(x)
    s = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = k.layers.Conv2D(4, 1, activation="relu")(s)
    s = k.layers.Conv2D(12, 1)(s)
    s = k.layers.Activation("hard_sigmoid")(s)
    x = k.layers.Multiply()([x, s])
    return k.Model(inp, x)


@_entry("CONV_2D", "HARD_SWISH")
def hard_swish(k: Any) -> Any:
    x = inp = k.Input((8, 8, 4), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same")(x)
    x = k.layers.Activation("hard_swish")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "RESHAPE", "FULLY_CONNECTED")
def flatten_reshape(k: Any) -> Any:
    x = inp = k.Input((6, 6, 2), batch_size=1)
    x = k.layers.Conv2D(4, 3, activation="relu")(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(12)(x)
    x = k.layers.Reshape((3, 4))(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "CONCATENATION")
def concat(k: Any) -> Any:
    """Channel concatenation of branches with different scales (TFLite requantizes each)."""
    x = inp = k.Input((8, 8, 4), batch_size=1)
    a = k.layers.Conv2D(6, 1, activation="relu")(x)
    b = k.layers.Conv2D(5, 3, padding="same")(x)
    x = k.layers.Concatenate()([a, b, x])
    return k.Model(inp, x)


@_entry("CONV_2D", "PAD")
def zeropad(k: Any) -> Any:
    x = inp = k.Input((7, 7, 3), batch_size=1)
    x = k.layers.Conv2D(4, 1)(x)
    x = k.layers.ZeroPadding2D(((1, 2), (2, 1)))(x)
    x = k.layers.Conv2D(4, 3, activation="relu")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "CONCATENATION", "RELU", "MAX_POOL_2D", "RELU6")
def standalone_relu(k: Any) -> Any:
    """RELU and RELU6 as ops of their own, after ops the converter cannot fuse them into."""
    x = inp = k.Input((8, 8, 3), batch_size=1)
    x = k.layers.Concatenate()([k.layers.Conv2D(5, 1)(x), x])
    x = k.layers.ReLU()(x)
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.Concatenate()([k.layers.Conv2D(4, 1)(x), x])
    x = k.layers.ReLU(6.0)(x)
    return k.Model(inp, x)


@_entry("FULLY_CONNECTED", "SOFTMAX")
def softmax(k: Any) -> Any:
    x = inp = k.Input((20,), batch_size=1)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x)


@_entry("FULLY_CONNECTED", "LOGISTIC")
def sigmoid(k: Any) -> Any:
    x = inp = k.Input((20,), batch_size=1)
    x = k.layers.Dense(6, activation="sigmoid")(x)
    return k.Model(inp, x)


@_entry("FULLY_CONNECTED", "CONCATENATION")
def two_io(k: Any) -> Any:
    """Two inputs of different shapes and two outputs: I/O order must be kept end to end.

    (The converter lists the inputs in another order than Keras; `convert` copes with that.)
    """
    a = k.Input((6,), batch_size=1)
    b = k.Input((4,), batch_size=1)
    wide = k.layers.Dense(5)(a)
    mixed = k.layers.Dense(3)(k.layers.Concatenate()([a, b]))
    return k.Model([a, b], [wide, mixed])


# --- whole small networks -----------------------------------------------------------------


@_entry("CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX")
def resnet(k: Any) -> Any:
    """Two ResNet stages (identity and projection shortcut) on a 16x16 image."""
    x = inp = k.Input((16, 16, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = k.layers.ReLU()(k.layers.BatchNormalization()(x))
    for filters, stride in ((8, 1), (16, 2)):
        y = k.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        y = k.layers.ReLU()(k.layers.BatchNormalization()(y))
        y = k.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
        y = k.layers.BatchNormalization()(y)
        if stride != 1:
            x = k.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
            x = k.layers.BatchNormalization()(x)
        x = k.layers.ReLU()(k.layers.Add()([x, y]))
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x)


def _dw_bn(k: Any, x: Any, stride: int, act: str) -> Any:
    x = k.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
    return k.layers.Activation(act)(k.layers.BatchNormalization()(x))


def _pw_bn(k: Any, x: Any, filters: int, act: str | None) -> Any:
    x = k.layers.Conv2D(filters, 1, use_bias=False)(x)
    x = k.layers.BatchNormalization()(x)
    return k.layers.Activation(act)(x) if act else x


@_entry("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX")
def mobilenet_v1(k: Any) -> Any:
    """Depthwise-separable stack with ReLU6, pooled by a fixed-size AveragePooling2D.

    Flatten of the 1x1xC pooled map needs no RESHAPE: FULLY_CONNECTED flattens its input.
    """
    x = inp = k.Input((16, 16, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
    for filters, stride in ((16, 1), (24, 2), (24, 1)):
        x = _pw_bn(k, _dw_bn(k, x, stride, "relu6"), filters, "relu6")
    x = k.layers.AveragePooling2D(4)(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX")
def mobilenet_v2(k: Any) -> Any:
    """Inverted residuals: expand 1x1, depthwise 3x3, linear 1x1 projection, ADD shortcut."""
    x = inp = k.Input((16, 16, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu6")(x)
    for filters, stride in ((8, 1), (16, 2), (16, 1)):
        y = _pw_bn(k, x, x.shape[-1] * 4, "relu6")
        y = _pw_bn(k, _dw_bn(k, y, stride, "relu6"), filters, None)
        x = k.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x)


def _se(k: Any, x: Any) -> Any:
    c = x.shape[-1]
    s = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = k.layers.Conv2D(max(c // 4, 4), 1, activation="relu")(s)
    s = k.layers.Conv2D(c, 1, activation="hard_sigmoid")(s)
    return k.layers.Multiply()([x, s])


@_entry(
    "CONV_2D", "DEPTHWISE_CONV_2D", "HARD_SWISH", "MEAN", "MUL", "ADD", "FULLY_CONNECTED", "SOFTMAX"
)
def mobilenet_v3(k: Any) -> Any:
    """MobileNetV3-style blocks: hard-swish, squeeze-excitation, residual ADD."""
    x = inp = k.Input((16, 16, 3), batch_size=1)
    x = k.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    x = k.layers.Activation("hard_swish")(k.layers.BatchNormalization()(x))
    for filters, stride, act, se in (
        (8, 1, "relu", True),
        (16, 2, "hard_swish", True),
        (16, 1, "hard_swish", False),
    ):
        y = _pw_bn(k, x, x.shape[-1] * 3, act)
        y = _dw_bn(k, y, stride, act)
        if se:
            y = _se(k, y)
        y = _pw_bn(k, y, filters, None)
        x = k.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x)


@_entry("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX")
def ds_cnn(k: Any) -> Any:
    """Keyword-spotting DS-CNN on a 25x10 MFCC map: strided conv, 3 DS blocks, avg pool."""
    x = inp = k.Input((25, 10, 1), batch_size=1)
    x = k.layers.Conv2D(16, (5, 3), strides=(2, 1), padding="same", use_bias=False)(x)
    x = k.layers.ReLU()(k.layers.BatchNormalization()(x))
    for _ in range(3):
        x = _pw_bn(k, _dw_bn(k, x, 1, "relu"), 16, "relu")
    x = k.layers.AveragePooling2D(x.shape[1:3])(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dense(12, activation="softmax")(x)
    return k.Model(inp, x)


@_entry("FULLY_CONNECTED")
def autoencoder(k: Any) -> Any:
    """Dense autoencoder in the style of MLPerf Tiny's anomaly detection (narrower)."""
    x = inp = k.Input((64,), batch_size=1)
    for units in (32, 16, 8, 16, 32):
        x = k.layers.Dense(units, use_bias=False)(x)
        x = k.layers.ReLU()(k.layers.BatchNormalization()(x))
    x = k.layers.Dense(64)(x)
    return k.Model(inp, x)


@_entry("QUANTIZE", "CONV_2D", "MEAN", "FULLY_CONNECTED", "DEQUANTIZE", float_io=True)
def float_io(k: Any) -> Any:
    """Float32 in and out: the converter adds QUANTIZE and DEQUANTIZE at the edges."""
    x = inp = k.Input((8, 8, 2), batch_size=1)
    x = k.layers.Conv2D(6, 3, activation="relu")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dense(4)(x)
    return k.Model(inp, x)


# --- data ----------------------------------------------------------------------------------


def structured(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Float data with what white noise lacks: spatial smoothness and per-sample level and gain.

    Global pooling averages white noise to the same value for every sample, so a whole network
    fed noise answers the same thing for any input and hides arithmetic errors. Coarse random
    fields (4x4 blocks) with a random per-channel offset make pooled features, and therefore
    the outputs, differ between samples.
    """
    spatial = shape[1:-1]
    coarse = rng.normal(0.0, 1.0, (shape[0], *(-(-d // 4) for d in spatial), shape[-1]))
    for axis in range(1, len(shape) - 1):
        coarse = np.repeat(coarse, 4, axis=axis)
    field = coarse[(slice(None), *(slice(0, d) for d in spatial))]
    offset = rng.normal(0.0, 1.0, (shape[0], *([1] * len(spatial)), shape[-1]))
    x = offset + rng.uniform(0.3, 1.5) * field + rng.normal(0.0, 0.2, shape)
    return x.astype(np.float32)


def sample_inputs(model: Path, seed: int) -> list[np.ndarray]:
    """Structured inputs for a zoo model, quantized with its input parameters where int8."""
    from hil.reference import input_specs

    rng = np.random.default_rng(seed)
    out = []
    for spec in input_specs(model):
        x = structured(spec.shape, rng)
        if spec.dtype == np.int8:
            x = np.clip(np.round(x / spec.scale) + spec.zero_point, -128, 127).astype(np.int8)
        out.append(x)
    return out


# --- conversion and cache -----------------------------------------------------------------


def _calibrate_batchnorm(
    k: Any, model: Any, batch: list[np.ndarray], rng: np.random.Generator
) -> None:
    """Give BatchNorm layers statistics like a trained network's, so folding is not trivial.

    Moving mean/variance come from the layer's actual input on `batch` (slightly perturbed);
    fresh-init statistics (0, 1) would shrink the signal layer by layer until every input gives
    the same output. Gamma and beta are random around 1 and 0.
    """
    for layer in model.layers:
        if layer.__class__.__name__ != "BatchNormalization":
            continue
        h = k.Model(model.inputs, layer.input)(batch).numpy()
        axes = tuple(range(h.ndim - 1))
        c = h.shape[-1]
        layer.set_weights(
            [
                rng.uniform(0.5, 1.5, c).astype(np.float32),
                rng.normal(0.0, 0.2, c).astype(np.float32),
                (h.mean(axis=axes) + rng.normal(0.0, 0.05, c) * h.std(axis=axes)).astype(
                    np.float32
                ),
                (h.var(axis=axes) * rng.uniform(0.8, 1.25, c)).astype(np.float32),
            ]
        )


def convert(entry: ZooEntry, seed: int = 0) -> bytes:
    """Build `entry` with seeded weights and convert it to a full-int8 .tflite."""
    tensorflow()
    import keras

    keras.utils.set_random_seed(seed)
    model = entry.build(keras)
    rng = np.random.default_rng(seed)
    shapes = [tuple(t.shape) for t in model.inputs]
    batch = [np.concatenate([structured(s, rng) for _ in range(8)]) for s in shapes]
    _calibrate_batchnorm(keras, model, batch, rng)

    names = [t.name for t in model.inputs]

    def representative() -> Any:
        # By name: the converter may reorder the inputs of a multi-input model.
        for _ in range(16):
            yield {n: structured(s, rng) for n, s in zip(names, shapes, strict=True)}

    return to_tflite(model, representative, "int8_float_io" if entry.float_io else "int8")


def zoo_model_path(name: str, cache_dir: Path) -> Path:
    """Path of zoo model `name`'s .tflite in `cache_dir`, converting it on first use."""
    return cached_model(cache_dir, name, f"{name}-{ZOO_VERSION}", lambda: convert(ZOO[name]))
