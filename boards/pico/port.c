/*
 * pico port: RP2040 clocks (12 MHz crystal -> PLL_SYS 125 MHz for clk_sys and clk_peri),
 * UART0 on GP0 (TX) / GP1 (RX), SysTick on the core clock as time counter, with the 1 MHz
 * TIMER as a cross-check of that clock. Register facts and their sources: docs/boards.md.
 *
 * A debugger reset (SYSRESETREQ) restarts only the cores: clocks, PLL and peripherals keep
 * their state. So init never assumes reset values: the clock muxes are moved off the PLL
 * before it is reset and set up again, and UART0, the TIMER and the GPIO banks are put
 * through RESETS (held, then released) before they are configured.
 */
#include <stdint.h>

#include "hil_port.h"
#include "hil_systick.h"
#include "pico_clocks.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
/* Atomic register aliases: writing a mask sets or clears those bits only. */
#define SET(addr) REG((addr) + 0x2000u)
#define CLR(addr) REG((addr) + 0x3000u)

#define RESETS_RESET 0x4000C000u
#define RESETS_DONE 0x4000C008u
#define RESET_IO_BANK0 (1u << 5)
#define RESET_PADS_BANK0 (1u << 8)
#define RESET_PLL_SYS (1u << 12)
#define RESET_TIMER (1u << 21)
#define RESET_UART0 (1u << 22)

#define CLK_REF_CTRL 0x40008030u
#define CLK_REF_DIV 0x40008034u
#define CLK_REF_SELECTED 0x40008038u
#define CLK_SYS_CTRL 0x4000803Cu
#define CLK_SYS_DIV 0x40008040u
#define CLK_SYS_SELECTED 0x40008044u
#define CLK_PERI_CTRL 0x40008048u
#define CLK_SYS_RESUS_CTRL 0x40008078u

#define XOSC_CTRL 0x40024000u
#define XOSC_STATUS 0x40024004u
#define XOSC_STARTUP 0x4002400Cu
#define XOSC_FREQ_RANGE_1_15MHZ 0xAA0u
#define XOSC_ENABLE (0xFABu << 12)
#define XOSC_STABLE (1u << 31)

#define PLL_SYS_CS 0x40028000u
#define PLL_SYS_PWR 0x40028004u
#define PLL_SYS_FBDIV_INT 0x40028008u
#define PLL_SYS_PRIM 0x4002800Cu
#define PLL_LOCK (1u << 31)
#define PLL_PWR_PD (1u << 0)
#define PLL_PWR_POSTDIVPD (1u << 3)
#define PLL_PWR_VCOPD (1u << 5)

#define WATCHDOG_TICK 0x4005802Cu
#define TIMER_TIMERAWL 0x40054028u

#define IO_BANK0_GPIO0_CTRL 0x40014004u
#define IO_BANK0_GPIO1_CTRL 0x4001400Cu
#define PADS_BANK0_GPIO0 0x4001C004u
#define PADS_BANK0_GPIO1 0x4001C008u
#define FUNCSEL_UART 2u
#define PAD_IE (1u << 6)
#define PAD_OD (1u << 7)

#define UART0_BASE 0x40034000u
#define UART_DR REG(UART0_BASE + 0x00u)
#define UART_FR REG(UART0_BASE + 0x18u)
#define UART_IBRD REG(UART0_BASE + 0x24u)
#define UART_FBRD REG(UART0_BASE + 0x28u)
#define UART_LCR_H REG(UART0_BASE + 0x2Cu)
#define UART_CR REG(UART0_BASE + 0x30u)
#define FR_BUSY (1u << 3)
#define FR_RXFE (1u << 4)
#define FR_TXFF (1u << 5)
#define LCR_H_8N1_FIFO 0x70u
#define CR_UARTEN_TXE_RXE 0x301u

/* Counts per second reported to the host: the nominal core clock, or what the TIMER
 * cross-check measured when the two disagree (see cross_check_clock). */
static uint32_t counts_per_second = PICO_CORE_CLOCK_HZ;

static void reset_cycle(uint32_t mask)
{
    SET(RESETS_RESET) = mask;
    CLR(RESETS_RESET) = mask;
    while ((REG(RESETS_DONE) & mask) != mask) {
    }
}

