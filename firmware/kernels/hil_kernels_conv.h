/*
 * int8 convolution-family kernels: convolution, depthwise convolution, fully connected,
 * average/max pooling and mean over contiguous axes.
 *
 * Conventions (all kernels):
 *   - activations are int8 NHWC tensors with affine quantization; zero points are passed as
 *     they appear in the model (the kernel subtracts the input zero point, adds the output's);
 *   - weights are int8 and symmetric (zero point 0), in TFLite's layout; biases int32 (may be
 *     NULL); requantization uses one Q31 multiplier and signed shift per output channel,
 *     computed on the host (see hil_quant.h);
 *   - a fused activation arrives as the clamp range [act_min, act_max] in the output's
 *     quantized domain;
 *   - padding arrives as the number of implicit zero-point rows/columns before the first
 *     input row/column (pad_top, pad_left): SAME and VALID are resolved on the host.
 * The kernels match TFLite's reference int8 kernels bit for bit. They use no heap and make no
 * unaligned multi-byte accesses, so they run on Cortex-M0+ as well as on the host.
 */
#ifndef HIL_KERNELS_CONV_H
#define HIL_KERNELS_CONV_H

#include <stdint.h>

/* What the code generator may have precomputed for a conv-family layer (docs/kernels.md).
 * Every field may be left zero (designated initializers), which means "not precomputed":
 *   bias_folded:  bias[c] already holds bias[c] - in_zp * (sum of output channel c's weights),
 *                 so the kernel multiplies raw inputs (depthwise and fully connected kernels;
 *                 the bias is then never NULL); the others ignore it;
 *   per_tensor:   out_mult / out_shift hold a single value that every channel uses;
 *   scratch:      scratch_bytes of working memory planned in the arena for this layer; a kernel
 *                 that needs more (or gets NULL) uses its own stack instead. */
#define HIL_PRECOMPUTED_FIELDS \
    int32_t bias_folded;       \
    int32_t per_tensor;        \
    void *scratch;             \
    int32_t scratch_bytes;

/* Geometry and quantization of one CONV_2D or DEPTHWISE_CONV_2D layer. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;
    int32_t depth_multiplier; /* depthwise only: out_c == in_c * depth_multiplier */
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
    HIL_PRECOMPUTED_FIELDS
} hil_conv_params_t;

/* CONV_2D: weights [out_c][k_h][k_w][in_c]. */
void hil_conv2d_s8(const hil_conv_params_t *p, const int8_t *input, const int8_t *weights,
                   const int32_t *bias, const int32_t *out_mult, const int32_t *out_shift,
                   int8_t *output);

/* DEPTHWISE_CONV_2D: weights [1][k_h][k_w][out_c]; output channel c reads input channel
 * c / depth_multiplier. */
void hil_depthwise_conv2d_s8(const hil_conv_params_t *p, const int8_t *input,
                             const int8_t *weights, const int32_t *bias, const int32_t *out_mult,
                             const int32_t *out_shift, int8_t *output);

/* FULLY_CONNECTED: input [batches][in_n], weights [out_n][in_n], output [batches][out_n]. */
typedef struct {
    int32_t batches, in_n, out_n;
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
    HIL_PRECOMPUTED_FIELDS
} hil_fc_params_t;

void hil_fully_connected_s8(const hil_fc_params_t *p, const int8_t *input, const int8_t *weights,
                            const int32_t *bias, const int32_t *out_mult,
                            const int32_t *out_shift, int8_t *output);

/* AVERAGE_POOL_2D / MAX_POOL_2D. Input and output share their quantization (as in TFLite),
 * so there is no requantization: only the clamp to [act_min, act_max]. */
typedef struct {
    int32_t batches;
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    int32_t act_min, act_max;
} hil_pool_params_t;

void hil_avgpool_s8(const hil_pool_params_t *p, const int8_t *input, int8_t *output);
void hil_maxpool_s8(const hil_pool_params_t *p, const int8_t *input, int8_t *output);

/* MEAN over contiguous axes: input viewed as [outer][reduce][inner], output [outer][inner].
 * out = requantize(sum(in - in_zp), mult, shift) + out_zp, where mult/shift encode
 * in_scale / (out_scale * reduce) as the host computes them (see hil/lowering/pool.py). */
typedef struct {
    int32_t outer, reduce, inner;
    int32_t in_zp, out_zp;
    int32_t multiplier, shift;
} hil_mean_params_t;

void hil_mean_s8(const hil_mean_params_t *p, const int8_t *input, int8_t *output);

#endif /* HIL_KERNELS_CONV_H */
