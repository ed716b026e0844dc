/*
 * nano33ble port: nRF52840 at 64 MHz from the crystal (HFXO), UARTE0 on the header pins TX
 * (P1.03) and RX (P1.10) at 115200 baud with EasyDMA buffers in RAM, the DWT cycle counter
 * as time counter, the flash instruction cache on. Register facts: docs/boards.md.
 *
 * EasyDMA reads and writes RAM only, so every byte sent is first copied into tx_buf, and
 * bytes are received one per DMA transfer into a RAM ring: SHORTS ENDRX_STARTRX restarts
 * reception at once in hardware, and the next slot's address (RXD.PTR is double-buffered)
 * is handed over at each RXSTARTED event. rx_pump() does that bookkeeping; every wait loop
 * here calls it, so reception keeps going while a response is sent.
 */
#include <stdint.h>

#include "hil_dwt.h"
#include "hil_port.h"
#include "nano_uarte.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define CLOCK_TASKS_HFCLKSTART REG(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED REG(0x40000100u)

#define NVMC_ICACHECNF REG(0x4001E540u)
#define ICACHECNF_CACHEEN (1u << 0)
/* The instruction cache setting every benchmark of this board runs with (board.toml's
 * [memory] icache says the same; tests/boards checks that they agree). */
#define NANO_ICACHE_ENABLED 1

#define P1_OUTSET REG(0x50000808u)
#define P1_DIRSET REG(0x50000818u)
#define P1_PIN_CNF(n) REG(0x50000A00u + 4u * (n))
#define PIN_CNF_INPUT_CONNECTED_NOPULL 0u

#define UARTE0 0x40002000u
#define TASKS_STARTRX REG(UARTE0 + 0x000u)
#define TASKS_STARTTX REG(UARTE0 + 0x008u)
#define TASKS_STOPTX REG(UARTE0 + 0x00Cu)
#define EVENTS_ENDRX REG(UARTE0 + 0x110u)
#define EVENTS_ENDTX REG(UARTE0 + 0x120u)
#define EVENTS_ERROR REG(UARTE0 + 0x124u)
#define EVENTS_RXSTARTED REG(UARTE0 + 0x14Cu)
#define EVENTS_TXSTOPPED REG(UARTE0 + 0x158u)
#define SHORTS REG(UARTE0 + 0x200u)
#define ERRORSRC REG(UARTE0 + 0x480u)
#define ENABLE REG(UARTE0 + 0x500u)
#define PSEL_RTS REG(UARTE0 + 0x508u)
#define PSEL_TXD REG(UARTE0 + 0x50Cu)
#define PSEL_CTS REG(UARTE0 + 0x510u)
#define PSEL_RXD REG(UARTE0 + 0x514u)
#define BAUDRATE REG(UARTE0 + 0x524u)
#define RXD_PTR REG(UARTE0 + 0x534u)
#define RXD_MAXCNT REG(UARTE0 + 0x538u)
#define TXD_PTR REG(UARTE0 + 0x544u)
#define TXD_MAXCNT REG(UARTE0 + 0x548u)
#define CONFIG REG(UARTE0 + 0x56Cu)
#define ENABLE_UARTE 8u
#define PSEL_DISCONNECTED 0xFFFFFFFFu
#define SHORTS_ENDRX_STARTRX (1u << 5)
#define CONFIG_8N1_NO_FLOW 0u

#define CORE_CLOCK_HZ 64000000u
#define RX_RING_BYTES 256u /* a power of two */
#define TX_BUF_BYTES 64u

static volatile uint8_t rx_ring[RX_RING_BYTES];
static uint32_t rx_received; /* bytes that landed in the ring (ENDRX events) */
static uint32_t rx_taken;    /* bytes hil_port_getc returned */
static uint32_t rx_armed;    /* ring slots handed to the UARTE */
static uint8_t tx_buf[TX_BUF_BYTES];
static int tx_busy;

static void rx_arm_next(void)
{
    RXD_PTR = (uint32_t)(uintptr_t)&rx_ring[rx_armed % RX_RING_BYTES];
    rx_armed++;
}

