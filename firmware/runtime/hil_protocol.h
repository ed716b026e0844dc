/*
 * Host/device protocol constants. docs/protocol.md describes the frames; hil/link.py mirrors
 * these numbers. Change both sides together and bump HIL_PROTOCOL_VERSION.
 */
#ifndef HIL_PROTOCOL_H
#define HIL_PROTOCOL_H

#define HIL_PROTOCOL_VERSION 2u

/* Frame: SOF, type, seq, length (u16 LE), payload, CRC-16/CCITT-FALSE (u16 LE) over
 * type..payload. */
#define HIL_SOF 0xA5u
#define HIL_MAX_PAYLOAD 1024u

/* Requests (host to device). The response to request T has type T | HIL_RSP_FLAG. */
#define HIL_REQ_INFO 0x01u
#define HIL_REQ_WRITE_INPUT 0x02u
#define HIL_REQ_READ_OUTPUT 0x03u
#define HIL_REQ_RUN 0x04u
#define HIL_REQ_LAYER_COUNTS 0x05u
#define HIL_REQ_ECHO 0x06u
#define HIL_RSP_FLAG 0x80u

/* Frames the device sends on its own account. */
#define HIL_RSP_ERROR 0xE0u
#define HIL_RSP_FAULT 0xE1u

/* Error codes (first payload byte of an ERROR frame). */
#define HIL_ERR_BAD_CRC 1u
#define HIL_ERR_TOO_LONG 2u
#define HIL_ERR_UNKNOWN_REQUEST 3u
#define HIL_ERR_BAD_LENGTH 4u
#define HIL_ERR_BAD_INDEX 5u
#define HIL_ERR_BAD_RANGE 6u
#define HIL_ERR_BAD_RUNS 7u
#define HIL_ERR_TOO_MANY_LAYERS 8u
#define HIL_ERR_NO_RUN 9u

/* Limits of one RUN: measured runs kept for the reply, layers timed individually. */
#define HIL_MAX_RUNS 128u
#define HIL_MAX_LAYERS 512u

/* Exit codes the firmware gives the emulator (semihosting) or debugger. */
#define HIL_EXIT_OK 0
#define HIL_EXIT_FAULT 3

#endif /* HIL_PROTOCOL_H */
