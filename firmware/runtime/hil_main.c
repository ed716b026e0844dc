/*
 * The device side of the bench: serve host requests forever (docs/protocol.md). Every request
 * gets exactly one answer, an ERROR frame included; nothing here depends on the board or the
 * model beyond hil_port.h and hil_model.h.
 */
#include <stdint.h>

#include "hil_frame.h"
#include "hil_model.h"
#include "hil_port.h"
#include "hil_runtime.h"

#ifndef HIL_BOARD_NAME
#error "HIL_BOARD_NAME must be defined (the build passes the board's name)"
#endif

volatile uint8_t hil_current_seq;

static hil_request_t req;
static uint32_t run_counts[HIL_MAX_RUNS];
static uint32_t layer_counts[HIL_MAX_LAYERS];
static uint8_t layer_counts_valid;

static uint16_t read_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t read_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void reply_empty(void)
{
    hil_frame_begin((uint8_t)(req.type | HIL_RSP_FLAG), req.seq, 0);
    hil_frame_end();
}

static void reply_error(uint8_t code, uint32_t detail)
{
    hil_frame_error(req.seq, code, req.type, detail);
}

static void put_io(const hil_io_t *io)
{
    hil_frame_put_u32(io->bytes);
    hil_frame_put_u8(io->dtype);
}

static void handle_info(void)
{
    static const char board[] = HIL_BOARD_NAME;
    if (req.len != 0u) {
        reply_error(HIL_ERR_BAD_LENGTH, 0u);
        return;
    }
    const uint32_t name_len = sizeof board - 1;
    const uint32_t len = 30u + 5u * (hil_model_num_inputs + hil_model_num_outputs) + 1u + name_len;
    if (len > HIL_MAX_PAYLOAD || hil_model_num_inputs > 255u || hil_model_num_outputs > 255u) {
        reply_error(HIL_ERR_TOO_LONG, len);
        return;
    }
    hil_frame_begin(HIL_REQ_INFO | HIL_RSP_FLAG, req.seq, (uint16_t)len);
    hil_frame_put_u16(HIL_PROTOCOL_VERSION);
    hil_frame_put_u16(HIL_MAX_PAYLOAD);
    hil_frame_put_u32(hil_model_id);
    hil_frame_put_u32(hil_port_counts_per_second());
    hil_frame_put_u32(hil_model_arena_bytes);
    hil_frame_put_u32(hil_stack_size_bytes());
    hil_frame_put_u32(hil_model_num_layers);
    hil_frame_put_u16(HIL_MAX_RUNS);
    hil_frame_put_u16(HIL_MAX_LAYERS);
    hil_frame_put_u8((uint8_t)hil_model_num_inputs);
    hil_frame_put_u8((uint8_t)hil_model_num_outputs);
    for (uint32_t i = 0; i < hil_model_num_inputs; i++) {
        put_io(&hil_model_inputs[i]);
    }
    for (uint32_t i = 0; i < hil_model_num_outputs; i++) {
        put_io(&hil_model_outputs[i]);
    }
    hil_frame_put_u8((uint8_t)name_len);
    hil_frame_put(board, name_len);
    hil_frame_end();
}

/* Checks index and [offset, offset + n) against the tensor list; replies ERROR if bad. */
static const hil_io_t *find_io(const hil_io_t *list, uint32_t count, uint32_t index,
                               uint32_t offset, uint32_t n)
{
    if (index >= count) {
        reply_error(HIL_ERR_BAD_INDEX, count);
        return 0;
    }
    const hil_io_t *io = &list[index];
    if (offset > io->bytes || n > io->bytes - offset) {
        reply_error(HIL_ERR_BAD_RANGE, io->bytes);
        return 0;
    }
    return io;
}

static void handle_write_input(void)
{
    if (req.len < 5u) {
        reply_error(HIL_ERR_BAD_LENGTH, 5u);
        return;
    }
    const uint32_t offset = read_u32(&req.payload[1]);
    const uint32_t n = req.len - 5u;
    const hil_io_t *io = find_io(hil_model_inputs, hil_model_num_inputs, req.payload[0], offset, n);
    if (io) {
        uint8_t *dst = (uint8_t *)io->data + offset;
        for (uint32_t i = 0; i < n; i++) {
            dst[i] = req.payload[5u + i];
        }
        reply_empty();
    }
}

static void handle_read_output(void)
{
    if (req.len != 7u) {
        reply_error(HIL_ERR_BAD_LENGTH, 7u);
        return;
    }
    const uint32_t offset = read_u32(&req.payload[1]);
    const uint32_t n = read_u16(&req.payload[5]);
    if (n > HIL_MAX_PAYLOAD) {
        reply_error(HIL_ERR_TOO_LONG, HIL_MAX_PAYLOAD);
        return;
    }
    const hil_io_t *io =
        find_io(hil_model_outputs, hil_model_num_outputs, req.payload[0], offset, n);
    if (io) {
        hil_frame_begin(HIL_REQ_READ_OUTPUT | HIL_RSP_FLAG, req.seq, (uint16_t)n);
        hil_frame_put((const uint8_t *)io->data + offset, n);
        hil_frame_end();
    }
}

static uint16_t inputs_crc(void)
{
    uint16_t crc = 0xFFFFu;
    for (uint32_t i = 0; i < hil_model_num_inputs; i++) {
        crc = hil_crc16(crc, hil_model_inputs[i].data, hil_model_inputs[i].bytes);
    }
    return crc;
}

