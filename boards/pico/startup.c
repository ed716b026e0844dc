/*
 * pico start-up: the boot ROM runs boot2 (boot2_image.c), which sets the XIP flash up, points
 * VTOR at this table (0x10000100) and jumps here. The RP2040's NVIC has 32 lines (26 used).
 * VTOR is written again in case the core was started some other way (e.g. a debugger that
 * sets PC to the reset vector).
 */
#include "hil_startup.h"

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)

extern const hil_vector_t hil_vectors[];

void hil_reset_handler(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)hil_vectors;
    hil_crt_start();
}

HIL_VECTOR_TABLE(32);
