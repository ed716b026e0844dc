"""Full-int8 quantization: post-training (PTQ) or after quantization-aware fine-tuning (QAT).

Both end in the TFLite converter with a representative (calibration) set, int8 inputs and
outputs and int8 weights (per channel unless disabled). QAT first fine-tunes the BN-folded
float model with its weights fake-quantized exactly as the converter will quantize them
(symmetric, scale = max|w| / 127 per output channel or per tensor, straight-through gradient),
so the weights settle on the int8 grid they will be exported on.

Why not tensorflow-model-optimization: its QAT wraps tf-keras (Keras 2) layers and switches the
process to legacy Keras when imported, which clashes with the Keras 3 models built here. The
weight fake-quantization below needs no wrapper layers, so one model definition serves float
training, pruning, QAT and export. Activations are not fake-quantized during QAT: their int8
ranges come from the converter's calibration, which QAT could not influence anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf

from hil.lowering import supported_ops
from optimizer.factory.errors import CandidateFailed


def unsupported_ops(ops: Iterable[str]) -> list[str]:
    """The ops in `ops` that the bench cannot lower (sorted); a model using any of them
    cannot be profiled. Asks the bench's own lowering registry, so the two never drift."""
    return sorted(set(ops) - set(supported_ops()))


def _channel_axis(layer: keras.layers.Layer) -> int:
    """Axis of the kernel that the converter gives one scale each (output channels)."""
    depthwise = isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D)
    return -2 if depthwise else -1


def fake_quant(w: tf.Tensor, axis: int | None) -> tf.Tensor:
    """Symmetric int8 fake quantization of weights (per channel along `axis`, or per tensor
    when `axis` is None) with a straight-through gradient."""
    if axis is None:
        amax = tf.reduce_max(tf.abs(w))
    else:
        rank = len(w.shape)
        reduce = [a for a in range(rank) if a != axis % rank]
        amax = tf.reduce_max(tf.abs(w), axis=reduce, keepdims=True)
    scale = tf.maximum(amax, 1e-12) / 127.0
    q = tf.clip_by_value(tf.round(w / scale), -127.0, 127.0) * scale
    return w + tf.stop_gradient(q - w)


def qat_finetune(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    per_channel: bool,
    seed: int,
    masks: list[np.ndarray] | None = None,
    on_epoch: Callable[[int], None] = lambda epoch: None,
) -> None:
    """Fine-tune `model` (BN-folded, so its kernels are what gets exported) in place with
    int8-fake-quantized weights. `masks` (one per kernel, in layer order) keep pruned weights
    at zero. Raises CandidateFailed when the loss becomes NaN."""
    layers = [layer for layer in model.layers if hasattr(layer, "kernel")]
    kernels = [layer.kernel for layer in layers]
    axes = [_channel_axis(layer) if per_channel else None for layer in layers]
    mask_t = [tf.constant(m) for m in masks] if masks is not None else None
    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def step(xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        # Forward and backward through the quantized weights, update the float shadow: the
        # straight-through estimator without wrapper layers.
        shadow = [tf.identity(k.value) for k in kernels]
        for k, axis in zip(kernels, axes, strict=True):
            k.assign(fake_quant(k.value, axis))
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, variables)
        for k, s in zip(kernels, shadow, strict=True):
            k.assign(s)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        if mask_t is not None:
            for k, m in zip(kernels, mask_t, strict=True):
                k.assign(k.value * m)
        return loss

    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = [
            float(step(tf.constant(x[idx]), tf.constant(y[idx])))
            for idx in np.array_split(order, max(1, len(x) // batch_size))
        ]
        if not np.all(np.isfinite(losses)):
            raise CandidateFailed(
                f"loss became NaN in quantization-aware epoch {epoch + 1}; "
                "lower train.learning_rate"
            )
        on_epoch(epoch)


def convert(model: keras.Model, calibration: np.ndarray, *, per_channel: bool) -> bytes:
    """Full-int8 .tflite of `model` (build it with batch_size=1: no dynamic-shape ops)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # Documented only as experimental, but it is the converter's switch for per-tensor weights.
    converter._experimental_disable_per_channel = not per_channel
    return converter.convert()


def _interpreter(tflite: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=tflite,
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    return it


def evaluate_int8(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the int8 model on (x, y), run sample by sample in the LiteRT interpreter."""
    it = _interpreter(tflite)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scale, zero = inp["quantization"]
    q = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
    correct = 0
    for sample, label in zip(q, y, strict=True):
        it.set_tensor(inp["index"], sample[None])
        it.invoke()
        correct += int(np.argmax(it.get_tensor(out["index"])[0]) == label)
    return correct / len(y)


def inspect(tflite: bytes) -> dict:
    """Op names and analytical flash/RAM estimates of an int8 .tflite.

    flash: constant tensors as stored (int8 weights, int32 biases) plus one 32-bit multiplier
    and one shift per output channel of each weighted op; code is not counted (the bench
    measures the real image). RAM: the largest total of activation tensors alive at the same
    time, a lower bound for any arena plan; stack and runtime are not counted.
    """
    it = _interpreter(tflite)
    ops = it._get_ops_details()
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    produced = {i for op in ops for i in op["outputs"]}
    graph_inputs = {t["index"] for t in it.get_input_details()}
    graph_outputs = {t["index"] for t in it.get_output_details()}

    def nbytes(i: int) -> int:
        t = tensors[i]
        return int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize

    constants = {i for op in ops for i in op["inputs"] if i >= 0} - produced - graph_inputs
    flash = sum(nbytes(i) for i in constants)
    for op in ops:
        if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            flash += 8 * int(tensors[op["outputs"][0]]["shape"][-1])
    first: dict[int, int] = dict.fromkeys(graph_inputs, 0)
    last: dict[int, int] = dict.fromkeys(graph_outputs, len(ops) - 1)
    for n, op in enumerate(ops):
        for i in op["outputs"]:
            first.setdefault(i, n)
        for i in op["inputs"]:
            if i >= 0 and i not in constants:
                last[i] = max(last.get(i, n), n)
    ram = max(
        sum(nbytes(i) for i in first if first[i] <= n <= last.get(i, first[i]))
        for n in range(len(ops))
    )
    return {
        "ops": sorted({op["op_name"] for op in ops}),
        "flash_bytes_estimate": flash,
        "ram_bytes_estimate": ram,
    }
