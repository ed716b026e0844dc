/*
 * Which implementation of a kernel is compiled, and the few core-specific primitives the fast
 * paths are written with. Private to the kernel library (the generated model includes only
 * hil_kernels.h).
 *
 * Three paths, chosen at compile time; all give the same results, bit for bit:
 *   HIL_PATH_DSP      cores with the DSP extension (Cortex-M4/M7/M33: __ARM_FEATURE_DSP):
 *                     SIMD multiply-accumulate on pairs of 16-bit values (SMLAD), written with
 *                     ACLE intrinsics and, for the innermost loops, inline assembly;
 *   HIL_PATH_GENERIC  everything else (Cortex-M0/M0+/M3, hosts): plain C blocked for few
 *                     registers, with inline Thumb-1 assembly for the innermost loops on
 *                     ARMv6-M (Cortex-M0/M0+: eight low registers, single-cycle MULS, no
 *                     unaligned loads);
 *   HIL_PATH_PORTABLE the straightforward loops, define HIL_KERNELS_PORTABLE to get them.
 * The host tests build the library in each variant: HIL_KERNELS_EMULATE_DSP gives the DSP path
 * on any compiler through C models of the intrinsics below, and HIL_KERNELS_NO_ASM replaces
 * the inline assembly by the C it stands for.
 */
#ifndef HIL_KERNELS_PATH_H
#define HIL_KERNELS_PATH_H

#include <stdint.h>
#include <string.h>

#include "hil_quant.h"

#if defined(HIL_KERNELS_PORTABLE)
#define HIL_PATH_PORTABLE 1
#elif defined(__ARM_FEATURE_DSP) || defined(HIL_KERNELS_EMULATE_DSP)
#define HIL_PATH_DSP 1
#else
#define HIL_PATH_GENERIC 1
#endif

#if !defined(HIL_KERNELS_NO_ASM) && defined(__GNUC__) && defined(__arm__)
#if defined(HIL_PATH_DSP) && defined(__ARM_FEATURE_DSP) && defined(__thumb2__)
#define HIL_ASM_DSP 1 /* Thumb-2 with the DSP extension */
#elif defined(HIL_PATH_GENERIC) && defined(__thumb__) && !defined(__thumb2__)
#define HIL_ASM_V6M 1 /* Thumb-1 only: ARMv6-M */
#endif
#endif

/* Largest stack buffer (bytes) a kernel uses for unpacked operands (column buffers). Layers
 * that would need more take a slower path that needs none. */
#ifndef HIL_KERNELS_STACK_BUFFER
#define HIL_KERNELS_STACK_BUFFER 4096
#endif

/* 4 bytes from any address: a single LDR where the core allows unaligned loads (memcpy is
 * inlined), byte loads otherwise. */
static inline uint32_t hil_read_u32(const void *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#if defined(HIL_PATH_DSP)
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

/* SXTB16 of x rotated right by 8: the sign-extended bytes 1 and 3 (GCC 12's arm_acle.h has no
 * __ror to fold into the instruction). */
static inline int32_t hil_sxtb16_ror8(int32_t x)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* SXTAB16 of x rotated right by 8: a + (bytes 1 and 3 of x), per halfword. */
static inline int32_t hil_sxtab16_ror8(int32_t a, int32_t x)
{
    int32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#define hil_sxtb16 __sxtb16
#define hil_sxtab16 __sxtab16
#define hil_smlad __smlad
#define hil_smlabb __smlabb
#define hil_smlatt __smlatt
#else
/* C models of the DSP instructions (HIL_KERNELS_EMULATE_DSP on hosts); halfword sums wrap as
 * the instructions do, multiply-accumulates wrap mod 2^32 (the instructions only set Q). */
static inline int32_t hil_lane(uint32_t x, int n) { return (int16_t)(uint16_t)(x >> (16 * n)); }
static inline int32_t hil_pack16(int32_t lo, int32_t hi)
{
    return (int32_t)(((uint32_t)hi << 16) | ((uint32_t)lo & 0xFFFFu));
}
static inline int32_t hil_sxtb16(int32_t x)
{
    return hil_pack16((int8_t)(uint8_t)x, (int8_t)(uint8_t)((uint32_t)x >> 16));
}
static inline int32_t hil_sxtb16_ror8(int32_t x) { return hil_sxtb16((int32_t)((uint32_t)x >> 8)); }
static inline int32_t hil_sxtab16(int32_t a, int32_t x)
{
    const int32_t b = hil_sxtb16(x);
    return hil_pack16(hil_lane((uint32_t)a, 0) + hil_lane((uint32_t)b, 0),
                      hil_lane((uint32_t)a, 1) + hil_lane((uint32_t)b, 1));
}
static inline int32_t hil_sxtab16_ror8(int32_t a, int32_t x)
{
    return hil_sxtab16(a, (int32_t)((uint32_t)x >> 8));
}
static inline int32_t hil_smlad(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(hil_lane((uint32_t)a, 0) * hil_lane((uint32_t)b, 0)) +
                     (uint32_t)(hil_lane((uint32_t)a, 1) * hil_lane((uint32_t)b, 1)));
}
static inline int32_t hil_smlabb(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(hil_lane((uint32_t)a, 0) * hil_lane((uint32_t)b, 0)));
}
static inline int32_t hil_smlatt(int32_t a, int32_t b, int32_t acc)
{
    return (int32_t)((uint32_t)acc + (uint32_t)(hil_lane((uint32_t)a, 1) * hil_lane((uint32_t)b, 1)));
}
#endif

