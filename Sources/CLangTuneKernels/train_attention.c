// Causal grouped-query attention, forward and backward, flash-attention style:
// nothing of size T x T is kept. Work goes in tiles of ATT_BQ queries by
// ATT_BK keys, so the inner loops are small matrix products over contiguous
// rows (they vectorize without reassociation) instead of one dot product per
// (query, key).
//
// Forward: online softmax over key blocks; saves lse per (head, query).
// Backward: recomputes p from q.k and lse, with D_t = sum(dout_t * out_t):
//   p_tj = exp(s_tj - lse_t),  dp_tj = dout_t . v_j,  ds_tj = p_tj (dp_tj - D_t)
//   dv_j += p_tj dout_t,  dk_j += scale ds_tj q_t,  dq_t += scale ds_tj k_j
//
// Visibility: key j is visible to query t when lo(t) <= j <= t, with
// lo(t) = max(st(t), t - window + 1) (window > 0; no window term when 0), where
// st(t) is the first position of t's segment (0 without segments). Segment runs
// are contiguous, so lo is non-decreasing in t: a tile's first query has the
// lowest bound, and a key block past the bound of one query is past that of
// every later one. The window is transformers' sliding_window_overlay
// (kv_idx > q_idx - window: t - j < window), Gemma 3's local layers.
#include "train_simd.h"

#define ATT_BQF 64  // queries per tile, forward
#define ATT_BQB 32  // queries per tile, backward
#define ATT_BK 64   // keys per block

// Every product here is one shape: Y[i][0..n) += sum_{t<m} C[i*crs + t*ccs] * X[t*ldx + 0..n)
// for rows i < ny (scores Q K^T with X = K transposed, P V, dS K, and with
// C transposed P^T dO and dS^T Q).
typedef void (*combine_fn)(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs,
                           int64_t ccs, const float *X, int64_t ldx, int64_t m, int64_t n);
typedef float (*dot_fn)(const float *, const float *, int64_t);
typedef float (*expsum_fn)(float *, float, int64_t);

static inline int64_t att_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t att_max(int64_t a, int64_t b) { return a > b ? a : b; }

// lo(t) above from the segment start st(t).
static inline int64_t att_lo(int64_t st, int64_t t, int64_t window) {
    return window > 0 ? att_max(st, t - window + 1) : st;
}

static void combine_port(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs,
                         int64_t ccs, const float *X, int64_t ldx, int64_t m, int64_t n) {
    for (int64_t i = 0; i < ny; i++) {
        float *y = Y + i * ldy;
        const float *c = C + i * crs;
        int64_t t = 0;
        for (; t + 4 <= m; t += 4) {
            const float c0 = c[t * ccs], c1 = c[(t + 1) * ccs], c2 = c[(t + 2) * ccs], c3 = c[(t + 3) * ccs];
            const float *x0 = X + t * ldx, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
            for (int64_t d = 0; d < n; d++) y[d] += c0 * x0[d] + c1 * x1[d] + c2 * x2[d] + c3 * x3[d];
        }
        for (; t < m; t++) {
            const float c0 = c[t * ccs], *x0 = X + t * ldx;
            for (int64_t d = 0; d < n; d++) y[d] += c0 * x0[d];
        }
    }
}

