// Matrix-vector products that read GGUF blocks directly: generation touches
// every weight once per token, so reading 4-5 bits instead of 32 is the speed.
// Block layouts (ggml-common.h): Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d; f16 m;
// u8 qs[16]}, Q8_0 {f16 d; i8 qs[32]}; low nibble = element j, high = j+16.
#include "langtune_kernels.h"
#include "train_simd.h"
#include "kquants.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static int use_avx512(void) { return lt_isa() >= LT_ISA_AVX512; }

void lt_block_sums(const float *x, float *xsum, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++) {
        float s = 0;
        for (int j = 0; j < 32; j++) s += x[b * 32 + j];
        xsum[b] = s;
    }
}

// ---------------------------------------------------------------- portable
static float dot_portable(const float *a, const float *b, int64_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1]; s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3]; }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static float row_q4_portable(const uint8_t *row, const float *x, const float *xsum, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18;
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bs;
        float d = lt_f16_to_f32(rd16(blk));
        const uint8_t *qs = blk + (has_min ? 4 : 2);
        const float *xb = x + b * 32;
        float s = 0;
        for (int j = 0; j < 16; j++) s += (float)(qs[j] & 15) * xb[j] + (float)(qs[j] >> 4) * xb[j + 16];
        if (has_min) acc += d * s + lt_f16_to_f32(rd16(blk + 2)) * xsum[b];
        else acc += d * (s - 8.0f * xsum[b]);
    }
    return acc;
}

static float row_q8_portable(const uint8_t *row, const float *x, int64_t nb) {
    float acc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * 34;
        const int8_t *qs = (const int8_t *)(blk + 2);
        const float *xb = x + b * 32;
        float s = 0;
        for (int j = 0; j < 32; j++) s += (float)qs[j] * xb[j];
        acc += lt_f16_to_f32(rd16(blk)) * s;
    }
    return acc;
}

// ---------------------------------------------------------------- AVX-512
#if defined(__x86_64__)
__attribute__((target("avx512f,fma")))
static float dot_avx512(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f,avx512bw,f16c,fma")))
static float row_q4_avx512(const uint8_t *row, const float *x, const float *xsum, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18;
    const __m128i low = _mm_set1_epi8(15);
    __m512 acc = _mm512_setzero_ps();
    float macc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bs;
        __m128i q = _mm_loadu_si128((const __m128i *)(blk + (has_min ? 4 : 2)));
        __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, low)));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), low)));
        __m512 t = _mm512_mul_ps(lo, _mm512_loadu_ps(x + b * 32));
        t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + b * 32 + 16), t);
        float d = _cvtsh_ss(rd16(blk));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), t, acc);
        macc += has_min ? _cvtsh_ss(rd16(blk + 2)) * xsum[b] : -8.0f * d * xsum[b];
    }
    return _mm512_reduce_add_ps(acc) + macc;
}

__attribute__((target("avx512f,avx512bw,f16c,fma")))
static float row_q8_avx512(const uint8_t *row, const float *x, int64_t nb) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * 34;
        __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
        __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
        __m512 t = _mm512_mul_ps(lo, _mm512_loadu_ps(x + b * 32));
        t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(x + b * 32 + 16), t);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(rd16(blk))), t, acc);
    }
    return _mm512_reduce_add_ps(acc);
}

// Four rows per pass: x and its block sums are loaded once for four rows, and
// four independent accumulator chains keep the FMA units busy. Each row's
// arithmetic is in the same order as the one-row kernel, so results are identical.
__attribute__((target("avx512f,avx512bw,f16c,fma")))
static void rows4_q4_avx512(const uint8_t *W, int64_t rowBytes, const float *x, const float *xsum, float *y,
                            int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m128i low = _mm_set1_epi8(15);
    __m512 acc[4];
    float macc[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m512 xl = _mm512_loadu_ps(x + b * 32), xh = _mm512_loadu_ps(x + b * 32 + 16);
        const float xs = xsum[b];
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = W + i * rowBytes + b * bs;
            // Weights stream from memory once per token: read a row's bytes ahead of use (the
            // hardware prefetcher alone held a core near 4.6 GB/s).
            _mm_prefetch((const char *)(blk + 512), _MM_HINT_T0);
            __m128i q = _mm_loadu_si128((const __m128i *)(blk + qoff));
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(q, low)));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), low)));
            __m512 t = _mm512_fmadd_ps(hi, xh, _mm512_mul_ps(lo, xl));
            float d = _cvtsh_ss(rd16(blk));
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(d), t, acc[i]);
            macc[i] += has_min ? _cvtsh_ss(rd16(blk + 2)) * xs : -8.0f * d * xs;
        }
    }
    for (int i = 0; i < 4; i++) y[i] = _mm512_reduce_add_ps(acc[i]) + macc[i];
}

