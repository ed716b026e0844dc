"""Model families, described as an `Arch` (plain data) and built into Keras from it.

Keeping the architecture as data is what makes structured pruning real: pruning produces a
smaller `Arch` (fewer hidden channels per block) and `build` makes a genuinely smaller Keras
model, into which the kept weights are copied. Both families are built from residual blocks
whose *hidden* width (the channels between the block's first and last layer) is the prunable
group; the residual stream between blocks is tied by additions and is scaled by the width
multiplier instead.

Families:
- ``resnet``: basic residual blocks (3x3 conv - BN - ReLU - 3x3 conv - BN, plus identity or a
  1x1 projection), stages that halve the resolution and double the width.
- ``mobilenetv3``: inverted residuals (1x1 expand - depthwise - optional squeeze-excitation -
  1x1 project), hard-swish in the later half, as in MobileNetV3.

Both are 2D for images (H, W, C) and 1D for time series (T, C); the rank of the input decides.
Layers get stable names (``b3_conv1``) so weights can be matched between builds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import keras
import numpy as np

from optimizer.factory.errors import FactoryError

FAMILIES = ("resnet", "mobilenetv3")
_CONV_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)


@dataclass(frozen=True)
class Block:
    """One residual block: `hidden` is the prunable inner width, `out` the stream width, `se`
    the squeeze-excitation bottleneck width (0: none; fixed, so pruning leaves it alone)."""

    out: int
    hidden: int
    stride: int
    se: int = 0
    hswish: bool = False


@dataclass(frozen=True)
class Arch:
    family: str
    input_shape: tuple[int, ...]
    num_classes: int
    stem: int
    blocks: tuple[Block, ...]
    kernel: int = 3

    @property
    def ndim(self) -> int:
        """Spatial rank: 1 for time series, 2 for images."""
        return len(self.input_shape) - 1

    def with_hidden(self, hidden: list[int]) -> Arch:
        """Same architecture with new hidden widths (what structured pruning produces)."""
        blocks = tuple(replace(b, hidden=h) for b, h in zip(self.blocks, hidden, strict=True))
        return replace(self, blocks=blocks)


def _scaled(channels: float, multiplier: float) -> int:
    """Width times multiplier, rounded to a multiple of 4 (SIMD-friendly int8 kernels)."""
    return max(4, int(4 * round(channels * multiplier / 4)))


def make_arch(
    family: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    stages: int,
    blocks_per_stage: int,
    base_width: int,
    width_multiplier: float,
    expansion: float = 4.0,
    squeeze_excitation: bool = True,
) -> Arch:
    """Arch of a family scaled by the hyperparameters. Stage s has width base*2^s and (from the
    second stage on) halves the resolution in its first block, as long as the input allows."""
    if family not in FAMILIES:
        raise FactoryError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    if len(input_shape) not in (2, 3):
        raise FactoryError(
            f"input shape {input_shape} is neither (T, C) nor (H, W, C); reshape the dataset"
        )
    size = min(input_shape[:-1])
    blocks = []
    for s in range(stages):
        width = _scaled(base_width * 2**s, width_multiplier)
        for b in range(blocks_per_stage):
            stride = 2 if s > 0 and b == 0 and size >= 4 else 1
            size = math.ceil(size / stride)
            if family == "resnet":
                blocks.append(Block(out=width, hidden=width, stride=stride))
            else:
                late = s >= stages // 2
                hidden = _scaled(width * expansion, 1.0)
                se = _scaled(hidden / 4, 1.0) if squeeze_excitation and late else 0
                blocks.append(Block(width, hidden, stride, se=se, hswish=late))
    stem = _scaled(base_width, width_multiplier)
    return Arch(family, tuple(input_shape), num_classes, stem, tuple(blocks))


class _Layers:
    """Constructors for the input's rank, so one builder serves 1D and 2D."""

    def __init__(self, ndim: int) -> None:
        self.conv = keras.layers.Conv1D if ndim == 1 else keras.layers.Conv2D
        self.dwconv = keras.layers.DepthwiseConv1D if ndim == 1 else keras.layers.DepthwiseConv2D
        pool1d, pool2d = keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D
        self.gap = pool1d if ndim == 1 else pool2d
        self.ndim = ndim


def _norm_act(x: Any, name: str, act: str | None, bn: bool) -> Any:
    # momentum 0.9, not Keras' 0.99: a few epochs of a small dataset are a few hundred steps,
    # too few for 0.99 moving statistics to settle, and inference accuracy collapses.
    if bn:
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    if act == "relu":
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    elif act == "hswish":
        x = keras.layers.Activation("hard_swish", name=f"{name}_hswish")(x)
    return x


