/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLite reference semantics). Both reduce the part of
 * each window that lies inside the input: padding never wins a maximum, and SAME padding
 * shrinks an average's divisor at the borders. The average rounds half away from zero. */
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

/* One window walk for both reductions. Inlined into each entry point with `average` a
 * constant, so each gets a loop without the other's branch (as fast as two copies). */
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
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                const int32_t kx_lo = x0 < 0 ? -x0 : 0;
                const int32_t kx_hi = in_w - x0 < p->k_w ? in_w - x0 : p->k_w;
                const int32_t count = (ky_hi - ky_lo) * (kx_hi - kx_lo);
                for (int32_t c = 0; c < ch; ++c) {
                    int32_t acc = average ? 0 : INT8_MIN;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int32_t v = in_b[((y0 + ky) * in_w + (x0 + kx)) * ch + c];
                            acc = average ? acc + v : (v > acc ? v : acc);
                        }
                    }
                    if (average) {
                        acc = rounded_average(acc, count, &recip);
                    }
                    *out++ = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
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