__attribute__((target("avx512f,avx512bw,f16c,fma")))
static void rows4_q8_avx512(const uint8_t *W, int64_t rowBytes, const float *x, float *y, int64_t nb) {
    __m512 acc[4];
    for (int i = 0; i < 4; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m512 xl = _mm512_loadu_ps(x + b * 32), xh = _mm512_loadu_ps(x + b * 32 + 16);
        for (int i = 0; i < 4; i++) {
            const uint8_t *blk = W + i * rowBytes + b * 34;
            _mm_prefetch((const char *)(blk + 512), _MM_HINT_T0);
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
            __m512 t = _mm512_fmadd_ps(hi, xh, _mm512_mul_ps(lo, xl));
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(rd16(blk))), t, acc[i]);
        }
    }
    for (int i = 0; i < 4; i++) y[i] = _mm512_reduce_add_ps(acc[i]);
}
#endif

// ---------------------------------------------------------------- AVX2 (+FMA, F16C)
#if defined(__x86_64__)
#define LT_AVX2 __attribute__((target("avx2,fma,f16c")))

// R rows (1..4) per pass, as rows4_q4_avx512: x and its block sums are read once for R rows.
LT_AVX2 static inline __attribute__((always_inline)) void
rows_q4_avx2(const uint8_t *W, int64_t rowBytes, const int R, const float *x, const float *xsum, float *y, int64_t nb,
             int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m128i low = _mm_set1_epi8(15);
    __m256 acc[4];
    float macc[4] = {0, 0, 0, 0};
    for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
        const __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
        const float xs = xsum[b];
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = W + i * rowBytes + b * bs;
            _mm_prefetch((const char *)(blk + 512), _MM_HINT_T0);
            const __m128i q = _mm_loadu_si128((const __m128i *)(blk + qoff));
            const __m128i lo = _mm_and_si128(q, low), hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), x0);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))), x1, t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), x2, t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))), x3, t);
            const float d = _cvtsh_ss(rd16(blk));
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d), t, acc[i]);
            macc[i] += has_min ? _cvtsh_ss(rd16(blk + 2)) * xs : -8.0f * d * xs;
        }
    }
    for (int i = 0; i < R; i++) y[i] = ltt_hsum256(acc[i]) + macc[i];
}

LT_AVX2 static inline __attribute__((always_inline)) void
rows_q8_avx2(const uint8_t *W, int64_t rowBytes, const int R, const float *x, float *y, int64_t nb) {
    __m256 acc[4];
    for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        const __m256 x0 = _mm256_loadu_ps(xb), x1 = _mm256_loadu_ps(xb + 8);
        const __m256 x2 = _mm256_loadu_ps(xb + 16), x3 = _mm256_loadu_ps(xb + 24);
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = W + i * rowBytes + b * 34;
            _mm_prefetch((const char *)(blk + 512), _MM_HINT_T0);
            const __m128i q0 = _mm_loadu_si128((const __m128i *)(blk + 2)), q1 = _mm_loadu_si128((const __m128i *)(blk + 18));
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q0)), x0);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q0, 8))), x1, t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q1)), x2, t);
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q1, 8))), x3, t);
            acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(rd16(blk))), t, acc[i]);
        }
    }
    for (int i = 0; i < R; i++) y[i] = ltt_hsum256(acc[i]);
}

LT_AVX2 static void matvec_q4_avx2(const uint8_t *base, int64_t rowBytes, const float *x, const float *xsum, float *y,
                                   int64_t nb, int64_t r0, int64_t r1, int has_min) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q4_avx2(base + r * rowBytes, rowBytes, 4, x, xsum, y + r, nb, has_min);
    for (; r < r1; r++) rows_q4_avx2(base + r * rowBytes, rowBytes, 1, x, xsum, y + r, nb, has_min);
}

