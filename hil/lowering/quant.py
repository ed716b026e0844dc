"""Host-side quantization arithmetic, as TFLite's integer kernels do it.

Real multipliers become the Q31 + shift pairs the kernels take. The rest simulates the kernels'
integer requantization (doubling high multiply, rounding shift) in numpy: single-input int8 ops
are lowered to 256-entry lookup tables, and building those needs exactly the reference
arithmetic, evaluated for every possible input.
"""

from __future__ import annotations

import math

import numpy as np

from hil.graph import Quantization

#: Every int8 value, in the order a lookup table is indexed (table[x + 128]).
INT8_VALUES = np.arange(-128, 128, dtype=np.int64)


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


def truncating_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """x / 2^exponent rounded toward zero, as C integer division does."""
    x = np.asarray(x, dtype=np.int64)
    return np.where(x >= 0, x >> exponent, -((-x) >> exponent))


def rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray | int, bits: int = 32) -> np.ndarray:
    """High half of 2*a*b for `bits`-bit operands, rounding half away from zero.

    The one product that overflows (both operands the most negative value) saturates.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    frac = bits - 1
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << (frac - 1), 1 - (1 << (frac - 1)))
    lowest = -(1 << frac)
    return np.where((a == lowest) & (b == lowest), (1 << frac) - 1,
                    truncating_divide_by_pot(nudged, frac))


def rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """x / 2^exponent rounded to nearest, ties away from zero."""
    x = np.asarray(x, dtype=np.int64)
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """x * multiplier * 2^(shift - 31) as the reference kernels round it (double rounding)."""
    left = max(shift, 0)
    x = np.asarray(x, dtype=np.int64) * (1 << left)
    return rounding_divide_by_pot(rounding_doubling_high_mul(x, multiplier), max(-shift, 0))


def clamp_int8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def requantize_table(in_q: Quantization, out_q: Quantization,
                     lo: int = -128, hi: int = 127) -> np.ndarray:
    """int8 -> int8 table of TFLite's integer requantization, clamped to [lo, hi].

    The multiplier is in_scale / out_scale with float32 scales divided in double, as the
    reference QUANTIZE (int8 -> int8) computes it.
    """
    mult, shift = quantize_multiplier(float(in_q.scale[0]) / float(out_q.scale[0]))
    scaled = multiply_by_quantized_multiplier(INT8_VALUES - in_q.zero_point[0], mult, shift)
    return np.clip(scaled + out_q.zero_point[0], lo, hi).astype(np.int8)