#if LTT_HAVE_X86
// R (1..4) rows at once; columns in chunks of 64 (4 zmm) so that R x 4
// accumulators stay in registers across the whole sum over t.
static inline __attribute__((always_inline)) LTT_AVX512 void
combine_rows_512(float *Y, int64_t ldy, const int R, const float *C, int64_t crs, int64_t ccs,
                 const float *X, int64_t ldx, int64_t m, int64_t n) {
    int64_t c0 = 0;
    for (; c0 + 64 <= n; c0 += 64) {
        __m512 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_loadu_ps(Y + r * ldy + c0 + 16 * v);
        for (int64_t t = 0; t < m; t++) {
            const float *x = X + t * ldx + c0;
            const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
            const __m512 x2 = _mm512_loadu_ps(x + 32), x3 = _mm512_loadu_ps(x + 48);
            for (int r = 0; r < R; r++) {
                const __m512 c = _mm512_set1_ps(C[r * crs + t * ccs]);
                acc[r][0] = _mm512_fmadd_ps(c, x0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(c, x1, acc[r][1]);
                acc[r][2] = _mm512_fmadd_ps(c, x2, acc[r][2]);
                acc[r][3] = _mm512_fmadd_ps(c, x3, acc[r][3]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++) _mm512_storeu_ps(Y + r * ldy + c0 + 16 * v, acc[r][v]);
    }
    for (; c0 < n; c0 += 16) {
        const __mmask16 k = ltt_tail_mask(n - c0);
        __m512 acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm512_maskz_loadu_ps(k, Y + r * ldy + c0);
        for (int64_t t = 0; t < m; t++) {
            const __m512 x = _mm512_maskz_loadu_ps(k, X + t * ldx + c0);
            for (int r = 0; r < R; r++)
                acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(C[r * crs + t * ccs]), x, acc[r]);
        }
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(Y + r * ldy + c0, k, acc[r]);
    }
}

// n <= 16 (LoRA's x·Aᵀ and dy·B at rank <= 16): one masked vector per row, R (1..8) rows at once so
// that eight independent FMA chains hide the FMA latency.
static inline __attribute__((always_inline)) LTT_AVX512 void
combine_narrow_512(float *Y, int64_t ldy, const int R, const float *C, int64_t crs, int64_t ccs,
                   const float *X, int64_t ldx, int64_t m, int64_t n) {
    const __mmask16 k = ltt_tail_mask(n);
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_maskz_loadu_ps(k, Y + r * ldy);
    for (int64_t t = 0; t < m; t++) {
        const __m512 x = _mm512_maskz_loadu_ps(k, X + t * ldx);
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(C[r * crs + t * ccs]), x, acc[r]);
    }
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(Y + r * ldy, k, acc[r]);
}

static LTT_AVX512 void combine_512(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs,
                                   int64_t ccs, const float *X, int64_t ldx, int64_t m, int64_t n) {
    int64_t i = 0;
    if (n <= 16) {
        for (; i + 8 <= ny; i += 8) combine_narrow_512(Y + i * ldy, ldy, 8, C + i * crs, crs, ccs, X, ldx, m, n);
        for (; i < ny; i++) combine_narrow_512(Y + i * ldy, ldy, 1, C + i * crs, crs, ccs, X, ldx, m, n);
        return;
    }
    for (; i + 4 <= ny; i += 4) combine_rows_512(Y + i * ldy, ldy, 4, C + i * crs, crs, ccs, X, ldx, m, n);
    for (; i < ny; i++) combine_rows_512(Y + i * ldy, ldy, 1, C + i * crs, crs, ccs, X, ldx, m, n);
}

// AVX2: R (1..4) rows, columns in chunks of 16 (2 ymm) so that R x 2 accumulators, two rows of X and
// the broadcast fit the 16 ymm registers.
static inline __attribute__((always_inline)) LTT_AVX2 void
combine_rows_256(float *Y, int64_t ldy, const int R, const float *C, int64_t crs, int64_t ccs, const float *X,
                 int64_t ldx, int64_t m, int64_t n) {
    int64_t c0 = 0;
    for (; c0 + 16 <= n; c0 += 16) {
        __m256 acc[4][2];
        for (int r = 0; r < R; r++) {
            acc[r][0] = _mm256_loadu_ps(Y + r * ldy + c0);
            acc[r][1] = _mm256_loadu_ps(Y + r * ldy + c0 + 8);
        }
        for (int64_t t = 0; t < m; t++) {
            const float *x = X + t * ldx + c0;
            const __m256 x0 = _mm256_loadu_ps(x), x1 = _mm256_loadu_ps(x + 8);
            for (int r = 0; r < R; r++) {
                const __m256 c = _mm256_set1_ps(C[r * crs + t * ccs]);
                acc[r][0] = _mm256_fmadd_ps(c, x0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(c, x1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(Y + r * ldy + c0, acc[r][0]);
            _mm256_storeu_ps(Y + r * ldy + c0 + 8, acc[r][1]);
        }
    }
    for (; c0 < n; c0 += 8) {
        const __m256i k = ltt_mask256(n - c0);
        __m256 acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm256_maskload_ps(Y + r * ldy + c0, k);
        for (int64_t t = 0; t < m; t++) {
            const __m256 x = _mm256_maskload_ps(X + t * ldx + c0, k);
            for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(C[r * crs + t * ccs]), x, acc[r]);
        }
        for (int r = 0; r < R; r++) _mm256_maskstore_ps(Y + r * ldy + c0, k, acc[r]);
    }
}

// n <= 16 (LoRA's rank-r side): V (1 or 2) masked vectors per row, R rows at once for independent chains.
static inline __attribute__((always_inline)) LTT_AVX2 void
combine_narrow_256(float *Y, int64_t ldy, const int R, const int V, const float *C, int64_t crs, int64_t ccs,
                   const float *X, int64_t ldx, int64_t m, int64_t n) {
    const __m256i k0 = ltt_mask256(n), k1 = ltt_mask256(n > 8 ? n - 8 : 0);
    __m256 acc[8][2];
    for (int r = 0; r < R; r++) {
        acc[r][0] = _mm256_maskload_ps(Y + r * ldy, k0);
        if (V == 2) acc[r][1] = _mm256_maskload_ps(Y + r * ldy + 8, k1);
    }
    for (int64_t t = 0; t < m; t++) {
        const __m256 x0 = _mm256_maskload_ps(X + t * ldx, k0);
        const __m256 x1 = V == 2 ? _mm256_maskload_ps(X + t * ldx + 8, k1) : x0;
        for (int r = 0; r < R; r++) {
            const __m256 c = _mm256_set1_ps(C[r * crs + t * ccs]);
            acc[r][0] = _mm256_fmadd_ps(c, x0, acc[r][0]);
            if (V == 2) acc[r][1] = _mm256_fmadd_ps(c, x1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        _mm256_maskstore_ps(Y + r * ldy, k0, acc[r][0]);
        if (V == 2) _mm256_maskstore_ps(Y + r * ldy + 8, k1, acc[r][1]);
    }
}

static LTT_AVX2 void combine_256(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs, int64_t ccs,
                                 const float *X, int64_t ldx, int64_t m, int64_t n) {
    int64_t i = 0;
    if (n <= 8) {
        for (; i + 8 <= ny; i += 8) combine_narrow_256(Y + i * ldy, ldy, 8, 1, C + i * crs, crs, ccs, X, ldx, m, n);
        for (; i < ny; i++) combine_narrow_256(Y + i * ldy, ldy, 1, 1, C + i * crs, crs, ccs, X, ldx, m, n);
        return;
    }
    if (n <= 16) {
        for (; i + 6 <= ny; i += 6) combine_narrow_256(Y + i * ldy, ldy, 6, 2, C + i * crs, crs, ccs, X, ldx, m, n);
        for (; i < ny; i++) combine_narrow_256(Y + i * ldy, ldy, 1, 2, C + i * crs, crs, ccs, X, ldx, m, n);
        return;
    }
    for (; i + 4 <= ny; i += 4) combine_rows_256(Y + i * ldy, ldy, 4, C + i * crs, crs, ccs, X, ldx, m, n);
    for (; i < ny; i++) combine_rows_256(Y + i * ldy, ldy, 1, C + i * crs, crs, ccs, X, ldx, m, n);
}
#endif

#if LTT_HAVE_NEON
// NEON: R (1..4) rows, columns in chunks of 16 (4 q registers); the last n % 4 columns in scalar code.
static inline __attribute__((always_inline)) void combine_rows_neon(float *Y, int64_t ldy, const int R, const float *C,
                                                                    int64_t crs, int64_t ccs, const float *X, int64_t ldx,
                                                                    int64_t m, int64_t n) {
    int64_t c0 = 0;
    for (; c0 + 16 <= n; c0 += 16) {
        float32x4_t acc[4][4];
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++) acc[r][v] = vld1q_f32(Y + r * ldy + c0 + 4 * v);
        for (int64_t t = 0; t < m; t++) {
            const float *x = X + t * ldx + c0;
            const float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + 4), x2 = vld1q_f32(x + 8), x3 = vld1q_f32(x + 12);
            for (int r = 0; r < R; r++) {
                const float c = C[r * crs + t * ccs];
                acc[r][0] = vfmaq_n_f32(acc[r][0], x0, c);
                acc[r][1] = vfmaq_n_f32(acc[r][1], x1, c);
                acc[r][2] = vfmaq_n_f32(acc[r][2], x2, c);
                acc[r][3] = vfmaq_n_f32(acc[r][3], x3, c);
            }
        }
        for (int r = 0; r < R; r++)
            for (int v = 0; v < 4; v++) vst1q_f32(Y + r * ldy + c0 + 4 * v, acc[r][v]);
    }
    for (; c0 + 4 <= n; c0 += 4) {
        float32x4_t acc[4];
        for (int r = 0; r < R; r++) acc[r] = vld1q_f32(Y + r * ldy + c0);
        for (int64_t t = 0; t < m; t++) {
            const float32x4_t x = vld1q_f32(X + t * ldx + c0);
            for (int r = 0; r < R; r++) acc[r] = vfmaq_n_f32(acc[r], x, C[r * crs + t * ccs]);
        }
        for (int r = 0; r < R; r++) vst1q_f32(Y + r * ldy + c0, acc[r]);
    }
    if (c0 < n) combine_port(Y + c0, ldy, R, C, crs, ccs, X + c0, ldx, m, n - c0);
}

static void combine_neon(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs, int64_t ccs, const float *X,
                         int64_t ldx, int64_t m, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= ny; i += 4) combine_rows_neon(Y + i * ldy, ldy, 4, C + i * crs, crs, ccs, X, ldx, m, n);
    for (; i < ny; i++) combine_rows_neon(Y + i * ldy, ldy, 1, C + i * crs, crs, ccs, X, ldx, m, n);
}
#endif

// Bt[d][j] = B[j][d0 + d] for j < nk, d < nd; columns nk..ATT_BK-1 zeroed
// (products read the full block width).
static void att_transpose(float *Bt, const float *B, int64_t ldb, int64_t d0, int64_t nd,
                          int64_t nk) {
    for (int64_t j = 0; j < nk; j++) {
        const float *b = B + j * ldb + d0;
#pragma clang loop vectorize(disable)
        for (int64_t d = 0; d < nd; d++) Bt[d * ATT_BK + j] = b[d];
    }
    if (nk < ATT_BK)
        for (int64_t d = 0; d < nd; d++) memset(Bt + d * ATT_BK + nk, 0, (size_t)(ATT_BK - nk) * sizeof(float));
}

typedef void (*expdiff_fn)(float *, const float *, int64_t);

// Scratch: Qt[hd*ATT_BQF] | St[ATT_BK*ATT_BQF].
// Scores are kept transposed, St[j][r] = k_j . (scale q_r), so that the online
// softmax runs elementwise across the tile's queries; Q is transposed once per
// tile instead of K once per (tile, key block).
LTT_BODY void attn_fwd_body(const float *q, const float *k, const float *v, float *out, float *lse,
                            int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t h0,
                            int64_t h1, float *scratch, const int32_t *seg, int64_t window,
                            combine_fn combine, expdiff_fn expdiff) {
    const int64_t group = nH / nKV, qs = nH * hd, ks = nKV * hd;
    float *Qt = scratch, *St = Qt + hd * ATT_BQF;
    float mrow[ATT_BQF], lrow[ATT_BQF], mnew[ATT_BQF], sub[ATT_BQF], alpha[ATT_BQF];
    int64_t strow[ATT_BQF], trow[ATT_BQF];
    for (int64_t h = h0; h < h1; h++) {
        const int64_t g = h / group;
        const float *kg = k + g * hd, *vg = v + g * hd;
        int64_t st = 0;
        for (int64_t t0 = 0; t0 < T; t0 += ATT_BQF) {
            const int64_t nq = att_min(ATT_BQF, T - t0), tl = t0 + nq - 1;
            const float *qt = q + t0 * qs + h * hd;
            float *ot = out + t0 * qs + h * hd;
            for (int64_t r = 0; r < ATT_BQF; r++) {
                const int64_t t = t0 + r;
                if (r < nq && seg && t > 0 && seg[t] != seg[t - 1]) st = t;
                // Padding rows (r >= nq) see nothing: a bound beyond any key.
                strow[r] = r < nq ? att_lo(st, t, window) : INT64_MAX;
                trow[r] = t;
                mrow[r] = -INFINITY;
                lrow[r] = 0.f;
            }
            for (int64_t r = 0; r < nq; r++) memset(ot + r * qs, 0, (size_t)hd * sizeof(float));
            for (int64_t r = 0; r < nq; r++) {
                const float *a = qt + r * qs;
#pragma clang loop vectorize(disable)
                for (int64_t d = 0; d < hd; d++) Qt[d * ATT_BQF + r] = scale * a[d];
            }
            for (int64_t r = nq; r < ATT_BQF; r++)
                for (int64_t d = 0; d < hd; d++) Qt[d * ATT_BQF + r] = 0.f;
            for (int64_t j0 = strow[0]; j0 <= tl; j0 += ATT_BK) {
                const int64_t nk = att_min(ATT_BK, tl + 1 - j0);
                memset(St, 0, (size_t)(nk * ATT_BQF) * sizeof(float));
                combine(St, ATT_BQF, nk, kg + j0 * ks, ks, 1, Qt, ATT_BQF, hd, ATT_BQF);
                // Mask (only blocks that reach the diagonal, a segment start or
                // a window's edge, or when the tile has padding rows) and the
                // block's row maxima.
                const int full = j0 + nk - 1 <= t0 && strow[nq - 1] <= j0 && nq == ATT_BQF;
                for (int64_t r = 0; r < ATT_BQF; r++) mnew[r] = mrow[r];
                for (int64_t j = 0; j < nk; j++) {
                    float *s = St + j * ATT_BQF;
                    const int64_t J = j0 + j;
                    if (!full)
                        for (int64_t r = 0; r < ATT_BQF; r++)
                            s[r] = (J <= trow[r] && strow[r] <= J) ? s[r] : -INFINITY;
                    for (int64_t r = 0; r < ATT_BQF; r++) mnew[r] = s[r] > mnew[r] ? s[r] : mnew[r];
                }
                for (int64_t r = 0; r < ATT_BQF; r++) {
                    // A row that has seen no key yet keeps m = -inf: subtract 0
                    // (its scores are all -inf, so p = 0) and rescale nothing.
                    sub[r] = mnew[r] == -INFINITY ? 0.f : mnew[r];
                    alpha[r] = 1.f;
                }
                for (int64_t r = 0; r < nq; r++)
                    if (lrow[r] > 0.f && mnew[r] != mrow[r]) {
                        alpha[r] = expf(mrow[r] - mnew[r]);
                        float *o = ot + r * qs;
                        for (int64_t d = 0; d < hd; d++) o[d] *= alpha[r];
                    }
                for (int64_t r = 0; r < ATT_BQF; r++) {
                    lrow[r] *= alpha[r];
                    mrow[r] = mnew[r];
                }
                for (int64_t j = 0; j < nk; j++) {
                    float *s = St + j * ATT_BQF;
                    expdiff(s, sub, ATT_BQF);
                    for (int64_t r = 0; r < ATT_BQF; r++) lrow[r] += s[r];
                }
                // o_r += sum_j p_rj v_j
                combine(ot, qs, nq, St, 1, ATT_BQF, vg + j0 * ks, ks, nk, hd);
            }
            for (int64_t r = 0; r < nq; r++) {
                float *o = ot + r * qs;
                const float inv = 1.0f / lrow[r];
                for (int64_t d = 0; d < hd; d++) o[d] *= inv;
                lse[h * T + t0 + r] = mrow[r] + logf(lrow[r]);
            }
        }
    }
}

// Scratch: D[group*T] | kt[hd*ATT_BK] | vt[hd*ATT_BK] | P[ATT_BQB*ATT_BK] | dS[ATT_BQB*ATT_BK]
LTT_BODY void attn_bwd_body(const float *q, const float *k, const float *v, const float *out,
                            const float *dout, const float *lse, float *dq, float *dk, float *dv,
                            int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale,
                            int64_t kv0, int64_t kv1, float *scratch, const int32_t *seg,
                            int64_t window, combine_fn combine, dot_fn dot, expsum_fn expsum) {
    const int64_t group = nH / nKV, qs = nH * hd, ks = nKV * hd;
    float *Dall = scratch, *kt = Dall + group * T, *vt = kt + hd * ATT_BK;
    float *P = vt + hd * ATT_BK, *dS = P + ATT_BQB * ATT_BK;
    int64_t lorow[ATT_BQB], hirow[ATT_BQB];
    for (int64_t g = kv0; g < kv1; g++) {
        const float *kg = k + g * hd, *vg = v + g * hd;
        float *dkg = dk + g * hd, *dvg = dv + g * hd;
        for (int64_t t = 0; t < T; t++) {
            memset(dkg + t * ks, 0, (size_t)hd * sizeof(float));
            memset(dvg + t * ks, 0, (size_t)hd * sizeof(float));
            memset(dq + t * qs + g * group * hd, 0, (size_t)(group * hd) * sizeof(float));
        }
        for (int64_t hh = 0; hh < group; hh++) {
            const int64_t h = g * group + hh;
            for (int64_t t = 0; t < T; t++)
                Dall[hh * T + t] = dot(dout + t * qs + h * hd, out + t * qs + h * hd, hd);
        }
        // Key blocks outside, queries inside: the block's k, v, dk, dv stay in
        // cache while every query that sees them streams past.
        for (int64_t j0 = 0; j0 < T; j0 += ATT_BK) {
            const int64_t nk = att_min(ATT_BK, T - j0);
            att_transpose(kt, kg + j0 * ks, ks, 0, hd, nk);
            att_transpose(vt, vg + j0 * ks, ks, 0, hd, nk);
            for (int64_t hh = 0; hh < group; hh++) {
                const int64_t h = g * group + hh;
                const float *Dh = Dall + hh * T, *lh = lse + h * T;
                // max(j0, st(t)) for t >= j0: j0 until a segment starts after j0
                // (lorow adds the window's bound).
                int64_t st = j0;
                for (int64_t t0 = j0; t0 < T; t0 += ATT_BQB) {
                    const int64_t nq = att_min(ATT_BQB, T - t0);
                    for (int64_t r = 0; r < nq; r++) {
                        const int64_t t = t0 + r;
                        if (seg && t > j0 && seg[t] != seg[t - 1]) st = t;
                        lorow[r] = att_lo(st, t, window) - j0;
                        hirow[r] = att_min(t - j0, nk - 1);
                    }
                    if (lorow[0] >= nk) break;  // later queries start even later
                    const float *qt = q + t0 * qs + h * hd, *dot_t = dout + t0 * qs + h * hd;
                    float *dqt = dq + t0 * qs + h * hd;
                    memset(P, 0, (size_t)(nq * ATT_BK) * sizeof(float));
                    memset(dS, 0, (size_t)(nq * ATT_BK) * sizeof(float));
                    combine(P, ATT_BK, nq, qt, qs, 1, kt, ATT_BK, hd, ATT_BK);
                    combine(dS, ATT_BK, nq, dot_t, qs, 1, vt, ATT_BK, hd, ATT_BK);
                    int64_t jmin = nk, jmax = -1, r0 = -1, r1 = -1;
                    for (int64_t r = 0; r < nq; r++) {
                        const int64_t lo = lorow[r], hi = hirow[r];
                        float *p = P + r * ATT_BK, *ds = dS + r * ATT_BK;
                        if (lo > hi) {
                            memset(p, 0, (size_t)nk * sizeof(float));
                            memset(ds, 0, (size_t)nk * sizeof(float));
                            continue;
                        }
                        if (r0 < 0) r0 = r;
                        r1 = r + 1;
                        jmin = att_min(jmin, lo);
                        jmax = att_max(jmax, hi);
                        for (int64_t j = lo; j <= hi; j++) p[j] *= scale;
                        expsum(p + lo, lh[t0 + r], hi - lo + 1);
                        const float D = Dh[t0 + r];
                        for (int64_t j = lo; j <= hi; j++) ds[j] = p[j] * (ds[j] - D) * scale;
                        for (int64_t j = 0; j < lo; j++) p[j] = ds[j] = 0.f;
                        for (int64_t j = hi + 1; j < nk; j++) p[j] = ds[j] = 0.f;
                    }
                    if (r0 < 0) continue;
                    const int64_t nj = jmax - jmin + 1, nr = r1 - r0;
                    // dq_t += sum_j ds_tj k_j
                    combine(dqt + r0 * qs, qs, nr, dS + r0 * ATT_BK + jmin, ATT_BK, 1,
                            kg + (j0 + jmin) * ks, ks, nj, hd);
                    // dv_j += sum_t p_tj dout_t,  dk_j += sum_t ds_tj q_t
                    combine(dvg + (j0 + jmin) * ks, ks, nj, P + r0 * ATT_BK + jmin, 1, ATT_BK,
                            dot_t + r0 * qs, qs, nr, hd);
                    combine(dkg + (j0 + jmin) * ks, ks, nj, dS + r0 * ATT_BK + jmin, 1, ATT_BK,
                            qt + r0 * qs, qs, nr, hd);
                }
            }
        }
    }
}

static void attn_fwd_port(const float *q, const float *k, const float *v, float *out, float *lse,
                          int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t h0,
                          int64_t h1, float *scratch, const int32_t *seg, int64_t window) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, scratch, seg, window, combine_port,
                  ltt_expdiff_port);
}

