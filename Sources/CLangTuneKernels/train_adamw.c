// torch.optim.AdamW (single-tensor CPU path, amsgrad=False), elementwise in
// float32 with the scalars computed in double and rounded to float as PyTorch
// does, plus the two helpers of global-norm gradient clipping.
#include "train_simd.h"

// torch.lerp: self + w*(end - self) when |w| < 0.5, else end - (end - self)*(1 - w).
LTT_BODY void adamw_body(float *p, const float *g, float *m, float *v, int64_t n, float decay,
                         float w1, int small_w1, float beta2, float omb2, float bc2s, float eps,
                         float neg_step) {
    const float omw1 = 1.0f - w1;
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        const float pi = p[i] * decay;
        const float mi0 = m[i];
        const float mi = small_w1 ? mi0 + w1 * (gi - mi0) : gi - (gi - mi0) * omw1;
        const float vi = v[i] * beta2 + omb2 * gi * gi;
        const float denom = sqrtf(vi) / bc2s + eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + neg_step * mi / denom;
    }
}

static void adamw_port(float *p, const float *g, float *m, float *v, int64_t n, float decay,
                       float w1, int small_w1, float beta2, float omb2, float bc2s, float eps,
                       float neg_step) {
    adamw_body(p, g, m, v, n, decay, w1, small_w1, beta2, omb2, bc2s, eps, neg_step);
}

#if LTT_HAVE_X86
LTT_AVX512 static void adamw_512(float *p, const float *g, float *m, float *v, int64_t n,
                                 float decay, float w1, int small_w1, float beta2, float omb2,
                                 float bc2s, float eps, float neg_step) {
    adamw_body(p, g, m, v, n, decay, w1, small_w1, beta2, omb2, bc2s, eps, neg_step);
}
LTT_AVX2 static void adamw_256(float *p, const float *g, float *m, float *v, int64_t n, float decay, float w1,
                               int small_w1, float beta2, float omb2, float bc2s, float eps, float neg_step) {
    adamw_body(p, g, m, v, n, decay, w1, small_w1, beta2, omb2, bc2s, eps, neg_step);
}
#endif
#if LTT_HAVE_NEON
#define adamw_neon adamw_port  // elementwise: vectorized for NEON by the compiler
#endif

void ltt_adamw_step(float *param, const float *grad, float *m, float *v, int64_t n, double lr,
                    double beta1, double beta2, double eps, double weight_decay, int64_t step) {
    if (n <= 0 || step < 1) return;
    const double bc1 = 1.0 - pow(beta1, (double)step);
    const double bc2 = 1.0 - pow(beta2, (double)step);
    const float decay = (float)(1.0 - lr * weight_decay);
    const float w1 = (float)(1.0 - beta1);
    const int small_w1 = fabsf(w1) < 0.5f;
    const float b2 = (float)beta2, omb2 = (float)(1.0 - beta2);
    const float bc2s = (float)sqrt(bc2), epsf = (float)eps;
    const float neg_step = (float)(-(lr / bc1));
    LTT_CALL(adamw, param, grad, m, v, n, decay, w1, small_w1, b2, omb2, bc2s, epsf, neg_step);
}

static double sumsq_port(const float *x, int64_t n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += (double)x[i] * x[i];
        a1 += (double)x[i + 1] * x[i + 1];
        a2 += (double)x[i + 2] * x[i + 2];
        a3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) a0 += (double)x[i] * x[i];
    return (a0 + a1) + (a2 + a3);
}

#if LTT_HAVE_X86
LTT_AVX512 static double sumsq_512(const float *x, int64_t n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 f = _mm512_maskz_loadu_ps(ltt_tail_mask(n - i), x + i);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

LTT_AVX2 static double sumsq_256(const float *x, int64_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 f = _mm256_loadu_ps(x + i);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    __m256d a = _mm256_add_pd(a0, a1);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    for (; i < n; i++) r += (double)x[i] * x[i];
    return r;
}
#endif
#if LTT_HAVE_NEON
#define sumsq_neon sumsq_port
#endif

double ltt_grad_sumsq(const float *grad, int64_t n) {
    if (n <= 0) return 0.0;
    return LTT_CALL(sumsq, grad, n);
}

static void scale_port(float *x, int64_t n, float s) { ltt_scal_port(x, s, n); }
#if LTT_HAVE_X86
LTT_AVX512 static void scale_512(float *x, int64_t n, float s) { ltt_scal_512(x, s, n); }
LTT_AVX2 static void scale_256(float *x, int64_t n, float s) { ltt_scal_256(x, s, n); }
#endif
#if LTT_HAVE_NEON
static void scale_neon(float *x, int64_t n, float s) { ltt_scal_neon(x, s, n); }
#endif

void ltt_scale(float *x, int64_t n, float s) {
    if (n <= 0) return;
    LTT_CALL(scale, x, n, s);
}
