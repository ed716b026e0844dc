/* DEPTHWISE_CONV_2D, int8 activations and per-channel int8 weights, any depth multiplier
 * (TFLite reference semantics).
 *
 * Fast paths (hil_kernels_path.h), channel multiplier 1: the input zero point is folded into
 * the bias once per call (bias - in_zp * sum of the channel's weights), and each output pixel's
 * window is swept through a table of tap offsets, four channels per pass on the DSP path
 * (SMLABB/SMLATT), one per pass on the Thumb-1 path, in assembly; where a window leaves the
 * input, its outside taps read a pixel of zero points, which the folded bias cancels. Other
 * multipliers loop input channel, then multiplier, so no output divides. */
#include "hil_kernels_conv.h"
#include "hil_kernels_path.h"
#include "hil_quant.h"


/* The taps of a window that lie inside the input along one axis: [*lo, *hi). */
static inline void valid_taps(int32_t start, int32_t k, int32_t dilation, int32_t size,
                              int32_t *lo, int32_t *hi)
{
    int32_t a = 0, b = k;
    while (a < k && start + a * dilation < 0) {
        ++a;
    }
    while (b > a && start + (b - 1) * dilation >= size) {
        --b;
    }
    *lo = a;
    *hi = b;
}

static void depthwise_any(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
                          const int32_t *bias, const int32_t *out_mult, const int32_t *out_shift,
                          int8_t *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c, out_c = p->out_c;
    const int32_t mult = p->depth_multiplier;
    const int32_t in_zp = p->in_zp;
    int8_t *out = output;

    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky_lo, ky_hi;
            valid_taps(y0, p->k_h, p->dilation_h, in_h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx_lo, kx_hi;
                valid_taps(x0, p->k_w, p->dilation_w, in_w, &kx_lo, &kx_hi);
                int32_t oc = 0;
                for (int32_t ic = 0; ic < in_c; ++ic) {
                    for (int32_t m = 0; m < mult; ++m, ++oc) {
                        int32_t acc = bias != 0 ? bias[oc] : 0;
                        if (p->bias_folded) {
                            /* The bias took off in_zp * (every weight): padding gives it back. */
                            for (int32_t t = 0; t < p->k_h * p->k_w; ++t) {
                                acc += in_zp * weights[t * out_c + oc];
                            }
                        }
                        for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                            const int32_t iy = y0 + ky * p->dilation_h;
                            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                                const int32_t ix = x0 + kx * p->dilation_w;
                                const int32_t x = in_b[(iy * in_w + ix) * in_c + ic];
                                const int32_t w = weights[(ky * p->k_w + kx) * out_c + oc];
                                acc += (x - in_zp) * w;
                            }
                        }
                        const int32_t q = p->per_tensor ? 0 : oc;
                        acc = hil_requantize(acc, out_mult[q], out_shift[q]) + p->out_zp;
                        *out++ = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#if !defined(HIL_PATH_PORTABLE)

/* Parameters of the naked assembly routines: read by the assembly, unseen by the compiler. */
#define HIL_NAKED_ARG __attribute__((unused))

/* A tap's (x, w) byte offsets: pointer-sized, as a border tap points at a pixel of zero points
 * elsewhere in memory (one word on the cores, so the assembly reads them with LDRD / LDM). */
typedef intptr_t hil_tap_t;
#define HIL_TAP_WORDS ((int32_t)(sizeof(hil_tap_t) / 4))

/* acc[c] = sum over the taps t of x[c + offs[2t]] * w[c + offs[2t + 1]] (plus init[c], the
 * folded bias, on the DSP path: one LDM per four channels), for the channels of one output pixel: `taps` (x offset, w offset) pairs, raw int8 values (the input zero point is
 * folded into the bias). The DSP sweep does four channels per pass (SMLABB/SMLATT on the
 * sign-extended even and odd bytes, 13 instructions per 4 MACs), `count` groups of four; the
 * Thumb-1 sweep one channel (7 per MAC), `count` channels. */
#if defined(HIL_ASM_DSP)
__attribute__((naked, noinline)) static void
dw_taps(const int8_t *x HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        const hil_tap_t *offs HIL_NAKED_ARG,
        int32_t taps HIL_NAKED_ARG,
        int32_t count HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG,
        const int32_t *init HIL_NAKED_ARG)
{
    __asm__ volatile(
        "push {r4-r11, lr}\n\t"
        "ldr r12, [sp, #40]\n\t"        /* acc */
        "ldr lr, [sp, #36]\n\t"         /* groups */
        "ldr r4, [sp, #44]\n\t"         /* init */
        "add lr, r12, lr, lsl #4\n\t"   /* end of acc */
        "add r3, r2, r3, lsl #3\n\t"    /* end of offs */
        "sub sp, sp, #8\n\t"
        "strd r2, r4, [sp]\n\t"         /* start of offs, next init */
        "1:\n\t"
        "ldrd r2, r4, [sp]\n\t"
        "ldm r4!, {r8, r9, r10, r11}\n\t" /* the sums start at init (the folded bias) */
        "str r4, [sp, #4]\n\t"
        "2:\n\t"
        "ldrd r4, r5, [r2], #8\n\t"
        "ldr r4, [r0, r4]\n\t"
        "ldr r5, [r1, r5]\n\t"
        "sxtb16 r6, r4\n\t"
        "sxtb16 r7, r5\n\t"
        "smlabb r8, r6, r7, r8\n\t"
        "smlatt r10, r6, r7, r10\n\t"
        "sxtb16 r6, r4, ror #8\n\t"
        "sxtb16 r7, r5, ror #8\n\t"
        "smlabb r9, r6, r7, r9\n\t"
        "smlatt r11, r6, r7, r11\n\t"
        "cmp r2, r3\n\t"
        "bne 2b\n\t"
        "stm r12!, {r8, r9, r10, r11}\n\t"
        "adds r0, r0, #4\n\t"
        "adds r1, r1, #4\n\t"
        "cmp r12, lr\n\t"
        "bne 1b\n\t"
        "add sp, sp, #8\n\t"
        "pop {r4-r11, pc}\n\t");
}
#define HIL_DW_LANES 4
#define HIL_DW_INIT 1
#elif defined(HIL_ASM_V6M)
__attribute__((naked, noinline)) static void
dw_taps(const int8_t *x HIL_NAKED_ARG,
        const int8_t *w HIL_NAKED_ARG,
        const hil_tap_t *offs HIL_NAKED_ARG,
        int32_t taps HIL_NAKED_ARG,
        int32_t count HIL_NAKED_ARG,
        int32_t *acc HIL_NAKED_ARG)
{
    __asm__ volatile(
        ".syntax unified\n\t"
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "push {r4, r5}\n\t"             /* count at [sp+28], acc at [sp+32] */
        "mov r8, r2\n\t"                /* start of offs */
        "lsls r3, r3, #3\n\t"
        "adds r3, r2, r3\n\t"           /* end of offs */
        "ldr r7, [sp, #32]\n\t"         /* acc */
        "ldr r4, [sp, #28]\n\t"
        "lsls r4, r4, #2\n\t"
        "adds r4, r7, r4\n\t"
        "mov r9, r4\n\t"                /* end of acc */
        "1:\n\t"
        "mov r2, r8\n\t"
        "movs r6, #0\n\t"
        "2:\n\t"
        "ldm r2!, {r4, r5}\n\t"
        "ldrsb r4, [r0, r4]\n\t"
        "ldrsb r5, [r1, r5]\n\t"
        "muls r4, r5, r4\n\t"
        "adds r6, r6, r4\n\t"
        "cmp r2, r3\n\t"
        "bne 2b\n\t"
        "stm r7!, {r6}\n\t"
        "adds r0, r0, #1\n\t"
        "adds r1, r1, #1\n\t"
        "cmp r7, r9\n\t"
        "bne 1b\n\t"
        "pop {r4, r5}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t");
}
#define HIL_DW_LANES 1
#else
/* The C the assembly stands for (hosts): channels one at a time. */
#if defined(HIL_PATH_DSP)
static void dw_taps(const int8_t *x, const int8_t *w, const hil_tap_t *offs, int32_t taps,
                    int32_t count, int32_t *acc, const int32_t *init)
{
    count *= 4; /* the DSP sweep counts groups of four channels */
#else
static void dw_taps(const int8_t *x, const int8_t *w, const hil_tap_t *offs, int32_t taps,
                    int32_t count, int32_t *acc)
{
#endif
    for (int32_t c = 0; c < count; ++c) {
#if defined(HIL_PATH_DSP)
        int32_t a = init[c];
#else
        int32_t a = 0;
#endif
        for (int32_t t = 0; t < taps; ++t) {
            a += x[c + offs[2 * t]] * w[c + offs[2 * t + 1]];
        }
        acc[c] = a;
    }
}
#if defined(HIL_PATH_DSP)
#define HIL_DW_LANES 4
#define HIL_DW_INIT 1
#else
#define HIL_DW_LANES 1
#endif
#endif

/* HIL_DW_INIT: the sweep starts each channel's sum at its folded bias (the DSP sweep loads
 * four with one LDM), so the requantization adds nothing; otherwise it adds the folded bias. */
#if defined(HIL_DW_INIT)
#define HIL_DW_ADD(folded, c) ((void)(folded), 0)
#else
#define HIL_DW_ADD(folded, c) (folded)[c]
#endif

/* hil_output_s8 for a right shift e = -shift in [2, 31]: hil_requantize_q31's e >= 2 branch
 * alone, so the per-channel loop has no branch on the shift (and GCC keeps its pointers in
 * registers): the same arithmetic, bit for bit. */
static inline int8_t dw_output_right2(int32_t x, int32_t m, int32_t e, int32_t out_zp,
                                      int32_t act_min, int32_t act_max)
{
    const int32_t neg = x >> 31; /* all ones when x < 0 */
    const uint32_t k_lo = 0x40000000u ^ ((uint32_t)neg & 0x80000000u);
    const int32_t k_hi = neg + (int32_t)(1u << (e - 2));
    const int32_t v = (hil_mulhi_k(x, m, k_hi, k_lo) >> (e - 1)) + out_zp;
    return (int8_t)(v < act_min ? act_min : (v > act_max ? act_max : v));
}

/* v clamped to [-128, 127]: one SSAT where the core has it. */
static inline int8_t dw_sat8(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && defined(__GNUC__)
    int32_t r; /* inline SSAT: ACLE's __ssat trips -Wsign-conversion in GCC's arm_acle.h */
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return (int8_t)r;
#else
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}

/* dw_output_right2 over the channels of one pixel, per-channel multipliers and shifts: a
 * function of its own, so that its few live values stay in registers (in dw_pixels they spill). */
__attribute__((noinline)) static void dw_requant_right2(const int32_t *acc, const int32_t *folded,
                                                        const int32_t *mult, const int32_t *shift,
                                                        int8_t *out, int32_t ch, int32_t out_zp,
                                                        int32_t act_min, int32_t act_max)
{
    if (act_min == -128 && act_max == 127) {
        /* No activation clamp beyond int8's range: one saturation. */
        for (int32_t c = 0; c < ch; ++c) {
            const int32_t x = acc[c] + HIL_DW_ADD(folded, c);
            const int32_t e = -shift[c];
            const int32_t neg = x >> 31;
            const uint32_t k_lo = 0x40000000u ^ ((uint32_t)neg & 0x80000000u);
            const int32_t k_hi = neg + (int32_t)(1u << (e - 2));
            out[c] = dw_sat8((hil_mulhi_k(x, mult[c], k_hi, k_lo) >> (e - 1)) + out_zp);
        }
        return;
    }
    for (int32_t c = 0; c < ch; ++c) {
        const int32_t x = acc[c] + HIL_DW_ADD(folded, c);
        const int32_t e = -shift[c];
        const int32_t neg = x >> 31; /* all ones when x < 0 */
        const uint32_t k_lo = 0x40000000u ^ ((uint32_t)neg & 0x80000000u);
        const int32_t k_hi = neg + (int32_t)(1u << (e - 2));
        int32_t v = (hil_mulhi_k(x, mult[c], k_hi, k_lo) >> (e - 1)) + out_zp;
        v = v < act_min ? act_min : v;
        v = v > act_max ? act_max : v;
        out[c] = (int8_t)v;
    }
}

/* The buffers of depthwise_mult1, carved from one stack array. */
typedef struct {
    const int32_t *folded; /* bias - in_zp * sum(w), per channel */
    int32_t *acc;          /* the sweep's sums, per channel */
    const hil_tap_t *inside; /* (x, w) offsets of the taps, from the window's first tap */
    hil_tap_t *border;       /* the same for a window that leaves the input, from the input */
    const int8_t *zp_row;  /* one pixel of zero points, which taps outside the input read */
} dw_buffers_t;

/* The pixel loop of depthwise_mult1, apart from its variable-length array: a function with one
 * needs a frame pointer, which costs Thumb-1 one of its eight low registers everywhere. */
__attribute__((noinline)) static void dw_pixels(const hil_conv_params_t *p, const int8_t *input,
                                                const int8_t *weights, const int32_t *out_mult,
                                                const int32_t *out_shift, int8_t *output,
                                                const dw_buffers_t *buf)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c, k_h = p->k_h, k_w = p->k_w;
    const int32_t dh = p->dilation_h, dw = p->dilation_w, taps = k_h * k_w;
    const int32_t out_zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t lanes = ch - ch % HIL_DW_LANES; /* channels the sweep covers */
    const int32_t *const folded = buf->folded;
    int32_t *const acc = buf->acc;
    int8_t *out = output;
    /* Every shift a right shift of at least 2 (the usual case): the branch-free requantization.
     * Not on cores without SMLAL (Thumb-1): there its 16-bit multiplies dominate either way, and
     * the copies of them would cost flash (+860 bytes on digits-dscnn) for 1% fewer instructions. */
    int right2 = 1;
#if defined(HIL_KERNELS_MUL32)
    right2 = 0;
#else
    for (int32_t c = 0; c < (p->per_tensor ? 1 : ch); ++c) {
        right2 &= out_shift[c] <= -2 && out_shift[c] >= -31;
    }
#endif
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int rows_in = y0 >= 0 && y0 + (k_h - 1) * dh < in_h;
            for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int8_t *x;
                const hil_tap_t *offs;
                if (rows_in && x0 >= 0 && x0 + (k_w - 1) * dw < in_w) {
                    x = in_b + (y0 * in_w + x0) * ch;
                    offs = buf->inside;
                } else {
                    /* Taps outside the input read the row of zero points (the folded bias
                     * counts every tap), those inside the input: one table per pixel. */
                    const hil_tap_t zp_off = (intptr_t)buf->zp_row - (intptr_t)in_b;
                    hil_tap_t *tab = buf->border;
                    for (int32_t ky = 0; ky < k_h; ++ky) {
                        const int32_t iy = y0 + ky * dh;
                        for (int32_t kx = 0; kx < k_w; ++kx, tab += 2) {
                            const int32_t ix = x0 + kx * dw;
                            tab[0] = iy < 0 || iy >= in_h || ix < 0 || ix >= in_w
                                         ? zp_off
                                         : (iy * in_w + ix) * ch;
                            tab[1] = (ky * k_w + kx) * ch;
                        }
                    }
                    x = in_b;
                    offs = buf->border;
                }
                if (lanes > 0) {
#if defined(HIL_DW_INIT)
                    dw_taps(x, weights, offs, taps, lanes / HIL_DW_LANES, acc, folded);
#else
                    dw_taps(x, weights, offs, taps, lanes / HIL_DW_LANES, acc);
#endif
                }
                for (int32_t c = lanes; c < ch; ++c) {
#if defined(HIL_DW_INIT)
                    int32_t a = folded[c]; /* as the sweep */
#else
                    int32_t a = 0;
#endif
                    for (int32_t t = 0; t < taps; ++t) {
                        a += x[c + offs[2 * t]] * weights[c + offs[2 * t + 1]];
                    }
                    acc[c] = a;
                }
                if (right2 && p->per_tensor) {
                    const int32_t m = out_mult[0], e = -out_shift[0];
                    for (int32_t c = 0; c < ch; ++c) {
                        out[c] = dw_output_right2(acc[c] + HIL_DW_ADD(folded, c), m, e, out_zp, lo, hi);
                    }
                } else if (right2) {
                    dw_requant_right2(acc, folded, out_mult, out_shift, out, ch, out_zp, lo, hi);
                } else if (p->per_tensor) {
                    const int32_t m = out_mult[0], s = out_shift[0];
                    for (int32_t c = 0; c < ch; ++c) {
                        out[c] = hil_output_s8(acc[c] + HIL_DW_ADD(folded, c), m, s, out_zp, lo, hi);
                    }
                } else {
                    for (int32_t c = 0; c < ch; ++c) {
                        out[c] = hil_output_s8(acc[c] + HIL_DW_ADD(folded, c), out_mult[c], out_shift[c],
                                               out_zp, lo, hi);
                    }
                }
            }
        }
    }
}

