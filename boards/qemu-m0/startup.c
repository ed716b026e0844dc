/*
 * qemu-m0 start-up: QEMU's microbit (nRF51822, Cortex-M0) has 32 NVIC lines, of which the
 * nRF51 uses 26. A real nRF51 would apply its errata fixes before C code runs; QEMU's model
 * needs none, so reset goes straight to the C run-time start.
 */
#include "hil_startup.h"

void hil_reset_handler(void)
{
    hil_crt_start();
}

HIL_VECTOR_TABLE(32);
