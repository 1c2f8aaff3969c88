// Causal grouped-query attention over a KV cache, one query row at a time.
// Softmax is taken in float32 with the running maximum subtracted, as
// PyTorch's eager attention does (up to summation order).
#include "langtune_kernels.h"
#include "train_simd.h"
#include <math.h>

#if LTT_HAVE_X86
// One decoding query attends to hundreds of cached rows per head and layer: scores, softmax and
// the weighted sum of values in AVX-512 registers, keys and values read as stored (float32, or bf16
// widened exactly), no call per key.
static inline __attribute__((always_inline)) LTT_AVX512 __m512 kv_load(const void *base, int64_t i, const int bf16,
                                                                       __mmask16 m) {
    if (bf16) {
        const __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)base + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    return _mm512_maskz_loadu_ps(m, (const float *)base + i);
}

LTT_BODY LTT_AVX512 void attn_cache_body_512(const float *q, const void *k, const void *v, float *out, int64_t T, int64_t p0,
                                        int64_t nHeads, int64_t nKV, int64_t hd, int64_t kvStride, float scale,
                                        int64_t h0, int64_t h1, float *scratch, const int bf16) {
    const int64_t group = nHeads / nKV;
    for (int64_t h = h0; h < h1; h++) {
        const int64_t kh = h / group;
        for (int64_t t = 0; t < T; t++) {
            const float *qr = q + t * nHeads * hd + h * hd;
            float *o = out + t * nHeads * hd + h * hd;
            const int64_t n = p0 + t + 1;
            float mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                const int64_t row = j * kvStride + kh * hd;
                __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
                int64_t d = 0;
                for (; d + 32 <= hd; d += 32) {
                    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qr + d), kv_load(k, row + d, bf16, 0xFFFF), a0);
                    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qr + d + 16), kv_load(k, row + d + 16, bf16, 0xFFFF), a1);
                }
                for (; d < hd; d += 16) {
                    const __mmask16 m = ltt_tail_mask(hd - d);
                    a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, qr + d), kv_load(k, row + d, bf16, m), a0);
                }
                const float sc = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
                scratch[j] = sc;
                mx = sc > mx ? sc : mx;
            }
            const float inv = 1.0f / ltt_expsub_sum_512(scratch, mx, n);
            for (int64_t d0 = 0; d0 < hd; d0 += 64) {
                __m512 acc[4];
                __mmask16 m[4];
                for (int c = 0; c < 4; c++) {
                    acc[c] = _mm512_setzero_ps();
                    m[c] = d0 + 16 * c < hd ? ltt_tail_mask(hd - d0 - 16 * c) : 0;
                }
                for (int64_t j = 0; j < n; j++) {
                    const __m512 p = _mm512_set1_ps(scratch[j] * inv);
                    const int64_t row = j * kvStride + kh * hd + d0;
                    for (int c = 0; c < 4; c++) acc[c] = _mm512_fmadd_ps(p, kv_load(v, row + 16 * c, bf16, m[c]), acc[c]);
                }
                for (int c = 0; c < 4; c++) _mm512_mask_storeu_ps(o + d0 + 16 * c, m[c], acc[c]);
            }
        }
    }
}

LTT_AVX512 static void attn_cache_f32_512(const float *q, const float *k, const float *v, float *out, int64_t T, int64_t p0,
                                          int64_t nH, int64_t nKV, int64_t hd, int64_t st, float scale, int64_t h0, int64_t h1,
                                          float *scratch) {
    attn_cache_body_512(q, k, v, out, T, p0, nH, nKV, hd, st, scale, h0, h1, scratch, 0);
}
LTT_AVX512 static void attn_cache_bf16_512(const float *q, const uint16_t *k, const uint16_t *v, float *out, int64_t T,
                                           int64_t p0, int64_t nH, int64_t nKV, int64_t hd, int64_t st, float scale, int64_t h0,
                                           int64_t h1, float *scratch) {
    attn_cache_body_512(q, k, v, out, T, p0, nH, nKV, hd, st, scale, h0, h1, scratch, 1);
}
#endif