static void attn_bwd_port(const float *q, const float *k, const float *v, const float *out,
                          const float *dout, const float *lse, float *dq, float *dk, float *dv,
                          int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t kv0,
                          int64_t kv1, float *scratch, const int32_t *seg, int64_t window) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch,
                  seg, window, combine_port, ltt_dot_port, ltt_expsub_sum_port);
}

#if LTT_HAVE_X86
LTT_AVX512 static void attn_fwd_512(const float *q, const float *k, const float *v, float *out,
                                    float *lse, int64_t T, int64_t nH, int64_t nKV, int64_t hd,
                                    float scale, int64_t h0, int64_t h1, float *scratch,
                                    const int32_t *seg, int64_t window) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, scratch, seg, window, combine_512,
                  ltt_expdiff_512);
}

LTT_AVX512 static void attn_bwd_512(const float *q, const float *k, const float *v,
                                    const float *out, const float *dout, const float *lse,
                                    float *dq, float *dk, float *dv, int64_t T, int64_t nH,
                                    int64_t nKV, int64_t hd, float scale, int64_t kv0, int64_t kv1,
                                    float *scratch, const int32_t *seg, int64_t window) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch,
                  seg, window, combine_512, ltt_dot_512, ltt_expsub_sum_512);
}

LTT_AVX2 static void attn_fwd_256(const float *q, const float *k, const float *v, float *out, float *lse, int64_t T,
                                  int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t h0, int64_t h1,
                                  float *scratch, const int32_t *seg, int64_t window) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, scratch, seg, window, combine_256, ltt_expdiff_256);
}

