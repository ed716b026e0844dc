/* One table lookup per element: every int8 -> int8 function of a single input. */
#include "hil_kernels_elementwise.h"

void hil_lookup_table_s8(const int8_t *in, int8_t *out, int32_t n, const int8_t *table)
{
    for (int32_t i = 0; i < n; ++i) {
        out[i] = table[in[i] + 128];
    }
}
