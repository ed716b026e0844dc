/* int8 MUL with broadcasting, TFLite's reference arithmetic (see hil_kernels_elementwise.h).
 * The multipliers are non-negative (the host's Q31 values), so the one-step requantization of
 * hil_kernels_path.h applies. */
#include "hil_kernels_elementwise.h"
#include "hil_kernels_path.h"
#include "hil_quant.h"

static void mul_row(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_stride,
                    int8_t *out, int32_t n, const void *params)
{
    /* Locals: stores through `out` (a char type) could alias *params for the compiler. */
    const hil_mul_s8_params_t p = *(const hil_mul_s8_params_t *)params;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t prod =
            (a[i * a_stride] + p.input1_offset) * (b[i * b_stride] + p.input2_offset);
        const int32_t y =
            hil_requantize_q31(prod, p.output_multiplier, p.output_shift) + p.output_offset;
        out[i] = (int8_t)hil_clamp_s32(y, p.act_min, p.act_max);
    }
}

void hil_mul_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                const hil_mul_s8_params_t *params)
{
    hil_broadcast_s8(in1, in2, out, shape, mul_row, params);
}
