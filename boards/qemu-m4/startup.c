/*
 * qemu-m4 (QEMU mps2-an386, Cortex-M4F): vector table and reset handler.
 */
#include <stdint.h>

#include "hil_startup.h"
#include "hil_systick.h"

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)

typedef void (*hil_vector_t)(void);

void hil_reset_handler(void) __attribute__((noreturn));

/* System exceptions only: the firmware enables no peripheral interrupt. Every fault and
 * unexpected exception goes to the runtime's fault reporter. */
__attribute__((section(".hil_vectors"), used)) const hil_vector_t hil_vectors[16] = {
    (hil_vector_t)(uintptr_t)__hil_stack_end, /* initial SP */
    hil_reset_handler,
    hil_fault_entry, /* NMI */
    hil_fault_entry, /* HardFault */
    hil_fault_entry, /* MemManage */
    hil_fault_entry, /* BusFault */
    hil_fault_entry, /* UsageFault */
    0,
    0,
    0,
    0,
    hil_fault_entry, /* SVCall */
    hil_fault_entry, /* DebugMonitor */
    0,
    hil_fault_entry, /* PendSV */
    hil_systick_isr,
};

void hil_reset_handler(void)
{
    /* The kernels are built with -mfloat-abi=hard: the FPU must be on before any C code
     * that might touch an FP register. */
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm volatile("dsb\n\tisb" ::: "memory");
    hil_crt_start();
}
