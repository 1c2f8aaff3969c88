// Q4_0 / Q4_1 / Q8_0, Q5_0 and the K-quants Q4_K / Q5_K / Q6_K to float32, ggml's arithmetic operation for operation (a multiply, then an
// add: no fused multiply-add), so every tier gives ggml's bits. QLoRA on a GGUF's own blocks decodes
// tiles of the frozen base in every product, forward and backward; this is that decoding.
#include "langtune_kernels.h"
#include "kquants.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint16_t rd16d(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// The compiler must not fuse q·d + m (contract off), or results would differ from ggml's: clang fuses
// within an expression by default, GCC (the ARM64 cross build) across statements.
#ifdef __clang__
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
static void q4_port(const uint8_t *src, float *dst, int64_t blocks, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *x = src + b * bs;
        float *y = dst + b * 32;
        const float d = lt_f16_to_f32(rd16d(x)), m = has_min ? lt_f16_to_f32(rd16d(x + 2)) : 0.0f;
        for (int j = 0; j < 16; j++) {
            const uint8_t q = x[qoff + j];
            if (has_min) {
                y[j] = (float)(q & 15) * d + m;
                y[j + 16] = (float)(q >> 4) * d + m;
            } else {
                y[j] = (float)((int)(q & 15) - 8) * d;
                y[j + 16] = (float)((int)(q >> 4) - 8) * d;
            }
        }
    }
}

static void q8_port(const uint8_t *src, float *dst, int64_t blocks) {
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *x = src + b * 34;
        const float d = lt_f16_to_f32(rd16d(x));
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)(int8_t)x[2 + j] * d;
    }
}

#if defined(__x86_64__)
#define LT_AVX2D __attribute__((target("avx2,f16c")))
LT_AVX2D static void q4_avx2(const uint8_t *src, float *dst, int64_t blocks, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m128i low = _mm_set1_epi8(15);
    const __m256i eight = _mm256_set1_epi32(8);
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *x = src + b * bs;
        float *y = dst + b * 32;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(rd16d(x)));
        const __m256 m = _mm256_set1_ps(has_min ? _cvtsh_ss(rd16d(x + 2)) : 0.0f);
        const __m128i q = _mm_loadu_si128((const __m128i *)(x + qoff));
        const __m128i lo = _mm_and_si128(q, low), hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int p = 0; p < 4; p++) {
            __m256i v = _mm256_cvtepu8_epi32(parts[p]);
            if (!has_min) v = _mm256_sub_epi32(v, eight);
            __m256 r = _mm256_mul_ps(_mm256_cvtepi32_ps(v), d);
            if (has_min) r = _mm256_add_ps(r, m);
            _mm256_storeu_ps(y + 8 * p, r);
        }
    }
}

LT_AVX2D static void q8_avx2(const uint8_t *src, float *dst, int64_t blocks) {
    for (int64_t b = 0; b < blocks; b++) {
        const uint8_t *x = src + b * 34;
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(rd16d(x)));
        for (int p = 0; p < 4; p++) {
            const __m128i q = _mm_loadl_epi64((const __m128i *)(x + 2 + 8 * p));
            _mm256_storeu_ps(dst + b * 32 + 8 * p, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}
#endif

void lt_dequantize_q4(const void *src, float *dst, int64_t blocks, int has_min) {
#if defined(__x86_64__)
    if (lt_isa() >= LT_ISA_AVX2) { q4_avx2((const uint8_t *)src, dst, blocks, has_min); return; }
#endif
    q4_port((const uint8_t *)src, dst, blocks, has_min);
}

void lt_dequantize_q8_0(const void *src, float *dst, int64_t blocks) {
#if defined(__x86_64__)
    if (lt_isa() >= LT_ISA_AVX2) { q8_avx2((const uint8_t *)src, dst, blocks); return; }
#endif
    q8_port((const uint8_t *)src, dst, blocks);
}

// K-quants and Q5_0 through the shared unpacking (kquants.h): value = scale * q - min, a multiply
// rounded before the subtraction (contract off above), as ggml and gguf-py compute it. Plain C on
// every tier: the loops vectorize without changing a bit (no fused operations, no reassociation).
static void kq_dequantize(int type, const uint8_t *src, float *dst, int64_t blocks) {
    int8_t q[256];
    float scale[16], min[8];
    const int64_t bs = kq_block_bytes(type), per = kq_block_elems(type);
    for (int64_t b = 0; b < blocks;) {
        const int n = kq_unpack(type, src + b * bs, blocks - b, q, scale, min);
        float *y = dst + b * per;
        for (int g = 0; g < n / 16; g++) {
            const float s = scale[g], m = min[g / 2];
            for (int l = 0; l < 16; l++) y[16 * g + l] = s * (float)q[16 * g + l] - m;
        }
        b += n / per;
    }
}

void lt_dequantize_q4_k(const void *src, float *dst, int64_t blocks) { kq_dequantize(KQ_Q4_K, src, dst, blocks); }
void lt_dequantize_q5_k(const void *src, float *dst, int64_t blocks) { kq_dequantize(KQ_Q5_K, src, dst, blocks); }
void lt_dequantize_q6_k(const void *src, float *dst, int64_t blocks) { kq_dequantize(KQ_Q6_K, src, dst, blocks); }
void lt_dequantize_q5_0(const void *src, float *dst, int64_t blocks) { kq_dequantize(KQ_Q5_0, src, dst, blocks); }
