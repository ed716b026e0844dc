/* CONV_2D, int8 activations and per-channel int8 weights (TFLite reference semantics). */
#include "hil_kernels_conv.h"
#include "hil_quant.h"

void hil_conv2d_s8(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
                   const int32_t *bias, const int32_t *out_mult, const int32_t *out_shift,
                   int8_t *output)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int32_t in_zp = p->in_zp;
    const int32_t filter_size = p->k_h * p->k_w * in_c;
    int8_t *out = output;

    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (int32_t oy = 0; oy < p->out_h; ++oy) {
            const int32_t y0 = oy * p->stride_h - p->pad_top;
            for (int32_t ox = 0; ox < p->out_w; ++ox) {
                const int32_t x0 = ox * p->stride_w - p->pad_left;
                for (int32_t oc = 0; oc < p->out_c; ++oc) {
                    const int8_t *w_oc = weights + oc * filter_size;
                    int32_t acc = 0;
                    for (int32_t ky = 0; ky < p->k_h; ++ky) {
                        const int32_t iy = y0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= in_h) {
                            continue; /* padding: (zp - zp) * w contributes nothing */
                        }
                        for (int32_t kx = 0; kx < p->k_w; ++kx) {
                            const int32_t ix = x0 + kx * p->dilation_w;
                            if (ix < 0 || ix >= in_w) {
                                continue;
                            }
                            const int8_t *px = in_b + (iy * in_w + ix) * in_c;
                            const int8_t *w = w_oc + (ky * p->k_w + kx) * in_c;
                            for (int32_t ic = 0; ic < in_c; ++ic) {
                                acc += ((int32_t)px[ic] - in_zp) * (int32_t)w[ic];
                            }
                        }
                    }
                    if (bias != 0) {
                        acc += bias[oc];
                    }
                    acc = hil_requantize(acc, out_mult[oc], out_shift[oc]) + p->out_zp;
                    *out++ = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}
