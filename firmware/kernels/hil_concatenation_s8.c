/* One input of an int8 CONCATENATION: strided slab copy, or table requantization. */
#include <string.h>

#include "hil_kernels_elementwise.h"

void hil_concatenation_s8(const int8_t *in, int8_t *out, int32_t outer, int32_t in_bytes,
                          int32_t out_bytes, const int8_t *table)
{
    for (int32_t o = 0; o < outer; ++o) {
        if (table == 0) {
            memcpy(out, in, (size_t)in_bytes);
        } else {
            for (int32_t i = 0; i < in_bytes; ++i) {
                out[i] = table[in[i] + 128];
            }
        }
        in += in_bytes;
        out += out_bytes;
    }
}
