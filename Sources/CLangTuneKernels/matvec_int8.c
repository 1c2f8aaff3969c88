// Matrix-vector products of GGUF blocks against an input quantized to int8 per block of 32 (the
// scheme llama.cpp uses for Q4/Q8 weights), on AVX512-VNNI: one vpdpbusd does 64 multiply-adds
// where the float path needs two widenings, two conversions and two FMAs per 32. The input's
// rounding (|error| <= d/2 per element, d = max|x|/127 of its block) is the price, so these run
// only where the user asked for reduced precision (`--dtype bf16`); float32 keeps lt_matvec_*.
//
// Input layouts (lt_quantize_q8): for Q4 weights, blocks in pairs (b, b+1) as 64 bytes
// [x_b[0..16) x_b1[0..16) x_b[16..32) x_b1[16..32)], matching how the nibbles of two blocks unpack;
// for Q8 weights (and Q5_0, unpacked to signed bytes), plain [x_b[0..32) x_b1[0..32)] with 128 added
// (unsigned, for vpdpbusd).
#include "langtune_kernels.h"
#include "train_simd.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint16_t rd16i(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// The int8 paths: AVX512-VNNI (vpdpbusd) on the avx512/amx tiers, vpmaddubsw on avx2, and widening
// multiplies (vmull_s8) on neon.
static int int8_path(void) {
    const int isa = lt_isa();
#if defined(__x86_64__)
    if (isa >= LT_ISA_AVX512 && (lt_cpu_features() & LT_CPU_AVX512VNNI)) return LT_ISA_AVX512;
    if (isa >= LT_ISA_AVX2) return LT_ISA_AVX2;
#elif defined(__aarch64__)
    if (isa == LT_ISA_NEON) return LT_ISA_NEON;
#endif
    (void)isa;
    return -1;
}

int lt_int8_matvec_available(void) { return int8_path() >= 0; }

int64_t lt_quantize_q8_bytes(int64_t cols) { return ((cols / 32 + 1) / 2) * 64; }

void lt_quantize_q8(const float *x, int64_t cols, int8_t *q4layout, uint8_t *q8layout, float *d, float *xsum) {
    const int64_t nb = cols / 32;
    memset(q4layout, 0, (size_t)lt_quantize_q8_bytes(cols));
    memset(q8layout, 128, (size_t)lt_quantize_q8_bytes(cols));
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * 32;
        float amax = 0, s = 0;
        for (int j = 0; j < 32; j++) { amax = fmaxf(amax, fabsf(xb[j])); s += xb[j]; }
        const float db = amax / 127.0f, id = db > 0 ? 1.0f / db : 0.0f;
        d[b] = db;
        xsum[b] = s;
        int8_t *p4 = q4layout + (b / 2) * 64 + (b % 2) * 16;
        uint8_t *p8 = q8layout + b * 32;
        for (int j = 0; j < 32; j++) {
            const int v = (int)lrintf(xb[j] * id);  // |v| <= 127
            p4[j < 16 ? j : j + 16] = (int8_t)v;
            p8[j] = (uint8_t)(v + 128);
        }
    }
}

#if defined(__x86_64__)
#define AHEAD 512  // bytes of a row read ahead
#define LT_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))

// R rows (1..4) from `W` (row stride rowBytes): y[r] = sum_b s_b * dot + min term.
static inline __attribute__((always_inline)) LT_VNNI void
rows_q4_vnni(const uint8_t *W, int64_t rowBytes, const int R, const int8_t *qx, const float *dx, const float *xsum,
             float *y, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m256i low = _mm256_set1_epi8(15);
    __m512 acc[4];
    float macc[4] = {0, 0, 0, 0};
    for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int pair = b + 1 < nb;
        const __m512i xq = _mm512_loadu_si512(qx + b * 32);
        const float d0 = dx[b], d1 = pair ? dx[b + 1] : 0.0f;
        for (int i = 0; i < R; i++) {
            const uint8_t *b0 = W + i * rowBytes + b * bs, *b1 = b0 + bs;
            // Generation streams every weight from memory once per token: ask for the bytes a
            // few hundred ahead of use (the hardware prefetcher alone kept one core at ~4.6 GB/s).
            _mm_prefetch((const char *)(b0 + AHEAD), _MM_HINT_T0);
            const __m128i q0 = _mm_loadu_si128((const __m128i *)(b0 + qoff));
            const __m128i q1 = pair ? _mm_loadu_si128((const __m128i *)(b1 + qoff)) : _mm_setzero_si128();
            const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
            const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xq);
            const float w0 = _cvtsh_ss(rd16i(b0)), w1 = pair ? _cvtsh_ss(rd16i(b1)) : 0.0f;
            const __m512 sc = _mm512_mask_blend_ps(0xF0F0, _mm512_set1_ps(w0 * d0), _mm512_set1_ps(w1 * d1));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[i]);
            if (has_min) {
                macc[i] += _cvtsh_ss(rd16i(b0 + 2)) * xsum[b];
                if (pair) macc[i] += _cvtsh_ss(rd16i(b1 + 2)) * xsum[b + 1];
            } else {
                macc[i] -= 8.0f * w0 * xsum[b];
                if (pair) macc[i] -= 8.0f * w1 * xsum[b + 1];
            }
        }
    }
    for (int i = 0; i < R; i++) y[i] = _mm512_reduce_add_ps(acc[i]) + macc[i];
}