static void clocks_init(void)
{
    REG(CLK_SYS_RESUS_CTRL) = 0u;

    REG(XOSC_CTRL) = XOSC_FREQ_RANGE_1_15MHZ;
    REG(XOSC_STARTUP) = PICO_XOSC_STARTUP_DELAY;
    REG(XOSC_CTRL) = XOSC_ENABLE | XOSC_FREQ_RANGE_1_15MHZ;
    while (!(REG(XOSC_STATUS) & XOSC_STABLE)) {
    }

    /* Glitchless muxes off their aux sources (the PLL may be running from an earlier boot). */
    CLR(CLK_SYS_CTRL) = 1u; /* SRC = clk_ref */
    while (REG(CLK_SYS_SELECTED) != 1u) {
    }
    CLR(CLK_REF_CTRL) = 3u; /* SRC = ROSC */
    while (REG(CLK_REF_SELECTED) != 1u) {
    }

    reset_cycle(RESET_PLL_SYS);
    REG(PLL_SYS_CS) = PICO_PLL_REFDIV;
    REG(PLL_SYS_FBDIV_INT) = PICO_PLL_FBDIV;
    CLR(PLL_SYS_PWR) = PLL_PWR_PD | PLL_PWR_VCOPD;
    while (!(REG(PLL_SYS_CS) & PLL_LOCK)) {
    }
    REG(PLL_SYS_PRIM) = PICO_PLL_PRIM;
    CLR(PLL_SYS_PWR) = PLL_PWR_POSTDIVPD;

    REG(CLK_REF_CTRL) = (REG(CLK_REF_CTRL) & ~3u) | 2u; /* clk_ref = XOSC */
    while (!(REG(CLK_REF_SELECTED) & 4u)) {
    }
    REG(CLK_REF_DIV) = 1u << 8;

    CLR(CLK_SYS_CTRL) = 0x7u << 5; /* AUXSRC = pll_sys, while SRC is still clk_ref */
    SET(CLK_SYS_CTRL) = 1u;        /* SRC = aux */
    while (!(REG(CLK_SYS_SELECTED) & 2u)) {
    }
    REG(CLK_SYS_DIV) = 1u << 8;

    REG(CLK_PERI_CTRL) = 1u << 11; /* enabled, AUXSRC = clk_sys */

    REG(WATCHDOG_TICK) = PICO_WATCHDOG_TICK; /* 1 us tick for the TIMER */
}

static void uart_init(void)
{
    REG(IO_BANK0_GPIO0_CTRL) = FUNCSEL_UART;
    REG(IO_BANK0_GPIO1_CTRL) = FUNCSEL_UART;
    REG(PADS_BANK0_GPIO0) = (REG(PADS_BANK0_GPIO0) & ~PAD_OD) | PAD_IE;
    REG(PADS_BANK0_GPIO1) = (REG(PADS_BANK0_GPIO1) & ~PAD_OD) | PAD_IE;
    UART_CR = 0u;
    UART_IBRD = PICO_UART_IBRD;
    UART_FBRD = PICO_UART_FBRD;
    UART_LCR_H = LCR_H_8N1_FIFO; /* also latches the divisors */
    UART_CR = CR_UARTEN_TXE_RXE;
}

/* SysTick cycles over 10 ms of the 1 MHz TIMER. Both come from the crystal, so they agree
 * unless the PLL or the tick is set up wrong; then the host is told the measured rate (and
 * its check against board.toml's clock fails) instead of a wrong nominal one. */
#define CROSS_CHECK_US 10000u

static void cross_check_clock(void)
{
    hil_systick_start();
    uint32_t t0 = REG(TIMER_TIMERAWL);
    while (REG(TIMER_TIMERAWL) == t0) { /* start on a tick edge */
    }
    t0 = REG(TIMER_TIMERAWL);
    const uint32_t c0 = hil_systick_now();
    while (REG(TIMER_TIMERAWL) - t0 < CROSS_CHECK_US) {
    }
    const uint32_t cycles = hil_systick_now() - c0;
    const uint32_t measured = cycles * (1000000u / CROSS_CHECK_US);
    const uint32_t tolerance = PICO_CORE_CLOCK_HZ / 200u; /* 0.5 % */
    if (measured + tolerance < PICO_CORE_CLOCK_HZ || measured > PICO_CORE_CLOCK_HZ + tolerance) {
        counts_per_second = measured;
    }
}

void hil_port_init(void)
{
    clocks_init();
    reset_cycle(RESET_IO_BANK0 | RESET_PADS_BANK0 | RESET_TIMER | RESET_UART0);
    uart_init();
    cross_check_clock();
    hil_port_time_start();
}

void hil_port_putc(uint8_t c)
{
    while (UART_FR & FR_TXFF) {
    }
    UART_DR = c;
}

uint8_t hil_port_getc(void)
{
    while (UART_FR & FR_RXFE) {
    }
    return (uint8_t)UART_DR; /* bits 11:8 are error flags */
}

void hil_port_flush(void)
{
    while (UART_FR & FR_BUSY) { /* FIFO empty and the last stop bit sent */
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
    return counts_per_second;
}

void hil_port_exit(int code)
{
    (void)code; /* no semihosting on a board: the host saw the FAULT frame */
    hil_port_flush();
    for (;;) {
        __asm volatile("wfi");
    }
}
