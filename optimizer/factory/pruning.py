"""Pruning: structured (whole hidden channels, really removed) and unstructured (magnitude).

Structured pruning ranks each block's hidden channels, keeps the best ``(1 - sparsity)`` share
in every block, and rebuilds a smaller model from the shrunken `Arch` with the kept weights
copied in: the int8 kernels then have fewer channels, so flash, RAM and MACs all shrink.
Residual-stream channels are never pruned (they are tied across additions); use the width
multiplier for those.

Unstructured pruning zeroes the smallest-magnitude weights of every kernel and keeps them zero
during fine-tuning. The model stays dense: an int8 kernel still stores and multiplies every
zero, so unstructured sparsity saves nothing on the target unless a sparse format is used.

Gradual pruning follows the automated gradual pruning schedule (Zhu & Gupta, 2017): sparsity
``s_t = s * (1 - (1 - t/n)^3)`` at step t of n, one step per fine-tuning epoch over the first
half of the fine-tuning epochs; the second half fine-tunes at the final sparsity.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from optimizer.factory import models
from optimizer.factory.models import Arch

CRITERIA = ("l1", "l2", "activation", "gradient")
#: Samples used to rank channels by activation or gradient.
RANKING_SAMPLES = 256

#: fit(model, epochs, callbacks): trains `model` in place (the caller owns the optimizer setup).
Fit = Callable[[keras.Model, int, list[keras.callbacks.Callback]], None]


def schedule(sparsity: float, kind: str, finetune_epochs: int) -> list[float]:
    """Sparsity to reach before each pruning step (one step per fine-tuning epoch, or one)."""
    if kind == "one_shot" or finetune_epochs < 2:
        return [sparsity]
    n = finetune_epochs // 2
    return [sparsity * (1 - (1 - t / n) ** 3) for t in range(1, n + 1)]


def _kernel_layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if hasattr(layer, "kernel")]


# --- structured ---------------------------------------------------------------------------


def rank_channels(
    model: keras.Model, arch: Arch, criterion: str, x: np.ndarray, y: np.ndarray
) -> list[np.ndarray]:
    """Importance of every hidden channel, one array per block (higher = keep)."""
    if criterion in ("l1", "l2"):
        scores = []
        for i in range(len(arch.blocks)):
            kernel = model.get_layer(models.producer_kernel(arch, i)).get_weights()[0]
            flat = kernel.reshape(-1, kernel.shape[-1])
            scores.append(
                np.abs(flat).sum(0) if criterion == "l1" else np.sqrt((flat**2).sum(0))
            )
        return scores
    names = [models.hidden_activation(arch, i) for i in range(len(arch.blocks))]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names] + [model.output])
    xb = tf.constant(x[:RANKING_SAMPLES])
    spatial = tuple(range(1, len(x.shape) - 1))
    if criterion == "activation":
        acts = probe(xb, training=False)[:-1]
        return [np.abs(a.numpy()).mean(axis=(0, *spatial)) for a in acts]
    # Taylor criterion (Molchanov et al., 2017): |mean over positions of activation x gradient|,
    # averaged over samples: the first-order change of the loss if the channel were removed.
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        *acts, logits = probe(xb, training=False)
        loss = loss_fn(y[:RANKING_SAMPLES], logits)
    grads = tape.gradient(loss, acts)
    return [
        np.abs((a * g).numpy().mean(axis=spatial)).mean(axis=0)
        for a, g in zip(acts, grads, strict=True)
    ]


def _slice(layer: keras.layers.Layer, weights: list[np.ndarray], role: str,
           keep: np.ndarray) -> list[np.ndarray]:
    """Keep only channels `keep` of one layer's weights; `role` says which axis they are on."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [w[keep] for w in weights]
    kernel, *bias = weights
    if role in ("in", "both"):  # conv (.., c_in, c_out) input axis; depthwise (.., c, 1)
        kernel = np.take(kernel, keep, axis=-2)
    if role == "out":
        kernel = np.take(kernel, keep, axis=-1)
    if role in ("out", "both"):
        bias = [b[keep] for b in bias]
    return [kernel, *bias]


