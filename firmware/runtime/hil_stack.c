#include "hil_runtime.h"
#include "hil_startup.h"

#define STACK_PATTERN 0x5AC3C35Au
/* Words left unpainted just below the painter's own stack pointer. */
#define PAINT_MARGIN_WORDS 4u

void hil_stack_paint(void)
{
    uint32_t primask;
    uint32_t *sp;
    /* Masked interrupts: no exception frame can land in the region while it is painted. */
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    __asm volatile("mov %0, sp" : "=r"(sp));
    /* volatile, so the compiler cannot turn the loop into a memset call whose own frame
     * would sit in the region being painted */
    volatile uint32_t *p = __hil_stack_start;
    while (p < sp - PAINT_MARGIN_WORDS) {
        *p++ = STACK_PATTERN;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

uint32_t hil_stack_peak_bytes(void)
{
    const volatile uint32_t *p = __hil_stack_start;
    while (p < __hil_stack_end && *p == STACK_PATTERN) {
        p++;
    }
    return (uint32_t)((const uint32_t *)__hil_stack_end - (const uint32_t *)p) * 4u;
}

uint32_t hil_stack_depth_bytes(uintptr_t sp)
{
    return (uint32_t)((uintptr_t)__hil_stack_end - sp);
}

uint32_t hil_stack_size_bytes(void)
{
    return (uint32_t)(__hil_stack_end - __hil_stack_start) * 4u;
}