static uint32_t layer_next;
static uint32_t layer_prev;
/* Stack the runtime itself holds while it calls the model (its frames down to run_once): the
 * model's own stack is the peak minus this (host: model RAM, docs/measurement.md). */
static uint32_t runtime_stack_bytes;

void hil_layer_end(void)
{
    const uint32_t now = hil_port_time_now();
    if (layer_next < hil_model_num_layers && layer_next < HIL_MAX_LAYERS) {
        layer_counts[layer_next++] = now - layer_prev;
    }
    layer_prev = now;
}

/* One inference, timing each layer; returns the counts of the whole inference. */
static uint32_t run_once(void)
{
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    runtime_stack_bytes = hil_stack_depth_bytes(sp);
    if (hil_model_prepare) {
        hil_model_prepare(); /* untimed: e.g. copy the inputs into an interpreter's tensors */
    }
    hil_port_time_start();
    const uint32_t start = hil_port_time_now();
    if (hil_model_invoke) {
        /* An interpreter runs the whole model and marks each layer's end itself. */
        layer_next = 0;
        layer_prev = start;
        hil_model_invoke();
        const uint32_t end = hil_port_time_now();
        while (layer_next < hil_model_num_layers && layer_next < HIL_MAX_LAYERS) {
            layer_counts[layer_next++] = 0;
        }
        return end - start;
    }
    uint32_t prev = start;
    for (uint32_t i = 0; i < hil_model_num_layers; i++) {
        hil_model_layers[i]();
        const uint32_t now = hil_port_time_now();
        layer_counts[i] = now - prev;
        prev = now;
    }
    return prev - start;
}

static void handle_run(void)
{
    if (req.len != 4u) {
        reply_error(HIL_ERR_BAD_LENGTH, 4u);
        return;
    }
    const uint32_t warmup = read_u16(&req.payload[0]);
    const uint32_t runs = read_u16(&req.payload[2]);
    if (runs == 0u || runs > HIL_MAX_RUNS) {
        reply_error(HIL_ERR_BAD_RUNS, HIL_MAX_RUNS);
        return;
    }
    if (hil_model_num_layers > HIL_MAX_LAYERS) {
        reply_error(HIL_ERR_TOO_MANY_LAYERS, HIL_MAX_LAYERS);
        return;
    }
    const uint16_t crc_before = inputs_crc();
    layer_counts_valid = 0;
    hil_stack_paint();
    for (uint32_t i = 0; i < warmup; i++) {
        (void)run_once();
    }
    for (uint32_t i = 0; i < runs; i++) {
        run_counts[i] = run_once();
    }
    const uint32_t stack_bytes = hil_stack_peak_bytes();
    layer_counts_valid = 1;
    const uint8_t inputs_intact = inputs_crc() == crc_before;

    hil_frame_begin(HIL_REQ_RUN | HIL_RSP_FLAG, req.seq, (uint16_t)(12u + 4u * runs));
    hil_frame_put_u32(stack_bytes);
    hil_frame_put_u8(inputs_intact);
    hil_frame_put_u8(0);
    hil_frame_put_u16((uint16_t)runs);
    for (uint32_t i = 0; i < runs; i++) {
        hil_frame_put_u32(run_counts[i]);
    }
    hil_frame_put_u32(runtime_stack_bytes);
    hil_frame_end();
}

static void handle_layer_counts(void)
{
    if (req.len != 4u) {
        reply_error(HIL_ERR_BAD_LENGTH, 4u);
        return;
    }
    if (!layer_counts_valid) {
        reply_error(HIL_ERR_NO_RUN, 0);
        return;
    }
    const uint32_t first = read_u16(&req.payload[0]);
    const uint32_t count = read_u16(&req.payload[2]);
    if (first > hil_model_num_layers || count > hil_model_num_layers - first ||
        count > HIL_MAX_PAYLOAD / 4u) {
        reply_error(HIL_ERR_BAD_RANGE, hil_model_num_layers);
        return;
    }
    hil_frame_begin(HIL_REQ_LAYER_COUNTS | HIL_RSP_FLAG, req.seq, (uint16_t)(4u * count));
    for (uint32_t i = 0; i < count; i++) {
        hil_frame_put_u32(layer_counts[first + i]);
    }
    hil_frame_end();
}

static void handle_echo(void)
{
    hil_frame_begin(HIL_REQ_ECHO | HIL_RSP_FLAG, req.seq, req.len);
    hil_frame_put(req.payload, req.len);
    hil_frame_end();
}

int main(void)
{
    hil_port_init();
    if (hil_model_init) {
        hil_model_init();
    }
    for (;;) {
        hil_frame_receive(&req);
        hil_current_seq = req.seq;
        switch (req.type) {
        case HIL_REQ_INFO:
            handle_info();
            break;
        case HIL_REQ_WRITE_INPUT:
            handle_write_input();
            break;
        case HIL_REQ_READ_OUTPUT:
            handle_read_output();
            break;
        case HIL_REQ_RUN:
            handle_run();
            break;
        case HIL_REQ_LAYER_COUNTS:
            handle_layer_counts();
            break;
        case HIL_REQ_ECHO:
            handle_echo();
            break;
        default:
            reply_error(HIL_ERR_UNKNOWN_REQUEST, 0);
            break;
        }
    }
}
