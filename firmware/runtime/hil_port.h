/*
 * What a board implements so the runtime can run on it: clocks and I/O set-up, a byte-wide
 * serial link, a free-running time counter, and a way to stop. Nothing more: everything else
 * (protocol, timing loops, stack painting, fault reports) is board-independent.
 *
 * A board folder (boards/<name>/) provides port.c with these functions and its linker script;
 * the vector table and reset handler are the runtime's (hil_startup.c).
 */
#ifndef HIL_PORT_H
#define HIL_PORT_H

#include <stdint.h>

/* Bring up clocks, the UART the host talks to, and the time counter. */
void hil_port_init(void);

/* Blocking write of one byte to the host link. */
void hil_port_putc(uint8_t c);

/* Blocking write of `n` bytes to the host link. The runtime sends every response payload
 * through this; the default (hil_port_write.c, weak) calls hil_port_putc per byte. A board
 * whose UART moves blocks by DMA (the nRF52840's UARTE) overrides it. `data` may point into
 * flash: a DMA port copies it into a RAM buffer first. */
void hil_port_write(const uint8_t *data, uint32_t n);

/* Blocking read of one byte from the host link. */
uint8_t hil_port_getc(void);

/* Wait until every byte written so far has left the UART (before a reset or exit). */
void hil_port_flush(void);

/* (Re)start the time counter: the runtime calls this right before each timed inference.
 * A counter that can be restarted (SysTick, DWT CYCCNT) restarts here, so every inference
 * starts at the same phase of the counter's tick and an instruction-counting emulator
 * (QEMU -icount) gives identical counts for identical work. A free-running timer that
 * cannot be restarted may do nothing. */
void hil_port_time_start(void);

/* Monotonic 32-bit time counter in board counts (see hil_port_counts_per_second).
 * It must not wrap during one inference of any model that fits the board. */
uint32_t hil_port_time_now(void);

/* Frequency of hil_port_time_now() counts, in Hz. */
uint32_t hil_port_counts_per_second(void);

/* Stop the target with an exit code (semihosting exit under QEMU; a breakpoint/loop on
 * hardware). Never returns. */
void hil_port_exit(int code) __attribute__((noreturn));

#endif /* HIL_PORT_H */
