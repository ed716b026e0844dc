/* Default block write for boards whose UART takes one byte at a time (see hil_port.h). */
#include "hil_port.h"

__attribute__((weak)) void hil_port_write(const uint8_t *data, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        hil_port_putc(data[i]);
    }
}