LT_AVX2 static void matvec_q8_avx2(const uint8_t *base, int64_t rowBytes, const float *x, float *y, int64_t nb,
                                   int64_t r0, int64_t r1) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q8_avx2(base + r * rowBytes, rowBytes, 4, x, y + r, nb);
    for (; r < r1; r++) rows_q8_avx2(base + r * rowBytes, rowBytes, 1, x, y + r, nb);
}
#endif

// ---------------------------------------------------------------- NEON
#if defined(__aarch64__)
#include <arm_neon.h>

static inline float f16_neon(const uint8_t *p) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(rd16(p)))), 0);
}

// 16 bytes of signed or unsigned 8-bit values times 16 floats.
static inline float32x4_t fma16_neon(float32x4_t acc, int16x8_t w_lo, int16x8_t w_hi, const float *xb) {
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(w_lo))), vld1q_f32(xb));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_high_s16(w_lo))), vld1q_f32(xb + 4));
    acc = vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_low_s16(w_hi))), vld1q_f32(xb + 8));
    return vfmaq_f32(acc, vcvtq_f32_s32(vmovl_s16(vget_high_s16(w_hi))), vld1q_f32(xb + 12));
}

static float row_q4_neon(const uint8_t *row, const float *x, const float *xsum, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    float32x4_t acc = vdupq_n_f32(0);
    float macc = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * bs;
        const uint8x16_t q = vld1q_u8(blk + qoff);
        const uint8x16_t lo = vandq_u8(q, vdupq_n_u8(15)), hi = vshrq_n_u8(q, 4);
        float32x4_t t = vdupq_n_f32(0);
        t = fma16_neon(t, vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(lo))), vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(lo))),
                       x + b * 32);
        t = fma16_neon(t, vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(hi))), vreinterpretq_s16_u16(vmovl_u8(vget_high_u8(hi))),
                       x + b * 32 + 16);
        const float d = f16_neon(blk);
        acc = vfmaq_n_f32(acc, t, d);
        macc += has_min ? f16_neon(blk + 2) * xsum[b] : -8.0f * d * xsum[b];
    }
    return vaddvq_f32(acc) + macc;
}

static float row_q8_neon(const uint8_t *row, const float *x, int64_t nb) {
    float32x4_t acc = vdupq_n_f32(0);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = row + b * 34;
        const int8x16_t q0 = vld1q_s8((const int8_t *)(blk + 2)), q1 = vld1q_s8((const int8_t *)(blk + 18));
        float32x4_t t = vdupq_n_f32(0);
        t = fma16_neon(t, vmovl_s8(vget_low_s8(q0)), vmovl_s8(vget_high_s8(q0)), x + b * 32);
        t = fma16_neon(t, vmovl_s8(vget_low_s8(q1)), vmovl_s8(vget_high_s8(q1)), x + b * 32 + 16);
        acc = vfmaq_n_f32(acc, t, f16_neon(blk));
    }
    return vaddvq_f32(acc);
}
#endif

float lt_dot_f32(const float *a, const float *b, int64_t n) {
    const int isa = lt_isa();
#if defined(__x86_64__)
    if (isa >= LT_ISA_AVX512) return dot_avx512(a, b, n);
    if (isa == LT_ISA_AVX2) return ltt_dot_256(a, b, n);
#elif defined(__aarch64__)
    if (isa == LT_ISA_NEON) return ltt_dot_neon(a, b, n);
#endif
    (void)isa;
    return dot_portable(a, b, n);
}

void lt_matvec_f32(const float *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) y[r] = lt_dot_f32(W + r * cols, x, cols);
}

static void matvec_q4(const void *W, const float *x, const float *xsum, float *y, int64_t cols,
                      int64_t r0, int64_t r1, int has_min) {
    const int64_t nb = cols / 32, rowBytes = nb * (has_min ? 20 : 18);
    const uint8_t *base = (const uint8_t *)W;
#if defined(__x86_64__)
    if (use_avx512()) {
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) rows4_q4_avx512(base + r * rowBytes, rowBytes, x, xsum, y + r, nb, has_min);
        for (; r < r1; r++) y[r] = row_q4_avx512(base + r * rowBytes, x, xsum, nb, has_min);
        return;
    }
    if (lt_isa() == LT_ISA_AVX2) { matvec_q4_avx2(base, rowBytes, x, xsum, y, nb, r0, r1, has_min); return; }
