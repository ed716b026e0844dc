/*
 * qemu-m4 start-up: the vector table of QEMU's mps2-an386 (Cortex-M4F with 32 device
 * interrupts in the NVIC, as QEMU configures the AN386) and the reset entry. The model needs
 * no early chip set-up, so reset goes straight to the C run-time start. Device interrupts are
 * never enabled; one that fires anyway is reported as an unexpected exception.
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
