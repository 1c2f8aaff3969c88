// SwiGLU gate: out = silu(g) * u = g * s * u with s = sigmoid(g).
//   dg = dout * u * s * (1 + g * (1 - s)),  du = dout * g * s
#include "train_simd.h"

static void swiglu_fwd_port(const float *g, const float *u, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i], s = 1.0f / (1.0f + expf(-gi));
        out[i] = gi * s * u[i];
    }
}

static void swiglu_bwd_port(const float *dout, const float *g, const float *u, float *dg, float *du,
                            int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i], ui = u[i], d = dout[i];
        const float s = 1.0f / (1.0f + expf(-gi));
        dg[i] = d * ui * s * (1.0f + gi * (1.0f - s));
        du[i] = d * gi * s;
    }
}

#if LTT_HAVE_X86
static inline LTT_AVX512 __m512 sigmoid512(__m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, ltt_exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
}

LTT_AVX512 static void swiglu_fwd_512(const float *g, const float *u, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = ltt_tail_mask(n - i);
        const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(gi, sigmoid512(gi)), ui));
    }
}

LTT_AVX512 static void swiglu_bwd_512(const float *dout, const float *g, const float *u, float *dg,
                                      float *du, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = ltt_tail_mask(n - i);
        const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 d = _mm512_maskz_loadu_ps(m, dout + i);
        const __m512 s = sigmoid512(gi);
        const __m512 t = _mm512_fmadd_ps(gi, _mm512_sub_ps(one, s), one);
        const __m512 rg = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, ui), s), t);
        const __m512 ru = _mm512_mul_ps(_mm512_mul_ps(d, gi), s);
        _mm512_mask_storeu_ps(dg + i, m, rg);
        _mm512_mask_storeu_ps(du + i, m, ru);
    }
}

static inline LTT_AVX2 __m256 sigmoid256(__m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, ltt_exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

LTT_AVX2 static void swiglu_fwd_256(const float *g, const float *u, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = ltt_mask256(n - i);
        const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
        _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_mul_ps(gi, sigmoid256(gi)), ui));
    }
}

LTT_AVX2 static void swiglu_bwd_256(const float *dout, const float *g, const float *u, float *dg, float *du,
                                    int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = ltt_mask256(n - i);
        const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
        const __m256 d = _mm256_maskload_ps(dout + i, m);
        const __m256 s = sigmoid256(gi);
        const __m256 t = _mm256_fmadd_ps(gi, _mm256_sub_ps(one, s), one);
        _mm256_maskstore_ps(dg + i, m, _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(d, ui), s), t));
        _mm256_maskstore_ps(du + i, m, _mm256_mul_ps(_mm256_mul_ps(d, gi), s));
    }
}
#endif

#if LTT_HAVE_NEON
static inline float32x4_t sigmoid_neon(float32x4_t g) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, ltt_exp_neon(vnegq_f32(g))));
}

static void swiglu_fwd_neon(const float *g, const float *u, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t gi = vld1q_f32(g + i);
        vst1q_f32(out + i, vmulq_f32(vmulq_f32(gi, sigmoid_neon(gi)), vld1q_f32(u + i)));
    }
    swiglu_fwd_port(g + i, u + i, out + i, n - i);
}

static void swiglu_bwd_neon(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t gi = vld1q_f32(g + i), ui = vld1q_f32(u + i), d = vld1q_f32(dout + i);
        const float32x4_t s = sigmoid_neon(gi);
        const float32x4_t t = vfmaq_f32(one, gi, vsubq_f32(one, s));
        vst1q_f32(dg + i, vmulq_f32(vmulq_f32(vmulq_f32(d, ui), s), t));
        vst1q_f32(du + i, vmulq_f32(vmulq_f32(d, gi), s));
    }
    swiglu_bwd_port(dout + i, g + i, u + i, dg + i, du + i, n - i);
}
#endif

void ltt_swiglu_forward(const float *g, const float *u, float *out, int64_t n) {
    if (n <= 0) return;
    LTT_CALL(swiglu_fwd, g, u, out, n);
}

void ltt_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du,
                         int64_t n) {
    if (n <= 0) return;
    LTT_CALL(swiglu_bwd, dout, g, u, dg, du, n);
}
