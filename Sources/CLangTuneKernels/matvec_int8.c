// Matrix-vector products of GGUF blocks against an input quantized to int8 per block of 32 (the
// scheme llama.cpp uses for Q4/Q8 weights), on AVX512-VNNI: one vpdpbusd does 64 multiply-adds
// where the float path needs two widenings, two conversions and two FMAs per 32. The input's
// rounding (|error| <= d/2 per element, d = max|x|/127 of its block) is the price, so these run
// only where the user asked for reduced precision (`--dtype bf16`); float32 keeps lt_matvec_*.
//
// Input layouts (lt_quantize_q8): for Q4 weights, blocks in pairs (b, b+1) as 64 bytes
// [x_b[0..16) x_b1[0..16) x_b[16..32) x_b1[16..32)], matching how the nibbles of two blocks unpack;
// for Q8 weights, plain [x_b[0..32) x_b1[0..32)] with 128 added (unsigned, for vpdpbusd).
#include "langtune_kernels.h"
#include "train_simd.h"
#include <math.h>
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
LT_AVX2I static inline __attribute__((always_inline)) void
rows_q4_avx2i(const uint8_t *W, int64_t rowBytes, const int R, const int8_t *qx, const float *dx, const float *xsum,
              float *y, int64_t nb, int has_min) {
    const int bs = has_min ? 20 : 18, qoff = has_min ? 4 : 2;
    const __m256i low = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    float macc[4] = {0, 0, 0, 0};
    for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
        const int pair = b + 1 < nb;
        const __m256i xlo = _mm256_loadu_si256((const __m256i *)(qx + b * 32));
        const __m256i xhi = _mm256_loadu_si256((const __m256i *)(qx + b * 32 + 32));
        const float d0 = dx[b], d1 = pair ? dx[b + 1] : 0.0f;
        for (int i = 0; i < R; i++) {
            const uint8_t *b0 = W + i * rowBytes + b * bs, *b1 = b0 + bs;
            _mm_prefetch((const char *)(b0 + AHEAD), _MM_HINT_T0);
            const __m128i q0 = _mm_loadu_si128((const __m128i *)(b0 + qoff));
            const __m128i q1 = pair ? _mm_loadu_si128((const __m128i *)(b1 + qoff)) : _mm_setzero_si128();
            const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
            const __m256i lo = _mm256_and_si256(q, low), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low);
            const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
            const __m256i s = _mm256_madd_epi16(s16, ones);
            const float w0 = _cvtsh_ss(rd16i(b0)), w1 = pair ? _cvtsh_ss(rd16i(b1)) : 0.0f;
            const __m256 sc = _mm256_set_m128(_mm_set1_ps(w1 * d1), _mm_set1_ps(w0 * d0));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc[i]);
            if (has_min) {
                macc[i] += _cvtsh_ss(rd16i(b0 + 2)) * xsum[b];
                if (pair) macc[i] += _cvtsh_ss(rd16i(b1 + 2)) * xsum[b + 1];
            } else {
                macc[i] -= 8.0f * w0 * xsum[b];
                if (pair) macc[i] -= 8.0f * w1 * xsum[b + 1];
            }
        }
    }
    for (int i = 0; i < R; i++) y[i] = ltt_hsum256(acc[i]) + macc[i];
}

// Q8 blocks: the input's signed values come back from the Q8 layout by flipping the top bit; the sign
// trick (|w| unsigned, x with w's sign) keeps vpmaddubsw's pair sums within int16 (<= 2·128·127).
LT_AVX2I static inline __attribute__((always_inline)) void
rows_q8_avx2i(const uint8_t *W, int64_t rowBytes, const int R, const uint8_t *qx, const float *dx, float *y, int64_t nb) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
    __m256 acc[4];
    for (int i = 0; i < R; i++) acc[i] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xs = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(qx + b * 32)), flip);
        const float db = dx[b];
        for (int i = 0; i < R; i++) {
            const uint8_t *blk = W + i * rowBytes + b * 34;
            _mm_prefetch((const char *)(blk + AHEAD), _MM_HINT_T0);
            const __m256i w = _mm256_loadu_si256((const __m256i *)(blk + 2));
            const __m256i s16 = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(xs, w));
            const __m256i s = _mm256_madd_epi16(s16, ones);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(_cvtsh_ss(rd16i(blk)) * db), acc[i]);
        }
    }
    for (int i = 0; i < R; i++) y[i] = ltt_hsum256(acc[i]);
}

LT_AVX2I static void matvec_q4_avx2i(const void *W, const int8_t *qx, const float *dx, const float *xsum, float *y,
                                     int64_t cols, int64_t r0, int64_t r1, int has_min) {
    const int64_t nb = cols / 32, rowBytes = nb * (has_min ? 20 : 18);
    const uint8_t *base = (const uint8_t *)W;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q4_avx2i(base + r * rowBytes, rowBytes, 4, qx, dx, xsum, y + r, nb, has_min);
    for (; r < r1; r++) rows_q4_avx2i(base + r * rowBytes, rowBytes, 1, qx, dx, xsum, y + r, nb, has_min);
}

LT_AVX2I static void matvec_q8_avx2i(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols,
                                     int64_t r0, int64_t r1) {
    const int64_t nb = cols / 32, rowBytes = nb * 34;
    const uint8_t *base = (const uint8_t *)W;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_q8_avx2i(base + r * rowBytes, rowBytes, 4, qx, dx, y + r, nb);
    for (; r < r1; r++) rows_q8_avx2i(base + r * rowBytes, rowBytes, 1, qx, dx, y + r, nb);
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

int lt_matvec_q4_int8(const void *W, int has_min, const int8_t *qx, const float *dx, const float *xsum, float *y,
                      int64_t cols, int64_t r0, int64_t r1) {
    const int path = int8_path();
    if (path < 0 || cols % 32) return -1;
#if defined(__x86_64__)
    if (path == LT_ISA_AVX512) matvec_q4_vnni(W, qx, dx, xsum, y, cols, r0, r1, has_min);
    else matvec_q4_avx2i(W, qx, dx, xsum, y, cols, r0, r1, has_min);
#elif defined(__aarch64__)
    matvec_q4_neoni(W, qx, dx, xsum, y, cols, r0, r1, has_min);
#else
    (void)W; (void)has_min; (void)qx; (void)dx; (void)xsum; (void)y; (void)r0; (void)r1;
#endif
    return 0;
}

int lt_matvec_q8_0_int8(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0, int64_t r1) {
    const int path = int8_path();
    if (path < 0 || cols % 32) return -1;
#if defined(__x86_64__)
    if (path == LT_ISA_AVX512) matvec_q8_vnni(W, qx, dx, y, cols, r0, r1);
    else matvec_q8_avx2i(W, qx, dx, y, cols, r0, r1);
#elif defined(__aarch64__)
    matvec_q8_neoni(W, qx, dx, y, cols, r0, r1);
#else
    (void)W; (void)qx; (void)dx; (void)y; (void)r0; (void)r1;
#endif
    return 0;
}
