/* CONV_2D, int8 activations and per-channel int8 weights (TFLite reference semantics).
 *
 * Fast paths (hil_kernels_path.h): each output pixel's receptive field is expanded into a
 * small column buffer on the stack (HIL_GEMM_BLOCK pixels at a time, the input zero point
 * taken off on the way, padding as zeros), then every output channel is a dot product against
 * it (hil_gemm_s8.c). A 1x1 convolution reads its pixels straight from the input. Layers whose
 * column buffer would not fit HIL_KERNELS_STACK_BUFFER take the portable loops. */
#include "hil_gemm_s8.h"
#include "hil_kernels_conv.h"
#include "hil_quant.h"

static void conv_portable(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
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
                    const int32_t q = p->per_tensor ? 0 : oc;
                    acc = hil_requantize(acc, out_mult[q], out_shift[q]) + p->out_zp;
                    *out++ = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

#if !defined(HIL_PATH_PORTABLE)

/* The receptive field of output pixel (oy, ox) into slot `slot` of the column buffer. */
static void fill_window(const hil_conv_params_t *p, const hil_gemm_t *g, const int8_t *in_b,
                        int32_t oy, int32_t ox, int32_t *col, int32_t slot, int32_t pixels,
                        int8_t *stage)
{
    const int32_t in_c = p->in_c, in_w = p->in_w, k_w = p->k_w;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t x0 = ox * p->stride_w - p->pad_left;
    const int32_t row = k_w * in_c;
    const int contiguous_row =
        p->dilation_w == 1 && x0 >= 0 && x0 + k_w <= in_w; /* the window row is one run */
#if defined(HIL_PATH_DSP)
    if (in_c & 3) {
        /* Groups of four taps straddle input pixels: gather the raw bytes (padding as the zero
         * point) and expand them in one go. */
        int8_t *s = stage;
        for (int32_t ky = 0; ky < p->k_h; ++ky) {
            const int32_t iy = y0 + ky * p->dilation_h;
            if (iy < 0 || iy >= p->in_h) {
                for (int32_t i = 0; i < row; ++i) {
                    s[i] = (int8_t)g->in_zp;
                }
            } else if (contiguous_row) {
                memcpy(s, in_b + (iy * in_w + x0) * in_c, (size_t)row);
            } else {
                for (int32_t kx = 0; kx < k_w; ++kx) {
                    const int32_t ix = x0 + kx * p->dilation_w;
                    const int8_t *src = in_b + (iy * in_w + ix) * in_c;
                    for (int32_t i = 0; i < in_c; ++i) {
                        s[kx * in_c + i] = ix < 0 || ix >= in_w ? (int8_t)g->in_zp : src[i];
                    }
                }
            }
            s += row;
        }
        hil_gemm_expand(g, stage, 0, g->k, col, slot, pixels);
        return;
    }
#else
    (void)stage;
#endif
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->k_h; ++ky, k += row) {
        const int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in_h) {
            hil_gemm_zero(g, k, row, col, slot, pixels);
        } else if (contiguous_row) {
            hil_gemm_expand(g, in_b + (iy * in_w + x0) * in_c, k, row, col, slot, pixels);
        } else {
            for (int32_t kx = 0; kx < k_w; ++kx) {
                const int32_t ix = x0 + kx * p->dilation_w;
                if (ix < 0 || ix >= in_w) {
                    hil_gemm_zero(g, k + kx * in_c, in_c, col, slot, pixels);
                } else {
                    hil_gemm_expand(g, in_b + (iy * in_w + ix) * in_c, k + kx * in_c, in_c, col,
                                    slot, pixels);
                }
            }
        }
    }
}

/* Bytes of working memory conv_fast needs for blocks of `block` pixels: the column buffer,
 * then (DSP path, input channels not a multiple of four) the raw window it is expanded from. */
