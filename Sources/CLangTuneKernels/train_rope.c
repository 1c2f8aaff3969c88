// Rotary position embedding, Hugging Face rotate-half layout: element i of a
// head pairs with element i + hd/2 and both turn by angle pos * invFreq[i].
// Backward applies the transposed rotation (angle negated).
#include "train_simd.h"

#define ROPE_CHUNK 128

// sign = +1 forward, -1 backward.
LTT_BODY void rope_body(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                        const float *invFreq, float sign) {
    const int64_t half = hd / 2, stride = heads * hd;
    float cs[ROPE_CHUNK], sn[ROPE_CHUNK];
    for (int64_t t = 0; t < T; t++) {
        // float32 angle, as transformers computes inv_freq @ position_ids in
        // float32; cos/sin of that angle correctly rounded via double.
        const float pos = (float)positions[t];
        float *row = x + t * stride;
        for (int64_t i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
            const int64_t len = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
            for (int64_t i = 0; i < len; i++) {
                const double a = (double)(pos * invFreq[i0 + i]);
                cs[i] = (float)cos(a);
                sn[i] = sign * (float)sin(a);
            }
            for (int64_t h = 0; h < heads; h++) {
                float *lo = row + h * hd + i0, *hi = lo + half;
                for (int64_t i = 0; i < len; i++) {
                    const float a = lo[i], b = hi[i];
                    lo[i] = a * cs[i] - b * sn[i];
                    hi[i] = b * cs[i] + a * sn[i];
                }
            }
        }
    }
}

static void rope_port(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                      const float *invFreq, float sign) {
    rope_body(x, T, heads, hd, positions, invFreq, sign);
}

#if LTT_HAVE_X86
LTT_AVX512 static void rope_512(float *x, int64_t T, int64_t heads, int64_t hd,
                                const int64_t *positions, const float *invFreq, float sign) {
    rope_body(x, T, heads, hd, positions, invFreq, sign);
}
#endif

static void rope_dispatch(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                          const float *invFreq, float sign) {
    if (T <= 0 || heads <= 0 || hd < 2) return;
#if LTT_HAVE_X86
    if (ltt_simd_active()) { rope_512(x, T, heads, hd, positions, invFreq, sign); return; }
#endif
    rope_port(x, T, heads, hd, positions, invFreq, sign);
}

void ltt_rope_forward(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                      const float *invFreq) {
    rope_dispatch(x, T, heads, hd, positions, invFreq, 1.0f);
}

void ltt_rope_backward(float *dx, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                       const float *invFreq) {
    rope_dispatch(dx, T, heads, hd, positions, invFreq, -1.0f);
}
