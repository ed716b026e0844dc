#include "hil_dwt.h"

/* ARMv7-M debug registers (CoreDebug DEMCR and the DWT; addresses in docs/boards.md). */
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)

int hil_dwt_present(void)
{
    return (DWT_CTRL & DWT_CTRL_NOCYCCNT) == 0u;
}

void hil_dwt_start(void)
{
    /* TRCENA first: until it is set the DWT's registers ignore writes. */
    DEMCR |= DEMCR_TRCENA;
    DWT_CTRL &= ~DWT_CTRL_CYCCNTENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
}

uint32_t hil_dwt_now(void)
{
    return DWT_CYCCNT;
}
