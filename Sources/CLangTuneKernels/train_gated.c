// Gated MLP activations, out = act(g) * u, forward and backward: SwiGLU (Llama, act = silu) and
// GeGLU (Gemma, act = the tanh GELU, transformers' gelu_pytorch_tanh). Both are act(g) = g * s with
// s = sigmoid(z), which is why one body per tier serves both:
//   SwiGLU: z = g
//   GeGLU:  z = 2 sqrt(2/pi) g (1 + 0.044715 g^2)
// GeGLU's definition is 0.5 g (1 + tanh(z/2)); 0.5 (1 + tanh(z/2)) = sigmoid(z) exactly, and the
// sigmoid form keeps full relative precision for negative g, where 1 + tanh cancels (every digit
// gone once tanh rounds to -1, near g = -4 in float32).
// Backward, with dz/dg = 2 sqrt(2/pi) (1 + 0.134145 g^2) for GeGLU (1 for SwiGLU):
//   act'(g) = s + g s (1 - s) dz/dg,  dg = dout * u * act'(g),  du = dout * g * s
// SwiGLU keeps its own arrangement, s (1 + g (1 - s)), so its results are the same bits as before
// GeGLU joined it. GeGLU forms s (1 - s) first, so a saturated gate (s exactly 0 or 1) gives
// act' = s without 0 * inf.
#include "train_simd.h"

#define GELU_K2 1.5957691216057308f  // 2 sqrt(2/pi)
#define GELU_C 0.044715f
#define GELU_C3 0.134145f  // 3 * 0.044715

static void glu_fwd_port(const float *g, const float *u, float *out, int64_t n, int gelu) {
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i], z = gelu ? GELU_K2 * gi * (1.0f + GELU_C * gi * gi) : gi;
        const float s = 1.0f / (1.0f + expf(-z));
        out[i] = gi * s * u[i];
    }
}

static void glu_bwd_port(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n, int gelu) {
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i], ui = u[i], d = dout[i], g2 = gi * gi;
        const float s = 1.0f / (1.0f + expf(-(gelu ? GELU_K2 * gi * (1.0f + GELU_C * g2) : gi)));
        dg[i] = gelu ? d * ui * (s + s * (1.0f - s) * gi * (GELU_K2 * (1.0f + GELU_C3 * g2)))
                     : d * ui * s * (1.0f + gi * (1.0f - s));
        du[i] = d * gi * s;
    }
}

#if LTT_HAVE_X86
static inline LTT_AVX512 __m512 glu_z512(__m512 g, int gelu) {
    if (!gelu) return g;
    const __m512 t = _mm512_fmadd_ps(_mm512_set1_ps(GELU_C), _mm512_mul_ps(g, g), _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_K2), g), t);
}

LTT_AVX512 static void glu_fwd_512(const float *g, const float *u, float *out, int64_t n, int gelu) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = ltt_tail_mask(n - i);
        const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 s = ltt_sigmoid512(glu_z512(gi, gelu));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(gi, s), ui));
    }
}

LTT_AVX512 static void glu_bwd_512(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n,
                                   int gelu) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = ltt_tail_mask(n - i);
        const __m512 gi = _mm512_maskz_loadu_ps(m, g + i), ui = _mm512_maskz_loadu_ps(m, u + i);
        const __m512 d = _mm512_maskz_loadu_ps(m, dout + i), dxu = _mm512_mul_ps(d, ui);
        const __m512 s = ltt_sigmoid512(glu_z512(gi, gelu));
        __m512 rg;
        if (gelu) {
            const __m512 dz = _mm512_mul_ps(_mm512_set1_ps(GELU_K2),
                                            _mm512_fmadd_ps(_mm512_set1_ps(GELU_C3), _mm512_mul_ps(gi, gi), one));
            const __m512 q = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_sub_ps(one, s)), gi);
            rg = _mm512_mul_ps(dxu, _mm512_fmadd_ps(q, dz, s));
        } else {
            rg = _mm512_mul_ps(_mm512_mul_ps(dxu, s), _mm512_fmadd_ps(gi, _mm512_sub_ps(one, s), one));
        }
        _mm512_mask_storeu_ps(dg + i, m, rg);
        _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(_mm512_mul_ps(d, gi), s));
    }
}

static inline LTT_AVX2 __m256 glu_z256(__m256 g, int gelu) {
    if (!gelu) return g;
    const __m256 t = _mm256_fmadd_ps(_mm256_set1_ps(GELU_C), _mm256_mul_ps(g, g), _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(GELU_K2), g), t);
}

