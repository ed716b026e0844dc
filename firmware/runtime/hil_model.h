/*
 * The interface between the board-independent runtime and one generated model.
 *
 * The code generator (hil/codegen.py + firmware/templates/) emits one C file that defines
 * everything below. The runtime never knows which model it runs: it times the layers one by
 * one through hil_model_layers[] and moves input/output bytes through the descriptors.
 */
#ifndef HIL_MODEL_H
#define HIL_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* a backend may generate its model in C++ (TFLM) */
#endif

/* Element type codes of an I/O tensor, as the host protocol reports them. */
enum hil_dtype {
    HIL_DTYPE_INT8 = 0,
    HIL_DTYPE_UINT8 = 1,
    HIL_DTYPE_INT16 = 2,
    HIL_DTYPE_INT32 = 3,
    HIL_DTYPE_FLOAT32 = 4,
};

/* One graph input or output: where its bytes live on the device (inside the arena or in a
 * dedicated buffer for float edges) and how many there are. */
typedef struct {
    void *data;
    uint32_t bytes;
    uint8_t dtype; /* enum hil_dtype */
} hil_io_t;

/* One layer (operator) of the model; the runtime calls them in order. */
typedef void (*hil_layer_fn)(void);

extern const hil_io_t hil_model_inputs[];
extern const uint32_t hil_model_num_inputs;
extern const hil_io_t hil_model_outputs[];
extern const uint32_t hil_model_num_outputs;
extern const hil_layer_fn hil_model_layers[];
extern const uint32_t hil_model_num_layers;
/* Size of the static activation arena in bytes (reported to the host as a cross-check). */
extern const uint32_t hil_model_arena_bytes;
/* 32-bit hash of the generated source, so the host can tell it talks to the image it built. */
extern const uint32_t hil_model_id;

/* Optional hooks of a model (weak: a model that does not define one leaves it NULL).
 * hil_model_init: called once at start-up, before the first request is served (e.g. to set
 *   up an interpreter in its arena; no C++ static constructors run on this runtime).
 * hil_model_invoke: a model that cannot run layer by layer (an interpreter, e.g. TFLM) runs one
 *   whole inference here and calls hil_layer_end() as each of its hil_model_num_layers layers
 *   ends; the runtime then never calls hil_model_layers[] (define it, e.g. { 0 }).
 * hil_model_prepare: called before each inference, outside the timed span (e.g. to copy the
 *   inputs into an interpreter's own input tensors, whose memory it reuses during a run). */
void hil_model_init(void) __attribute__((weak));
void hil_model_invoke(void) __attribute__((weak));
void hil_model_prepare(void) __attribute__((weak));

/* Provided by the runtime for hil_model_invoke: the layer running since the inference began or
 * since the last call has ended (its count is taken now). */
void hil_layer_end(void);

#ifdef __cplusplus
}
#endif

#endif /* HIL_MODEL_H */