static inline __attribute__((always_inline)) LT_VNNI void
rows_q8_vnni(const uint8_t *W, int64_t rowBytes, const int R, const uint8_t *qx, const float *dx, float *y, int64_t nb) {
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
    __m512 acc[4];
    for (int i = 0; i < R; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int pair = b + 1 < nb;
        const __m512i xu = _mm512_loadu_si512(qx + b * 32);
        const float d0 = dx[b], d1 = pair ? dx[b + 1] : 0.0f;
        for (int i = 0; i < R; i++) {
            const uint8_t *b0 = W + i * rowBytes + b * 34, *b1 = b0 + 34;
            _mm_prefetch((const char *)(b0 + AHEAD), _MM_HINT_T0);
            _mm_prefetch((const char *)(b0 + AHEAD + 64), _MM_HINT_T0);
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(b0 + 2));
            const __m256i w1 = pair ? _mm256_loadu_si256((const __m256i *)(b1 + 2)) : _mm256_setzero_si256();
            const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1);
            // (x + 128)·w − 128·w = x·w, both sums exact in int32.
            const __m512i s = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, w),
                                               _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, w));
            const float s0 = _cvtsh_ss(rd16i(b0)) * d0, s1 = pair ? _cvtsh_ss(rd16i(b1)) * d1 : 0.0f;
            const __m512 sc = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[i]);
        }
    }
    for (int i = 0; i < R; i++) y[i] = _mm512_reduce_add_ps(acc[i]);
}

LT_VNNI static void matvec_q4_vnni(const void *W, const int8_t *qx, const float *dx, const float *xsum, float *y,
                                   int64_t cols, int64_t r0, int64_t r1, int has_min) {
    const int64_t nb = cols / 32, rowBytes = nb * (has_min ? 20 : 18);
    const uint8_t *base = (const uint8_t *)W;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q4_vnni(base + r * rowBytes, rowBytes, 4, qx, dx, xsum, y + r, nb, has_min);
    for (; r < r1; r++) rows_q4_vnni(base + r * rowBytes, rowBytes, 1, qx, dx, xsum, y + r, nb, has_min);
}

LT_VNNI static void matvec_q8_vnni(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols,
                                   int64_t r0, int64_t r1) {
    const int64_t nb = cols / 32, rowBytes = nb * 34;
    const uint8_t *base = (const uint8_t *)W;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q8_vnni(base + r * rowBytes, rowBytes, 4, qx, dx, y + r, nb);
    for (; r < r1; r++) rows_q8_vnni(base + r * rowBytes, rowBytes, 1, qx, dx, y + r, nb);
}
#endif

#if defined(__x86_64__)
#define LT_AVX2I __attribute__((target("avx2,fma,f16c")))

