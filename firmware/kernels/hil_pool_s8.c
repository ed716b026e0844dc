/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLite reference semantics). Both reduce the part of
 * each window that lies inside the input: padding never wins a maximum, and SAME padding
 * shrinks an average's divisor at the borders. The average rounds half away from zero. */
#include <string.h>

#include "hil_kernels_conv.h"
#include "hil_kernels_path.h"
#include "hil_quant.h"

/* The reciprocal of the last window size (it changes only at the borders). */
typedef struct {
    int32_t count;
    uint32_t mult; /* ceil(2^24 / count) */
} recip_t;

/* sum / count rounded half away from zero, as TFLite's (sum +- count/2) / count, without a
 * division: n * ceil(2^24 / d) >> 24 is floor(n / d) for every n <= 129 d when d <= 360 (an int8
 * sum is at most 128 d), checked exhaustively; larger windows divide by shift and subtract. */
static inline int32_t rounded_average(int32_t sum, int32_t count, recip_t *r)
{
    if (count <= 0) {
        return 0;
    }
    const uint32_t n = (uint32_t)(sum > 0 ? sum : -sum) + (uint32_t)(count >> 1);
    uint32_t q;
    if (count <= 360) {
        if (count != r->count) {
            r->count = count;
            r->mult = hil_div_u32((1u << 24) + (uint32_t)count - 1u, (uint32_t)count);
        }
        q = (n * r->mult) >> 24;
    } else {
        q = hil_div_u32(n, (uint32_t)count);
    }
    return sum > 0 ? (int32_t)q : -(int32_t)q;
}

/* Channels whose sums an average keeps at a time (a stack array). */
#define POOL_CHUNK 64

/* The maximum over the window's valid taps, channels innermost: the first tap is copied to the
 * output row, every other one raises it (four channels per SIMD compare-and-select on the DSP
 * path). Then the clamp. */
static void max_window(const int8_t *in_b, int32_t in_w, int32_t ch, int32_t y0, int32_t x0,
                       int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi, int8_t *out,
                       int32_t lo, int32_t hi)
{
    int first = 1;
    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
            const int8_t *x = in_b + ((y0 + ky) * in_w + (x0 + kx)) * ch;
            int32_t c = 0;
            if (first) {
#if defined(HIL_PATH_DSP)
                for (; c + 4 <= ch; c += 4) { /* word copies (newlib-nano's memcpy: bytes) */
                    const uint32_t v = hil_read_u32(x + c);
                    memcpy(out + c, &v, sizeof v);
                }
#endif
                memcpy(out + c, x + c, (size_t)(ch - c));
                first = 0;
                continue;
            }
#if defined(HIL_PATH_DSP) && defined(__ARM_FEATURE_DSP)
            for (; c + 4 <= ch; c += 4) {
                const int32_t m = (int32_t)hil_read_u32(out + c);
                const int32_t v = (int32_t)hil_read_u32(x + c);
                (void)__ssub8(v, m); /* GE bits: v >= m, per byte */
                const uint32_t r = __sel((uint32_t)v, (uint32_t)m);
                memcpy(out + c, &r, sizeof r);
            }
#endif
            for (; c < ch; ++c) {
                if (x[c] > out[c]) {
                    out[c] = x[c];
                }
            }
        }
    }
    if (first) { /* a window entirely in the padding: TFLite's reduction starts at INT8_MIN */
        memset(out, INT8_MIN, (size_t)ch);
    }
    if (lo > INT8_MIN || hi < INT8_MAX) {
        for (int32_t c = 0; c < ch; ++c) {
            out[c] = (int8_t)hil_clamp_s32(out[c], lo, hi);
        }
    }
}

/* The rounded average over the window's valid taps, channels innermost, POOL_CHUNK at a time. */
static void average_window(const int8_t *in_b, int32_t in_w, int32_t ch, int32_t y0, int32_t x0,
                           int32_t ky_lo, int32_t ky_hi, int32_t kx_lo, int32_t kx_hi,
                           int8_t *out, int32_t lo, int32_t hi, recip_t *recip)
{
    const int32_t count = (ky_hi - ky_lo) * (kx_hi - kx_lo);
    int32_t sum[POOL_CHUNK];
    for (int32_t c0 = 0; c0 < ch; c0 += POOL_CHUNK) {
        const int32_t n = ch - c0 < POOL_CHUNK ? ch - c0 : POOL_CHUNK;
        for (int32_t c = 0; c < n; ++c) {
            sum[c] = 0;
        }
        for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                const int8_t *x = in_b + ((y0 + ky) * in_w + (x0 + kx)) * ch + c0;
                for (int32_t c = 0; c < n; ++c) {
                    sum[c] += x[c];
                }
            }
        }
        for (int32_t c = 0; c < n; ++c) {
            out[c0 + c] = (int8_t)hil_clamp_s32(rounded_average(sum[c], count, recip), lo, hi);
        }
    }
}

/* One window walk for both reductions, `average` a constant in each entry point. */
static inline __attribute__((always_inline)) void pool_s8(const hil_pool_params_t *p,
                                                          const int8_t *input, int8_t *output,
                                                          const int average)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->channels;
    int8_t *out = output;
    recip_t recip = {0, 0};

    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            const int32_t ky_lo = y0 < 0 ? -y0 : 0;
            const int32_t ky_hi = in_h - y0 < p->k_h ? in_h - y0 : p->k_h;
            for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx_lo = x0 < 0 ? -x0 : 0;
                const int32_t kx_hi = in_w - x0 < p->k_w ? in_w - x0 : p->k_w;
                if (average) {
                    average_window(in_b, in_w, ch, y0, x0, ky_lo, ky_hi, kx_lo, kx_hi, out,
                                   p->act_min, p->act_max, &recip);
                } else {
                    max_window(in_b, in_w, ch, y0, x0, ky_lo, ky_hi, kx_lo, kx_hi, out,
                               p->act_min, p->act_max);
                }
            }
        }
    }
}

void hil_avgpool_s8(const hil_pool_params_t *p, const int8_t *input, int8_t *output)
{
    pool_s8(p, input, output, 1);
}

void hil_maxpool_s8(const hil_pool_params_t *p, const int8_t *input, int8_t *output)
{
    pool_s8(p, input, output, 0);
}
