/*
 * C run-time start, the same for every board: FPU on (when the code is built for one),
 * .data copied from flash, .bss zeroed, then main(). Each board's startup.c owns the vector
 * table (its size depends on the chip's interrupt controller) and calls hil_crt_start() from
 * its reset handler after whatever must happen before any C code runs on that chip.
 */
#include <stdint.h>

#include "hil_startup.h"

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

int main(void);

void hil_crt_start(void)
{
#ifdef __ARM_FP
    /* Code built for an FPU (-mfloat-abi=hard or softfp) may touch an FP register anywhere,
     * the copy loops below included: turn the FPU on before any C code runs. */
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
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
