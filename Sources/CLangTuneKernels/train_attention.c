// Causal grouped-query attention, forward and backward, flash-attention style:
// nothing of size T x T is kept. The forward pass runs an online softmax over
// blocks of keys and saves lse per (head, query); the backward pass recomputes
// the probabilities from q.k and lse and uses D_t = sum(dout_t * out_t):
//   p_tj = exp(s_tj - lse_t),  dp_tj = dout_t . v_j,  ds_tj = p_tj (dp_tj - D_t)
//   dv_j += p_tj dout_t,  dk_j += scale ds_tj q_t,  dq_t += scale ds_tj k_j
#include "train_simd.h"

#define ATT_BK 64

typedef float (*dot_fn)(const float *, const float *, int64_t);
typedef void (*axpy_fn)(float *, float, const float *, int64_t);
typedef void (*scal_fn)(float *, float, int64_t);
typedef float (*max_fn)(const float *, int64_t);
typedef float (*expsum_fn)(float *, float, int64_t);

static inline int64_t att_min(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t att_max(int64_t a, int64_t b) { return a > b ? a : b; }

LTT_BODY void attn_fwd_body(const float *q, const float *k, const float *v, float *out, float *lse,
                            int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t h0,
                            int64_t h1, const int32_t *seg, dot_fn dot, axpy_fn axpy, scal_fn scal,
                            max_fn maxf, expsum_fn expsum) {
    const int64_t group = nH / nKV, qs = nH * hd, ks = nKV * hd;
    float s[ATT_BK];
    for (int64_t h = h0; h < h1; h++) {
        const int64_t g = h / group;
        const float *kg = k + g * hd, *vg = v + g * hd;
        int64_t st = 0;  // first key visible to query t
        for (int64_t t = 0; t < T; t++) {
            if (seg && t > 0 && seg[t] != seg[t - 1]) st = t;
            const float *qt = q + t * qs + h * hd;
            float *ot = out + t * qs + h * hd;
            memset(ot, 0, (size_t)hd * sizeof(float));
            float m = -INFINITY, l = 0.f;
            for (int64_t j0 = st; j0 <= t; j0 += ATT_BK) {
                const int64_t n = att_min(ATT_BK, t + 1 - j0);
                for (int64_t jj = 0; jj < n; jj++) s[jj] = scale * dot(qt, kg + (j0 + jj) * ks, hd);
                const float bm = maxf(s, n);
                const float mn = bm > m ? bm : m;
                if (l > 0.f && mn != m) {
                    const float alpha = expf(m - mn);
                    l *= alpha;
                    scal(ot, alpha, hd);
                }
                l += expsum(s, mn, n);
                for (int64_t jj = 0; jj < n; jj++) axpy(ot, s[jj], vg + (j0 + jj) * ks, hd);
                m = mn;
            }
            scal(ot, 1.0f / l, hd);
            lse[h * T + t] = m + logf(l);
        }
    }
}

LTT_BODY void attn_bwd_body(const float *q, const float *k, const float *v, const float *out,
                            const float *dout, const float *lse, float *dq, float *dk, float *dv,
                            int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale,
                            int64_t kv0, int64_t kv1, float *scratch, const int32_t *seg,
                            dot_fn dot, axpy_fn axpy, expsum_fn expsum) {
    const int64_t group = nH / nKV, qs = nH * hd, ks = nKV * hd;
    float p[ATT_BK];
    for (int64_t g = kv0; g < kv1; g++) {
        const float *kg = k + g * hd, *vg = v + g * hd;
        float *dkg = dk + g * hd, *dvg = dv + g * hd;
        for (int64_t t = 0; t < T; t++) {
            memset(dkg + t * ks, 0, (size_t)hd * sizeof(float));
            memset(dvg + t * ks, 0, (size_t)hd * sizeof(float));
            for (int64_t hh = 0; hh < group; hh++)
                memset(dq + t * qs + (g * group + hh) * hd, 0, (size_t)hd * sizeof(float));
        }
        for (int64_t hh = 0; hh < group; hh++) {
            const int64_t h = g * group + hh;
            for (int64_t t = 0; t < T; t++)
                scratch[hh * T + t] = dot(dout + t * qs + h * hd, out + t * qs + h * hd, hd);
        }
        // Key blocks outside, queries inside: a block of k, v, dk, dv stays in
        // cache while every query that sees it streams past.
        for (int64_t j0 = 0; j0 < T; j0 += ATT_BK) {
            const int64_t j1 = att_min(j0 + ATT_BK, T);
            for (int64_t hh = 0; hh < group; hh++) {
                const int64_t h = g * group + hh;
                const float *Dh = scratch + hh * T, *lh = lse + h * T;
                // max(j0, first key visible to query t): j0 until a segment
                // starts after j0.
                int64_t st = j0;
                for (int64_t t = j0; t < T; t++) {
                    if (seg && t > j0 && seg[t] != seg[t - 1]) st = t;
                    if (st >= j1) break;  // later queries start even later
                    const int64_t a = st, b = att_min(j1 - 1, t), n = b - a + 1;
                    const float *qt = q + t * qs + h * hd, *dot_t = dout + t * qs + h * hd;
                    float *dqt = dq + t * qs + h * hd;
                    for (int64_t jj = 0; jj < n; jj++) p[jj] = scale * dot(qt, kg + (a + jj) * ks, hd);
                    expsum(p, lh[t], n);
                    const float D = Dh[t];
                    for (int64_t jj = 0; jj < n; jj++) {
                        const int64_t j = a + jj;
                        const float dp = dot(dot_t, vg + j * ks, hd);
                        const float ds = p[jj] * (dp - D) * scale;
                        axpy(dvg + j * ks, p[jj], dot_t, hd);
                        axpy(dkg + j * ks, ds, qt, hd);
                        axpy(dqt, ds, kg + j * ks, hd);
                    }
                }
            }
        }
    }
}

static void attn_fwd_port(const float *q, const float *k, const float *v, float *out, float *lse,
                          int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t h0,
                          int64_t h1, const int32_t *seg) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, seg, ltt_dot_port,
                  ltt_axpy_port, ltt_scal_port, ltt_max_port, ltt_expsub_sum_port);
}

