// Rotary position embedding, Hugging Face rotate-half layout: element i of a
// head pairs with element i + hd/2 and both turn by angle pos * invFreq[i].
// Backward applies the transposed rotation (angle negated).
//
// cos/sin cost more than the rotation itself, and every layer (q and k,
// forward and backward) uses the same ones: ltt_rope_table computes them once
// per batch for the *_table variants; the position variants compute them on
// the fly, the same way, so both give identical results.
#include "train_simd.h"

#define ROPE_CHUNK 128

// float32 angle, as transformers computes inv_freq @ position_ids in float32;
// cos/sin of that angle correctly rounded via double.
static void rope_cos_sin(float pos, const float *invFreq, int64_t n, float *cs, float *sn) {
    for (int64_t i = 0; i < n; i++) {
        const double a = (double)(pos * invFreq[i]);
        cs[i] = (float)cos(a);
        sn[i] = (float)sin(a);
    }
}

// One row: heads of hd, angles i0..i0+len (sign = +1 forward, -1 backward).
LTT_BODY void rope_rotate(float *row, int64_t heads, int64_t hd, int64_t i0, int64_t len,
                          const float *cs, const float *sn, float sign) {
    const int64_t half = hd / 2;
    for (int64_t h = 0; h < heads; h++) {
        float *lo = row + h * hd + i0, *hi = lo + half;
        for (int64_t i = 0; i < len; i++) {
            const float a = lo[i], b = hi[i], s = sign * sn[i];
            lo[i] = a * cs[i] - b * s;
            hi[i] = b * cs[i] + a * s;
        }
    }
}

LTT_BODY void rope_pos_body(float *x, int64_t T, int64_t heads, int64_t hd,
                            const int64_t *positions, const float *invFreq, float sign) {
    const int64_t half = hd / 2;
    float cs[ROPE_CHUNK], sn[ROPE_CHUNK];
    for (int64_t t = 0; t < T; t++) {
        for (int64_t i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
            const int64_t len = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
            rope_cos_sin((float)positions[t], invFreq + i0, len, cs, sn);
            rope_rotate(x + t * heads * hd, heads, hd, i0, len, cs, sn, sign);
        }
    }
}

LTT_BODY void rope_table_body(float *x, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                              const float *sinT, float sign) {
    const int64_t half = hd / 2;
    for (int64_t t = 0; t < T; t++)
        rope_rotate(x + t * heads * hd, heads, hd, 0, half, cosT + t * half, sinT + t * half, sign);
}

static void rope_pos_port(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                          const float *invFreq, float sign) {
    rope_pos_body(x, T, heads, hd, positions, invFreq, sign);
}
static void rope_table_port(float *x, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                            const float *sinT, float sign) {
    rope_table_body(x, T, heads, hd, cosT, sinT, sign);
}

#if LTT_HAVE_X86
LTT_AVX512 static void rope_pos_512(float *x, int64_t T, int64_t heads, int64_t hd,
                                    const int64_t *positions, const float *invFreq, float sign) {
    rope_pos_body(x, T, heads, hd, positions, invFreq, sign);
}
LTT_AVX512 static void rope_table_512(float *x, int64_t T, int64_t heads, int64_t hd,
                                      const float *cosT, const float *sinT, float sign) {
    rope_table_body(x, T, heads, hd, cosT, sinT, sign);
}
LTT_AVX2 static void rope_pos_256(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                                  const float *invFreq, float sign) {
    rope_pos_body(x, T, heads, hd, positions, invFreq, sign);
}
LTT_AVX2 static void rope_table_256(float *x, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                                    const float *sinT, float sign) {
    rope_table_body(x, T, heads, hd, cosT, sinT, sign);
}
#endif
#if LTT_HAVE_NEON
#define rope_pos_neon rope_pos_port  // elementwise: the compiler vectorizes it for NEON, the baseline there
#define rope_table_neon rope_table_port
#endif

static void rope_pos(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                     const float *invFreq, float sign) {
    if (T <= 0 || heads <= 0 || hd < 2) return;
    LTT_CALL(rope_pos, x, T, heads, hd, positions, invFreq, sign);
}

static void rope_table(float *x, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                       const float *sinT, float sign) {
    if (T <= 0 || heads <= 0 || hd < 2) return;
    LTT_CALL(rope_table, x, T, heads, hd, cosT, sinT, sign);
}

void ltt_rope_forward(float *x, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                      const float *invFreq) {
    rope_pos(x, T, heads, hd, positions, invFreq, 1.0f);
}

void ltt_rope_backward(float *dx, int64_t T, int64_t heads, int64_t hd, const int64_t *positions,
                       const float *invFreq) {
    rope_pos(dx, T, heads, hd, positions, invFreq, -1.0f);
}

void ltt_rope_table(const int64_t *positions, int64_t T, const float *invFreq, int64_t half,
                    float *cos_out, float *sin_out) {
    for (int64_t t = 0; t < T; t++)
        rope_cos_sin((float)positions[t], invFreq, half, cos_out + t * half, sin_out + t * half);
}

void ltt_rope_forward_table(float *x, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                            const float *sinT) {
    rope_table(x, T, heads, hd, cosT, sinT, 1.0f);
}

void ltt_rope_backward_table(float *dx, int64_t T, int64_t heads, int64_t hd, const float *cosT,
                             const float *sinT) {
    rope_table(dx, T, heads, hd, cosT, sinT, -1.0f);
}
