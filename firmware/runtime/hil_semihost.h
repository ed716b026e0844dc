/*
 * Semihosting exit: under QEMU (-semihosting-config enable=on) SYS_EXIT_EXTENDED ends the
 * emulator with the given exit code. On hardware without a debugger attached the BKPT
 * instruction faults, so only emulated boards use this.
 */
#ifndef HIL_SEMIHOST_H
#define HIL_SEMIHOST_H

void hil_semihost_exit(int code) __attribute__((noreturn));

#endif /* HIL_SEMIHOST_H */