// A pair of Q4 blocks (b, b+1) against the Q4-layout input: vpmaddubsw multiplies the unsigned nibbles
// (<= 15) by the signed inputs and adds neighbours into int16 (|sum| <= 2·15·127, no saturation);
// vpmaddwd by ones widens to int32. Lanes 0-3 hold block b's sum, lanes 4-7 block b+1's.
//
// R weight rows against Q inputs (serving decodes many requests per step): the nibbles of a block are
// unpacked once for all Q inputs. Each (weight row, input) pair runs the same operations in the same
// order whatever R and Q are, so an input's results do not depend on what it is batched with.
// `pv` holds each input's per-pair vectors (q4_pair_vectors): the scales [d_b x4, d_b+1 x4] and the
// block sums [s_b 0 0 0 s_b+1 0 0 0], so the minimum term (m·s, or -8·w·s for Q4_0) is one more FMA
// into the same accumulator instead of scalar work per block.
LT_AVX2I static inline __attribute__((always_inline)) void
rows_q4_avx2i(const uint8_t *W, int64_t rowBytes, const int R, const int Q, const int8_t *qx, int64_t qstride,
              const float *pv, int64_t pvstride, float *y, int64_t ystride, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m256i low = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 acc[8];
    for (int a = 0; a < R * Q; a++) acc[a] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int pair = b + 1 < nb;
        for (int i = 0; i < R; i++) {
            const uint8_t *b0 = W + i * rowBytes + b * bs, *b1 = b0 + bs;
            _mm_prefetch((const char *)(b0 + AHEAD), _MM_HINT_T0);
            const __m128i q0 = _mm_loadu_si128((const __m128i *)(b0 + qoff));
            const __m128i q1 = pair ? _mm_loadu_si128((const __m128i *)(b1 + qoff)) : _mm_setzero_si128();
            const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            const float w0 = _cvtsh_ss(rd16i(b0)), w1 = pair ? _cvtsh_ss(rd16i(b1)) : 0.0f;
            const __m256 wv = _mm256_set_m128(_mm_set1_ps(w1), _mm_set1_ps(w0));
            const __m256 mv = has_min ? _mm256_set_m128(_mm_set1_ps(pair ? _cvtsh_ss(rd16i(b1 + 2)) : 0.0f),
                                                        _mm_set1_ps(_cvtsh_ss(rd16i(b0 + 2))))
                                      : _mm256_mul_ps(wv, _mm256_set1_ps(-8.0f));
            for (int j = 0; j < Q; j++) {
                const int8_t *xj = qx + j * qstride + b * 32;
                const float *vj = pv + j * pvstride + b * 8;
                const __m256i xlo = _mm256_loadu_si256((const __m256i *)xj);
                const __m256i xhi = _mm256_loadu_si256((const __m256i *)(xj + 32));
                const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
                const __m256i s = _mm256_madd_epi16(s16, ones);
                const int a = i * Q + j;
                acc[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(wv, _mm256_loadu_ps(vj)), acc[a]);
                acc[a] = _mm256_fmadd_ps(mv, _mm256_loadu_ps(vj + 8), acc[a]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Q; j++) y[j * ystride + i] = ltt_hsum256(acc[i * Q + j]);
}

// Per pair of blocks of one input: [d_b x4, d_b+1 x4, s_b 0 0 0, s_b+1 0 0 0] (16 floats; the missing
// second block of an odd count is zeros).
static void q4_pair_vectors(const float *dx, const float *xsum, int64_t nb, float *out) {
    for (int64_t b = 0; b < nb; b += 2) {
        float *v = out + b * 8;
        const int pair = b + 1 < nb;
        for (int l = 0; l < 4; l++) {
            v[l] = dx[b];
            v[4 + l] = pair ? dx[b + 1] : 0.0f;
            v[8 + l] = l == 0 ? xsum[b] : 0.0f;
            v[12 + l] = l == 0 && pair ? xsum[b + 1] : 0.0f;
        }
    }
}

// A Q5_0 block's 32 quants as signed bytes -16..15 in element order (ggml's unpacking): the low
// nibbles of qs are elements 0-15, the high ones 16-31; bit e of qh is element e's fifth bit. A byte
// whose bit is clear gets 0xF0 ORed in, which is its nibble minus 16 as a signed byte.
LT_AVX2I static inline __attribute__((always_inline)) __m256i q5_0_bytes_avx2(const uint8_t *blk) {
    const __m128i qs = _mm_loadu_si128((const __m128i *)(blk + 6));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(qs, 4), qs), _mm256_set1_epi8(0x0F));
    uint32_t qh;
    memcpy(&qh, blk + 2, 4);
    // Byte e of the vector gets byte e/8 of qh, then every bit but bit e%8 is set: all ones iff bit e is.
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                                 0x0101010101010101, 0x0000000000000000));
    const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                          _mm256_set1_epi64x(-1));
    return _mm256_or_si256(nib, _mm256_andnot_si256(set, _mm256_set1_epi8((char)0xF0)));
}

