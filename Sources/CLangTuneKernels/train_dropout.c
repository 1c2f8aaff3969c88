// Dropout with a counter-based mask: element i keeps when splitmix64 output
// number (offset + i) of the stream seeded by `seed` has its top 32 bits at or
// above round(p * 2^32). The backward pass recomputes the same mask, so
// nothing is stored, and any split of the elements across threads (by
// offset) gives the same mask.
#include "train_simd.h"

#define SM_GAMMA 0x9E3779B97F4A7C15ull
#define SM_M1 0xBF58476D1CE4E5B9ull
#define SM_M2 0x94D049BB133111EBull

static inline uint64_t sm_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * SM_M1;
    z = (z ^ (z >> 27)) * SM_M2;
    return z ^ (z >> 31);
}

static inline int sm_keep(uint64_t seed, uint64_t counter, uint64_t thr) {
    return (sm_mix(seed + (counter + 1) * SM_GAMMA) >> 32) >= thr;
}

static void dropout_port(const float *x, float *out, uint8_t *mask, int64_t n, uint64_t thr,
                         float keep_scale, uint64_t seed, uint64_t offset) {
    for (int64_t i = 0; i < n; i++) {
        const int k = sm_keep(seed, offset + (uint64_t)i, thr);
        out[i] = k ? x[i] * keep_scale : 0.0f;
        if (mask) {
            if ((i & 7) == 0) mask[i >> 3] = 0;
            mask[i >> 3] |= (uint8_t)(k << (i & 7));
        }
    }
}

#if LTT_HAVE_X86
static inline LTT_AVX512 __mmask8 sm_keep8(__m512i ctr, __m512i vseed, __m512i vthr) {
    __m512i z = _mm512_add_epi64(vseed, _mm512_mullo_epi64(ctr, _mm512_set1_epi64((long long)SM_GAMMA)));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)SM_M1));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)SM_M2));
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    return _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z, 32), vthr);
}

LTT_AVX512 static void dropout_512(const float *x, float *out, uint8_t *mask, int64_t n,
                                   uint64_t thr, float keep_scale, uint64_t seed, uint64_t offset) {
    const __m512i vseed = _mm512_set1_epi64((long long)seed), vthr = _mm512_set1_epi64((long long)thr);
    const __m512i lanes = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1);  // counter + 1
    const __m512 vs = _mm512_set1_ps(keep_scale);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i base = _mm512_add_epi64(_mm512_set1_epi64((long long)(offset + (uint64_t)i)), lanes);
        const __mmask8 k0 = sm_keep8(base, vseed, vthr);
        const __mmask8 k1 = sm_keep8(_mm512_add_epi64(base, _mm512_set1_epi64(8)), vseed, vthr);
        const __mmask16 k = (__mmask16)((unsigned)k0 | ((unsigned)k1 << 8));
        _mm512_storeu_ps(out + i, _mm512_maskz_mul_ps(k, _mm512_loadu_ps(x + i), vs));
        if (mask) {
            mask[i >> 3] = (uint8_t)k0;
            mask[(i >> 3) + 1] = (uint8_t)k1;
        }
    }
    if (i < n)
        dropout_port(x + i, out + i, mask ? mask + (i >> 3) : NULL, n - i, thr, keep_scale, seed,
                     offset + (uint64_t)i);
}
LTT_AVX2 static void dropout_256(const float *x, float *out, uint8_t *mask, int64_t n, uint64_t thr,
                                 float keep_scale, uint64_t seed, uint64_t offset) {
    // AVX2 has no 64-bit lane multiply for splitmix64: the portable loop, compiled for AVX2.
    dropout_port(x, out, mask, n, thr, keep_scale, seed, offset);
}
#endif
#if LTT_HAVE_NEON
#define dropout_neon dropout_port
#endif

static void dropout_dispatch(const float *x, float *out, uint8_t *mask, int64_t n, float p,
                             uint64_t seed, uint64_t offset) {
    if (n <= 0) return;
    if (!(p > 0.0f)) {  // p <= 0 (or NaN): identity
        if (out != x) memmove(out, x, (size_t)n * sizeof(float));
        if (mask) {
            memset(mask, 0xFF, (size_t)(n >> 3));
            if (n & 7) mask[n >> 3] = (uint8_t)((1u << (n & 7)) - 1u);
        }
        return;
    }
    if (p >= 1.0f) {
        memset(out, 0, (size_t)n * sizeof(float));
        if (mask) memset(mask, 0, (size_t)((n + 7) >> 3));
        return;
    }
    const uint64_t thr = (uint64_t)llround((double)p * 4294967296.0);
    const float keep_scale = (float)(1.0 / (1.0 - (double)p));
    LTT_CALL(dropout, x, out, mask, n, thr, keep_scale, seed, offset);
}

void ltt_dropout_forward(const float *x, float *out, uint8_t *mask_bits, int64_t n, float p,
                         uint64_t seed, uint64_t offset) {
    dropout_dispatch(x, out, mask_bits, n, p, seed, offset);
}

void ltt_dropout_backward(const float *dout, float *dx, int64_t n, float p, uint64_t seed,
                          uint64_t offset) {
    dropout_dispatch(dout, dx, NULL, n, p, seed, offset);
}
