"""A cheap TinyML-like problem: an *analytical surrogate*, not measured data.

It has the seed paper's objective and constraint shape, so algorithms can be compared in
seconds instead of GPU-days: minimise ``[1 - accuracy, ROM, RAM, FLOPs]`` subject to
``ROM < 1000 KB``, ``RAM < 256 KB`` and ``FLOPs < 1e9`` for a CIFAR-10-style ResNet with
three stages of basic blocks, over architecture, pruning and quantization hyperparameters:

==== ===================================== =========================================
x    hyperparameter                        mapping from [0, 1]
==== ===================================== =========================================
0    width multiplier                      0.25 * 32^x (0.25 to 8, log-uniform)
1    residual blocks per stage             1 to 5 (integer steps)
2    input resolution                      16, 24 or 32 pixels
3-5  structured (filter) pruning per stage 0 to 0.9 of the channels removed
6    weight bit width                      2 to 8 bits
7    unstructured weight sparsity          0 to 0.95 (stored sparse when that is smaller)
==== ===================================== =========================================

ROM, RAM and FLOPs are *computed* from the architecture (parameter count at the weight bit
width plus 30 KB of runtime code; the largest residual block's live int8 activations plus
8 KB; two FLOPs per multiply-accumulate). Accuracy is a made-up but plausible smooth law fitted
by eye to published CIFAR-10 ResNet results (ResNet-8 about 87 %, ResNet-20 about 91 %,
4x-wide ResNet-20 about 95 %), with penalties for low resolution, heavy pruning, low bit width
and high sparsity. It is deterministic and noise-free. It is meant to have the *structure* of
the real search (discrete steps, strongly correlated cost objectives, constraints that bind in
different corners), nothing more; never quote its numbers as model accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optimizer.problems.base import Problem

ROM_LIMIT_KB = 1000.0
RAM_LIMIT_KB = 256.0
FLOPS_LIMIT_M = 1000.0
NUM_CLASSES = 10
ROM_OVERHEAD_KB = 30.0  # runtime code and tables, paid by every model
RAM_OVERHEAD_KB = 8.0  # stack, runtime state and I/O buffers
#: Hypervolume reference error: models below 70 % accuracy are of no use and add nothing.
ERROR_REF = 0.3


def _equal_bins(n: int) -> tuple[float, ...]:
    """Edges of n equal bins of [0, 1] (how `decode` maps an integer choice)."""
    return tuple(k / n for k in range(n + 1))


def _conv(h: int, cin: int, cout: int, k: int) -> tuple[int, int]:
    """(parameters, MACs) of a k x k convolution with bias producing an h x h output."""
    return k * k * cin * cout + cout, h * h * k * k * cin * cout


class TinyMLProblem(Problem):
    """Pruning/quantization search for a small ResNet: see the module docstring."""

    name = "tinyml"
    description = (
        "TinyML-like analytical surrogate: 8 inputs; minimise [1-acc, ROM KB, RAM KB, MFLOPs]; "
        "ROM <= 1000 KB, RAM <= 256 KB, FLOPs <= 1e9; "
        "ideal (0, 30, 8, 0), ref (0.3, 1000, 256, 1000)"
    )

    def __init__(self) -> None:
        super().__init__(
            dim=8,
            num_objectives=4,
            num_constraints=3,
            ideal=(0.0, ROM_OVERHEAD_KB, RAM_OVERHEAD_KB, 0.0),
            ref_point=(ERROR_REF, ROM_LIMIT_KB, RAM_LIMIT_KB, FLOPS_LIMIT_M),
            # blocks, resolution and bit width are integers (5, 3 and 7 equal bins); ROM, RAM
            # and FLOPs are positive resources, and the three budgets are affine in them.
            discrete=tuple(_equal_bins(n) if n else () for n in (0, 5, 3, 0, 0, 0, 7, 0)),
            positive_objectives=(1, 2, 3),
            affine_constraints=(
                (1, 1 / ROM_LIMIT_KB, -1.0),
                (2, 1 / RAM_LIMIT_KB, -1.0),
                (3, 1 / FLOPS_LIMIT_M, -1.0),
            ),
        )

    @staticmethod
    def decode(x: np.ndarray) -> dict[str, float]:
        """Hyperparameters of a unit-cube point."""
        return {
            "width": 0.25 * 32.0 ** x[0],
            "blocks": float(min(5, 1 + int(x[1] * 5))),
            "resolution": float((16, 24, 32)[min(2, int(x[2] * 3))]),
            "prune_1": 0.9 * x[3],
            "prune_2": 0.9 * x[4],
            "prune_3": 0.9 * x[5],
            "weight_bits": float(min(8, 2 + int(x[6] * 7))),
            "sparsity": 0.95 * x[7],
        }

    def _evaluate(self, x: np.ndarray) -> tuple[Sequence[float], Sequence[float]]:
        hp = self.decode(x)
        blocks, h = int(hp["blocks"]), int(hp["resolution"])
        prune = (hp["prune_1"], hp["prune_2"], hp["prune_3"])
        channels = [max(4, round(16 * 2**s * hp["width"] * (1 - prune[s]))) for s in range(3)]

        params, macs = _conv(h, 3, channels[0], 3)
        peak_act = h * h * (3 + channels[0])
        cin = channels[0]
        for stage, c in enumerate(channels):
            for block in range(blocks):
                h_in = h
                if stage > 0 and block == 0:
                    h = (h + 1) // 2
                    p, m = _conv(h, cin, c, 1)  # projection shortcut
                    params, macs = params + p, macs + m
                p1, m1 = _conv(h, cin, c, 3)
                p2, m2 = _conv(h, c, c, 3)
                params, macs = params + p1 + p2, macs + m1 + m2
                # Live during the block: its input (for the shortcut), the middle and the output.
                peak_act = max(peak_act, h_in * h_in * cin + 2 * h * h * c)
                cin = c
        p, m = channels[2] * NUM_CLASSES + NUM_CLASSES, channels[2] * NUM_CLASSES
        params, macs = params + p, macs + m

        bits, sparsity = hp["weight_bits"], hp["sparsity"]
        dense_bytes = params * bits / 8
        sparse_bytes = params * (1 - sparsity) * (bits / 8 + 1)  # value + 1-byte index
        rom_kb = min(dense_bytes, sparse_bytes) / 1024 + ROM_OVERHEAD_KB
        ram_kb = peak_act / 1024 + RAM_OVERHEAD_KB
        mflops = 2 * macs / 1e6

        depth = 6 * blocks + 2
        error = 0.035 + 0.035 * (params / 1e6) ** -0.45 * (depth / 20) ** -0.2
        error *= (32 / hp["resolution"]) ** 0.7
        error += 0.02 * float(np.mean(np.square(prune)))
        error += 0.25 * np.exp(-1.1 * (bits - 2)) * (params / 2.7e5) ** -0.2
        error += 0.08 * (max(0.0, sparsity - 0.5) / 0.45) ** 3
        accuracy = float(np.clip(1 - error, 1 / NUM_CLASSES, 1.0))

        objectives = (1 - accuracy, rom_kb, ram_kb, mflops)
        constraints = (
            rom_kb / ROM_LIMIT_KB - 1,
            ram_kb / RAM_LIMIT_KB - 1,
            mflops / FLOPS_LIMIT_M - 1,
        )
        return objectives, constraints
