/*
 * int8 SOFTMAX with TFLite's reference fixed-point arithmetic.
 *
 * exp of each (x - row max) comes from a host-computed table in Q0.31; the sum is accumulated
 * in Q12.19 and inverted with the same Newton-Raphson fixed-point reciprocal TFLite uses, so
 * the outputs equal the reference interpreter's.
 */
#include "hil_kernels_elementwise.h"
#include "hil_quant.h"

/* Integer bits of the exp accumulator (room for 4096 terms of at most 1.0). */
#define ACCUM_INTEGER_BITS 12

static int32_t saturating_shift_left(int32_t x, int shift)
{
    const int32_t limit = (int32_t)((1u << (31 - shift)) - 1u);
    if (x > limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << shift);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    while (n < 32 && !(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    /* Q2.29 constants 48/17 and -32/17: the classic initial estimate. */
    int32_t x = 1515870810 + hil_sat_rounding_doubling_high_mul(half_denominator, -1010580540);
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x =
            hil_sat_rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x += saturating_shift_left(hil_sat_rounding_doubling_high_mul(x, one_minus), 2);
    }
    return saturating_shift_left(x, 1);
}

void hil_softmax_s8(const int8_t *in, int8_t *out, int32_t rows, int32_t depth,
                    const int32_t *exp_table)
{
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = in + r * depth;
        int8_t *y = out + r * depth;
        int32_t max = -128;
        for (int32_t c = 0; c < depth; ++c) {
            max = x[c] > max ? x[c] : max;
        }
        uint32_t sum = 0; /* wraps like TFLite's accumulator beyond 4096 terms */
        for (int32_t c = 0; c < depth; ++c) {
            sum += (uint32_t)hil_rounding_divide_by_pot(exp_table[max - x[c]], ACCUM_INTEGER_BITS);
        }
        const int headroom_plus_one = count_leading_zeros(sum);
        const int bits_over_unit = ACCUM_INTEGER_BITS - headroom_plus_one;
        const int32_t scale = one_over_one_plus_x(
            (int32_t)((sum << headroom_plus_one) - 0x80000000u));
        const int exponent = bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t p = hil_sat_rounding_doubling_high_mul(scale, exp_table[max - x[c]]);
            /* p < 2^31, so a shift past 31 bits rounds to 0 (TFLite leaves it undefined). */
            const int32_t q = exponent > 31 ? 0 : hil_rounding_divide_by_pot(p, exponent);
            y[c] = (int8_t)hil_clamp_s32(q - 128, -128, 127);
        }
    }
}
