/*
 * What a board's startup code and linker script share with the runtime.
 *
 * Every board's linker script defines its MEMORY regions and stack size and then INCLUDEs
 * firmware/runtime/hil_sections.ld, which places the sections and defines the symbols below.
 * The board's reset handler does its core-specific set-up (FPU, VTOR, clocks before .data
 * exists) and then calls hil_crt_start().
 */
#ifndef HIL_STARTUP_H
#define HIL_STARTUP_H

#include <stdint.h>

extern uint32_t __hil_data_load[];  /* initial image of .data in flash */
extern uint32_t __hil_data_start[]; /* .data in RAM, word aligned */
extern uint32_t __hil_data_end[];
extern uint32_t __hil_bss_start[]; /* .bss, word aligned */
extern uint32_t __hil_bss_end[];
extern uint32_t __hil_stack_start[]; /* lowest address of the main stack */
extern uint32_t __hil_stack_end[];   /* initial SP: the stack grows down from here */

/* Copy .data, zero .bss and run main(). */
void hil_crt_start(void) __attribute__((noreturn));

/* Vector-table entry for HardFault and every other fault or unexpected exception: reports
 * the fault to the host as a FAULT frame and exits with HIL_EXIT_FAULT. */
void hil_fault_entry(void);

#endif /* HIL_STARTUP_H */
