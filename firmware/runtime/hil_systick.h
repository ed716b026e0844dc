/*
 * A 32-bit time counter from the Cortex-M SysTick timer (ARMv6-M and ARMv7-M alike): the
 * 24-bit down-counter runs from the processor clock and its wrap interrupt extends it.
 * Boards whose only usable counter is SysTick (all QEMU machines: DWT CYCCNT reads 0 there)
 * build their hil_port_time_now() on this.
 */
#ifndef HIL_SYSTICK_H
#define HIL_SYSTICK_H

#include <stdint.h>

/* (Re)start SysTick from zero on the processor clock with the wrap interrupt enabled; returns
 * once the counter runs. Restarting fixes the phase of the tick relative to the code that
 * follows, which makes counts under QEMU -icount repeat exactly. */
void hil_systick_start(void);

/* Counts since the last hil_systick_start(); wraps at 2^32. Safe against a wrap between reads. */
uint32_t hil_systick_now(void);

/* SysTick exception handler: the board's vector table points its SysTick entry here. */
void hil_systick_isr(void);

#endif /* HIL_SYSTICK_H */
