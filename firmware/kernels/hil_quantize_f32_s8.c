/* float32 -> int8 at a model's input edge, equal to TFLite's round(x / scale) + zero_point. */
#include "hil_kernels_elementwise.h"

/* Beyond this magnitude every result clamps; keeps the float -> int conversion defined. */
#define HIL_QUANTIZE_LIMIT 65536.0f
/* x * inv_scale is within a few float32 ulps of x / scale. Results that do not clamp have
 * |t| < 512, where that error is far below this window, so outside it both round the same. */
#define HIL_QUANTIZE_TIE_WINDOW (1.0f / 256.0f)

static int32_t round_half_away(float t)
{
    const int32_t whole = (int32_t)t; /* truncates toward zero, exact */
    const float frac = t - (float)whole;
    if (frac >= 0.5f) {
        return whole + 1;
    }
    if (frac <= -0.5f) {
        return whole - 1;
    }
    return whole;
}

static float clamp_limit(float t)
{
    if (!(t > -HIL_QUANTIZE_LIMIT)) { /* NaN lands here too */
        return -HIL_QUANTIZE_LIMIT;
    }
    return t < HIL_QUANTIZE_LIMIT ? t : HIL_QUANTIZE_LIMIT;
}

void hil_quantize_f32_s8(const float *in, int8_t *out, int32_t n, float scale, float inv_scale,
                         int32_t zero_point)
{
    for (int32_t i = 0; i < n; ++i) {
        float t = clamp_limit(in[i] * inv_scale);
        const float frac = t - (float)(int32_t)t;
        const float dist = (frac < 0.0f ? -frac : frac) - 0.5f;
        if (dist < HIL_QUANTIZE_TIE_WINDOW && dist > -HIL_QUANTIZE_TIE_WINDOW) {
            t = clamp_limit(in[i] / scale); /* near a tie: decide as the division does */
        }
        int32_t q = round_half_away(t) + zero_point;
        q = q < -128 ? -128 : (q > 127 ? 127 : q);
        out[i] = (int8_t)q;
    }
}
