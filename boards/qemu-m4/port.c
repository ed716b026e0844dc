/*
 * qemu-m4 port: CMSDK APB UART0 for the host link, SysTick (25 MHz system clock of the
 * mps2-an386 model) as time counter, semihosting exit.
 */
#include <stdint.h>

#include "hil_port.h"
#include "hil_semihost.h"
#include "hil_systick.h"

#ifndef HIL_BAUDRATE
#error "HIL_BAUDRATE must be defined (the build passes board.toml's serial.baudrate)"
#endif

#define SYSCLK_HZ 25000000u

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)

void hil_port_init(void)
{
    UART_BAUDDIV = SYSCLK_HZ / HIL_BAUDRATE;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN;
    hil_port_time_start();
}

void hil_port_putc(uint8_t c)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
    UART_DATA = c;
}

uint8_t hil_port_getc(void)
{
    while (!(UART_STATE & STATE_RX_FULL)) {
    }
    return (uint8_t)UART_DATA;
}

void hil_port_flush(void)
{
    while (UART_STATE & STATE_TX_FULL) {
    }
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
    return SYSCLK_HZ;
}

void hil_port_exit(int code)
{
    hil_port_flush();
    hil_semihost_exit(code);
}
