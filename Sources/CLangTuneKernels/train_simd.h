// Private helpers shared by the training kernels (train_*.c). Not exported to
// Swift: SwiftPM only exports headers under include/.
//
// Every kernel has two bodies: a portable one (plain C, whatever the baseline
// target auto-vectorizes) and an AVX-512 one chosen at run time. A kernel body
// written once is instantiated twice by marking it LTT_BODY (always inlined)
// and calling it from a plain wrapper and from an LTT_AVX512 wrapper; the body
// receives its vector helpers as function pointers, which become direct,
// inlined calls once the body is inlined into a wrapper with constant
// arguments.
#ifndef LANGTUNE_TRAIN_SIMD_H
#define LANGTUNE_TRAIN_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "langtune_train.h"

#define LTT_BODY static inline __attribute__((always_inline))

#include "langtune_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#define LTT_HAVE_X86 1
#include <immintrin.h>
#define LTT_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,f16c,avx2")))
#include "simd_avx2.h"
#else
#define LTT_HAVE_X86 0
#endif

#if defined(__aarch64__)
#define LTT_HAVE_NEON 1
#include "simd_neon.h"
#else
#define LTT_HAVE_NEON 0
#endif

// A kernel `fn` has one body per tier: fn_512 (AVX-512, also under AMX), fn_256 (AVX2), fn_neon,
// fn_port. LTT_CALL calls the active tier's (an expression; void bodies are fine in C).
#if LTT_HAVE_X86
#define LTT_CALL(fn, ...)                                                                   \
    (lt_isa() >= LT_ISA_AVX512 ? fn##_512(__VA_ARGS__)                                      \
     : lt_isa() == LT_ISA_AVX2 ? fn##_256(__VA_ARGS__)                                      \
                               : fn##_port(__VA_ARGS__))
#elif LTT_HAVE_NEON
#define LTT_CALL(fn, ...) (lt_isa() == LT_ISA_NEON ? fn##_neon(__VA_ARGS__) : fn##_port(__VA_ARGS__))
#else
#define LTT_CALL(fn, ...) fn##_port(__VA_ARGS__)
#endif

// ---------------------------------------------------------------------------
// Portable helpers. Dots use several accumulators: shorter dependency chains
// and, without -ffast-math, the only way the compiler may vectorize them.

static inline float ltt_dot_port(const float *a, const float *b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void ltt_axpy_port(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static inline void ltt_scal_port(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] *= a;
}

static inline float ltt_max_port(const float *x, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

// x[i] = exp(x[i] - sub); returns the sum of the new values.
static inline float ltt_expsub_sum_port(float *x, float sub, int64_t n) {
    float s = 0.f;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - sub);
        x[i] = e;
        s += e;
    }
    return s;
}

// x[i] = exp(x[i] - sub[i]).
static inline void ltt_expdiff_port(float *x, const float *sub, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i] - sub[i]);
}

#if LTT_HAVE_X86
// ---------------------------------------------------------------------------
// AVX-512 helpers.

static inline LTT_AVX512 __mmask16 ltt_tail_mask(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

// exp(x) for 16 lanes: Cephes' expf reduction and polynomial (about 1 ulp),
// with scalef doing 2^n so that overflow gives +inf. Results below the
// smallest normal float (x < -87.33) are flushed to 0: denormal results cost
// microcode assists, and probabilities that small do not matter. NaN propagates.
static inline LTT_AVX512 __m512 ltt_exp512(__m512 x) {
    const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33f), _CMP_LT_OQ);
    x = _mm512_max_ps(_mm512_set1_ps(-87.33f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 z = _mm512_mul_ps(r, r);
    y = _mm512_fmadd_ps(y, z, r);
    y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
    return _mm512_mask_mov_ps(_mm512_scalef_ps(y, fx), tiny, _mm512_setzero_ps());
}

// 1 / (1 + exp(-x)): exp overflow gives 0, underflow 1 (the gates of SwiGLU and GeGLU).
static inline LTT_AVX512 __m512 ltt_sigmoid512(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, ltt_exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

static inline LTT_AVX512 float ltt_dot_512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = ltt_tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline LTT_AVX512 void ltt_axpy_512(float *y, float a, const float *x, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = ltt_tail_mask(n - i);
        __m512 r = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

static inline LTT_AVX512 void ltt_scal_512(float *y, float a, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(va, _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = ltt_tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static inline LTT_AVX512 float ltt_max_512(const float *x, int64_t n) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
    if (i < n) {
        __mmask16 k = ltt_tail_mask(n - i);
        m = _mm512_mask_max_ps(m, k, m, _mm512_maskz_loadu_ps(k, x + i));
    }
    return _mm512_reduce_max_ps(m);
}

static inline LTT_AVX512 float ltt_expsub_sum_512(float *x, float sub, int64_t n) {
    __m512 vs = _mm512_set1_ps(sub), acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = ltt_exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs));
        _mm512_storeu_ps(x + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 k = ltt_tail_mask(n - i);
        __m512 e = ltt_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
        _mm512_mask_storeu_ps(x + i, k, e);
        acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(acc);
}
static inline LTT_AVX512 void ltt_expdiff_512(float *x, const float *sub, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = ltt_tail_mask(n - i);
        const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, sub + i));
        _mm512_mask_storeu_ps(x + i, k, ltt_exp512(d));
    }
}
#endif

#endif
