/* DEPTHWISE_CONV_2D, int8 activations and per-channel int8 weights, any depth multiplier
 * (TFLite reference semantics).
 *
 * Fast paths (hil_kernels_path.h), channel multiplier 1: per output pixel the taps that lie
 * inside the input are found once, then the channels run inside them: four at a time on the
 * DSP path (SMLABB/SMLATT on sign-extended pairs, the input zero point added by SXTAB16);
 * one at a time elsewhere, where an interior 3x3 window runs nine taps unrolled against the
 * bias with the input zero point folded in (bias - in_zp * sum(w), computed per call). Other
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
                        for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                            const int32_t iy = y0 + ky * p->dilation_h;
                            for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                                const int32_t ix = x0 + kx * p->dilation_w;
                                const int32_t x = in_b[(iy * in_w + ix) * in_c + ic];
                                const int32_t w = weights[(ky * p->k_w + kx) * out_c + oc];
                                acc += (x - in_zp) * w;
                            }
                        }
                        acc = hil_requantize(acc, out_mult[oc], out_shift[oc]) + p->out_zp;
                        *out++ = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

#if !defined(HIL_PATH_PORTABLE)

/* Channel multiplier 1: out channel c reads input channel c. */
static void depthwise_mult1(const hil_conv_params_t *p, const int8_t *input,
                            const int8_t *weights, const int32_t *bias, const int32_t *out_mult,
                            const int32_t *out_shift, int8_t *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c, k_w = p->k_w;
    const int32_t dh = p->dilation_h, dw = p->dilation_w;
    const int32_t in_zp = p->in_zp, out_zp = p->out_zp, lo = p->act_min, hi = p->act_max;
#if defined(HIL_PATH_DSP)
    const int32_t off2 = hil_dup16(-in_zp);
#else
    /* bias - in_zp * sum of the channel's nine weights, for windows entirely inside. */
    const int fold = p->k_h == 3 && k_w == 3 && dh == 1 && dw == 1 &&
                     ch * 4 <= HIL_KERNELS_STACK_BUFFER;
    int32_t folded[fold ? ch : 1];
    if (fold) {
        for (int32_t c = 0; c < ch; ++c) {
            int32_t sum = 0;
            for (int32_t t = 0; t < 9; ++t) {
                sum += weights[t * ch + c];
            }
            folded[c] = (bias != 0 ? bias[c] : 0) - in_zp * sum;
        }
    }
#endif
    int8_t *out = output;
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * ch;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            int32_t ky_lo, ky_hi;
            valid_taps(y0, p->k_h, dh, in_h, &ky_lo, &ky_hi);
            for (int32_t ox = 0; ox < p->out_w; ++ox, out += ch) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                int32_t kx_lo, kx_hi;
                valid_taps(x0, k_w, dw, in_w, &kx_lo, &kx_hi);
                /* Offset of the window's first tap (maybe outside: only valid taps are read). */
                const int32_t win = (y0 * in_w + x0) * ch;
                int32_t c = 0;
#if defined(HIL_PATH_DSP)
                for (; c + 4 <= ch; c += 4) {
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    if (bias != 0) {
                        a0 = bias[c];
                        a1 = bias[c + 1];
                        a2 = bias[c + 2];
                        a3 = bias[c + 3];
                    }
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        const int32_t xr = win + ky * dh * in_w * ch + c;
                        const int8_t *wr = weights + ky * k_w * ch + c;
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            const int32_t xv = (int32_t)hil_read_u32(in_b + xr + kx * dw * ch);
                            const int32_t wv = (int32_t)hil_read_u32(wr + kx * ch);
                            const int32_t xe = hil_sxtab16(off2, xv);
                            const int32_t xo = hil_sxtab16_ror8(off2, xv);
                            const int32_t we = hil_sxtb16(wv);
                            const int32_t wo = hil_sxtb16_ror8(wv);
                            a0 = hil_smlabb(xe, we, a0);
                            a2 = hil_smlatt(xe, we, a2);
                            a1 = hil_smlabb(xo, wo, a1);
                            a3 = hil_smlatt(xo, wo, a3);
                        }
                    }
                    const int32_t *m = out_mult + c, *s = out_shift + c;
                    out[c] = hil_output_s8(a0, m[0], s[0], out_zp, lo, hi);
                    out[c + 1] = hil_output_s8(a1, m[1], s[1], out_zp, lo, hi);
                    out[c + 2] = hil_output_s8(a2, m[2], s[2], out_zp, lo, hi);
                    out[c + 3] = hil_output_s8(a3, m[3], s[3], out_zp, lo, hi);
                }
#else
                if (fold && ky_lo == 0 && ky_hi == 3 && kx_lo == 0 && kx_hi == 3) {
                    const int32_t r = in_w * ch;
                    for (; c < ch; ++c) {
                        const int8_t *x = in_b + (win + c);
                        const int8_t *w = weights + c;
                        int32_t acc = folded[c];
                        acc += x[0] * w[0] + x[ch] * w[ch] + x[2 * ch] * w[2 * ch];
                        x += r;
                        w += 3 * ch;
                        acc += x[0] * w[0] + x[ch] * w[ch] + x[2 * ch] * w[2 * ch];
                        x += r;
                        w += 3 * ch;
                        acc += x[0] * w[0] + x[ch] * w[ch] + x[2 * ch] * w[2 * ch];
                        out[c] = hil_output_s8(acc, out_mult[c], out_shift[c], out_zp, lo, hi);
                    }
                }
#endif
                for (; c < ch; ++c) {
                    int32_t acc = bias != 0 ? bias[c] : 0;
                    for (int32_t ky = ky_lo; ky < ky_hi; ++ky) {
                        const int32_t xr = win + ky * dh * in_w * ch + c;
                        const int8_t *wr = weights + ky * k_w * ch + c;
                        for (int32_t kx = kx_lo; kx < kx_hi; ++kx) {
                            acc += (in_b[xr + kx * dw * ch] - in_zp) * wr[kx * ch];
                        }
                    }
                    out[c] = hil_output_s8(acc, out_mult[c], out_shift[c], out_zp, lo, hi);
                }
            }
        }
    }
}
#endif

void hil_depthwise_conv2d_s8(const hil_conv_params_t *p, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, const int32_t *out_mult,
                             const int32_t *out_shift, int8_t *output)
{
#if !defined(HIL_PATH_PORTABLE)
    if (p->depth_multiplier == 1) {
        depthwise_mult1(p, input, weights, bias, out_mult, out_shift, output);
        return;
    }
#endif
    depthwise_any(p, input, weights, bias, out_mult, out_shift, output);
}
