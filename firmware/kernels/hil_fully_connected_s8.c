/* FULLY_CONNECTED, int8 activations and int8 weights (TFLite reference semantics). The host
 * passes one multiplier/shift per output (repeated when the model is per-tensor). TFLite
 * requantizes fully connected layers with a single rounding step (checked bit-exact against
 * the reference interpreter on per-tensor and per-channel models; the double rounding of the
 * convolutions is 1 LSB off on ties). */
#include "hil_gemm_s8.h"
#include "hil_kernels_conv.h"
#include "hil_quant.h"

void hil_fully_connected_s8(const hil_fc_params_t *p, const int8_t *input, const int8_t *weights,
                            const int32_t *bias, const int32_t *out_mult,
                            const int32_t *out_shift, int8_t *output)
{
    const int32_t in_n = p->in_n, out_n = p->out_n, in_zp = p->in_zp;
#if !defined(HIL_PATH_PORTABLE)
    /* Fast paths: the matrix-multiply core (hil_gemm_s8.c), one input row per pixel; with the
     * zero point folded into the bias, straight from the raw input rows. */
    const hil_gemm_t g = {weights,   bias,       out_mult,   out_shift, in_n, out_n, in_zp,
                          p->out_zp, p->act_min, p->act_max, 1,         p->per_tensor};
    if (p->bias_folded) {
        hil_gemm_raw_rows(&g, input, p->batches, in_n, output);
        return;
    }
    if (hil_gemm_contiguous(&g, input, p->batches, in_n, output, p->scratch, p->scratch_bytes)) {
        return;
    }
#endif

    for (int32_t b = 0; b < p->batches; ++b) {
        const int8_t *in = input + b * in_n;
        int8_t *out = output + b * out_n;
        for (int32_t o = 0; o < out_n; ++o) {
            const int8_t *w = weights + o * in_n;
            const int32_t zp = p->bias_folded ? 0 : in_zp; /* else the bias holds it */
            const int32_t q = p->per_tensor ? 0 : o;
            int32_t acc = 0;
            for (int32_t i = 0; i < in_n; ++i) {
                acc += ((int32_t)in[i] - zp) * (int32_t)w[i];
            }
            if (bias != 0) {
                acc += bias[o];
            }
            acc = hil_requantize_single_round(acc, out_mult[q], out_shift[q]) + p->out_zp;
            out[o] = (int8_t)hil_clamp_s32(acc, p->act_min, p->act_max);
        }
    }
}
