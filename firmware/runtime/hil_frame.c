#include "hil_frame.h"

#include "hil_port.h"

static uint16_t tx_crc;

uint16_t hil_crc16(uint16_t crc, const uint8_t *data, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

void hil_frame_receive(hil_request_t *req)
{
    for (;;) {
        while (hil_port_getc() != HIL_SOF) {
        }
        uint8_t header[4];
        for (int i = 0; i < 4; i++) {
            header[i] = hil_port_getc();
        }
        req->type = header[0];
        req->seq = header[1];
        req->len = (uint16_t)(header[2] | (header[3] << 8));
        if (req->len > HIL_MAX_PAYLOAD) {
            hil_frame_error(req->seq, HIL_ERR_TOO_LONG, req->type, HIL_MAX_PAYLOAD);
            continue;
        }
        for (uint32_t i = 0; i < req->len; i++) {
            req->payload[i] = hil_port_getc();
        }
        uint16_t received = hil_port_getc();
        received |= (uint16_t)(hil_port_getc() << 8);
        uint16_t crc = hil_crc16(0xFFFFu, header, sizeof header);
        crc = hil_crc16(crc, req->payload, req->len);
        if (crc == received) {
            return;
        }
        hil_frame_error(req->seq, HIL_ERR_BAD_CRC, req->type, crc);
    }
}

void hil_frame_put(const void *data, uint32_t n)
{
    const uint8_t *bytes = data;
    tx_crc = hil_crc16(tx_crc, bytes, n);
    hil_port_write(bytes, n);
}

void hil_frame_put_u8(uint8_t v)
{
    hil_frame_put(&v, 1);
}

void hil_frame_put_u16(uint16_t v)
{
    const uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    hil_frame_put(b, sizeof b);
}

void hil_frame_put_u32(uint32_t v)
{
    const uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    hil_frame_put(b, sizeof b);
}

void hil_frame_begin(uint8_t type, uint8_t seq, uint16_t len)
{
    hil_port_putc(HIL_SOF);
    tx_crc = 0xFFFFu;
    hil_frame_put_u8(type);
    hil_frame_put_u8(seq);
    hil_frame_put_u16(len);
}

void hil_frame_end(void)
{
    const uint16_t crc = tx_crc;
    hil_port_putc((uint8_t)crc);
    hil_port_putc((uint8_t)(crc >> 8));
}

void hil_frame_error(uint8_t seq, uint8_t code, uint8_t req_type, uint32_t detail)
{
    hil_frame_begin(HIL_RSP_ERROR, seq, 6);
    hil_frame_put_u8(code);
    hil_frame_put_u8(req_type);
    hil_frame_put_u32(detail);
    hil_frame_end();
}
