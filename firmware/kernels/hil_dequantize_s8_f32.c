/* int8 -> float32 at a model's output edge. The product of a float32 scale and a 9-bit integer
 * rounds once, exactly as TFLite's double-precision product cast to float does. */
#include "hil_kernels_elementwise.h"

void hil_dequantize_s8_f32(const int8_t *in, float *out, int32_t n, float scale,
                           int32_t zero_point)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = scale * (float)(in[i] - zero_point);
    }
}
