/*
 * Framing of the host protocol on top of the board's byte link: receive one CRC-checked
 * request, and stream a response frame without buffering it (the CRC is computed on the fly).
 */
#ifndef HIL_FRAME_H
#define HIL_FRAME_H

#include <stdint.h>

#include "hil_protocol.h"

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    uint8_t payload[HIL_MAX_PAYLOAD];
} hil_request_t;

/* CRC-16/CCITT-FALSE (poly 0x1021, no reflection) continued from `crc` over `n` bytes;
 * start with 0xFFFF. */
uint16_t hil_crc16(uint16_t crc, const uint8_t *data, uint32_t n);

/* Block until a well-formed request arrives. Malformed frames (bad CRC, over-long) are
 * answered with an ERROR frame and skipped: the receiver resynchronises on the next SOF. */
void hil_frame_receive(hil_request_t *req);

/* Streamed response: begin (header), any number of put calls totalling exactly `len`
 * bytes, end (CRC). */
void hil_frame_begin(uint8_t type, uint8_t seq, uint16_t len);
void hil_frame_put(const void *data, uint32_t n);
void hil_frame_put_u8(uint8_t v);
void hil_frame_put_u16(uint16_t v);
void hil_frame_put_u32(uint32_t v);
void hil_frame_end(void);

/* A complete ERROR frame: code, the request type it answers, a detail word (a limit). */
void hil_frame_error(uint8_t seq, uint8_t code, uint8_t req_type, uint32_t detail);

#endif /* HIL_FRAME_H */