#if LTT_HAVE_X86
// AVX2: the AVX-512 kernel's shape on 8 lanes. Scores: q·k with two accumulators; values: the weighted
// sum in 8 registers (64 dimensions) across all keys, so o is written once per chunk, not once per key.
static inline __attribute__((always_inline)) LTT_AVX2 __m256 kv_load256(const void *base, int64_t i, const int bf16,
                                                                        __m256i m) {
    if (bf16) {
        // Full 8-element loads only where the row has them (hd % 8 == 0 checked by the caller).
        const __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)base + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    return _mm256_maskload_ps((const float *)base + i, m);
}

LTT_BODY LTT_AVX2 void attn_cache_body_256(const float *q, const void *k, const void *v, float *out, int64_t T, int64_t p0,
                                           int64_t nHeads, int64_t nKV, int64_t hd, int64_t kvStride, float scale,
                                           int64_t h0, int64_t h1, float *scratch, const int bf16) {
    const int64_t group = nHeads / nKV;
    const __m256i all = _mm256_set1_epi32(-1);
    for (int64_t h = h0; h < h1; h++) {
        const int64_t kh = h / group;
        for (int64_t t = 0; t < T; t++) {
            const float *qr = q + t * nHeads * hd + h * hd;
            float *o = out + t * nHeads * hd + h * hd;
            const int64_t n = p0 + t + 1;
            float mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                const int64_t row = j * kvStride + kh * hd;
                __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
                int64_t d = 0;
                for (; d + 16 <= hd; d += 16) {
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), kv_load256(k, row + d, bf16, all), a0);
                    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d + 8), kv_load256(k, row + d + 8, bf16, all), a1);
                }
                for (; d < hd; d += 8) {
                    const __m256i m = ltt_mask256(hd - d);
                    a0 = _mm256_fmadd_ps(_mm256_maskload_ps(qr + d, m), kv_load256(k, row + d, bf16, m), a0);
                }
                const float sc = ltt_hsum256(_mm256_add_ps(a0, a1)) * scale;
                scratch[j] = sc;
                mx = sc > mx ? sc : mx;
            }
            const float inv = 1.0f / ltt_expsub_sum_256(scratch, mx, n);
            for (int64_t d0 = 0; d0 < hd; d0 += 64) {
                __m256 acc[8];
                __m256i m[8];
                for (int c = 0; c < 8; c++) {
                    acc[c] = _mm256_setzero_ps();
                    m[c] = ltt_mask256(d0 + 8 * c < hd ? hd - d0 - 8 * c : 0);
                }
                const int chunks = (int)((hd - d0 + 7) / 8 < 8 ? (hd - d0 + 7) / 8 : 8);
                for (int64_t j = 0; j < n; j++) {
                    const __m256 p = _mm256_set1_ps(scratch[j] * inv);
                    const int64_t row = j * kvStride + kh * hd + d0;
                    for (int c = 0; c < chunks; c++) acc[c] = _mm256_fmadd_ps(p, kv_load256(v, row + 8 * c, bf16, m[c]), acc[c]);
                }
                for (int c = 0; c < chunks; c++) _mm256_maskstore_ps(o + d0 + 8 * c, m[c], acc[c]);
            }
        }
    }
}
#endif

// The body of the other tiers, for both caches: a bf16 row is widened into `buf` (exactly), a float32
// row is read in place; scores, softmax and the weighted sum of values go through the tier's helpers.
static inline const float *cache_row(const void *base, int64_t i, int bf16, int64_t hd, float *buf) {
    if (!bf16) return (const float *)base + i;
    lt_bf16_to_f32((const uint16_t *)base + i, buf, hd);
    return buf;
}

typedef float (*cache_dot_fn)(const float *, const float *, int64_t);
typedef float (*cache_expsum_fn)(float *, float, int64_t);
typedef void (*cache_axpy_fn)(float *, float, const float *, int64_t);