LTT_AVX2 static void glu_fwd_256(const float *g, const float *u, float *out, int64_t n, int gelu) {
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = ltt_mask256(n - i);
        const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
        const __m256 s = ltt_sigmoid256(glu_z256(gi, gelu));
        _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_mul_ps(gi, s), ui));
    }
}

LTT_AVX2 static void glu_bwd_256(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n,
                                 int gelu) {
    const __m256 one = _mm256_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 8) {
        const __m256i m = ltt_mask256(n - i);
        const __m256 gi = _mm256_maskload_ps(g + i, m), ui = _mm256_maskload_ps(u + i, m);
        const __m256 d = _mm256_maskload_ps(dout + i, m), dxu = _mm256_mul_ps(d, ui);
        const __m256 s = ltt_sigmoid256(glu_z256(gi, gelu));
        __m256 rg;
        if (gelu) {
            const __m256 dz = _mm256_mul_ps(_mm256_set1_ps(GELU_K2),
                                            _mm256_fmadd_ps(_mm256_set1_ps(GELU_C3), _mm256_mul_ps(gi, gi), one));
            const __m256 q = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_sub_ps(one, s)), gi);
            rg = _mm256_mul_ps(dxu, _mm256_fmadd_ps(q, dz, s));
        } else {
            rg = _mm256_mul_ps(_mm256_mul_ps(dxu, s), _mm256_fmadd_ps(gi, _mm256_sub_ps(one, s), one));
        }
        _mm256_maskstore_ps(dg + i, m, rg);
        _mm256_maskstore_ps(du + i, m, _mm256_mul_ps(_mm256_mul_ps(d, gi), s));
    }
}
#endif

#if LTT_HAVE_NEON
static inline float32x4_t glu_z_neon(float32x4_t g, int gelu) {
    if (!gelu) return g;
    return vmulq_f32(vmulq_n_f32(g, GELU_K2), vfmaq_n_f32(vdupq_n_f32(1.0f), vmulq_f32(g, g), GELU_C));
}

static void glu_fwd_neon(const float *g, const float *u, float *out, int64_t n, int gelu) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t gi = vld1q_f32(g + i);
        const float32x4_t s = ltt_sigmoid_neon(glu_z_neon(gi, gelu));
        vst1q_f32(out + i, vmulq_f32(vmulq_f32(gi, s), vld1q_f32(u + i)));
    }
    glu_fwd_port(g + i, u + i, out + i, n - i, gelu);
}

static void glu_bwd_neon(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n, int gelu) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t gi = vld1q_f32(g + i), ui = vld1q_f32(u + i), d = vld1q_f32(dout + i);
        const float32x4_t dxu = vmulq_f32(d, ui), s = ltt_sigmoid_neon(glu_z_neon(gi, gelu));
        float32x4_t rg;
        if (gelu) {
            const float32x4_t dz = vmulq_n_f32(vfmaq_n_f32(one, vmulq_f32(gi, gi), GELU_C3), GELU_K2);
            const float32x4_t q = vmulq_f32(vmulq_f32(s, vsubq_f32(one, s)), gi);
            rg = vmulq_f32(dxu, vfmaq_f32(s, q, dz));
        } else {
            rg = vmulq_f32(vmulq_f32(dxu, s), vfmaq_f32(one, gi, vsubq_f32(one, s)));
        }
        vst1q_f32(dg + i, rg);
        vst1q_f32(du + i, vmulq_f32(vmulq_f32(d, gi), s));
    }
    glu_bwd_port(dout + i, g + i, u + i, dg + i, du + i, n - i, gelu);
}
#endif

void ltt_swiglu_forward(const float *g, const float *u, float *out, int64_t n) {
    if (n <= 0) return;
    LTT_CALL(glu_fwd, g, u, out, n, 0);
}

void ltt_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n) {
    if (n <= 0) return;
    LTT_CALL(glu_bwd, dout, g, u, dg, du, n, 0);
}

void ltt_geglu_forward(const float *g, const float *u, float *out, int64_t n) {
    if (n <= 0) return;
    LTT_CALL(glu_fwd, g, u, out, n, 1);
}

void ltt_geglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du, int64_t n) {
    if (n <= 0) return;
    LTT_CALL(glu_bwd, dout, g, u, dg, du, n, 1);
}