def build(arch: Arch, *, batch_size: int | None = None, batchnorm: bool = True) -> keras.Model:
    """Keras model for `arch`. `batch_size=1` is the export form (no dynamic-shape ops in the
    .tflite); `batchnorm=False` builds the BN-folded form (see `fold_batchnorm`)."""
    L = _Layers(arch.ndim)
    k = arch.kernel
    inp = keras.Input(arch.input_shape, batch_size=batch_size, name="input")
    x = L.conv(arch.stem, k, padding="same", use_bias=not batchnorm, name="stem")(inp)
    x = _norm_act(x, "stem", "relu", batchnorm)
    width = arch.stem
    for i, b in enumerate(arch.blocks):
        n = f"b{i}"
        act = "hswish" if b.hswish else "relu"
        shortcut = x
        if arch.family == "resnet":
            h = L.conv(b.hidden, k, strides=b.stride, padding="same", use_bias=not batchnorm,
                       name=f"{n}_conv1")(x)
            h = _norm_act(h, f"{n}_conv1", act, batchnorm)
            h = L.conv(b.out, k, padding="same", use_bias=not batchnorm, name=f"{n}_conv2")(h)
            h = _norm_act(h, f"{n}_conv2", None, batchnorm)
        else:
            h = L.conv(b.hidden, 1, use_bias=not batchnorm, name=f"{n}_expand")(x)
            h = _norm_act(h, f"{n}_expand", act, batchnorm)
            h = L.dwconv(k, strides=b.stride, padding="same", use_bias=not batchnorm,
                         name=f"{n}_dw")(h)
            h = _norm_act(h, f"{n}_dw", act, batchnorm)
            if b.se:
                s = L.gap(keepdims=True, name=f"{n}_se_pool")(h)
                s = L.conv(b.se, 1, activation="relu", name=f"{n}_se_reduce")(s)
                s = L.conv(b.hidden, 1, activation="hard_sigmoid", name=f"{n}_se_expand")(s)
                h = keras.layers.Multiply(name=f"{n}_se_mul")([h, s])
            h = L.conv(b.out, 1, use_bias=not batchnorm, name=f"{n}_project")(h)
            h = _norm_act(h, f"{n}_project", None, batchnorm)
        if b.stride != 1 or width != b.out:
            if arch.family == "mobilenetv3":
                # MobileNetV3 drops the shortcut where the shape changes.
                x = h
                width = b.out
                continue
            shortcut = L.conv(b.out, 1, strides=b.stride, use_bias=not batchnorm,
                              name=f"{n}_proj")(shortcut)
            shortcut = _norm_act(shortcut, f"{n}_proj", None, batchnorm)
        x = keras.layers.Add(name=f"{n}_add")([shortcut, h])
        if arch.family == "resnet":
            x = keras.layers.ReLU(name=f"{n}_out_relu")(x)
        width = b.out
    x = L.gap(name="pool")(x)
    out = keras.layers.Dense(arch.num_classes, name="logits")(x)
    return keras.Model(inp, out, name=arch.family)


def hidden_layers(arch: Arch, block: int) -> dict[str, str]:
    """Layers touching block `block`'s hidden channels -> how: "out" (produce them), "in"
    (consume them), "both" (channel-wise: depthwise, BN, the SE expand)."""
    n = f"b{block}"
    if arch.family == "resnet":
        return {f"{n}_conv1": "out", f"{n}_conv1_bn": "both", f"{n}_conv2": "in"}
    roles = {f"{n}_expand": "out", f"{n}_expand_bn": "both", f"{n}_dw": "both",
             f"{n}_dw_bn": "both", f"{n}_project": "in"}
    if arch.blocks[block].se:
        roles |= {f"{n}_se_reduce": "in", f"{n}_se_expand": "out"}
    return roles


def hidden_activation(arch: Arch, block: int) -> str:
    """Name of the layer whose output is block `block`'s hidden activation (ranking by
    activation or gradient looks at it)."""
    b = arch.blocks[block]
    name = f"b{block}_conv1" if arch.family == "resnet" else f"b{block}_dw"
    return f"{name}_hswish" if b.hswish else f"{name}_relu"


def producer_kernel(arch: Arch, block: int) -> str:
    """The layer whose output filters create block `block`'s hidden channels (norm ranking)."""
    return f"b{block}_conv1" if arch.family == "resnet" else f"b{block}_expand"


def fold_batchnorm(model: keras.Model, arch: Arch, *, batch_size: int | None = None) -> keras.Model:
    """Equivalent model without BatchNormalization: each BN is folded into the convolution
    before it (w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)).

    The int8 converter quantizes exactly these folded weights, so QAT trains on them and the
    export never depends on the converter recognising a Conv-BN pattern (it does not for 1D).
    """
    folded = build(arch, batch_size=batch_size, batchnorm=False)
    names = {layer.name for layer in model.layers}
    for layer in folded.layers:
        if not layer.weights:
            continue
        src = model.get_layer(layer.name)
        weights = src.get_weights()
        bn_name = f"{layer.name}_bn"
        if bn_name in names and len(weights) == 1:
            gamma, beta, mean, var = model.get_layer(bn_name).get_weights()
            eps = model.get_layer(bn_name).epsilon
            scale = gamma / np.sqrt(var + eps)
            kernel = weights[0]
            if isinstance(src, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D):
                kernel = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
            else:
                kernel = kernel * scale
            weights = [kernel, beta - mean * scale]
        layer.set_weights(weights)
    return folded


def copy_weights(src: keras.Model, dst: keras.Model) -> None:
    """Copy weights between two builds of the same Arch (e.g. training -> batch-1 export)."""
    for layer in dst.layers:
        if layer.weights:
            layer.set_weights(src.get_layer(layer.name).get_weights())


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one inference: convolutions, depthwise convolutions, dense layers
    and the squeeze-excitation multiply (the rest is negligible on these models)."""
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            macs += int(np.prod(layer.kernel.shape))
        elif isinstance(layer, _CONV_TYPES):
            # Conv kernel (k.., c_in, c_out), depthwise kernel (k.., c, 1): one MAC per weight
            # per output position.
            out_spatial = int(np.prod(layer.output.shape[1:-1]))
            macs += out_spatial * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Multiply):
            macs += int(np.prod(layer.output.shape[1:]))
    return macs