LTT_AVX2 static void attn_bwd_256(const float *q, const float *k, const float *v, const float *out, const float *dout,
                                  const float *lse, float *dq, float *dk, float *dv, int64_t T, int64_t nH,
                                  int64_t nKV, int64_t hd, float scale, int64_t kv0, int64_t kv1, float *scratch,
                                  const int32_t *seg, int64_t window) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch, seg, window, combine_256,
                  ltt_dot_256, ltt_expsub_sum_256);
}
#endif

#if LTT_HAVE_NEON
static void attn_fwd_neon(const float *q, const float *k, const float *v, float *out, float *lse, int64_t T, int64_t nH,
                          int64_t nKV, int64_t hd, float scale, int64_t h0, int64_t h1, float *scratch,
                          const int32_t *seg, int64_t window) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, scratch, seg, window, combine_neon, ltt_expdiff_neon);
}

static void attn_bwd_neon(const float *q, const float *k, const float *v, const float *out, const float *dout,
                          const float *lse, float *dq, float *dk, float *dv, int64_t T, int64_t nH, int64_t nKV,
                          int64_t hd, float scale, int64_t kv0, int64_t kv1, float *scratch, const int32_t *seg, int64_t window) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch, seg, window, combine_neon,
                  ltt_dot_neon, ltt_expsub_sum_neon);
}
#endif

