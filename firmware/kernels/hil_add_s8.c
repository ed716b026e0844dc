/* int8 ADD with broadcasting, TFLite's reference arithmetic (see hil_kernels_elementwise.h).
 * The multipliers are non-negative (the host's Q31 values), so the one-step requantization of
 * hil_kernels_path.h applies. */
#include "hil_kernels_elementwise.h"
#include "hil_kernels_path.h"
#include "hil_quant.h"

static void add_row(const int8_t *a, int32_t a_stride, const int8_t *b, int32_t b_stride,
                    int8_t *out, int32_t n, const void *params)
{
    /* Locals: stores through `out` (a char type) could alias *params for the compiler. */
    const hil_add_s8_params_t p = *(const hil_add_s8_params_t *)params;
    const int32_t lift = (int32_t)1 << p.left_shift;
    for (int32_t i = 0; i < n; ++i) {
        const int32_t x1 = (a[i * a_stride] + p.input1_offset) * lift;
        const int32_t x2 = (b[i * b_stride] + p.input2_offset) * lift;
        const int32_t sum = hil_requantize_q31(x1, p.input1_multiplier, p.input1_shift) +
                            hil_requantize_q31(x2, p.input2_multiplier, p.input2_shift);
        const int32_t y =
            hil_requantize_q31(sum, p.output_multiplier, p.output_shift) + p.output_offset;
        out[i] = (int8_t)hil_clamp_s32(y, p.act_min, p.act_max);
    }
}

void hil_add_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                const hil_add_s8_params_t *params)
{
    hil_broadcast_s8(in1, in2, out, shape, add_row, params);
}
