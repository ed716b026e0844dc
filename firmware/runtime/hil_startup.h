/*
 * What a board's startup.c (vector table, reset handler), the runtime's C start
 * (hil_startup.c) and its fault reporter share with the linker script.
 *
 * Every board's linker script defines its MEMORY regions and stack size and then INCLUDEs
 * firmware/runtime/hil_sections.ld, which places the sections and defines the symbols below.
 */
#ifndef HIL_STARTUP_H
#define HIL_STARTUP_H

#include <stdint.h>

#include "hil_systick.h"

/* ARMv7-M and ARMv8-M Mainline have configurable faults (MemManage, BusFault, UsageFault)
 * with status registers; ARMv6-M (Cortex-M0/M0+) has only HardFault. */
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
#define HIL_ARMV7M_FAULTS 1
#else
#define HIL_ARMV7M_FAULTS 0
#endif

extern uint32_t __hil_data_load[];  /* initial image of .data in flash */
extern uint32_t __hil_data_start[]; /* .data in RAM, word aligned */
extern uint32_t __hil_data_end[];
extern uint32_t __hil_bss_start[]; /* .bss, word aligned */
extern uint32_t __hil_bss_end[];
extern uint32_t __hil_stack_start[]; /* lowest address of the main stack */
extern uint32_t __hil_stack_end[];   /* initial SP: the stack grows down from here */

typedef void (*hil_vector_t)(void);

/* The reset entry each board's startup.c defines (the linker script's ENTRY). */
void hil_reset_handler(void) __attribute__((noreturn));

/* Copy .data, zero .bss (FPU first where the code uses one) and run main(). */
void hil_crt_start(void) __attribute__((noreturn));

/* Vector-table entry for HardFault and every other fault or unexpected exception: reports
 * the fault to the host as a FAULT frame and exits with HIL_EXIT_FAULT. */
void hil_fault_entry(void);

#if HIL_ARMV7M_FAULTS
#define HIL_ARMV7M_FAULT hil_fault_entry
#else
#define HIL_ARMV7M_FAULT 0 /* reserved on ARMv6-M */
#endif

/* The 16 system entries every Cortex-M vector table starts with: initial SP, reset, then
 * every fault and unused system exception to the fault reporter, SysTick to the time
 * counter. A board's table appends its device interrupts. */
#define HIL_SYSTEM_VECTORS(reset_handler)                                                     \
    (hil_vector_t)(uintptr_t)__hil_stack_end, reset_handler, hil_fault_entry, /* NMI */       \
        hil_fault_entry,                                                /* HardFault */      \
        HIL_ARMV7M_FAULT, HIL_ARMV7M_FAULT, HIL_ARMV7M_FAULT,           /* MemManage, Bus, Usage */ \
        0, 0, 0, 0, hil_fault_entry,                                    /* SVCall */         \
        HIL_ARMV7M_FAULT,                                               /* DebugMonitor */   \
        0, hil_fault_entry,                                             /* PendSV */         \
        hil_systick_isr

/* Defines a board's vector table: the system entries, then `device_irqs` device interrupts.
 * The firmware enables none of them; one that fires anyway is reported as an unexpected
 * exception. */
#define HIL_VECTOR_TABLE(device_irqs)                                                         \
    __attribute__((section(".hil_vectors"), used))                                            \
    const hil_vector_t hil_vectors[16 + (device_irqs)] = {                                    \
        HIL_SYSTEM_VECTORS(hil_reset_handler),                                                \
        [16 ... 16 + (device_irqs) - 1] = hil_fault_entry,                                    \
    }

#endif /* HIL_STARTUP_H */