// Q8_0 blocks (q5 0) or Q5_0 blocks (q5 1, unpacked to signed bytes first): the input's signed values
// come back from the Q8 layout by flipping the top bit; the sign trick (|w| unsigned, x with w's sign)
// keeps vpmaddubsw's pair sums within int16 (<= 2·128·127). R weight rows against Q inputs, as for Q4.
LT_AVX2I static inline __attribute__((always_inline)) void
rows_q8_avx2i(const uint8_t *W, int64_t rowBytes, const int R, const int Q, const uint8_t *qx, int64_t qstride,
              const float *dx, int64_t sstride, float *y, int64_t ystride, int64_t nb, const int q5) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256 acc[8];
    for (int a = 0; a < R * Q; a++) acc[a] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = W + i * rowBytes + b * (q5 ? 22 : 34);
            _mm_prefetch((const char *)(blk + AHEAD), _MM_HINT_T0);
            const __m256i w = q5 ? q5_0_bytes_avx2(blk) : _mm256_loadu_si256((const __m256i *)(blk + 2));
            const __m256i wabs = _mm256_sign_epi8(w, w);
            const float wd = _cvtsh_ss(rd16i(blk));
            for (int j = 0; j < Q; j++) {
                const __m256i xs = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qx + j * qstride + b * 32)), flip);
                const __m256i s16 = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(xs, w));
                const __m256i s = _mm256_madd_epi16(s16, ones);
                const int a = i * Q + j;
                acc[a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(wd * dx[j * sstride + b]), acc[a]);
            }
        }
    }
    for (int i = 0; i < R; i++)
        for (int j = 0; j < Q; j++) y[j * ystride + i] = ltt_hsum256(acc[i * Q + j]);
}

// Q inputs in groups of up to 8: four weight rows at a time for one or two inputs (independent
// accumulators hide the FMA latency), one at a time for more (their inputs are the independent chains).
#define LT_Q_CASES(CALL) \
    switch (Q) { case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; case 4: CALL(4); break; \
                 case 5: CALL(5); break; case 6: CALL(6); break; case 7: CALL(7); break; default: CALL(8); break; }

LT_AVX2I static void matvec_q4_avx2i(const void *W, const int8_t *qx, int64_t qstride, const float *dx, const float *xsum,
                                     int64_t sstride, float *y, int64_t ystride, int64_t inputs, int64_t cols,
                                     int64_t r0, int64_t r1, int has_min) {
    const int64_t nb = cols / 32, rowBytes = nb * (has_min ? 20 : 18), pvstride = (nb + 1) / 2 * 16;
    const uint8_t *base = (const uint8_t *)W;
    float stackpv[8 * 32 * 16];  // up to 8 inputs of 32 pairs (2048 columns) without the heap
    float *pv = 8 * pvstride <= (int64_t)(sizeof stackpv / sizeof *stackpv) ? stackpv
                                                                            : malloc((size_t)(8 * pvstride) * sizeof(float));
    if (!pv) abort();  // out of memory for a few kilobytes: nothing sensible is left to do
    for (int64_t j0 = 0; j0 < inputs; j0 += 8) {
        const int Q = (int)(inputs - j0 < 8 ? inputs - j0 : 8);
        const int8_t *qj = qx + j0 * qstride;
        for (int j = 0; j < Q; j++) q4_pair_vectors(dx + (j0 + j) * sstride, xsum + (j0 + j) * sstride, nb, pv + j * pvstride);
        float *yj = y + j0 * ystride;
        int64_t r = r0;
#define Q4_ROWS(RR, QQ) rows_q4_avx2i(base + r * rowBytes, rowBytes, RR, QQ, qj, qstride, pv, pvstride, yj + r, ystride, nb, has_min)
#define Q4_FOUR(QQ) Q4_ROWS(4, QQ)
#define Q4_ONE(QQ) Q4_ROWS(1, QQ)
        if (Q <= 2) for (; r + 4 <= r1; r += 4) { if (Q == 1) Q4_FOUR(1); else Q4_FOUR(2); }
        for (; r < r1; r++) { LT_Q_CASES(Q4_ONE) }
#undef Q4_ROWS
#undef Q4_FOUR
#undef Q4_ONE
    }
    if (pv != stackpv) free(pv);
}

