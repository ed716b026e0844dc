#include "hil_startup.h"

int main(void);

void hil_crt_start(void)
{
    const uint32_t *src = __hil_data_load;
    for (uint32_t *dst = __hil_data_start; dst < __hil_data_end; dst++) {
        *dst = *src++;
    }
    for (uint32_t *dst = __hil_bss_start; dst < __hil_bss_end; dst++) {
        *dst = 0;
    }
    (void)main();
    for (;;) {
    }
}