static int32_t conv_scratch_bytes(const hil_conv_params_t *p, int32_t block)
{
    const int32_t k = p->k_h * p->k_w * p->in_c;
    int32_t bytes = hil_gemm_col_words(k, block) * 4;
#if defined(HIL_PATH_DSP)
    if (p->in_c & 3) {
        bytes += k;
    }
#endif
    return bytes;
}

/* The pixel loop of conv_fast over a working memory of conv_scratch_bytes(p, block). */
__attribute__((noinline)) static void conv_pixels(const hil_conv_params_t *p,
                                                  const hil_gemm_t *g, const int8_t *input,
                                                  int8_t *output, int32_t *col, int32_t block)
{
    const int32_t out_c = p->out_c, out_w = p->out_w, pixels = p->out_h * out_w;
    const int32_t in_size = p->in_h * p->in_w * p->in_c;
    int8_t *stage = (int8_t *)(col + hil_gemm_col_words(g->k, block));
    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * in_size;
        int8_t *out_b = output + b * pixels * out_c;
        int32_t oy = 0, ox = 0, n = 0;
        for (; n + block <= pixels; n += block) {
            int8_t *out[HIL_GEMM_BLOCK];
            for (int32_t q = 0; q < block; ++q) {
                fill_window(p, g, in_b, oy, ox, col, q, block, stage);
                out[q] = out_b + (n + q) * out_c;
                if (++ox == out_w) {
                    ox = 0;
                    ++oy;
                }
            }
            hil_gemm_rows(g, col, block, out);
        }
        for (; n < pixels; ++n) {
            int8_t *out = out_b + n * out_c;
            fill_window(p, g, in_b, oy, ox, col, 0, 1, stage);
            hil_gemm_rows(g, col, 1, &out);
            if (++ox == out_w) {
                ox = 0;
                ++oy;
            }
        }
    }
}

static int conv_fast(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
                     const int32_t *bias, const int32_t *out_mult, const int32_t *out_shift,
                     int8_t *output)
{
    const int32_t k = p->k_h * p->k_w * p->in_c;
    const int32_t pixels = p->out_h * p->out_w;
    const hil_gemm_t g = {weights,  bias,      out_mult,   out_shift,  k, p->out_c,
                          p->in_zp, p->out_zp, p->act_min, p->act_max, 0, p->per_tensor};

    if (p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
        p->in_h == p->out_h && p->in_w == p->out_w) {
        /* 1x1, stride 1: the input is already the matrix, one pixel per row. */
        return hil_gemm_contiguous(&g, input, p->batches * pixels, p->in_c, output, p->scratch,
                                   p->scratch_bytes);
    }
    /* The planned scratch if it holds a block (or a pixel), else the stack if it may. */
    int32_t block = pixels >= HIL_GEMM_BLOCK ? HIL_GEMM_BLOCK : 1;
    if (p->scratch != 0) {
        if (conv_scratch_bytes(p, block) > p->scratch_bytes && block > 1) {
            block = 1;
        }
        if (conv_scratch_bytes(p, block) <= p->scratch_bytes) {
            conv_pixels(p, &g, input, output, (int32_t *)p->scratch, block);
            return 1;
        }
        block = pixels >= HIL_GEMM_BLOCK ? HIL_GEMM_BLOCK : 1;
    }
    if (conv_scratch_bytes(p, block) > HIL_KERNELS_STACK_BUFFER) {
        block = 1;
    }
    const int32_t bytes = conv_scratch_bytes(p, block);
    if (bytes > HIL_KERNELS_STACK_BUFFER) {
        return 0;
    }
    int32_t buffer[(bytes + 3) / 4];
    conv_pixels(p, &g, input, output, buffer, block);
    return 1;
}
#endif

void hil_conv2d_s8(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
                   const int32_t *bias, const int32_t *out_mult, const int32_t *out_shift,
                   int8_t *output)
{
#if !defined(HIL_PATH_PORTABLE)
    if (conv_fast(p, input, weights, bias, out_mult, out_shift, output)) {
        return;
    }
#endif
    conv_portable(p, input, weights, bias, out_mult, out_shift, output);
}