#elif defined(__aarch64__)
    if (lt_isa() == LT_ISA_NEON) {
        for (int64_t r = r0; r < r1; r++) y[r] = row_q4_neon(base + r * rowBytes, x, xsum, nb, has_min);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) y[r] = row_q4_portable(base + r * rowBytes, x, xsum, nb, has_min);
}

void lt_matvec_q4_0(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1) {
    matvec_q4(W, x, xsum, y, cols, r0, r1, 0);
}
void lt_matvec_q4_1(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1) {
    matvec_q4(W, x, xsum, y, cols, r0, r1, 1);
}

void lt_matvec_q8_0(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1) {
    const int64_t nb = cols / 32, rowBytes = nb * 34;
    const uint8_t *base = (const uint8_t *)W;
#if defined(__x86_64__)
    if (use_avx512()) {
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) rows4_q8_avx512(base + r * rowBytes, rowBytes, x, y + r, nb);
        for (; r < r1; r++) y[r] = row_q8_avx512(base + r * rowBytes, x, nb);
        return;
    }
    if (lt_isa() == LT_ISA_AVX2) { matvec_q8_avx2(base, rowBytes, x, y, nb, r0, r1); return; }
#elif defined(__aarch64__)
    if (lt_isa() == LT_ISA_NEON) {
        for (int64_t r = r0; r < r1; r++) y[r] = row_q8_neon(base + r * rowBytes, x, nb);
        return;
    }
#endif
    for (int64_t r = r0; r < r1; r++) y[r] = row_q8_portable(base + r * rowBytes, x, nb);
}

// ---------------------------------------------------------------- K-quants and Q5_0
// A Q4_K_M GGUF holds Q4_K and Q6_K (and Q5_0 for rows that are not whole 256-element super-blocks;
// Q5_K for Q5_K_M files). Each row is unpacked a super-block (or 8 Q5_0 blocks) at a time into int8
// quants and per-16 float scales (kquants.h: the same unpacking as the decoding), then one dot
// product per tier takes 16 elements per scale. The minimums of Q4_K / Q5_K come out of the dot:
//   sum_e (scale q_e - min) x_e = sum_g scale_g (q . x)_g - sum_j min_j xsum_j,
// with xsum the sums of x over blocks of 32 (lt_block_sums), as the Q4_1 kernel does.
typedef float (*kq_dot_fn)(const int8_t *q, const float *scale, const float *x, int groups);

static float kq_dot_port(const int8_t *q, const float *scale, const float *x, int groups) {
    float acc = 0;
    for (int g = 0; g < groups; g++) {
        const int8_t *qg = q + 16 * g;
        const float *xg = x + 16 * g;
        float s[4] = {0, 0, 0, 0};
        for (int l = 0; l < 16; l += 4)
            for (int k = 0; k < 4; k++) s[k] += (float)qg[l + k] * xg[l + k];
        acc += scale[g] * ((s[0] + s[1]) + (s[2] + s[3]));
    }
    return acc;
}

#if defined(__x86_64__)
// Groups come in pairs (16 per super-block, 2 per Q5_0 block): two accumulators, one per group of a
// pair, so consecutive groups' FMAs do not wait on each other.
static inline LTT_AVX512 __m512 kq_group_512(const int8_t *q, const float *x) {
    const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
    return _mm512_mul_ps(w, _mm512_loadu_ps(x));
}

static inline LTT_AVX512 float kq_dot_512(const int8_t *q, const float *scale, const float *x, int groups) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int g = 0; g < groups; g += 2) {
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(scale[g]), kq_group_512(q + 16 * g, x + 16 * g), a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(scale[g + 1]), kq_group_512(q + 16 * g + 16, x + 16 * g + 16), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static inline LTT_AVX2 __m256 kq_group_256(const int8_t *q, const float *x) {
    const __m128i v = _mm_loadu_si128((const __m128i *)q);
    const __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), _mm256_loadu_ps(x));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), _mm256_loadu_ps(x + 8), t);
}

static inline LTT_AVX2 float kq_dot_256(const int8_t *q, const float *scale, const float *x, int groups) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int g = 0; g < groups; g += 2) {
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(scale[g]), kq_group_256(q + 16 * g, x + 16 * g), a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(scale[g + 1]), kq_group_256(q + 16 * g + 16, x + 16 * g + 16), a1);
    }
    return ltt_hsum256(_mm256_add_ps(a0, a1));
}
#endif

