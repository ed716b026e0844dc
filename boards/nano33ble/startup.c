/*
 * nano33ble start-up: the Arduino bootloader (or a debugger reset) enters the reset vector of
 * this table at 0x10000. Whether the bootloader points VTOR here is not known, so the reset
 * handler does it before anything can raise an exception. On nRF52840 revisions with
 * hardened APPROTECT the debug port locks again at every reset unless firmware opens it:
 * when UICR.APPROTECT says "HwDisabled" (0x5A), write APPROTECT.DISABLE = 0x5A, as nrfx's
 * SystemInit does; older revisions are left alone (writing 0x5A there would lock them).
 * The FPU is turned on by hil_crt_start (the code is built for it). The nRF52840's NVIC has
 * 48 device interrupts.
 */
#include "hil_startup.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SCB_VTOR REG(0xE000ED08u)
#define FICR_HW_VARIANT_WORD REG(0x10000130u)
#define FICR_HW_REVISION_WORD REG(0x10000134u)
#define UICR_APPROTECT REG(0x10001208u)
#define APPROTECT_DISABLE REG(0x40000558u)
#define APPROTECT_HW_DISABLED 0x5Au
#define APPROTECT_SW_DISABLE 0x5Au

extern const hil_vector_t hil_vectors[];

static int hardened_approtect(void)
{
    return FICR_HW_VARIANT_WORD == 8u && FICR_HW_REVISION_WORD >= 5u;
}

void hil_reset_handler(void)
{
    SCB_VTOR = (uint32_t)(uintptr_t)hil_vectors;
    __asm volatile("dsb\n\tisb" ::: "memory");
    if (hardened_approtect() && UICR_APPROTECT == APPROTECT_HW_DISABLED) {
        APPROTECT_DISABLE = APPROTECT_SW_DISABLE;
    }
    hil_crt_start();
}

HIL_VECTOR_TABLE(48);
