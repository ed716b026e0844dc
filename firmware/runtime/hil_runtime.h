/*
 * Internals of the runtime shared between its files (not part of any board or model contract).
 */
#ifndef HIL_RUNTIME_H
#define HIL_RUNTIME_H

#include <stdint.h>

/* Sequence number of the request being served, so a fault report can name it. */
extern volatile uint8_t hil_current_seq;

/* Fill the unused part of the main stack (below the caller's frame) with a known pattern. */
void hil_stack_paint(void);

/* Bytes of the main stack in use at its deepest since the last hil_stack_paint(): everything
 * from the top of the stack down to the lowest word that no longer holds the pattern. */
uint32_t hil_stack_peak_bytes(void);

/* Size of the main stack reserved by the linker script. */
uint32_t hil_stack_size_bytes(void);

/* Bytes of the main stack in use above `sp` (from the top of the stack down to it). */
uint32_t hil_stack_depth_bytes(uintptr_t sp);

#endif /* HIL_RUNTIME_H */
