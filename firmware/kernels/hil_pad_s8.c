/* Constant padding of a 4-D int8 tensor (PAD, PADV2), row by row with memset/memcpy. */
#include <string.h>

#include "hil_kernels_elementwise.h"

void hil_pad_s8(const int8_t *in, int8_t *out, const int32_t *geometry, int8_t pad_value)
{
    const int32_t *in_dims = geometry;
    const int32_t *before = geometry + 4;
    const int32_t *out_dims = geometry + 8;
    const int32_t row = out_dims[3];
    const int32_t after = row - before[3] - in_dims[3];
    for (int32_t o0 = 0; o0 < out_dims[0]; ++o0) {
        const int32_t i0 = o0 - before[0];
        for (int32_t o1 = 0; o1 < out_dims[1]; ++o1) {
            const int32_t i1 = o1 - before[1];
            for (int32_t o2 = 0; o2 < out_dims[2]; ++o2) {
                const int32_t i2 = o2 - before[2];
                if (i0 < 0 || i0 >= in_dims[0] || i1 < 0 || i1 >= in_dims[1] || i2 < 0 ||
                    i2 >= in_dims[2]) {
                    memset(out, pad_value, (size_t)row);
                } else {
                    const int8_t *src = in + ((i0 * in_dims[1] + i1) * in_dims[2] + i2) * in_dims[3];
                    memset(out, pad_value, (size_t)before[3]);
                    memcpy(out + before[3], src, (size_t)in_dims[3]);
                    memset(out + before[3] + in_dims[3], pad_value, (size_t)after);
                }
                out += row;
            }
        }
    }
}
