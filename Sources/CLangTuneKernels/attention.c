// Causal grouped-query attention over a KV cache, one query row at a time.
// Softmax is taken in float32 with the running maximum subtracted, as
// PyTorch's eager attention does (up to summation order).
#include "langtune_kernels.h"
#include <math.h>

void lt_attention_causal(const float *q, const float *k, const float *v, float *out,
                         int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, int64_t hd,
                         int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch) {
    const int64_t group = nHeads / nKV;
    for (int64_t h = h0; h < h1; h++) {
        const int64_t kh = h / group;
        for (int64_t t = 0; t < T; t++) {
            const float *qr = q + t * nHeads * hd + h * hd;
            float *o = out + t * nHeads * hd + h * hd;
            const int64_t n = p0 + t + 1;
            float mx = -INFINITY;
            for (int64_t j = 0; j < n; j++) {
                float s = lt_dot_f32(qr, k + j * kvStride + kh * hd, hd) * scale;
                scratch[j] = s;
                if (s > mx) mx = s;
            }
            float sum = 0;
            for (int64_t j = 0; j < n; j++) { float e = expf(scratch[j] - mx); scratch[j] = e; sum += e; }
            const float inv = 1.0f / sum;
            for (int64_t i = 0; i < hd; i++) o[i] = 0;
            for (int64_t j = 0; j < n; j++) {
                const float p = scratch[j] * inv;
                const float *vr = v + j * kvStride + kh * hd;
                for (int64_t i = 0; i < hd; i++) o[i] += p * vr[i];
            }
        }
    }
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
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
