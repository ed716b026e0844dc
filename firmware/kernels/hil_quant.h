/*
 * Fixed-point helpers shared by the int8 kernels.
 *
 * They reproduce TFLite's integer requantization semantics (a Q31 multiplier with a
 * power-of-two shift, rounding half away from zero in the doubling high multiply and
 * round-half-up-on-magnitude in the right shift), so results match the reference
 * interpreter bit for bit.
 */
#ifndef HIL_QUANT_H
#define HIL_QUANT_H

#include <stdint.h>

/* High 32 bits of 2*a*b, rounded, saturating the single overflow case (INT32_MIN * INT32_MIN). */
static inline int32_t hil_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

/* x / 2^exponent, rounding to nearest with ties away from zero. */
static inline int32_t hil_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1LL << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^left for 0 <= left <= 30, saturating to the int32 range instead of overflowing (which
 * is undefined behaviour in C). Saturation keeps the sign, so a requantized value that far out
 * of range still clamps to the right end of the int8 range. Two compares, no 64-bit
 * arithmetic: cheap on a Cortex-M0+, which has no saturating instructions. */
static inline int32_t hil_saturating_left_shift(int32_t x, int left)
{
    const int32_t limit = INT32_MAX >> left; /* largest x whose shift fits */
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit - 1) {
        return INT32_MIN;
    }
    return x * ((int32_t)1 << left);
}

/* x * multiplier * 2^shift, with multiplier a Q31 value in [0.5, 1) (or 0) and shift the
 * signed exponent (at most 30): left shifts happen before the multiply, right shifts after,
 * as in TFLite. Results equal TFLite's wherever x * 2^shift fits int32; beyond that TFLite's
 * int32 multiply overflows, this one saturates. */
static inline int32_t hil_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return hil_rounding_divide_by_pot(
        hil_sat_rounding_doubling_high_mul(hil_saturating_left_shift(x, left), multiplier), right);
}

/* x * multiplier * 2^shift with a single rounding step (round half up on the exact 64-bit
 * product), for shift <= 30. TFLite's int8 FULLY_CONNECTED requantizes this way, unlike its
 * convolutions (hil_requantize): the two differ by 1 LSB when the doubling high multiply
 * lands exactly on a rounding tie. Portable: no right shift of a negative value. */
static inline int32_t hil_requantize_single_round(int32_t x, int32_t multiplier, int32_t shift)
{
    const int total = 31 - shift;
    const int64_t v = (int64_t)x * (int64_t)multiplier + ((int64_t)1 << (total - 1));
    const int64_t q = v >= 0 ? v / ((int64_t)1 << total)
                             : -((-v - 1) / ((int64_t)1 << total)) - 1; /* floor division */
    return (int32_t)q;
}

static inline int32_t hil_clamp_s32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* HIL_QUANT_H */
