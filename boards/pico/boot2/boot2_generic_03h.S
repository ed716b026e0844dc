/*
 * boot2 for the Raspberry Pi Pico: the RP2040's boot ROM copies the first 256 bytes of flash
 * to SRAM (0x20041F00), checks the CRC-32/MPEG-2 of the first 252 bytes against the last word
 * and runs them. This stage sets the XIP SSI up for plain serial 03h reads (any 03h-capable
 * flash part), then enters the application: VTOR = 0x10000100, MSP and the reset vector from
 * the table there. Position-independent Thumb-1 using only r0-r3 and the stack.
 *
 * Written for this project from the register facts in docs/boards.md. make_boot2.py
 * assembles it, pads it to 252 bytes and appends the CRC into ../boot2_image.c.
 */
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .text
    .global boot2_entry
    .type boot2_entry, %function
    .thumb_func
boot2_entry:
    push {lr}                   /* LR = 0 when the boot ROM called us */
    ldr r3, =0x18000000         /* XIP_SSI */
    movs r1, #0
    str r1, [r3, #0x08]         /* SSIENR = 0: the SSI takes settings only while disabled */
    movs r1, #4
    str r1, [r3, #0x14]         /* BAUDR = 4: SCK = clk_sys / 4 */
    ldr r1, =0x001F0300
    str r1, [r3, #0x00]         /* CTRLR0: standard SPI, 32-bit frames, EEPROM read mode */
    ldr r1, =0x03000218
    movs r2, #0xF4
    str r1, [r3, r2]            /* SPI_CTRLR0: command 03h, 8-bit instruction, 24-bit address */
    movs r1, #0
    str r1, [r3, #0x04]         /* CTRLR1: NDF = 0, one data frame per read */
    movs r1, #1
    str r1, [r3, #0x08]         /* SSIENR = 1: XIP reads now work */
    pop {r0}
    cmp r0, #0
    beq enter_application
    bx r0                       /* called from user code: just return */
enter_application:
    ldr r0, =0x10000100         /* the application's vector table */
    ldr r1, =0xE000ED08         /* VTOR */
    str r0, [r1]
    ldr r1, [r0, #4]            /* reset vector (Thumb bit set) */
    ldr r0, [r0, #0]            /* initial stack pointer */
    msr msp, r0
    bx r1
    .ltorg
