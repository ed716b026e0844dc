#include "hil_systick.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)

#define CSR_ENABLE (1u << 0)
#define CSR_TICKINT (1u << 1)
#define CSR_CLKSOURCE_CPU (1u << 2)
#define ICSR_PENDSTSET (1u << 26)
#define RELOAD 0x00FFFFFFu

static volatile uint32_t wraps;

void hil_systick_isr(void)
{
    wraps++;
}

void hil_systick_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = RELOAD;
    SYST_CVR = 0; /* any write clears the counter; it reloads from RVR on the next tick */
    wraps = 0;
    SYST_CSR = CSR_ENABLE | CSR_TICKINT | CSR_CLKSOURCE_CPU;
    /* QEMU reads 0 until the first reload: only then is the counter really running. */
    while (SYST_CVR == 0) {
    }
}

uint32_t hil_systick_now(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    uint32_t high = wraps;
    uint32_t current = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) {
        /* The counter wrapped but the interrupt has not run yet (interrupts are masked here):
         * count that wrap ourselves and re-read, since `current` may predate it. */
        high++;
        current = SYST_CVR;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    return high * (RELOAD + 1u) + (RELOAD - current);
}