LT_AVX2I static inline __attribute__((always_inline)) void
matvec_q8_avx2i_body(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride, float *y,
                     int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1, const int q5) {
    const int64_t nb = cols / 32, rowBytes = nb * (q5 ? 22 : 34);
    const uint8_t *base = (const uint8_t *)W;
    for (int64_t j0 = 0; j0 < inputs; j0 += 8) {
        const int Q = (int)(inputs - j0 < 8 ? inputs - j0 : 8);
        const uint8_t *qj = qx + j0 * qstride;
        const float *dj = dx + j0 * sstride;
        float *yj = y + j0 * ystride;
        int64_t r = r0;
#define Q8_ROWS(RR, QQ) rows_q8_avx2i(base + r * rowBytes, rowBytes, RR, QQ, qj, qstride, dj, sstride, yj + r, ystride, nb, q5)
#define Q8_FOUR(QQ) Q8_ROWS(4, QQ)
#define Q8_ONE(QQ) Q8_ROWS(1, QQ)
        if (Q <= 2) for (; r + 4 <= r1; r += 4) { if (Q == 1) Q8_FOUR(1); else Q8_FOUR(2); }
        for (; r < r1; r++) { LT_Q_CASES(Q8_ONE) }
#undef Q8_ROWS
#undef Q8_FOUR
#undef Q8_ONE
    }
}

// One function per block type (a constant q5 folds the block handling).
LT_AVX2I static void matvec_q8_avx2i(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                                     float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1) {
    matvec_q8_avx2i_body(W, qx, qstride, dx, sstride, y, ystride, inputs, cols, r0, r1, 0);
}
LT_AVX2I static void matvec_q5_0_avx2i(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                                       float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1) {
    matvec_q8_avx2i_body(W, qx, qstride, dx, sstride, y, ystride, inputs, cols, r0, r1, 1);
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

static inline float f16i_neon(const uint8_t *p) {
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(rd16i(p)))), 0);
}

// 16 signed bytes times 16 signed bytes, summed into int32 lanes (vmull_s8 then pairwise adds).
static inline int32x4_t dot16_neon(int32x4_t acc, int8x16_t a, int8x16_t b) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_s8(vget_high_s8(a), vget_high_s8(b)));
}

static void matvec_q4_neoni(const void *W, const int8_t *qx, const float *dx, const float *xsum, float *y, int64_t cols,
                            int64_t r0, int64_t r1, int has_min) {
    const int64_t nb = cols / 32, bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2, rowBytes = nb * bs;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W + r * rowBytes;
        float acc = 0, macc = 0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * bs;
            // The Q4 layout keeps block b's 32 values at [pair*64 + (b%2)*16, +16) and [+32, +48).
            const int8_t *xb = qx + (b / 2) * 64 + (b % 2) * 16;
            const uint8x16_t q = vld1q_u8(blk + qoff);
            const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(15)));
            const int8x16_t hi = vreinterpretq_s8_u8(vshrq_n_u8(q, 4));
            int32x4_t s = dot16_neon(vdupq_n_s32(0), lo, vld1q_s8(xb));
            s = dot16_neon(s, hi, vld1q_s8(xb + 32));
            const float d = f16i_neon(blk);
            acc += d * dx[b] * (float)vaddvq_s32(s);
            macc += has_min ? f16i_neon(blk + 2) * xsum[b] : -8.0f * d * xsum[b];
        }
        y[r] = acc + macc;
    }
}

// Q5_0: the block unpacked to signed bytes with plain C (the layout is ggml's, as in kquants.h), then
// the Q8_0 product.
static void matvec_q5_0_neoni(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0,
                              int64_t r1) {
    const int64_t nb = cols / 32, rowBytes = nb * 22;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    int8_t q[32];
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W + r * rowBytes;
        float acc = 0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * 22;
            uint32_t qh;
            memcpy(&qh, blk + 2, 4);
            for (int j = 0; j < 16; j++) {
                q[j] = (int8_t)(((blk[6 + j] & 15) | ((qh >> j) & 1) << 4) - 16);
                q[j + 16] = (int8_t)(((blk[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
            }
            const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qx + b * 32), flip));
            const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qx + b * 32 + 16), flip));
            int32x4_t s = dot16_neon(vdupq_n_s32(0), vld1q_s8(q), x0);
            s = dot16_neon(s, vld1q_s8(q + 16), x1);
            acc += f16i_neon(blk) * dx[b] * (float)vaddvq_s32(s);
        }
        y[r] = acc;
    }
}

