"""Make the example models in examples/models/: small int8 classifiers of scikit-learn's digits.

    .venv/bin/python examples/make_models.py            # writes examples/models/*.tflite
    hil profile examples/models/digits-dscnn.tflite --board qemu-m4

How they were made (everything offline, seeded, single-threaded):

* Data: `sklearn.datasets.load_digits` (1797 handwritten digits, 8x8 pixels, 0..16), scaled to
  [0, 1], split 80/20 stratified with seed 0.
* `digits-dscnn.tflite`: a keyword-spotting-style DS-CNN: Conv2D + BN + ReLU, two depthwise-
  separable blocks (DepthwiseConv2D + BN + ReLU, 1x1 Conv2D + BN + ReLU), max pooling, average
  pooling over the remaining map, Dense + softmax.
* `digits-mobilenetv3.tflite`: MobileNetV3-style: a hard-swish stem, inverted residual blocks
  (1x1 expansion, 3x3 depthwise, squeeze-excitation with a hard-sigmoid gate, linear 1x1
  projection, residual ADD where shapes allow), global average pooling, Dense + softmax.
* Both are trained briefly with Adam, then converted with full-integer post-training
  quantization (200 training images as the representative set; int8 input and output), so
  every tensor on the device is int8. The script prints float and int8 test accuracy.

Both models use only operators the bench supports; re-running the script gives the same
weights (fixed seeds, deterministic TF ops) up to the converter's own behaviour.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
EPOCHS = 40


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as (1797, 8, 8, 1) float32 in [0, 1], split 80/20 (stratified, seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    return train_test_split(
        x, digits.target, test_size=0.2, random_state=SEED, stratify=digits.target
    )


def _conv_bn(
    k: Any, x: Any, filters: int, kernel: int, act: str | None, depthwise: bool = False
) -> Any:
    if depthwise:
        x = k.layers.DepthwiseConv2D(kernel, padding="same", use_bias=False)(x)
    else:
        x = k.layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    x = k.layers.BatchNormalization()(x)
    return k.layers.Activation(act)(x) if act else x


def dscnn(k: Any) -> Any:
    x = inp = k.Input((8, 8, 1), batch_size=1)
    x = _conv_bn(k, x, 24, 3, "relu")
    for filters in (32, 32):
        x = _conv_bn(k, x, 0, 3, "relu", depthwise=True)
        x = _conv_bn(k, x, filters, 1, "relu")
    x = k.layers.MaxPooling2D(2)(x)
    x = k.layers.AveragePooling2D(4)(x)
    x = k.layers.Flatten()(x)
    x = k.layers.Dropout(0.2)(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x, name="digits_dscnn")


def _squeeze_excite(k: Any, x: Any) -> Any:
    c = x.shape[-1]
    s = k.layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = k.layers.Conv2D(max(c // 4, 8), 1, activation="relu")(s)
    s = k.layers.Conv2D(c, 1, activation="hard_sigmoid")(s)
    return k.layers.Multiply()([x, s])


def mobilenetv3(k: Any) -> Any:
    x = inp = k.Input((8, 8, 1), batch_size=1)
    x = _conv_bn(k, x, 16, 3, "hard_swish")
    # (expansion, out channels, stride, activation, squeeze-excitation)
    for expand, filters, stride, act, se in (
        (2, 16, 1, "relu", True),
        (3, 24, 2, "hard_swish", True),
        (3, 24, 1, "hard_swish", True),
    ):
        y = _conv_bn(k, x, x.shape[-1] * expand, 1, act)
        y = k.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(y)
        y = k.layers.Activation(act)(k.layers.BatchNormalization()(y))
        if se:
            y = _squeeze_excite(k, y)
        y = _conv_bn(k, y, filters, 1, None)
        x = k.layers.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y
    x = _conv_bn(k, x, 64, 1, "hard_swish")
    x = k.layers.GlobalAveragePooling2D()(x)
    x = k.layers.Dropout(0.2)(x)
    x = k.layers.Dense(10, activation="softmax")(x)
    return k.Model(inp, x, name="digits_mobilenetv3")


MODELS: dict[str, Callable[[Any], Any]] = {
    "digits-dscnn": dscnn,
    "digits-mobilenetv3": mobilenetv3,
}


def _tf() -> Any:
    """TensorFlow, deterministic and single-threaded (tiny models train faster that way)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TF already running in this process (e.g. under pytest): keep it
        pass
    tf.config.experimental.enable_op_determinism()
    return tf


def train_and_convert(name: str, epochs: int, data: tuple[np.ndarray, ...]) -> bytes:
    """Train model `name` on digits, print its accuracy, return it as a full-int8 .tflite."""
    _tf()
    import keras

    from optimizer.factory import quantization

    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(SEED)
    model = MODELS[name](keras)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    # batch_size=1 in the Input keeps the .tflite free of shape ops; training batches are
    # larger, which Keras allows because the fixed batch dimension only shapes the export.
    model.fit(
        x_train, y_train, batch_size=32, epochs=epochs, verbose=0, validation_data=(x_test, y_test)
    )
    _, float_acc = model.evaluate(x_test, y_test, batch_size=64, verbose=0)

    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the SavedModel signature
        tflite = quantization.convert(model, x_train[:200], per_channel=True)
    int8_acc = quantization.evaluate_int8(tflite, x_test, y_test)
    print(
        f"{name}: {model.count_params()} parameters, test accuracy float {float_acc:.3f}, "
        f"int8 {int8_acc:.3f}, {len(tflite) / 1024:.1f} KiB"
    )
    return tflite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parent / "models",
        help="output directory (default: examples/models)",
    )
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs")
    parser.add_argument(
        "--only", choices=sorted(MODELS), action="append", help="make only this model (repeatable)"
    )
    args = parser.parse_args(argv)
    data = load_data()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or MODELS:
        path = args.out / f"{name}.tflite"
        path.write_bytes(train_and_convert(name, args.epochs, data))
        print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
