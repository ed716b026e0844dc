/*
 * The matrix-multiply core shared by CONV_2D (any kernel size), 1x1 convolution and
 * FULLY_CONNECTED: out[p][c] = requantize(bias[c] + sum_k (x[p][k] - in_zp) * w[c][k]).
 *
 * A kernel expands the K input taps of each output pixel ("row" of the matrix multiply: an
 * im2col row for a convolution, an input row for a fully connected layer) into a column
 * buffer with hil_gemm_expand / hil_gemm_zero, for HIL_GEMM_BLOCK pixels at a time (or one),
 * then hil_gemm_rows multiplies every output channel against those pixels and writes the
 * requantized int8 results. The layout of the column buffer depends on the path:
 *   DSP:     (x - in_zp) as int16 pairs, the four taps 4g..4g+3 of a pixel stored as the words
 *            (x0, x2), (x1, x3) so that SXTB16 / SXTB16 ROR #8 of a weight word pair up with
 *            them in SMLAD; pixel q's group g at word (g * pixels + q) * 2; the last K % 4
 *            taps as plain int16 after all groups, four per pixel;
 *   GENERIC: (x - in_zp) as int32, tap k of pixel q at word k * pixels + q, so that one LDM
 *            fetches a tap for four pixels.
 * Private to the kernel library.
 */
#ifndef HIL_GEMM_S8_H
#define HIL_GEMM_S8_H

#include <stdint.h>

#include "hil_kernels_path.h"

#if defined(HIL_PATH_DSP)
#define HIL_GEMM_BLOCK 2 /* pixels per block: 2 output channels x 2 pixels per SMLAD sweep */
#else
#define HIL_GEMM_BLOCK 4 /* 1 output channel x 4 pixels, accumulators in r8-r11 on ARMv6-M */
#endif

/* Words of column buffer for K taps of `pixels` pixels. */
static inline int32_t hil_gemm_col_words(int32_t k, int32_t pixels)
{
#if defined(HIL_PATH_DSP)
    return (k >> 2) * 2 * pixels + 2 * pixels; /* groups, then 4 int16 of tail per pixel */
#else
    return k * pixels;
#endif
}

/* What is multiplied: weights [out_c][k] and the requantization of each output channel. */
typedef struct {
    const int8_t *weights;
    const int32_t *bias; /* may be NULL */
    const int32_t *mult;
    const int32_t *shift;
    int32_t k, out_c;
    int32_t in_zp, out_zp, act_min, act_max;
    int32_t single_round; /* 1: FULLY_CONNECTED's single-rounding requantization */
    int32_t per_tensor;   /* 1: mult[0] / shift[0] for every channel */
} hil_gemm_t;

/* Taps [k0, k0 + n) of pixel `slot` (of `pixels`) from n int8 values at src. On the DSP path
 * k0 must be a multiple of 4 unless the taps all lie in the tail (k0 >= 4 * (k / 4)). */
void hil_gemm_expand(const hil_gemm_t *g, const int8_t *src, int32_t k0, int32_t n,
                     int32_t *col, int32_t slot, int32_t pixels);

/* Taps [k0, k0 + n) of pixel `slot` as padding: zero once the zero point is taken off. */
void hil_gemm_zero(const hil_gemm_t *g, int32_t k0, int32_t n, int32_t *col, int32_t slot,
                   int32_t pixels);

/* Every output channel for `pixels` (1 or HIL_GEMM_BLOCK) expanded pixels; out[q] is where
 * pixel q's out_c results go (NULL: not stored, a padding slot of a partial block). */
void hil_gemm_rows(const hil_gemm_t *g, const int32_t *col, int32_t pixels, int8_t *const *out);

/* A whole matrix product whose rows are contiguous in memory: rows x k int8 at `input` with a
 * stride of `row_stride` bytes between rows, results [rows][out_c]. The column buffer is
 * `scratch` when it is large enough, else on the stack; returns 0 (and does nothing) when k is
 * too large for both (scratch_bytes and HIL_KERNELS_STACK_BUFFER). */
int hil_gemm_contiguous(const hil_gemm_t *g, const int8_t *input, int32_t rows,
                        int32_t row_stride, int8_t *output, void *scratch, int32_t scratch_bytes);

/* The same product on raw int8 rows without any column buffer, for a bias that already holds
 * the input zero point (bias[c] - in_zp * sum of row c; g->in_zp is ignored, g->bias not NULL):
 * a fully connected layer, where nothing reuses an expanded row. */
void hil_gemm_raw_rows(const hil_gemm_t *g, const int8_t *input, int32_t rows,
                       int32_t row_stride, int8_t *output);

/* Largest k whose column buffer for `pixels` fits HIL_KERNELS_STACK_BUFFER. */
static inline int hil_gemm_fits(int32_t k, int32_t pixels)
{
    return k > 0 && hil_gemm_col_words(k, pixels) * 4 <= HIL_KERNELS_STACK_BUFFER;
}

#endif /* HIL_GEMM_S8_H */