/* Words for windows that leave the input: none when every window lies inside it (no padding:
 * VALID, or SAME where it adds nothing), else a tap table and one pixel of zero points. */
static int32_t border_words(const hil_conv_params_t *p)
{
    const int inside = p->pad_top == 0 && p->pad_left == 0 &&
                       (p->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dilation_h < p->in_h &&
                       (p->out_w - 1) * p->stride_w + (p->k_w - 1) * p->dilation_w < p->in_w;
    return inside ? 0 : 2 * p->k_h * p->k_w * HIL_TAP_WORDS + (p->in_c + 3) / 4;
}

/* depthwise_mult1 over its working memory: the per-channel sums of the sweep, the tap table,
 * for border windows a second table and a pixel of zero points, and the folded bias (unless
 * the host folded it). */
static int depthwise_mult1_in(const hil_conv_params_t *p, const int8_t *input,
                              const int8_t *weights, const int32_t *bias,
                              const int32_t *out_mult, const int32_t *out_shift, int8_t *output,
                              int32_t *buffer)
{
    const int32_t ch = p->in_c, k_w = p->k_w, taps = p->k_h * k_w;
    /* The tap tables first: the buffer is aligned for them (8 bytes on a 64-bit host). */
    hil_tap_t *const inside = (hil_tap_t *)(void *)buffer, *const border = inside + 2 * taps;
    int32_t *const acc = buffer + 2 * taps * HIL_TAP_WORDS + border_words(p);
    int8_t *const zp_row = (int8_t *)(acc - (ch + 3) / 4); /* the end of the border words */
    const int32_t *folded = bias;
    if (border_words(p) > 0) {
        for (int32_t c = 0; c < ch; ++c) {
            zp_row[c] = (int8_t)p->in_zp;
        }
    }
    if (!p->bias_folded) {
        int32_t *const sums = acc + ch;
        for (int32_t c = 0; c < ch; ++c) {
            int32_t sum = 0;
            for (int32_t t = 0; t < taps; ++t) {
                sum += weights[t * ch + c];
            }
            sums[c] = (bias != 0 ? bias[c] : 0) - p->in_zp * sum;
        }
        folded = sums;
    }
    for (int32_t ky = 0, t = 0; ky < p->k_h; ++ky) {
        for (int32_t kx = 0; kx < k_w; ++kx, ++t) {
            inside[2 * t] = (ky * p->dilation_h * p->in_w + kx * p->dilation_w) * ch;
            inside[2 * t + 1] = t * ch;
        }
    }
    const dw_buffers_t buf = {folded, acc, inside, border, zp_row};
    dw_pixels(p, input, weights, out_mult, out_shift, output, &buf);
    return 1;
}

/* Channel multiplier 1: out channel c reads input channel c. Each pixel's window is swept by
 * dw_taps through a table of tap offsets into the input; where a window leaves the input its
 * outside taps read a pixel of zero points instead. With the zero point folded into the bias
 * (bias - in_zp * sum(w)), those add nothing, as TFLite's padding.
 * Returns 0 when the stack buffers would exceed HIL_KERNELS_STACK_BUFFER. */
static int depthwise_mult1(const hil_conv_params_t *p, const int8_t *input,
                           const int8_t *weights, const int32_t *bias, const int32_t *out_mult,
                           const int32_t *out_shift, int8_t *output)
{
    const int32_t ch = p->in_c, k_w = p->k_w, taps = p->k_h * k_w;
    const int fold = !p->bias_folded; /* the host did not fold the bias: do it here */
    const int32_t words = (fold + 1) * ch + 2 * taps * HIL_TAP_WORDS + border_words(p);
    int32_t *buffer = (int32_t *)p->scratch;
    if (buffer == 0 || words * 4 > p->scratch_bytes) {
        if (words * 4 > HIL_KERNELS_STACK_BUFFER) {
            return 0;
        }
        int32_t stack[words]; /* dw_pixels runs apart from it: no frame pointer there */
        return depthwise_mult1_in(p, input, weights, bias, out_mult, out_shift, output, stack);
    }
    return depthwise_mult1_in(p, input, weights, bias, out_mult, out_shift, output, buffer);
}
#endif

void hil_depthwise_conv2d_s8(const hil_conv_params_t *p, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, const int32_t *out_mult,
                             const int32_t *out_shift, int8_t *output)
{
#if !defined(HIL_PATH_PORTABLE)
    if (p->depth_multiplier == 1 &&
        depthwise_mult1(p, input, weights, bias, out_mult, out_shift, output)) {
        return;
    }
#endif
    depthwise_any(p, input, weights, bias, out_mult, out_shift, output);
}
