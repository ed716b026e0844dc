/* The matrix-multiply core of CONV_2D and FULLY_CONNECTED (see hil_gemm_s8.h): column
 * expansion, the multiply-accumulate sweeps per core, requantization of each output. */
#include "hil_gemm_s8.h"

#if !defined(HIL_PATH_PORTABLE)

/* Parameters of the naked assembly routines: read by the assembly, unseen by the compiler. */
#define HIL_NAKED_ARG __attribute__((unused))

/* Output channels whose accumulators one sweep keeps (in a stack array between the sweep and
 * the requantization). */
#define HIL_GEMM_CHUNK 16
/* Words between two pixels' accumulators (the chunk, a spare slot for an odd last channel, and
 * 8-byte alignment), and the same in bytes as the assembly's immediate offset. */
#define HIL_GEMM_ROW 18
#define HIL_GEMM_ROW_BYTES 72
#define HIL_STR_(x) #x
#define HIL_STR(x) HIL_STR_(x)

/* Requantize n accumulators (acc[i * stride]) of consecutive output channels from c0 into out. */
static void out_row(const hil_gemm_t *g, const int32_t *acc, int32_t stride, int32_t c0,
                    int32_t n, int8_t *out)
{
    const int32_t ms = g->per_tensor ? 0 : 1; /* one multiplier for all, or one each */
    const int32_t *m = g->mult + c0 * ms, *s = g->shift + c0 * ms;
    const int32_t zp = g->out_zp, lo = g->act_min, hi = g->act_max;
    if (g->single_round) {
        for (int32_t i = 0; i < n; ++i, acc += stride, m += ms, s += ms) {
            const int32_t v = hil_requantize_single_q31(*acc, *m, *s) + zp;
            out[i] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    } else {
        for (int32_t i = 0; i < n; ++i, acc += stride, m += ms, s += ms) {
            out[i] = hil_output_s8(*acc, *m, *s, zp, lo, hi);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
#if defined(HIL_PATH_DSP)

void hil_gemm_expand(const hil_gemm_t *g, const int8_t *src, int32_t k0, int32_t n,
                     int32_t *col, int32_t slot, int32_t pixels)
{
    const int32_t full = (g->k >> 2) << 2; /* taps in whole groups */
    const int32_t off = -g->in_zp;
    const int32_t off2 = hil_dup16(off);
    const int32_t step = 2 * pixels;
    int32_t i = 0;
    int32_t *dst = col + (k0 >> 2) * step + 2 * slot;
    for (; i + 8 <= n && k0 + i + 8 <= full; i += 8) {
        const int32_t v0 = (int32_t)hil_read_u32(src + i);
        const int32_t v1 = (int32_t)hil_read_u32(src + i + 4);
        dst[0] = hil_sxtab16(off2, v0);
        dst[1] = hil_sxtab16_ror8(off2, v0);
        dst[step] = hil_sxtab16(off2, v1);
        dst[step + 1] = hil_sxtab16_ror8(off2, v1);
        dst += 2 * step;
    }
    for (; i + 4 <= n && k0 + i + 4 <= full; i += 4) {
        const int32_t v = (int32_t)hil_read_u32(src + i);
        dst[0] = hil_sxtab16(off2, v);
        dst[1] = hil_sxtab16_ror8(off2, v);
        dst += step;
    }
    /* The K % 4 last taps, as plain int16 after the groups. */
    int8_t *tail = (int8_t *)(col + (full >> 2) * step + 2 * slot);
    for (; i < n; ++i) {
        const int16_t v = (int16_t)(src[i] + off);
        memcpy(tail + 2 * (k0 + i - full), &v, sizeof v);
    }
}

void hil_gemm_zero(const hil_gemm_t *g, int32_t k0, int32_t n, int32_t *col, int32_t slot,
                   int32_t pixels)
{
    const int32_t full = (g->k >> 2) << 2;
    const int32_t step = 2 * pixels;
    int32_t i = 0;
    int32_t *dst = col + (k0 >> 2) * step + 2 * slot;
    for (; i + 4 <= n && k0 + i + 4 <= full; i += 4) {
        dst[0] = 0;
        dst[1] = 0;
        dst += step;
    }
    int8_t *tail = (int8_t *)(col + (full >> 2) * step + 2 * slot);
    for (; i < n; ++i) {
        const int16_t v = 0;
        memcpy(tail + 2 * (k0 + i - full), &v, sizeof v);
    }
}

#if defined(HIL_ASM_DSP)
/* 2 output channels x 2 pixels per pass, for `pairs` channel pairs: channel pair j uses the
 * weight rows w + 2j*kstride and w + (2j+1)*kstride (kstride 0: the same row twice); adds to
 * acc[2j], acc[2j+1] (pixel 0) and acc[HIL_GEMM_ROW + 2j], ... (pixel 1). 17 instructions per
 * 16 MACs. */
__attribute__((naked, noinline)) static void
mac_2x2(const int32_t *col HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        int32_t groups HIL_NAKED_ARG,
        int32_t kstride HIL_NAKED_ARG,
        int32_t pairs HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #16\n\t" /* [sp]: col, [sp+4]: groups, [sp+8]: kstride, [sp+12]: w */
        "str r0, [sp, #0]\n\t"
        "str r2, [sp, #4]\n\t"
        "str r3, [sp, #8]\n\t"
        "str r1, [sp, #12]\n\t" /* pairs at [sp+52], acc at [sp+56] */
        "1:\n\t"
        "ldr r3, [sp, #56]\n\t"
        "ldrd r8, r9, [r3]\n\t"
        "ldrd r10, r11, [r3, #" HIL_STR(HIL_GEMM_ROW_BYTES) "]\n\t"
        "ldr r0, [sp, #0]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r2, [sp, #8]\n\t"
        "add r2, r1, r2\n\t"
        "ldr lr, [sp, #4]\n\t"
        "2:\n\t"
        "ldm r0!, {r4, r5, r6, r7}\n\t"
        "ldr r12, [r1], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r8, r4, r12, r8\n\t"
        "smlad r10, r6, r12, r10\n\t"
        "smlad r8, r5, r3, r8\n\t"
        "smlad r10, r7, r3, r10\n\t"
        "ldr r12, [r2], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r9, r4, r12, r9\n\t"
        "smlad r11, r6, r12, r11\n\t"
        "smlad r9, r5, r3, r9\n\t"
        "smlad r11, r7, r3, r11\n\t"
        "subs lr, lr, #1\n\t"
        "bne 2b\n\t"
        "ldr r3, [sp, #56]\n\t"
        "strd r10, r11, [r3, #" HIL_STR(HIL_GEMM_ROW_BYTES) "]\n\t"
        "strd r8, r9, [r3], #8\n\t"
        "str r3, [sp, #56]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r2, [sp, #8]\n\t"
        "add r1, r1, r2, lsl #1\n\t"
        "str r1, [sp, #12]\n\t"
        "ldr r3, [sp, #52]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #52]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #16\n\t"
        "pop {r4-r11, pc}\n\t");
}

/* 4 output channels x 1 pixel per pass, for `quads` groups of 4 channels (rows w + j*kstride);
 * acc[4i..4i+3] added to. 23 instructions per 16 MACs. */
__attribute__((naked, noinline)) static void
mac_1x4(const int32_t *col HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        int32_t groups HIL_NAKED_ARG,
        int32_t kstride HIL_NAKED_ARG,
        int32_t quads HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #16\n\t" /* [sp]: col, [sp+4]: groups, [sp+8]: kstride, [sp+12]: w */
        "str r0, [sp, #0]\n\t"
        "str r2, [sp, #4]\n\t"
        "str r3, [sp, #8]\n\t"
        "str r1, [sp, #12]\n\t" /* quads at [sp+52], acc at [sp+56] */
        "1:\n\t"
        "ldr r3, [sp, #56]\n\t"
        "ldm r3, {r8, r9, r10, r11}\n\t"
        "ldr r0, [sp, #0]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r3, [sp, #8]\n\t"
        "add r2, r1, r3\n\t"
        "add r6, r2, r3\n\t"
        "add r7, r6, r3\n\t"
        "ldr lr, [sp, #4]\n\t"
        "2:\n\t"
        "ldrd r4, r5, [r0], #8\n\t"
        "ldr r12, [r1], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r8, r4, r12, r8\n\t"
        "smlad r8, r5, r3, r8\n\t"
        "ldr r12, [r2], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r9, r4, r12, r9\n\t"
        "smlad r9, r5, r3, r9\n\t"
        "ldr r12, [r6], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r10, r4, r12, r10\n\t"
        "smlad r10, r5, r3, r10\n\t"
        "ldr r12, [r7], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r11, r4, r12, r11\n\t"
        "smlad r11, r5, r3, r11\n\t"
        "subs lr, lr, #1\n\t"
        "bne 2b\n\t"
        "ldr r3, [sp, #56]\n\t"
        "stm r3!, {r8, r9, r10, r11}\n\t"
        "str r3, [sp, #56]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r2, [sp, #8]\n\t"
        "add r1, r1, r2, lsl #2\n\t"
        "str r1, [sp, #12]\n\t"
        "ldr r3, [sp, #52]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #52]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #16\n\t"
        "pop {r4-r11, pc}\n\t");
}

/* mac_1x4 on raw int8 input (no column buffer; the zero point is in the bias): four input
 * bytes sign-extended once per group and used for four weight rows. 25 instructions per 16 MACs. */
__attribute__((naked, noinline)) static void
mac_raw_1x4(const int8_t *x HIL_NAKED_ARG,
            const int8_t *w HIL_NAKED_ARG,
            int32_t groups HIL_NAKED_ARG,
            int32_t kstride HIL_NAKED_ARG,
            int32_t quads HIL_NAKED_ARG,
            int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "sub sp, sp, #16\n\t" /* [sp]: x, [sp+4]: groups, [sp+8]: kstride, [sp+12]: w */
        "str r0, [sp, #0]\n\t"
        "str r2, [sp, #4]\n\t"
        "str r3, [sp, #8]\n\t"
        "str r1, [sp, #12]\n\t" /* quads at [sp+52], acc at [sp+56] */
        "1:\n\t"
        "ldr r3, [sp, #56]\n\t"
        "ldm r3, {r8, r9, r10, r11}\n\t"
        "ldr r0, [sp, #0]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r3, [sp, #8]\n\t"
        "add r2, r1, r3\n\t"
        "add r6, r2, r3\n\t"
        "add r7, r6, r3\n\t"
        "ldr lr, [sp, #4]\n\t"
        "2:\n\t"
        "ldr r12, [r0], #4\n\t"
        "sxtb16 r4, r12\n\t"
        "sxtb16 r5, r12, ror #8\n\t"
        "ldr r12, [r1], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r8, r4, r12, r8\n\t"
        "smlad r8, r5, r3, r8\n\t"
        "ldr r12, [r2], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r9, r4, r12, r9\n\t"
        "smlad r9, r5, r3, r9\n\t"
        "ldr r12, [r6], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r10, r4, r12, r10\n\t"
        "smlad r10, r5, r3, r10\n\t"
        "ldr r12, [r7], #4\n\t"
        "sxtb16 r3, r12, ror #8\n\t"
        "sxtb16 r12, r12\n\t"
        "smlad r11, r4, r12, r11\n\t"
        "smlad r11, r5, r3, r11\n\t"
        "subs lr, lr, #1\n\t"
        "bne 2b\n\t"
        "ldr r3, [sp, #56]\n\t"
        "stm r3!, {r8, r9, r10, r11}\n\t"
        "str r3, [sp, #56]\n\t"
        "ldr r1, [sp, #12]\n\t"
        "ldr r2, [sp, #8]\n\t"
        "add r1, r1, r2, lsl #2\n\t"
        "str r1, [sp, #12]\n\t"
        "ldr r3, [sp, #52]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #52]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #16\n\t"
        "pop {r4-r11, pc}\n\t");
}
#else
/* The C the assembly above stands for (hosts with HIL_KERNELS_EMULATE_DSP, HIL_KERNELS_NO_ASM). */
static void mac_2x2(const int32_t *col, const int8_t *w, int32_t groups, int32_t kstride,
                    int32_t pairs, int32_t *acc)
{
    for (int32_t j = 0; j < pairs; ++j, acc += 2, w += 2 * kstride) {
        const int8_t *w0 = w, *w1 = w + kstride;
        const int32_t *c = col;
        int32_t a00 = acc[0], a01 = acc[1], a10 = acc[HIL_GEMM_ROW], a11 = acc[HIL_GEMM_ROW + 1];
        for (int32_t n = groups; n > 0; --n, c += 4, w0 += 4, w1 += 4) {
            int32_t wa = (int32_t)hil_read_u32(w0);
            int32_t wb = hil_sxtb16_ror8(wa);
            wa = hil_sxtb16(wa);
            a00 = hil_smlad(c[1], wb, hil_smlad(c[0], wa, a00));
            a10 = hil_smlad(c[3], wb, hil_smlad(c[2], wa, a10));
            wa = (int32_t)hil_read_u32(w1);
            wb = hil_sxtb16_ror8(wa);
            wa = hil_sxtb16(wa);
            a01 = hil_smlad(c[1], wb, hil_smlad(c[0], wa, a01));
            a11 = hil_smlad(c[3], wb, hil_smlad(c[2], wa, a11));
        }
        acc[0] = a00;
        acc[1] = a01;
        acc[HIL_GEMM_ROW] = a10;
        acc[HIL_GEMM_ROW + 1] = a11;
    }
}

static void mac_1x4(const int32_t *col, const int8_t *w, int32_t groups, int32_t kstride,
                    int32_t quads, int32_t *acc)
{
    for (int32_t j = 0; j < quads; ++j, acc += 4, w += 4 * kstride) {
        for (int32_t r = 0; r < 4; ++r) {
            const int8_t *wr = w + r * kstride;
            const int32_t *c = col;
            int32_t a = acc[r];
            for (int32_t n = groups; n > 0; --n, c += 2, wr += 4) {
                const int32_t wa = (int32_t)hil_read_u32(wr);
                a = hil_smlad(c[1], hil_sxtb16_ror8(wa), hil_smlad(c[0], hil_sxtb16(wa), a));
            }
            acc[r] = a;
        }
    }
}

static void mac_raw_1x4(const int8_t *x, const int8_t *w, int32_t groups, int32_t kstride,
                        int32_t quads, int32_t *acc)
{
    for (int32_t j = 0; j < quads; ++j, acc += 4, w += 4 * kstride) {
        for (int32_t r = 0; r < 4; ++r) {
            const int8_t *wr = w + r * kstride, *xr = x;
            int32_t a = acc[r];
            for (int32_t n = groups; n > 0; --n, xr += 4, wr += 4) {
                const int32_t xv = (int32_t)hil_read_u32(xr), wv = (int32_t)hil_read_u32(wr);
                a = hil_smlad(hil_sxtb16_ror8(xv), hil_sxtb16_ror8(wv),
                              hil_smlad(hil_sxtb16(xv), hil_sxtb16(wv), a));
            }
            acc[r] = a;
        }
    }
}
#endif

/* One weight row against one expanded pixel (whole groups), for channels left over by the
 * 4-channel sweep. */
static int32_t mac_1x1(const int32_t *col, const int8_t *w, int32_t groups, int32_t a)
{
    for (int32_t n = groups; n > 0; --n, col += 2, w += 4) {
        const int32_t wa = (int32_t)hil_read_u32(w);
        a = hil_smlad(col[1], hil_sxtb16_ror8(wa), hil_smlad(col[0], hil_sxtb16(wa), a));
    }
    return a;
}

void hil_gemm_rows(const hil_gemm_t *g, const int32_t *col, int32_t pixels, int8_t *const *out)
{
    const int32_t k = g->k, groups = k >> 2, full = groups << 2, out_c = g->out_c;
    const int8_t *tail = (const int8_t *)(col + groups * 2 * pixels);
    int32_t acc[HIL_GEMM_BLOCK * HIL_GEMM_ROW]; /* [pixel][channel] */

    for (int32_t c0 = 0; c0 < out_c; c0 += HIL_GEMM_CHUNK) {
        const int32_t nc = out_c - c0 < HIL_GEMM_CHUNK ? out_c - c0 : HIL_GEMM_CHUNK;
        const int8_t *w = g->weights + c0 * k;
        for (int32_t i = 0; i < nc; ++i) { /* not memcpy: newlib-nano's copies bytes */
            const int32_t b = g->bias ? g->bias[c0 + i] : 0;
            acc[i] = b;
            acc[HIL_GEMM_ROW + i] = b;
        }
        if (groups > 0) {
            if (pixels == 1) {
                const int32_t quads = nc >> 2;
                if (quads > 0) {
                    mac_1x4(col, w, groups, k, quads, acc);
                }
                for (int32_t i = quads * 4; i < nc; ++i) {
                    acc[i] = mac_1x1(col, w + i * k, groups, acc[i]);
                }
            } else {
                const int32_t pairs = nc >> 1;
                if (pairs > 0) {
                    mac_2x2(col, w, groups, k, pairs, acc);
                }
                if (nc & 1) { /* the last channel twice; the copy lands in a spare slot */
                    mac_2x2(col, w + (nc - 1) * k, groups, 0, 1, acc + nc - 1);
                }
            }
        }
        for (int32_t q = 0; q < pixels; ++q) {
            int32_t *a = acc + q * HIL_GEMM_ROW;
            for (int32_t t = 0; t < k - full; ++t) {
                int16_t x;
                memcpy(&x, tail + 8 * q + 2 * t, sizeof x);
                const int8_t *wt = w + full + t;
                for (int32_t i = 0; i < nc; ++i) {
                    a[i] += x * wt[i * k];
                }
            }
            if (out[q]) {
                out_row(g, a, 1, c0, nc, out[q] + c0);
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
#else /* HIL_PATH_GENERIC */

void hil_gemm_expand(const hil_gemm_t *g, const int8_t *src, int32_t k0, int32_t n,
                     int32_t *col, int32_t slot, int32_t pixels)
{
    const int32_t zp = g->in_zp;
    int32_t *dst = col + k0 * pixels + slot;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const int32_t a = src[i], b = src[i + 1], c = src[i + 2], d = src[i + 3];
        dst[0] = a - zp;
        dst[pixels] = b - zp;
        dst[2 * pixels] = c - zp;
        dst[3 * pixels] = d - zp;
        dst += 4 * pixels;
    }
    for (; i < n; ++i) {
        *dst = src[i] - zp;
        dst += pixels;
    }
}

void hil_gemm_zero(const hil_gemm_t *g, int32_t k0, int32_t n, int32_t *col, int32_t slot,
                   int32_t pixels)
{
    (void)g;
    int32_t *dst = col + k0 * pixels + slot;
    for (int32_t i = 0; i < n; ++i) {
        *dst = 0;
        dst += pixels;
    }
}

#if defined(HIL_ASM_V6M)
/* 1 output channel x 4 pixels per pass, for `channels` weight rows (w + j*kstride, len taps
 * each); col holds len taps x 4 pixels as int32; acc[4j..4j+3] added to. Accumulators live
 * in r8-r11, so the eight low registers hold the four pixel values (one LDM), the weight and
 * the pointers: 23 instructions per 8 MACs. */
__attribute__((naked, noinline)) static void
mac_4px(const int32_t *col HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        int32_t len HIL_NAKED_ARG,
        int32_t kstride HIL_NAKED_ARG,
        int32_t channels HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "push {r4, r5, r6, r7}\n\t"
        "sub sp, sp, #8\n\t" /* [sp]: kstride; channels at [sp+44], acc at [sp+48] */
        "str r3, [sp, #0]\n\t"
        "mov r12, r0\n\t"   /* col */
        "rsbs r2, r2, #0\n\t"
        "mov lr, r2\n\t"    /* -len */
        "subs r1, r1, r2\n\t" /* end of the weight row: indexed by -len .. -1 */
        "1:\n\t"
        "ldr r3, [sp, #48]\n\t"
        "ldm r3!, {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "mov r0, r12\n\t"
        "mov r2, lr\n\t"
        "lsls r3, r2, #31\n\t" /* odd length: one tap first */
        "beq 3f\n\t"
        "ldm r0!, {r4, r5, r6, r7}\n\t"
        "ldrsb r3, [r1, r2]\n\t"
        "muls r4, r3, r4\n\t"
        "add r8, r4\n\t"
        "muls r5, r3, r5\n\t"
        "add r9, r5\n\t"
        "muls r6, r3, r6\n\t"
        "add r10, r6\n\t"
        "muls r7, r3, r7\n\t"
        "add r11, r7\n\t"
        "adds r2, r2, #1\n\t"
        "beq 4f\n\t"
        "3:\n\t"
        "ldm r0!, {r4, r5, r6, r7}\n\t"
        "ldrsb r3, [r1, r2]\n\t"
        "muls r4, r3, r4\n\t"
        "add r8, r4\n\t"
        "muls r5, r3, r5\n\t"
        "add r9, r5\n\t"
        "muls r6, r3, r6\n\t"
        "add r10, r6\n\t"
        "muls r7, r3, r7\n\t"
        "add r11, r7\n\t"
        "adds r2, r2, #1\n\t"
        "ldm r0!, {r4, r5, r6, r7}\n\t"
        "ldrsb r3, [r1, r2]\n\t"
        "muls r4, r3, r4\n\t"
        "add r8, r4\n\t"
        "muls r5, r3, r5\n\t"
        "add r9, r5\n\t"
        "muls r6, r3, r6\n\t"
        "add r10, r6\n\t"
        "muls r7, r3, r7\n\t"
        "add r11, r7\n\t"
        "adds r2, r2, #1\n\t"
        "bne 3b\n\t"
        "4:\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "ldr r3, [sp, #48]\n\t"
        "stm r3!, {r4, r5, r6, r7}\n\t"
        "str r3, [sp, #48]\n\t"
        "ldr r3, [sp, #0]\n\t"
        "adds r1, r1, r3\n\t"
        "ldr r3, [sp, #44]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #44]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t");
}

/* 4 output channels x 1 pixel per pass, for `quads` groups of 4 weight rows; col holds len
 * taps of one pixel as int32; acc[4j..4j+3] added to. 15 instructions per 4 MACs. */
__attribute__((naked, noinline)) static void
mac_1x4(const int32_t *col HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        int32_t len HIL_NAKED_ARG,
        int32_t kstride HIL_NAKED_ARG,
        int32_t quads HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "push {r4, r5, r6, r7}\n\t"
        "sub sp, sp, #8\n\t" /* [sp]: kstride; quads at [sp+44], acc at [sp+48] */
        "str r3, [sp, #0]\n\t"
        "mov r12, r0\n\t"
        "rsbs r2, r2, #0\n\t"
        "mov lr, r2\n\t"
        "subs r1, r1, r2\n\t"
        "1:\n\t"
        "ldr r3, [sp, #48]\n\t"
        "ldm r3!, {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "ldr r3, [sp, #0]\n\t"
        "adds r5, r1, r3\n\t"
        "adds r6, r5, r3\n\t"
        "adds r7, r6, r3\n\t"
        "mov r0, r12\n\t"
        "mov r2, lr\n\t"
        "2:\n\t"
        "ldm r0!, {r4}\n\t"
        "ldrsb r3, [r1, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r8, r3\n\t"
        "ldrsb r3, [r5, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r9, r3\n\t"
        "ldrsb r3, [r6, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r10, r3\n\t"
        "ldrsb r3, [r7, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r11, r3\n\t"
        "adds r2, r2, #1\n\t"
        "bne 2b\n\t"
        "ldr r3, [sp, #0]\n\t"
        "adds r1, r7, r3\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "ldr r3, [sp, #48]\n\t"
        "stm r3!, {r4, r5, r6, r7}\n\t"
        "str r3, [sp, #48]\n\t"
        "ldr r3, [sp, #44]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #44]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t");
}

/* mac_1x4 on raw int8 input (no column buffer; the zero point is in the bias): the input byte
 * and the four weights by one shared negative index. 15 instructions per 4 MACs. */
__attribute__((naked, noinline)) static void
mac_raw_1x4(const int8_t *x HIL_NAKED_ARG,
            const int8_t *w HIL_NAKED_ARG,
            int32_t len HIL_NAKED_ARG,
            int32_t kstride HIL_NAKED_ARG,
            int32_t quads HIL_NAKED_ARG,
            int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "push {r4, r5, r6, r7}\n\t"
        "sub sp, sp, #8\n\t" /* [sp]: kstride; quads at [sp+44], acc at [sp+48] */
        "str r3, [sp, #0]\n\t"
        "rsbs r2, r2, #0\n\t"
        "mov lr, r2\n\t"      /* -len */
        "subs r0, r0, r2\n\t"
        "mov r12, r0\n\t"     /* end of the input row */
        "subs r1, r1, r2\n\t" /* end of weight row 0 */
        "1:\n\t"
        "ldr r3, [sp, #48]\n\t"
        "ldm r3!, {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "ldr r3, [sp, #0]\n\t"
        "adds r5, r1, r3\n\t"
        "adds r6, r5, r3\n\t"
        "adds r7, r6, r3\n\t"
        "mov r0, r12\n\t"
        "mov r2, lr\n\t"
        "2:\n\t"
        "ldrsb r4, [r0, r2]\n\t"
        "ldrsb r3, [r1, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r8, r3\n\t"
        "ldrsb r3, [r5, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r9, r3\n\t"
        "ldrsb r3, [r6, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r10, r3\n\t"
        "ldrsb r3, [r7, r2]\n\t"
        "muls r3, r4, r3\n\t"
        "add r11, r3\n\t"
        "adds r2, r2, #1\n\t"
        "bne 2b\n\t"
        "ldr r3, [sp, #0]\n\t"
        "adds r1, r7, r3\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "mov r7, r11\n\t"
        "ldr r3, [sp, #48]\n\t"
        "stm r3!, {r4, r5, r6, r7}\n\t"
        "str r3, [sp, #48]\n\t"
        "ldr r3, [sp, #44]\n\t"
        "subs r3, r3, #1\n\t"
        "str r3, [sp, #44]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4, r5, r6, r7}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "mov r11, r7\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t");
}
#else
static void mac_4px(const int32_t *col, const int8_t *w, int32_t len, int32_t kstride,
                    int32_t channels, int32_t *acc)
{
    for (int32_t j = 0; j < channels; ++j, acc += 4, w += kstride) {
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        const int32_t *c = col;
        for (int32_t t = 0; t < len; ++t, c += 4) {
            const int32_t wv = w[t];
            a0 += c[0] * wv;
            a1 += c[1] * wv;
            a2 += c[2] * wv;
            a3 += c[3] * wv;
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    }
}

static void mac_1x4(const int32_t *col, const int8_t *w, int32_t len, int32_t kstride,
                    int32_t quads, int32_t *acc)
{
    for (int32_t j = 0; j < quads; ++j, acc += 4, w += 4 * kstride) {
        const int8_t *w0 = w, *w1 = w + kstride, *w2 = w + 2 * kstride, *w3 = w + 3 * kstride;
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        for (int32_t t = 0; t < len; ++t) {
            const int32_t x = col[t];
            a0 += x * w0[t];
            a1 += x * w1[t];
            a2 += x * w2[t];
            a3 += x * w3[t];
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    }
}

static void mac_raw_1x4(const int8_t *x, const int8_t *w, int32_t len, int32_t kstride,
                        int32_t quads, int32_t *acc)
{
    for (int32_t j = 0; j < quads; ++j, acc += 4, w += 4 * kstride) {
        const int8_t *w0 = w, *w1 = w + kstride, *w2 = w + 2 * kstride, *w3 = w + 3 * kstride;
        int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        for (int32_t t = 0; t < len; ++t) {
            const int32_t xv = x[t];
            a0 += xv * w0[t];
            a1 += xv * w1[t];
            a2 += xv * w2[t];
            a3 += xv * w3[t];
        }
        acc[0] = a0;
        acc[1] = a1;
        acc[2] = a2;
        acc[3] = a3;
    }
}
#endif

void hil_gemm_rows(const hil_gemm_t *g, const int32_t *col, int32_t pixels, int8_t *const *out)
{
    const int32_t k = g->k, out_c = g->out_c;
    int32_t acc[HIL_GEMM_CHUNK * HIL_GEMM_BLOCK];

    for (int32_t c0 = 0; c0 < out_c; c0 += HIL_GEMM_CHUNK) {
        const int32_t nc = out_c - c0 < HIL_GEMM_CHUNK ? out_c - c0 : HIL_GEMM_CHUNK;
        const int8_t *w = g->weights + c0 * k;
        for (int32_t i = 0; i < nc; ++i) {
            const int32_t b = g->bias ? g->bias[c0 + i] : 0;
            for (int32_t q = 0; q < pixels; ++q) {
                acc[i * pixels + q] = b;
            }
        }
        if (pixels == 1) {
            const int32_t quads = nc >> 2;
            if (quads > 0) {
                mac_1x4(col, w, k, k, quads, acc);
            }
            for (int32_t i = quads * 4; i < nc; ++i) {
                const int8_t *wr = w + i * k;
                int32_t a = acc[i];
                for (int32_t t = 0; t < k; ++t) {
                    a += col[t] * wr[t];
                }
                acc[i] = a;
            }
        } else {
            mac_4px(col, w, k, k, nc, acc);
        }
        for (int32_t q = 0; q < pixels; ++q) {
            if (out[q]) {
                out_row(g, acc + q, pixels, c0, nc, out[q] + c0);
            }
        }
    }
}

#endif /* HIL_PATH_GENERIC */

/* hil_gemm_contiguous's loop, apart from its variable-length array (which would cost Thumb-1
 * a low register as frame pointer). */
__attribute__((noinline)) static void contiguous_rows(const hil_gemm_t *g, const int8_t *input,
                                                      int32_t rows, int32_t row_stride,
                                                      int8_t *output, int32_t *col, int32_t block)
{
    const int32_t k = g->k;
    int32_t r = 0;
    if (block > 1) {
        for (; r + HIL_GEMM_BLOCK <= rows; r += HIL_GEMM_BLOCK) {
            int8_t *out[HIL_GEMM_BLOCK];
            for (int32_t q = 0; q < HIL_GEMM_BLOCK; ++q) {
                hil_gemm_expand(g, input + (r + q) * row_stride, 0, k, col, q, HIL_GEMM_BLOCK);
                out[q] = output + (r + q) * g->out_c;
            }
            hil_gemm_rows(g, col, HIL_GEMM_BLOCK, out);
        }
    }
    for (; r < rows; ++r) {
        int8_t *out = output + r * g->out_c;
        hil_gemm_expand(g, input + r * row_stride, 0, k, col, 0, 1);
        hil_gemm_rows(g, col, 1, &out);
    }
}

int hil_gemm_contiguous(const hil_gemm_t *g, const int8_t *input, int32_t rows,
                        int32_t row_stride, int8_t *output, void *scratch, int32_t scratch_bytes)
{
    const int32_t k = g->k;
    int32_t block = rows >= HIL_GEMM_BLOCK ? HIL_GEMM_BLOCK : 1;
    if (scratch != 0 && hil_gemm_col_words(k, block) * 4 > scratch_bytes && block > 1 &&
        hil_gemm_col_words(k, 1) * 4 <= scratch_bytes) {
        block = 1; /* the planned scratch holds one pixel */
    }
    if (scratch != 0 && hil_gemm_col_words(k, block) * 4 <= scratch_bytes) {
        contiguous_rows(g, input, rows, row_stride, output, (int32_t *)scratch, block);
        return 1;
    }
    if (block > 1 && !hil_gemm_fits(k, block)) {
        block = 1;
    }
    if (!hil_gemm_fits(k, block)) {
        return 0;
    }
    int32_t col[hil_gemm_col_words(k, block)];
    contiguous_rows(g, input, rows, row_stride, output, col, block);
    return 1;
}

void hil_gemm_raw_rows(const hil_gemm_t *g, const int8_t *input, int32_t rows,
                       int32_t row_stride, int8_t *output)
{
    const int32_t k = g->k, out_c = g->out_c;
#if defined(HIL_PATH_DSP)
    const int32_t swept = k >> 2, full = swept << 2; /* groups of four taps */
#else
    const int32_t swept = k, full = k; /* taps */
#endif
    int32_t acc[HIL_GEMM_CHUNK];
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * row_stride;
        int8_t *out = output + r * out_c;
        for (int32_t c0 = 0; c0 < out_c; c0 += HIL_GEMM_CHUNK) {
            const int32_t nc = out_c - c0 < HIL_GEMM_CHUNK ? out_c - c0 : HIL_GEMM_CHUNK;
            const int8_t *w = g->weights + c0 * k;
            const int32_t quads = nc >> 2;
            for (int32_t i = 0; i < nc; ++i) {
                acc[i] = g->bias[c0 + i];
            }
            if (quads > 0 && swept > 0) {
                mac_raw_1x4(x, w, swept, k, quads, acc);
            }
            for (int32_t i = 0; i < nc; ++i) {
                const int8_t *wr = w + i * k;
                int32_t a = acc[i];
                for (int32_t t = i < quads * 4 ? full : 0; t < k; ++t) {
                    a += x[t] * wr[t];
                }
                acc[i] = a;
            }
            out_row(g, acc, 1, c0, nc, out + c0);
        }
    }
}

#endif /* !HIL_PATH_PORTABLE */
