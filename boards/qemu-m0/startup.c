/*
 * qemu-m0 (QEMU microbit, nRF51 Cortex-M0; code built for the M0+): vector table and reset
 * handler.
 */
#include <stdint.h>

#include "hil_startup.h"
#include "hil_systick.h"

typedef void (*hil_vector_t)(void);

void hil_reset_handler(void) __attribute__((noreturn));

/* System exceptions only: the firmware enables no peripheral interrupt. ARMv6-M has only
 * NMI and HardFault as faults; both go to the runtime's fault reporter. */
__attribute__((section(".hil_vectors"), used)) const hil_vector_t hil_vectors[16] = {
    (hil_vector_t)(uintptr_t)__hil_stack_end, /* initial SP */
    hil_reset_handler,
    hil_fault_entry, /* NMI */
    hil_fault_entry, /* HardFault */
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    hil_fault_entry, /* SVCall */
    0,
    0,
    hil_fault_entry, /* PendSV */
    hil_systick_isr,
};

void hil_reset_handler(void)
{
    hil_crt_start();
}
