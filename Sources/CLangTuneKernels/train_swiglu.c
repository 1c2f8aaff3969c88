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
#endif

void ltt_swiglu_forward(const float *g, const float *u, float *out, int64_t n) {
    if (n <= 0) return;
#if LTT_HAVE_X86
    if (ltt_simd_active()) { swiglu_fwd_512(g, u, out, n); return; }
#endif
    swiglu_fwd_port(g, u, out, n);
}

void ltt_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du,
                         int64_t n) {
    if (n <= 0) return;
#if LTT_HAVE_X86
    if (ltt_simd_active()) { swiglu_bwd_512(dout, g, u, dg, du, n); return; }
#endif
    swiglu_bwd_port(dout, g, u, dg, du, n);
}