static int attn_shape_ok(int64_t T, int64_t nH, int64_t nKV, int64_t hd) {
    return T > 0 && nH > 0 && nKV > 0 && hd > 0 && nH % nKV == 0;
}

int64_t ltt_attention_forward_scratch_floats(int64_t hd) {
    return hd > 0 ? hd * ATT_BQF + ATT_BK * ATT_BQF : 0;
}

void ltt_attention_forward(const float *q, const float *k, const float *v, float *out, float *lse,
                           int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                           int64_t h0, int64_t h1, float *scratch, const int32_t *segment, int64_t window) {
    if (!attn_shape_ok(T, nHeads, nKV, hd)) return;
    h0 = att_max(h0, 0);
    h1 = att_min(h1, nHeads);
    if (h1 <= h0) return;
    LTT_CALL(attn_fwd, q, k, v, out, lse, T, nHeads, nKV, hd, scale, h0, h1, scratch, segment, window);
}

int64_t ltt_attention_backward_scratch_floats(int64_t T, int64_t nHeads, int64_t nKV, int64_t hd) {
    if (!attn_shape_ok(T, nHeads, nKV, hd)) return 0;
    return (nHeads / nKV) * T + 2 * hd * ATT_BK + 2 * ATT_BQB * ATT_BK;
}

void ltt_attention_backward(const float *q, const float *k, const float *v, const float *out,
                            const float *dout, const float *lse, float *dq, float *dk, float *dv,
                            int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                            int64_t kv0, int64_t kv1, float *scratch, const int32_t *segment,
                            int64_t window) {
    if (!attn_shape_ok(T, nHeads, nKV, hd)) return;
    kv0 = att_max(kv0, 0);
    kv1 = att_min(kv1, nKV);
    if (kv1 <= kv0) return;
    LTT_CALL(attn_bwd, q, k, v, out, dout, lse, dq, dk, dv, T, nHeads, nKV, hd, scale, kv0, kv1, scratch, segment, window);
}

// The tiles' product shape on its own: LoRA's rank-r products are this shape too (one operand has
// r = 8..64 rows or columns), where a general GEMM spends its time on packing and call overhead.
void ltt_combine(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs, int64_t ccs, const float *X,
                 int64_t ldx, int64_t m, int64_t n) {
    if (ny <= 0 || n <= 0 || m <= 0) return;
    LTT_CALL(combine, Y, ldy, ny, C, crs, ccs, X, ldx, m, n);
}
