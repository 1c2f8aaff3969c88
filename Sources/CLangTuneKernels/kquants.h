// GGUF K-quant super-blocks (ggml-common.h; 256 elements each), and Q5_0 (the fallback type of
// a Q4_K_M file for rows that are not whole super-blocks), unpacked to one shape that the
// decoding (dequant.c) and the matrix-vector products (matvec.c) share: up to 256 integer quants
// q, one float scale per 16 elements and, for the types with minimums, one float minimum per 32:
//   value[e] = scale[e / 16] * q[e] - min[e / 32]      (min = 0 for Q6_K and Q5_0)
// with scale and min rounded to float exactly as ggml and gguf-py round them (d * sc, dmin * m),
// which is what makes the decoding bit-exact. Layouts:
//   Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}                 144 bytes
//   Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}      176 bytes
//   Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}                210 bytes
//   Q5_0 {f16 d; u8 qh[4]; u8 qs[16]} (32 elements)                    22 bytes
// Q4_K/Q5_K: elements 64j..64j+31 are the low nibbles of qs[32j..32j+31], 64j+32.. the high ones
// (Q5_K adds bit 2j resp. 2j+1 of qh[l] as 16); their eight 6-bit scales and minimums are packed
// into 12 bytes. Q6_K: two halves of 128; in half h, element 32k + l takes 4 bits of ql and 2 of qh
// (k picks which), minus 32, with scale scales[8h + 2k + l/16]. Q5_0: element j < 16 is the low
// nibble of qs[j] plus bit j of qh (a little-endian u32) as 16, element j + 16 the high nibble plus
// bit j + 16; both minus 16.
// The loops are plain C on purpose: byte loops of fixed length that the compiler vectorizes for
// whatever the baseline target is, so every tier shares them.
#ifndef LANGTUNE_KQUANTS_H
#define LANGTUNE_KQUANTS_H

#include <stdint.h>
#include <string.h>

#include "langtune_kernels.h"

enum { KQ_Q5_0 = 6, KQ_Q4_K = 12, KQ_Q5_K = 13, KQ_Q6_K = 14 };  // ggml type ids

static inline int64_t kq_block_bytes(int type) {
    return type == KQ_Q5_0 ? 22 : type == KQ_Q4_K ? 144 : type == KQ_Q5_K ? 176 : 210;
}
// Elements per block.
static inline int64_t kq_block_elems(int type) { return type == KQ_Q5_0 ? 32 : 256; }

static inline float kq_f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return lt_f16_to_f32(h);
}

// The 12 packed bytes of Q4_K / Q5_K: scales 0-3 and minimums 0-3 are the low 6 bits of bytes 0-3
// and 4-7; scales and minimums 4-7 take 4 bits from bytes 8-11 and their top 2 from the top bits
// of bytes 0-3 and 4-7 (ggml's get_scale_min_k4).
static inline void kq_scale_min(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63;
        m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
    }
}

// Q4_K and Q5_K (has_high 1): q[256] in 0..15 (0..31), scale[16], min[8].
static inline __attribute__((always_inline)) void kq_unpack_q45(const uint8_t *blk, int has_high, int8_t *q,
                                                                float *scale, float *min) {
    const float d = kq_f16(blk), dmin = kq_f16(blk + 2);
    uint8_t sc[8], m[8];
    kq_scale_min(blk + 4, sc, m);
    for (int j = 0; j < 8; j++) {
        scale[2 * j] = scale[2 * j + 1] = d * (float)sc[j];
        min[j] = dmin * (float)m[j];
    }
    const uint8_t *qh = blk + 16, *qs = blk + (has_high ? 48 : 16);
    for (int j = 0; j < 4; j++) {
        const uint8_t *b = qs + 32 * j;
        int8_t *lo = q + 64 * j, *hi = lo + 32;
        for (int l = 0; l < 32; l++) {
            lo[l] = (int8_t)(b[l] & 0xF);
            hi[l] = (int8_t)(b[l] >> 4);
        }
        if (has_high)
            for (int l = 0; l < 32; l++) {
                lo[l] = (int8_t)(lo[l] | (((qh[l] >> (2 * j)) & 1) << 4));
                hi[l] = (int8_t)(hi[l] | (((qh[l] >> (2 * j + 1)) & 1) << 4));
            }
    }
}

// Q6_K: q[256] in -32..31, scale[16].
static inline __attribute__((always_inline)) void kq_unpack_q6(const uint8_t *blk, int8_t *q, float *scale) {
    const float d = kq_f16(blk + 208);
    for (int g = 0; g < 16; g++) scale[g] = d * (float)(int8_t)blk[192 + g];
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
        int8_t *o = q + 128 * h;
        for (int l = 0; l < 32; l++) {
            o[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
            o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

// `nb` (1..8) Q5_0 blocks: q[32 nb] in -16..15, scale[2 nb].
static inline __attribute__((always_inline)) void kq_unpack_q5_0(const uint8_t *src, int nb, int8_t *q, float *scale) {
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = src + 22 * b, *qs = blk + 6;
        const uint32_t qh = (uint32_t)blk[2] | (uint32_t)blk[3] << 8 | (uint32_t)blk[4] << 16 | (uint32_t)blk[5] << 24;
        scale[2 * b] = scale[2 * b + 1] = kq_f16(blk);
        int8_t *o = q + 32 * b;
        for (int j = 0; j < 16; j++) {
            o[j] = (int8_t)(((qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
            o[j + 16] = (int8_t)(((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
        }
    }
}

// Up to 256 elements of any of the four from `src`: K-quants one super-block, Q5_0 min(8, nb) blocks.
// Returns the elements unpacked; min is left zero for Q6_K and Q5_0.
static inline __attribute__((always_inline)) int kq_unpack(int type, const uint8_t *src, int64_t nb, int8_t *q,
                                                           float *scale, float *min) {
    if (type == KQ_Q4_K || type == KQ_Q5_K) {
        kq_unpack_q45(src, type == KQ_Q5_K, q, scale, min);
        return 256;
    }
    for (int j = 0; j < 8; j++) min[j] = 0.0f;
    if (type == KQ_Q6_K) {
        kq_unpack_q6(src, q, scale);
        return 256;
    }
    const int n = nb < 8 ? (int)nb : 8;
    kq_unpack_q5_0(src, n, q, scale);
    return 32 * n;
}

#endif