LTT_BODY void attn_cache_body(const float *q, const void *k, const void *v, float *out, int64_t T, int64_t p0,
                              int64_t nHeads, int64_t nKV, int64_t hd, int64_t kvStride, float scale, int64_t h0,
                              int64_t h1, float *scratch, int bf16, cache_dot_fn dot, cache_expsum_fn expsum,
                              cache_axpy_fn axpy) {
    const int64_t group = nHeads / nKV;
    float row[1024];
    if (bf16 && hd > 1024) return;  // no Llama-family head is that wide; KVCache checks
    for (int64_t h = h0; h < h1; h++) {
        const int64_t kh = h / group;
        for (int64_t t = 0; t < T; t++) {
            const float *qr = q + t * nHeads * hd + h * hd;
            float *o = out + t * nHeads * hd + h * hd;
            const int64_t n = p0 + t + 1;
            float mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                float s = dot(qr, cache_row(k, j * kvStride + kh * hd, bf16, hd, row), hd) * scale;
                scratch[j] = s;
                if (s > mx) mx = s;
            }
            const float inv = 1.0f / expsum(scratch, mx, n);
            for (int64_t i = 0; i < hd; i++) o[i] = 0;
            for (int64_t j = 0; j < n; j++)
                axpy(o, scratch[j] * inv, cache_row(v, j * kvStride + kh * hd, bf16, hd, row), hd);
        }
    }
}

#define ATTN_CACHE_ARGS                                                                                      \
    const float *q, const void *k, const void *v, float *out, int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, \
        int64_t hd, int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch, int bf16
#define ATTN_CACHE_PASS q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch, bf16

static void attn_cache_port(ATTN_CACHE_ARGS) {
    attn_cache_body(ATTN_CACHE_PASS, ltt_dot_port, ltt_expsub_sum_port, ltt_axpy_port);
}
#if LTT_HAVE_X86
LTT_AVX2 static void attn_cache_256(ATTN_CACHE_ARGS) {
    // The bf16 loads read whole groups of 8: heads whose width is not a multiple of 8 (none in the Llama
    // family) take the helper-based body.
    if (bf16 && hd % 8) { attn_cache_body(ATTN_CACHE_PASS, ltt_dot_256, ltt_expsub_sum_256, ltt_axpy_256); return; }
    if (bf16) attn_cache_body_256(q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch, 1);
    else attn_cache_body_256(q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch, 0);
}
LTT_AVX512 static void attn_cache_512(ATTN_CACHE_ARGS) {
    if (bf16) attn_cache_bf16_512(q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch);
    else attn_cache_f32_512(q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch);
}
#endif
#if LTT_HAVE_NEON
static void attn_cache_neon(ATTN_CACHE_ARGS) {
    attn_cache_body(ATTN_CACHE_PASS, ltt_dot_neon, ltt_expsub_sum_neon, ltt_axpy_neon);
}
#endif

void lt_attention_causal(const float *q, const float *k, const float *v, float *out,
                         int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, int64_t hd,
                         int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch) {
    LTT_CALL(attn_cache, q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch, 0);
}

// The same over a bf16 cache: each key and value row is widened to float32 (exactly) before use.
void lt_attention_causal_bf16(const float *q, const uint16_t *k, const uint16_t *v, float *out,
                              int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, int64_t hd,
                              int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch) {
    LTT_CALL(attn_cache, q, k, v, out, T, p0, nHeads, nKV, hd, kvStride, scale, h0, h1, scratch, 1);
}

void lt_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += x[i] * x[i]; s1 += x[i + 1] * x[i + 1]; s2 += x[i + 2] * x[i + 2]; s3 += x[i + 3] * x[i + 3]; }
    for (; i < n; i++) s0 += x[i] * x[i];
    const float r = 1.0f / sqrtf(((s0 + s1) + (s2 + s3)) / (float)n + eps);
    for (i = 0; i < n; i++) y[i] = w[i] * (x[i] * r);
}

void lt_swiglu(const float *g, const float *u, float *out, int64_t n) {
    // The SIMD tiers share the training kernel (same formula, the tier's exp).
    if (lt_isa() != LT_ISA_PORTABLE) { ltt_swiglu_forward(g, u, out, n); return; }
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void lt_geglu(const float *g, const float *u, float *out, int64_t n) {
    // One formula for inference and training: the training kernel has every tier's body.
    ltt_geglu_forward(g, u, out, n);
}
