/*
 * qemu-m0 start-up: the vector table of QEMU's microbit (nRF51822, Cortex-M0, 32 NVIC lines
 * of which the nRF51 uses 26) and the reset entry. QEMU's nRF51 needs no early set-up (a real
 * nRF51 would apply its errata fixes here), so reset goes straight to the C run-time start.
 * Device interrupts are never enabled; one that fires anyway is reported as an unexpected
 * exception.
 */
#include "hil_startup.h"

#define DEVICE_IRQS 32

void hil_reset_handler(void)
{
    hil_crt_start();
}

__attribute__((section(".hil_vectors"), used))
const hil_vector_t hil_vectors[16 + DEVICE_IRQS] = {
    HIL_SYSTEM_VECTORS(hil_reset_handler),
    [16 ... 16 + DEVICE_IRQS - 1] = hil_fault_entry,
};