static void rx_pump(void)
{
    if (EVENTS_RXSTARTED) { /* the current slot is latched: hand over the next one */
        EVENTS_RXSTARTED = 0u;
        rx_arm_next();
    }
    if (EVENTS_ENDRX) {
        EVENTS_ENDRX = 0u;
        rx_received++;
    }
    if (EVENTS_ERROR) { /* framing/overrun: the byte is still delivered; clear and go on */
        EVENTS_ERROR = 0u;
        ERRORSRC = ERRORSRC;
    }
}

static void tx_wait(void)
{
    while (tx_busy && !EVENTS_ENDTX) {
        rx_pump();
    }
    tx_busy = 0;
}

static void hfxo_start(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
    CLOCK_TASKS_HFCLKSTART = 1u;
    while (!CLOCK_EVENTS_HFCLKSTARTED) {
    }
    CLOCK_EVENTS_HFCLKSTARTED = 0u;
}

static void uarte_init(void)
{
    ENABLE = 0u; /* pins and baud rate may only change while disabled */
    P1_OUTSET = 1u << NANO_TX_PIN; /* TX idles high */
    P1_DIRSET = 1u << NANO_TX_PIN;
    P1_PIN_CNF(NANO_RX_PIN) = PIN_CNF_INPUT_CONNECTED_NOPULL;
    PSEL_RTS = PSEL_DISCONNECTED;
    PSEL_CTS = PSEL_DISCONNECTED;
    PSEL_TXD = NANO_PSEL_TXD;
    PSEL_RXD = NANO_PSEL_RXD;
    BAUDRATE = NANO_UARTE_BAUDRATE;
    CONFIG = CONFIG_8N1_NO_FLOW;
    ENABLE = ENABLE_UARTE;

    rx_received = rx_taken = rx_armed = 0u;
    tx_busy = 0;
    EVENTS_RXSTARTED = 0u;
    EVENTS_ENDRX = 0u;
    EVENTS_ENDTX = 0u;
    RXD_MAXCNT = 1u;
    SHORTS = SHORTS_ENDRX_STARTRX;
    rx_arm_next();
    TASKS_STARTRX = 1u;
}

void hil_port_init(void)
{
    hfxo_start(); /* the UARTE's baud rate is only as accurate as HFCLK */
    NVMC_ICACHECNF = NANO_ICACHE_ENABLED ? ICACHECNF_CACHEEN : 0u;
    uarte_init();
    hil_port_time_start();
}

void hil_port_write(const uint8_t *data, uint32_t n)
{
    while (n > 0u) {
        const uint32_t chunk = n < TX_BUF_BYTES ? n : TX_BUF_BYTES;
        tx_wait();
        for (uint32_t i = 0; i < chunk; i++) {
            tx_buf[i] = data[i];
        }
        TXD_PTR = (uint32_t)(uintptr_t)tx_buf;
        TXD_MAXCNT = chunk;
        EVENTS_ENDTX = 0u;
        TASKS_STARTTX = 1u;
        tx_busy = 1;
        data += chunk;
        n -= chunk;
    }
}

void hil_port_putc(uint8_t c)
{
    hil_port_write(&c, 1u);
}

uint8_t hil_port_getc(void)
{
    while (rx_received == rx_taken) {
        rx_pump();
    }
    const uint8_t c = rx_ring[rx_taken % RX_RING_BYTES];
    rx_taken++;
    return c;
}

void hil_port_flush(void)
{
    tx_wait();
    EVENTS_TXSTOPPED = 0u;
    TASKS_STOPTX = 1u; /* TXSTOPPED comes once the transmitter has finished */
    while (!EVENTS_TXSTOPPED) {
        rx_pump();
    }
}

void hil_port_time_start(void)
{
    hil_dwt_start();
}

uint32_t hil_port_time_now(void)
{
    return hil_dwt_now();
}

uint32_t hil_port_counts_per_second(void)
{
    return CORE_CLOCK_HZ;
}

void hil_port_exit(int code)
{
    (void)code; /* no semihosting on a board: the host saw the FAULT frame */
    hil_port_flush();
    for (;;) {
        __asm volatile("wfi");
    }
}
