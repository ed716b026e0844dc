/*
 * Fixed-point helpers shared by the int8 kernels.
 *
 * They reproduce TFLite's integer requantization semantics (a Q31 multiplier with a
 * power-of-two shift, rounding half away from zero in the doubling high multiply and
 * round-half-up-on-magnitude in the right shift), so results match the reference
 * interpreter bit for bit.
 *
 * No helper calls a run-time library routine: on cores without a 32x32->64 multiply
 * (Thumb-1: Cortex-M0/M0+) the 64-bit products are built from 16-bit halves, so the compiler
 * never emits __aeabi_lmul, and no helper divides. Define HIL_KERNELS_MUL32 to get the 16-bit
 * variant on any compiler (the host tests do, to check it against the 64-bit one).
 */
#ifndef HIL_QUANT_H
#define HIL_QUANT_H

#include <stdint.h>

#if defined(__thumb__) && !defined(__thumb2__) && !defined(HIL_KERNELS_MUL32)
#define HIL_KERNELS_MUL32 1
#endif

#if defined(HIL_KERNELS_MUL32)
/* (a * b) as the high and low words of the exact 64-bit product, from four 16x16 multiplies
 * (each fits 32 bits), for cores without SMULL. */
static inline void hil_mul_s32_wide(int32_t a, int32_t b, int32_t *hi, uint32_t *lo)
{
    const int32_t ah = a >> 16, bh = b >> 16; /* arithmetic: the signed high halves */
    const uint32_t al = (uint32_t)a & 0xFFFFu, bl = (uint32_t)b & 0xFFFFu;
    const uint32_t ll = al * bl;
    const int32_t mid1 = ah * (int32_t)bl + (int32_t)(ll >> 16); /* cannot overflow */
    const int32_t mid2 = (int32_t)al * bh;
    /* a*b = ah*bh * 2^32 + (mid1 + mid2) * 2^16 + (ll & 0xFFFF); mid1 + mid2 needs 33 bits. */
    const uint32_t low = (ll & 0xFFFFu) + ((uint32_t)mid1 << 16);
    const uint32_t lo2 = low + ((uint32_t)mid2 << 16);
    const uint32_t carry = (uint32_t)(low < ((uint32_t)mid1 << 16)) + (uint32_t)(lo2 < low);
    *hi = (int32_t)((uint32_t)(ah * bh) + (uint32_t)(mid1 >> 16) + (uint32_t)(mid2 >> 16) +
                    carry);
    *lo = lo2;
}
#endif

/* High 32 bits of 2*a*b, rounded, saturating the single overflow case (INT32_MIN * INT32_MIN).
 * gemmlowp divides (ab + nudge) by 2^31 truncating, with nudge = +-2^30 by the sign of ab;
 * that equals floor((ab + 2^30) / 2^31), which needs no sign test. */
static inline int32_t hil_sat_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
#if defined(HIL_KERNELS_MUL32)
    /* floor((ab + 2^30) / 2^31) from the 16-bit partial products: with
     * ab = ah*bh*2^32 + (d1 + d2)*2^16 + (ll mod 2^16) the result is
     * 2*ah*bh + floor((d1 + d2 + 2^14) / 2^15), taken apart so nothing overflows. */
    const int32_t ah = a >> 16, bh = b >> 16;
    const uint32_t al = (uint32_t)a & 0xFFFFu, bl = (uint32_t)b & 0xFFFFu;
    const int32_t d1 = ah * (int32_t)bl + (int32_t)((al * bl) >> 16);
    const int32_t d2 = (int32_t)al * bh;
    const uint32_t frac = ((uint32_t)d1 & 0x7FFFu) + ((uint32_t)d2 & 0x7FFFu) + 0x4000u;
    return (int32_t)(2u * (uint32_t)(ah * bh) + (uint32_t)(d1 >> 15) + (uint32_t)(d2 >> 15) +
                     (frac >> 15));
#else
    const int64_t ab = (int64_t)a * (int64_t)b + (1LL << 30);
    return (int32_t)(ab >> 31); /* arithmetic shift (GCC, Clang): floor */
#endif
}

/* x / 2^exponent, rounding to nearest with ties away from zero (0 <= exponent <= 31). */
static inline int32_t hil_rounding_divide_by_pot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
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
    if (shift > 0) {
        return hil_sat_rounding_doubling_high_mul(hil_saturating_left_shift(x, shift),
                                                  multiplier);
    }
    return hil_rounding_divide_by_pot(hil_sat_rounding_doubling_high_mul(x, multiplier), -shift);
}

/* x * multiplier * 2^shift with a single rounding step (round half up on the exact 64-bit
 * product), for shift <= 30. TFLite's int8 FULLY_CONNECTED requantizes this way, unlike its
 * convolutions (hil_requantize): the two differ by 1 LSB when the doubling high multiply
 * lands exactly on a rounding tie. No division: floor by an arithmetic shift. */
static inline int32_t hil_requantize_single_round(int32_t x, int32_t multiplier, int32_t shift)
{
    const int total = 31 - shift;
#if defined(HIL_KERNELS_MUL32)
    int32_t hi;
    uint32_t lo;
    hil_mul_s32_wide(x, multiplier, &hi, &lo);
    const uint64_t sum = (((uint64_t)(uint32_t)hi << 32) | lo) + ((uint64_t)1 << (total - 1));
    const int64_t v = (int64_t)sum; /* two's complement wrap, as the exact sum fits */
#else
    const int64_t v = (int64_t)x * (int64_t)multiplier + ((int64_t)1 << (total - 1));
#endif
    return (int32_t)(v >> total);
}

static inline int32_t hil_clamp_s32(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

#endif /* HIL_QUANT_H */