static void matvec_q8_neoni(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0,
                            int64_t r1) {
    const int64_t nb = cols / 32, rowBytes = nb * 34;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W + r * rowBytes;
        float acc = 0;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + b * 34;
            const int8x16_t x0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qx + b * 32), flip));
            const int8x16_t x1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(qx + b * 32 + 16), flip));
            int32x4_t s = dot16_neon(vdupq_n_s32(0), vld1q_s8((const int8_t *)(blk + 2)), x0);
            s = dot16_neon(s, vld1q_s8((const int8_t *)(blk + 18)), x1);
            acc += f16i_neon(blk) * dx[b] * (float)vaddvq_s32(s);
        }
        y[r] = acc;
    }
}
#endif

int lt_matvec_q4_int8_inputs(const void *W, int has_min, const int8_t *qx, int64_t qstride, const float *dx,
                             const float *xsum, int64_t sstride, float *y, int64_t ystride, int64_t inputs, int64_t cols,
                             int64_t r0, int64_t r1) {
    const int path = int8_path();
    if (path < 0 || cols % 32) return -1;
#if defined(__x86_64__)
    if (path == LT_ISA_AVX2) {
        matvec_q4_avx2i(W, qx, qstride, dx, xsum, sstride, y, ystride, inputs, cols, r0, r1, has_min);
        return 0;
    }
#endif
    // The other paths take one input at a time (each input's results are then its own by construction).
    for (int64_t j = 0; j < inputs; j++) {
        const int8_t *q = qx + j * qstride;
        const float *d = dx + j * sstride, *xs = xsum + j * sstride;
        float *yj = y + j * ystride;
#if defined(__x86_64__)
        matvec_q4_vnni(W, q, d, xs, yj, cols, r0, r1, has_min);
#elif defined(__aarch64__)
        matvec_q4_neoni(W, q, d, xs, yj, cols, r0, r1, has_min);
#else
        (void)W; (void)has_min; (void)q; (void)d; (void)xs; (void)yj; (void)r0; (void)r1;
#endif
    }
    return 0;
}

int lt_matvec_q8_0_int8_inputs(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                               float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1) {
    const int path = int8_path();
    if (path < 0 || cols % 32) return -1;
#if defined(__x86_64__)
    if (path == LT_ISA_AVX2) {
        matvec_q8_avx2i(W, qx, qstride, dx, sstride, y, ystride, inputs, cols, r0, r1);
        return 0;
    }
#endif
    for (int64_t j = 0; j < inputs; j++) {
        const uint8_t *q = qx + j * qstride;
        const float *d = dx + j * sstride;
        float *yj = y + j * ystride;
#if defined(__x86_64__)
        matvec_q8_vnni(W, q, d, yj, cols, r0, r1);
#elif defined(__aarch64__)
        matvec_q8_neoni(W, q, d, yj, cols, r0, r1);
#else
        (void)W; (void)q; (void)d; (void)yj; (void)r0; (void)r1;
#endif
    }
    return 0;
}

int lt_matvec_q5_0_int8_inputs(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                               float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1) {
    const int path = int8_path();
    if (path < 0 || cols % 32) return -1;
#if defined(__x86_64__)
    matvec_q5_0_avx2i(W, qx, qstride, dx, sstride, y, ystride, inputs, cols, r0, r1);
#elif defined(__aarch64__)
    for (int64_t j = 0; j < inputs; j++) matvec_q5_0_neoni(W, qx + j * qstride, dx + j * sstride, y + j * ystride, cols, r0, r1);
#else
    (void)W; (void)qx; (void)qstride; (void)dx; (void)sstride; (void)y; (void)ystride; (void)inputs; (void)r0; (void)r1;
#endif
    return 0;
}

int lt_matvec_q4_int8(const void *W, int has_min, const int8_t *qx, const float *dx, const float *xsum, float *y,
                      int64_t cols, int64_t r0, int64_t r1) {
    return lt_matvec_q4_int8_inputs(W, has_min, qx, 0, dx, xsum, 0, y, 0, 1, cols, r0, r1);
}

int lt_matvec_q8_0_int8(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0, int64_t r1) {
    return lt_matvec_q8_0_int8_inputs(W, qx, 0, dx, 0, y, 0, 1, cols, r0, r1);
}

int lt_matvec_q5_0_int8(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0, int64_t r1) {
    return lt_matvec_q5_0_int8_inputs(W, qx, 0, dx, 0, y, 0, 1, cols, r0, r1);
}
