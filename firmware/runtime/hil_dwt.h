/*
 * A 32-bit cycle counter from the DWT of an ARMv7-M core (Cortex-M3/M4/M7): CYCCNT counts
 * processor clock cycles. Boards with a DWT (the Nano 33 BLE Sense's Cortex-M4F) build their
 * hil_port_time_now() on this; ARMv6-M cores (Cortex-M0/M0+) have no cycle counter and QEMU
 * reads CYCCNT as 0, so those use hil_systick.h instead.
 */
#ifndef HIL_DWT_H
#define HIL_DWT_H

#include <stdint.h>

/* Whether the core has a cycle counter (DWT_CTRL.NOCYCCNT clear). Call after
 * hil_dwt_start(): the DWT reads as zero until DEMCR.TRCENA is set. */
int hil_dwt_present(void);

/* Set DEMCR.TRCENA (the DWT is powered off without it), zero CYCCNT and start it. */
void hil_dwt_start(void);

/* Cycles since the last hil_dwt_start(); wraps at 2^32 (67 s at 64 MHz). */
uint32_t hil_dwt_now(void);

#endif /* HIL_DWT_H */