def shrink(model: keras.Model, arch: Arch, keep: list[np.ndarray]) -> tuple[keras.Model, Arch]:
    """Rebuild `model` keeping, in block i, only hidden channels `keep[i]`."""
    keep = [np.sort(k) for k in keep]
    new_arch = arch.with_hidden([len(k) for k in keep])
    new = models.build(new_arch)
    roles: dict[str, tuple[str, np.ndarray]] = {}
    for i, k in enumerate(keep):
        for name, role in models.hidden_layers(arch, i).items():
            roles[name] = (role, k)
    for layer in new.layers:
        if not layer.weights:
            continue
        weights = model.get_layer(layer.name).get_weights()
        if layer.name in roles:
            role, k = roles[layer.name]
            weights = _slice(layer, weights, role, k)
        layer.set_weights(weights)
    return new, new_arch


def prune_structured(
    model: keras.Model,
    arch: Arch,
    *,
    criterion: str,
    sparsity: float,
    schedule_kind: str,
    finetune_epochs: int,
    fit: Fit,
    x: np.ndarray,
    y: np.ndarray,
) -> tuple[keras.Model, Arch]:
    """Prune hidden channels to `sparsity` along the schedule, fine-tuning with `fit`;
    returns the smaller model and its Arch."""
    original = [b.hidden for b in arch.blocks]
    steps = schedule(sparsity, schedule_kind, finetune_epochs)
    epochs_left = finetune_epochs
    for step, target in enumerate(steps):
        scores = rank_channels(model, arch, criterion, x, y)
        keep = [
            np.argsort(-s, kind="stable")[: max(1, round(h * (1 - target)))]
            for s, h in zip(scores, original, strict=True)
        ]
        model, arch = shrink(model, arch, keep)
        epochs = 1 if step < len(steps) - 1 else epochs_left
        fit(model, epochs, [])
        epochs_left -= epochs
    return model, arch


# --- unstructured -------------------------------------------------------------------------


class MagnitudeMasks:
    """Per-kernel masks zeroing the smallest weights; `apply` keeps pruned weights at zero
    (call it after every optimizer step, e.g. from `callback()`)."""

    def __init__(self, model: keras.Model) -> None:
        self.layers = _kernel_layers(model)
        self.masks = [np.ones(layer.kernel.shape, dtype=np.float32) for layer in self.layers]

    def update(self, sparsity: float) -> None:
        """Zero the `sparsity` share of smallest-magnitude weights in every kernel."""
        for i, layer in enumerate(self.layers):
            w = np.abs(layer.kernel.numpy()).ravel()
            n = int(np.floor(w.size * sparsity))
            mask = np.ones(w.size, dtype=np.float32)
            mask[np.argsort(w, kind="stable")[:n]] = 0.0
            self.masks[i] = mask.reshape(layer.kernel.shape)
        self.apply()

    def apply(self) -> None:
        for layer, mask in zip(self.layers, self.masks, strict=True):
            layer.kernel.assign(layer.kernel * mask)

    def transfer(self, model: keras.Model) -> MagnitudeMasks:
        """The same masks on another build of the same Arch (e.g. after BN folding, which
        scales whole output channels and so keeps zeros zero)."""
        other = MagnitudeMasks(model)
        by_name = {layer.name: m for layer, m in zip(self.layers, self.masks, strict=True)}
        other.masks = [by_name[layer.name] for layer in other.layers]
        return other

    def callback(self) -> keras.callbacks.Callback:
        masks = self

        class _Apply(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
                masks.apply()

        return _Apply()

    def sparsity(self) -> float:
        """Actual share of zero weights over all kernels."""
        total = sum(layer.kernel.numpy().size for layer in self.layers)
        zeros = sum(int((layer.kernel.numpy() == 0).sum()) for layer in self.layers)
        return zeros / total


def prune_unstructured(
    model: keras.Model,
    *,
    sparsity: float,
    schedule_kind: str,
    finetune_epochs: int,
    fit: Fit,
) -> MagnitudeMasks:
    """Magnitude-prune every kernel of `model` in place along the schedule, fine-tuning with
    the masks held; returns the masks (quantization-aware training must keep them)."""
    masks = MagnitudeMasks(model)
    steps = schedule(sparsity, schedule_kind, finetune_epochs)
    epochs_left = finetune_epochs
    for step, target in enumerate(steps):
        masks.update(target)
        epochs = 1 if step < len(steps) - 1 else epochs_left
        fit(model, epochs, [masks.callback()])
        epochs_left -= epochs
    return masks