static void attn_bwd_port(const float *q, const float *k, const float *v, const float *out,
                          const float *dout, const float *lse, float *dq, float *dk, float *dv,
                          int64_t T, int64_t nH, int64_t nKV, int64_t hd, float scale, int64_t kv0,
                          int64_t kv1, float *scratch, const int32_t *seg) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch,
                  seg, ltt_dot_port, ltt_axpy_port, ltt_expsub_sum_port);
}

#if LTT_HAVE_X86
LTT_AVX512 static void attn_fwd_512(const float *q, const float *k, const float *v, float *out,
                                    float *lse, int64_t T, int64_t nH, int64_t nKV, int64_t hd,
                                    float scale, int64_t h0, int64_t h1, const int32_t *seg) {
    attn_fwd_body(q, k, v, out, lse, T, nH, nKV, hd, scale, h0, h1, seg, ltt_dot_512, ltt_axpy_512,
                  ltt_scal_512, ltt_max_512, ltt_expsub_sum_512);
}

LTT_AVX512 static void attn_bwd_512(const float *q, const float *k, const float *v,
                                    const float *out, const float *dout, const float *lse,
                                    float *dq, float *dk, float *dv, int64_t T, int64_t nH,
                                    int64_t nKV, int64_t hd, float scale, int64_t kv0, int64_t kv1,
                                    float *scratch, const int32_t *seg) {
    attn_bwd_body(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kv0, kv1, scratch,
                  seg, ltt_dot_512, ltt_axpy_512, ltt_expsub_sum_512);
}
#endif

static int attn_shape_ok(int64_t T, int64_t nH, int64_t nKV, int64_t hd) {
    return T > 0 && nH > 0 && nKV > 0 && hd > 0 && nH % nKV == 0;
}

void ltt_attention_forward(const float *q, const float *k, const float *v, float *out, float *lse,
                           int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                           int64_t h0, int64_t h1, const int32_t *segment) {
    if (!attn_shape_ok(T, nHeads, nKV, hd)) return;
    h0 = att_max(h0, 0);
    h1 = att_min(h1, nHeads);
    if (h1 <= h0) return;
#if LTT_HAVE_X86
    if (ltt_simd_active()) {
        attn_fwd_512(q, k, v, out, lse, T, nHeads, nKV, hd, scale, h0, h1, segment);
        return;
    }
#endif
    attn_fwd_port(q, k, v, out, lse, T, nHeads, nKV, hd, scale, h0, h1, segment);
}

int64_t ltt_attention_backward_scratch_floats(int64_t T, int64_t nHeads, int64_t nKV) {
    if (T <= 0 || nHeads <= 0 || nKV <= 0) return 0;
    return (nHeads / nKV) * T;
}

void ltt_attention_backward(const float *q, const float *k, const float *v, const float *out,
                            const float *dout, const float *lse, float *dq, float *dk, float *dv,
                            int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                            int64_t kv0, int64_t kv1, float *scratch, const int32_t *segment) {
    if (!attn_shape_ok(T, nHeads, nKV, hd)) return;
    kv0 = att_max(kv0, 0);
    kv1 = att_min(kv1, nKV);
    if (kv1 <= kv0) return;
#if LTT_HAVE_X86
    if (ltt_simd_active()) {
        attn_bwd_512(q, k, v, out, dout, lse, dq, dk, dv, T, nHeads, nKV, hd, scale, kv0, kv1,
                     scratch, segment);
        return;
    }
#endif
    attn_bwd_port(q, k, v, out, dout, lse, dq, dk, dv, T, nHeads, nKV, hd, scale, kv0, kv1, scratch,
                  segment);
}
