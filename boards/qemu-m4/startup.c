/*
 * qemu-m4 start-up: QEMU's mps2-an386 (Cortex-M4F) has 32 device interrupts in its NVIC and
 * needs no early chip set-up, so reset goes straight to the C run-time start.
 */
#include "hil_startup.h"

void hil_reset_handler(void)
{
    hil_crt_start();
}

HIL_VECTOR_TABLE(32);
