/* MEAN over contiguous axes, int8 (Keras GlobalAveragePooling1D/2D, keep_dims true or false).
 *
 * TFLite's int8 MEAN sums (x - in_zp) over the reduced elements in int32 and requantizes the
 * sum once, with the division by the element count folded into the multiplier on the host
 * (hil/lowering/pool.py). Checked bit-exact against the reference interpreter. */
#include "hil_kernels_conv.h"
#include "hil_quant.h"

void hil_mean_s8(const hil_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t reduce = p->reduce, inner = p->inner;

    for (int32_t o = 0; o < p->outer; ++o) {
        const int8_t *in_o = input + o * reduce * inner;
        int8_t *out = output + o * inner;
        for (int32_t i = 0; i < inner; ++i) {
            int32_t sum = 0;
            for (int32_t r = 0; r < reduce; ++r) {
                sum += (int32_t)in_o[r * inner + i] - p->in_zp;
            }
            const int32_t v = hil_requantize(sum, p->multiplier, p->shift) + p->out_zp;
            out[i] = (int8_t)hil_clamp_s32(v, INT8_MIN, INT8_MAX);
        }
    }
}