#if defined(__aarch64__)
static inline float32x4_t kq_group_neon(const int8_t *q, const float *x) {
    const int8x16_t v = vld1q_s8(q);
    return fma16_neon(vdupq_n_f32(0), vmovl_s8(vget_low_s8(v)), vmovl_s8(vget_high_s8(v)), x);
}

static float kq_dot_neon(const int8_t *q, const float *scale, const float *x, int groups) {
    float32x4_t a0 = vdupq_n_f32(0), a1 = vdupq_n_f32(0);
    for (int g = 0; g < groups; g += 2) {
        a0 = vfmaq_n_f32(a0, kq_group_neon(q + 16 * g, x + 16 * g), scale[g]);
        a1 = vfmaq_n_f32(a1, kq_group_neon(q + 16 * g + 16, x + 16 * g + 16), scale[g + 1]);
    }
    return vaddvq_f32(vaddq_f32(a0, a1));
}
#endif

// Rows [r0, r1) of a `type` matrix (kquants.h ids) with `cols` columns, whole blocks.
LTT_BODY void kq_rows_body(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols,
                           int64_t r0, int64_t r1, kq_dot_fn dot) {
    const int64_t per = kq_block_elems(type), bs = kq_block_bytes(type), nb = cols / per, rowBytes = nb * bs;
    const int has_min = type == KQ_Q4_K || type == KQ_Q5_K;
    int8_t q[256] __attribute__((aligned(64)));
    float scale[16], min[8];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = W + r * rowBytes;
        float acc = 0, macc = 0;
        for (int64_t b = 0; b < nb;) {
            const int n = kq_unpack(type, row + b * bs, nb - b, q, scale, min);
            const int64_t e0 = b * per;
            acc += dot(q, scale, x + e0, n / 16);
            if (has_min)
                for (int j = 0; j < 8; j++) macc += min[j] * xsum[e0 / 32 + j];
            b += n / per;
        }
        y[r] = acc - macc;
    }
}

// The body once per block type (a constant `type` folds the unpacking's branches away).
LTT_BODY void kq_rows_typed(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols,
                            int64_t r0, int64_t r1, kq_dot_fn dot) {
    switch (type) {
    case KQ_Q4_K: kq_rows_body(KQ_Q4_K, W, x, xsum, y, cols, r0, r1, dot); break;
    case KQ_Q5_K: kq_rows_body(KQ_Q5_K, W, x, xsum, y, cols, r0, r1, dot); break;
    case KQ_Q6_K: kq_rows_body(KQ_Q6_K, W, x, xsum, y, cols, r0, r1, dot); break;
    default: kq_rows_body(KQ_Q5_0, W, x, xsum, y, cols, r0, r1, dot); break;
    }
}

static void kq_rows_port(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0,
                         int64_t r1) {
    kq_rows_typed(type, W, x, xsum, y, cols, r0, r1, kq_dot_port);
}
#if defined(__x86_64__)
LTT_AVX512 static void kq_rows_512(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols,
                                   int64_t r0, int64_t r1) {
    kq_rows_typed(type, W, x, xsum, y, cols, r0, r1, kq_dot_512);
}
LTT_AVX2 static void kq_rows_256(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols,
                                 int64_t r0, int64_t r1) {
    kq_rows_typed(type, W, x, xsum, y, cols, r0, r1, kq_dot_256);
}
#endif
#if defined(__aarch64__)
static void kq_rows_neon(int type, const uint8_t *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0,
                         int64_t r1) {
    kq_rows_typed(type, W, x, xsum, y, cols, r0, r1, kq_dot_neon);
}
#endif

void lt_matvec_q4_k(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1) {
    LTT_CALL(kq_rows, KQ_Q4_K, (const uint8_t *)W, x, xsum, y, cols, r0, r1);
}
void lt_matvec_q5_k(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1) {
    LTT_CALL(kq_rows, KQ_Q5_K, (const uint8_t *)W, x, xsum, y, cols, r0, r1);
}
void lt_matvec_q6_k(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1) {
    LTT_CALL(kq_rows, KQ_Q6_K, (const uint8_t *)W, x, NULL, y, cols, r0, r1);
}
void lt_matvec_q5_0(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1) {
    LTT_CALL(kq_rows, KQ_Q5_0, (const uint8_t *)W, x, NULL, y, cols, r0, r1);
}
