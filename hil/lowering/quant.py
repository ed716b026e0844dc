"""Host-side quantization arithmetic: real multipliers to the Q31 + shift pairs kernels use."""

from __future__ import annotations

import math

import numpy as np


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split a positive real multiplier into (Q31 multiplier, shift) with real = m * 2^(shift-31).

    Same decomposition TFLite's converter-side code uses (frexp, round, renormalise on 2^31),
    so the kernels' integer results match the reference interpreter.
    """
    if real == 0.0:
        return 0, 0
    if real < 0:
        raise ValueError(f"negative requantization multiplier {real}")
    mantissa, exponent = math.frexp(real)
    q = math.floor(mantissa * (1 << 31) + 0.5)  # half away from zero, as TFLite rounds
    if q == (1 << 31):
        q //= 2
        exponent += 1
    if exponent < -31:
        return 0, 0
    if exponent > 30:
        raise ValueError(f"requantization multiplier {real} is too large for int32 arithmetic")
    return int(q), int(exponent)


def quantize_multipliers(reals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of `quantize_multiplier` (per-channel requantization)."""
    pairs = [quantize_multiplier(float(r)) for r in np.asarray(reals, dtype=np.float64).ravel()]
    mult = np.array([m for m, _ in pairs], dtype=np.int32)
    shift = np.array([s for _, s in pairs], dtype=np.int32)
    return mult, shift
