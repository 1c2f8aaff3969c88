#include "langtune_quant.h"
#include <math.h>

const float lt_nf4_code[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static inline float clamp1(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

/// Number of bounds strictly below v (torch.bucketize, right=False).
static inline int bucket(const float *bounds, int nb, float v) {
    int lo = 0, hi = nb;  // first index with bounds[i] >= v
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (bounds[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/// Codes of one block [s, e) as bitsandbytes computes them: absmax stored, values scaled by
/// absmax (clamped to 1e-38) and clamped to [-1, 1]; full blocks multiply by the reciprocal, the tail
/// block divides. `emit(i, code)` receives each code.
#define LT_BLOCK_CODES(x, s, e, is_full, absmax_slot, bounds, nb, emit)                    \
    do {                                                                                     \
        float am_ = 0.0f;                                                                    \
        for (int64_t i_ = (s); i_ < (e); i_++) { float a_ = fabsf((x)[i_]); if (a_ > am_) am_ = a_; } \
        *(absmax_slot) = am_;                                                                \
        float c_ = am_ > 1e-38f ? am_ : 1e-38f, inv_ = 1.0f / c_;                             \
        for (int64_t i = (s); i < (e); i++) {                                                \
            float v_ = (is_full) ? clamp1((x)[i] * inv_) : clamp1((x)[i] / c_);               \
            emit(i, bucket((bounds), (nb), v_));                                             \
        }                                                                                    \
    } while (0)

void lt_nf4_quantize(const float *x, int64_t n, int64_t blocksize, uint8_t *packed, float *absmax) {
    float bounds[15];
    for (int i = 0; i < 15; i++) bounds[i] = (lt_nf4_code[i] + lt_nf4_code[i + 1]) / 2.0f;
    int64_t nblocks = (n + blocksize - 1) / blocksize;
    int64_t full = n / blocksize;
    int64_t npacked = (n + 1) / 2;
    for (int64_t i = 0; i < npacked; i++) packed[i] = 0;
#define LT_PACK(i, q) (((i) & 1) == 0 ? (packed[(i) >> 1] |= (uint8_t)((q) << 4)) : (packed[(i) >> 1] |= (uint8_t)(q)))
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t s = b * blocksize, e = s + blocksize < n ? s + blocksize : n;
        LT_BLOCK_CODES(x, s, e, b < full, &absmax[b], bounds, 15, LT_PACK);
    }
#undef LT_PACK
    if (n & 1) packed[n >> 1] |= (uint8_t)bucket(bounds, 15, 0.0f);  // bnb pads the scaled values with 0
}

void lt_blockwise8_quantize(const float *x, int64_t n, int64_t blocksize, const float *map256,
                            uint8_t *codes, float *absmax) {
    float bounds[255];
    for (int i = 0; i < 255; i++) bounds[i] = (map256[i] + map256[i + 1]) / 2.0f;
    int64_t nblocks = (n + blocksize - 1) / blocksize, full = n / blocksize;
#define LT_STORE(i, q) (codes[i] = (uint8_t)(q))
    for (int64_t b = 0; b < nblocks; b++) {
        int64_t s = b * blocksize, e = s + blocksize < n ? s + blocksize : n;
        LT_BLOCK_CODES(x, s, e, b < full, &absmax[b], bounds, 255, LT_STORE);
    }
#undef LT_STORE
}

void lt_nf4_block_scales(const float *absmax, const uint8_t *absmax_codes, const float *nested_absmax,
                         const float *map256, float offset, int64_t nested_blocksize,
                         int64_t b0, int64_t b1, float *scales) {
    for (int64_t b = b0; b < b1; b++) {
        scales[b - b0] = absmax_codes
            ? map256[absmax_codes[b]] * nested_absmax[b / nested_blocksize] + offset
            : absmax[b];
    }
}

void lt_nf4_dequantize(const uint8_t *packed, const float *scales, int64_t blocksize,
                       int64_t start, int64_t end, float *out) {
    int64_t b0 = start / blocksize;
    int64_t i = start;
    while (i < end) {
        int64_t blockEnd = (i / blocksize + 1) * blocksize;
        if (blockEnd > end) blockEnd = end;
        float s = scales[i / blocksize - b0];
        // Pairs from an even index: one byte gives two values.
        if ((i & 1) && i < blockEnd) { out[i - start] = lt_nf4_code[packed[i >> 1] & 15] * s; i++; }
        for (; i + 1 < blockEnd; i += 2) {
            uint8_t p = packed[i >> 1];
            out[i - start] = lt_nf4_code[p >> 4] * s;
            out[i + 1 - start] = lt_nf4_code[p & 15] * s;
        }
        if (i < blockEnd) { out[i - start] = lt_nf4_code[packed[i >> 1] >> 4] * s; i++; }
    }
}
