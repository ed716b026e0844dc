/*
 * int8 kernels for elementwise, activation, quantize and shape operators.
 *
 * Every quantization parameter (multipliers, shifts, lookup tables, clamp bounds) is computed
 * on the host by hil/lowering/ and passed in; the kernels only do the integer work. Results
 * match TFLite's reference kernels bit for bit. No kernel allocates memory or divides per
 * element; all are safe on cores that fault on unaligned loads.
 */
#ifndef HIL_KERNELS_ELEMENTWISE_H
#define HIL_KERNELS_ELEMENTWISE_H

#include <stdint.h>

/* ---- broadcasting binary ops (ADD, MUL) ---------------------------------------------------
 *
 * `shape` holds 12 int32 values: the output dims d[4] (outermost first, innermost last), then
 * the element strides of input 1 and of input 2 for each of those dims (0 where the input is
 * broadcast). The host merges and pads the operands' shapes to exactly four dims. */
#define HIL_BROADCAST_DIMS 4

/* One innermost row of a binary op: out[i] = f(a[i * a_stride], b[i * b_stride]), i < n. */
typedef void (*hil_binary_row_s8_fn)(const int8_t *a, int32_t a_stride, const int8_t *b,
                                     int32_t b_stride, int8_t *out, int32_t n,
                                     const void *params);

/* Walks the output of a broadcasting binary op row by row, calling `row` for each. */
void hil_broadcast_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                      hil_binary_row_s8_fn row, const void *params);

/* TFLite int8 ADD: both inputs are lifted by 2^left_shift, brought to a common scale by their
 * own multipliers, summed, and requantized to the output. Offsets are minus the inputs' zero
 * points; act_min/act_max carry the fused activation. */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t input1_multiplier;
    int32_t input1_shift;
    int32_t input2_multiplier;
    int32_t input2_shift;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t left_shift;
    int32_t act_min;
    int32_t act_max;
} hil_add_s8_params_t;

void hil_add_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                const hil_add_s8_params_t *params);

/* TFLite int8 MUL: (x1 + offset1) * (x2 + offset2) requantized by one multiplier
 * (scale1 * scale2 / output scale). */
typedef struct {
    int32_t input1_offset;
    int32_t input2_offset;
    int32_t output_offset;
    int32_t output_multiplier;
    int32_t output_shift;
    int32_t act_min;
    int32_t act_max;
} hil_mul_s8_params_t;

void hil_mul_s8(const int8_t *in1, const int8_t *in2, int8_t *out, const int32_t *shape,
                const hil_mul_s8_params_t *params);

/* ---- single-input ops ---------------------------------------------------------------------- */

/* out[i] = table[in[i] + 128]: LOGISTIC, HARD_SWISH, standalone RELU/RELU6 and int8 -> int8
 * requantization, each tabulated on the host for all 256 inputs. In place is allowed. */
void hil_lookup_table_s8(const int8_t *in, int8_t *out, int32_t n, const int8_t *table);

/* int8 softmax over rows of `depth` elements; output scale 1/256, zero point -128.
 * exp_table[d] is exp of the scaled difference -d (Q0.31, 0 where TFLite drops the term). */
void hil_softmax_s8(const int8_t *in, int8_t *out, int32_t rows, int32_t depth,
                    const int32_t *exp_table);

/* float32 -> int8: round(x / scale) + zero_point, rounding half away from zero and clamping.
 * Multiplies by inv_scale and divides only when the product lies within rounding error of a
 * tie, so the result equals the division's. */
void hil_quantize_f32_s8(const float *in, int8_t *out, int32_t n, float scale, float inv_scale,
                         int32_t zero_point);

/* int8 -> float32: scale * (x - zero_point). */
void hil_dequantize_s8_f32(const int8_t *in, float *out, int32_t n, float scale,
                           int32_t zero_point);

/* ---- data movement ------------------------------------------------------------------------ */

/* RESHAPE, EXPAND_DIMS, SQUEEZE: the bytes do not change; copies unless in == out (the planner
 * may give both the same place). Overlapping buffers are handled. */
void hil_reshape(const void *in, void *out, uint32_t bytes);

/* Constant padding of a 4-D int8 tensor. geometry holds 12 int32 values: input dims[4], padding
 * before each dim[4], output dims[4]. Padded elements get pad_value. */
void hil_pad_s8(const int8_t *in, int8_t *out, const int32_t *geometry, int8_t pad_value);

/* One input of a CONCATENATION: `outer` slabs of `in_bytes` go to the output at a stride of
 * `out_bytes` (`out` points at this input's first slab). With a table, each element is
 * requantized through it (inputs whose scale or zero point differ from the output's). */
void hil_concatenation_s8(const int8_t *in, int8_t *out, int32_t outer, int32_t in_bytes,
                          int32_t out_bytes, const int8_t *table);

#endif /* HIL_KERNELS_ELEMENTWISE_H */