/* Both halfwords set to v: the offset SXTAB16 adds to each pair of sign-extended bytes. */
static inline int32_t hil_dup16(int32_t v)
{
    return (int32_t)(((uint32_t)v << 16) | ((uint32_t)v & 0xFFFFu));
}
#endif /* HIL_PATH_DSP */

/* n / d for d > 0 by shift and subtract: no division instruction or run-time call (ARMv6-M has
 * neither); about 32 steps, for what a kernel computes once per call or per border pixel. */
static inline uint32_t hil_div_u32(uint32_t n, uint32_t d)
{
    uint32_t q = 0, r = 0;
    for (int i = 31; i >= 0; --i) {
        r = (r << 1) | ((n >> i) & 1u);
        if (r >= d) {
            r -= d;
            q |= 1u << i;
        }
    }
    return q;
}

/* The high word of x * m + k, for 0 <= m < 2^31 and a constant k whose low word is a multiple of
 * 2^16. One SMLAL where the core has it; on Thumb-1, four 16x16 multiplies whose partial sums
 * are carried 16 bits at a time, so nothing overflows and no run-time helper is called. */
static inline int32_t hil_mulhi_k(int32_t x, int32_t m, int32_t k_hi, uint32_t k_lo)
{
#if defined(HIL_KERNELS_MUL32)
    const int32_t xh = x >> 16, mh = m >> 16; /* mh < 2^15 */
    const uint32_t xl = (uint32_t)x & 0xFFFFu, ml = (uint32_t)m & 0xFFFFu;
    const uint32_t t = ((xl * ml) >> 16) + (k_lo >> 16); /* < 2^17 */
    const int32_t a = xh * (int32_t)ml;
    const uint32_t b = xl * (uint32_t)mh + t; /* < 2^32 */
    const uint32_t carry = (((uint32_t)a & 0xFFFFu) + (b & 0xFFFFu)) >> 16;
    return (int32_t)((uint32_t)(xh * mh) + (uint32_t)k_hi + (uint32_t)(a >> 16) + (b >> 16) +
                     carry);
#else
    const int64_t k = (int64_t)(((uint64_t)(uint32_t)k_hi << 32) | k_lo);
    return (int32_t)((uint64_t)((int64_t)x * (int64_t)m + k) >> 32);
#endif
}

/* hil_requantize for a non-negative multiplier (every Q31 multiplier the host computes), with
 * TFLite's two roundings folded into one 64-bit multiply-accumulate and one shift. For a right
 * shift e >= 1, rdbp(srdhm(x, m), e) = (x*m + k) >> (31 + e) exactly, where
 * k = +-2^30 (the sign of x) + 2^(30 + e): srdhm is floor((x*m + 2^30) / 2^31), rounding half
 * away from zero is floor((r - [r < 0] + 2^(e-1)) / 2^e), floors compose, and the sign of x
 * stands in for the sign of r because both nudges give 0 when -2^30 <= x*m < 0. As 31 + e >= 32,
 * the result is the high word of the sum shifted by e - 1. Same results as hil_requantize
 * (checked against it in tests/kernels/test_requantize.py). */
static inline int32_t hil_requantize_q31(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return hil_requantize(x, multiplier, shift);
    }
    const int e = -shift;
    const uint32_t neg = (uint32_t)(x >> 31); /* all ones when x < 0 */
    uint32_t k_lo = 0x40000000u ^ (neg & 0x80000000u);
    int32_t k_hi = (int32_t)neg;
    if (e >= 2) {
        k_hi += (int32_t)(1u << (e - 2));
    } else {
        k_lo ^= 0x80000000u; /* + 2^31 */
        k_hi = 0;
    }
    return hil_mulhi_k(x, multiplier, k_hi, k_lo) >> (e - 1);
}

/* hil_requantize_single_round for shift <= -1 (31 - shift >= 32: the high word shifted),
 * falling back to it otherwise. */
static inline int32_t hil_requantize_single_q31(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift >= 0) {
        return hil_requantize_single_round(x, multiplier, shift);
    }
    const int e = -shift; /* result = (x*m + 2^(30 + e)) >> (31 + e) */
    if (e >= 2) {
        return hil_mulhi_k(x, multiplier, (int32_t)(1u << (e - 2)), 0u) >> (e - 1);
    }
    return hil_mulhi_k(x, multiplier, 0, 0x80000000u);
}

/* requantize, add the output zero point, clamp, narrow: the tail of every conv-family output. */
static inline int8_t hil_output_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp,
                                   int32_t act_min, int32_t act_max)
{
    const int32_t v = hil_requantize_q31(acc, multiplier, shift) + out_zp;
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

#endif /* HIL_KERNELS_PATH_H */
