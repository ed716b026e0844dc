/* Row walker shared by the broadcasting binary int8 kernels (ADD, MUL). */
#include "hil_kernels_elementwise.h"

void hil_broadcast_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                      hil_binary_row_s8_fn row, const void *params)
{
    const int32_t *dims = shape;
    const int32_t *s1 = shape + HIL_BROADCAST_DIMS;
    const int32_t *s2 = shape + 2 * HIL_BROADCAST_DIMS;
    for (int32_t i0 = 0; i0 < dims[0]; ++i0) {
        for (int32_t i1 = 0; i1 < dims[1]; ++i1) {
            for (int32_t i2 = 0; i2 < dims[2]; ++i2) {
                const int8_t *a = in1 + i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
                const int8_t *b = in2 + i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
                row(a, s1[3], b, s2[3], out, dims[3], params);
                out += dims[3];
            }
        }
    }
}
