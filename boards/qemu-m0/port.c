/*
 * qemu-m0 port: the nRF51 UART (QEMU's microbit connects it to the first -serial), SysTick
 * on the 16 MHz core clock of the model as time counter, semihosting exit.
 */
#include <stdint.h>

#include "hil_port.h"
#include "hil_semihost.h"
#include "hil_systick.h"

#define CORE_CLOCK_HZ 16000000u

#define UART_BASE 0x40002000u
#define UART_REG(off) (*(volatile uint32_t *)(UART_BASE + (off)))
#define TASKS_STARTRX UART_REG(0x000u)
#define TASKS_STARTTX UART_REG(0x008u)
#define EVENTS_RXDRDY UART_REG(0x108u)
#define EVENTS_TXDRDY UART_REG(0x11Cu)
#define UART_ENABLE UART_REG(0x500u)
#define UART_RXD UART_REG(0x518u)
#define UART_TXD UART_REG(0x51Cu)
#define ENABLE_UART 4u

void hil_port_init(void)
{
    UART_ENABLE = ENABLE_UART;
    TASKS_STARTTX = 1;
    TASKS_STARTRX = 1;
    hil_port_time_start();
}

void hil_port_putc(uint8_t c)
{
    EVENTS_TXDRDY = 0;
    UART_TXD = c;
    while (!EVENTS_TXDRDY) {
    }
}

uint8_t hil_port_getc(void)
{
    while (!EVENTS_RXDRDY) {
    }
    /* Clear the event before reading RXD: the read lets the next byte in, which sets it again. */
    EVENTS_RXDRDY = 0;
    return (uint8_t)UART_RXD;
}

void hil_port_flush(void)
{
    /* hil_port_putc returns only after TXDRDY: nothing is left in flight. */
}

void hil_port_time_start(void)
{
    hil_systick_start();
}

uint32_t hil_port_time_now(void)
{
    return hil_systick_now();
}

uint32_t hil_port_counts_per_second(void)
{
    return CORE_CLOCK_HZ;
}

void hil_port_exit(int code)
{
    hil_port_flush();
    hil_semihost_exit(code);
}
