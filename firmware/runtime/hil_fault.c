/*
 * Fault reporting: any HardFault (or, on ARMv7-M, MemManage/BusFault/UsageFault and other
 * unexpected exceptions the vector table routes here) becomes a FAULT frame to the host, then
 * the target stops with HIL_EXIT_FAULT so the host sees a distinct exit code as well.
 */
#include <stdint.h>

#include "hil_frame.h"
#include "hil_port.h"
#include "hil_runtime.h"
#include "hil_startup.h"

#if HIL_ARMV7M_FAULTS
#define CORE_ARCH 7u
#else
#define CORE_ARCH 6u
#endif

#define REG(addr) (*(volatile uint32_t *)(addr))

void hil_fault_report(const uint32_t *frame) __attribute__((noreturn, used));

/* Hand the exception frame (on MSP or PSP, per EXC_RETURN bit 2) to hil_fault_report.
 * Thumb-1 only, so one entry serves ARMv6-M and ARMv7-M. */
__attribute__((naked)) void hil_fault_entry(void)
{
    __asm volatile(".syntax unified\n\t" /* GCC uses divided syntax for Thumb-1 asm */
                   "movs r0, #4\n\t"
                   "mov r1, lr\n\t"
                   "tst r0, r1\n\t"
                   "beq 1f\n\t"
                   "mrs r0, psp\n\t"
                   "b 2f\n"
                   "1:\n\t"
                   "mrs r0, msp\n"
                   "2:\n\t"
                   "ldr r2, =hil_fault_report\n\t"
                   "bx r2\n\t"
                   ".ltorg");
}

void hil_fault_report(const uint32_t *frame)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    /* Stacked r0-r3, r12, lr, pc, xpsr; only trusted if the frame lies in RAM. */
    const uint32_t *ram_start = __hil_data_start;
    const int frame_ok = ((uintptr_t)frame & 3u) == 0 && frame >= ram_start &&
                         frame + 8 <= (const uint32_t *)__hil_stack_end;
    const uint32_t lr = frame_ok ? frame[5] : 0;
    const uint32_t pc = frame_ok ? frame[6] : 0;
    const uint32_t xpsr = frame_ok ? frame[7] : 0;
#if HIL_ARMV7M_FAULTS
    const uint32_t cfsr = REG(0xE000ED28u);
    const uint32_t hfsr = REG(0xE000ED2Cu);
    const uint32_t mmfar = REG(0xE000ED34u);
    const uint32_t bfar = REG(0xE000ED38u);
#else
    const uint32_t cfsr = 0, hfsr = 0, mmfar = 0, bfar = 0;
#endif
    hil_frame_begin(HIL_RSP_FAULT, hil_current_seq, 36);
    hil_frame_put_u8((uint8_t)(ipsr & 0x1FFu));
    hil_frame_put_u8(CORE_ARCH);
    hil_frame_put_u8(frame_ok ? 1u : 0u);
    hil_frame_put_u8(0);
    hil_frame_put_u32(pc);
    hil_frame_put_u32(lr);
    hil_frame_put_u32(xpsr);
    hil_frame_put_u32((uint32_t)(uintptr_t)frame);
    hil_frame_put_u32(cfsr);
    hil_frame_put_u32(hfsr);
    hil_frame_put_u32(mmfar);
    hil_frame_put_u32(bfar);
    hil_frame_end();
    hil_port_flush();
    hil_port_exit(HIL_EXIT_FAULT);
}
