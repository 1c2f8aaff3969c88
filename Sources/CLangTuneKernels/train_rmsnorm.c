// RMSNorm forward and backward.
//   y = w * (x * r),  r = (mean(x^2) + eps)^(-1/2)
//   dx_j = r * w_j * dy_j - x_j * r^3 / n * sum_i(dy_i * w_i * x_i)
//   dw_j += dy_j * x_j * r
#include "train_simd.h"

typedef float (*ltt_dot_fn)(const float *, const float *, int64_t);

LTT_BODY void rmsnorm_fwd_body(const float *x, const float *w, float *y, float *rstd_out,
                               int64_t rows, int64_t n, float eps, ltt_dot_fn dot) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float ms = dot(xr, xr, n) / (float)n;
        float rs = 1.0f / sqrtf(ms + eps);
        if (rstd_out) rstd_out[r] = rs;
        for (int64_t i = 0; i < n; i++) yr[i] = w[i] * (xr[i] * rs);
    }
}

LTT_BODY void rmsnorm_bwd_body(const float *dy, const float *x, const float *w, const float *rstd,
                               float *dx, float *dw, int64_t r0, int64_t r1, int64_t n) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * n, *dyr = dy + r * n;
        float *dxr = dx + r * n;
        float rs = rstd[r];
        // sum(dy * w * x), in independent lanes so it vectorizes.
        float acc[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 16; l++) acc[l] += (dyr[i + l] * w[i + l]) * xr[i + l];
        float s = 0.f;
        for (; i < n; i++) s += (dyr[i] * w[i]) * xr[i];
        for (int l = 0; l < 16; l++) s += acc[l];
        float c = rs * rs * rs * s / (float)n;
        // dw before dx so that dx may alias dy.
        if (dw)
            for (int64_t j = 0; j < n; j++) dw[j] += dyr[j] * (xr[j] * rs);
        for (int64_t j = 0; j < n; j++) dxr[j] = rs * (w[j] * dyr[j]) - c * xr[j];
    }
}

static void rmsnorm_fwd_port(const float *x, const float *w, float *y, float *rstd_out,
                             int64_t rows, int64_t n, float eps) {
    rmsnorm_fwd_body(x, w, y, rstd_out, rows, n, eps, ltt_dot_port);
}
static void rmsnorm_bwd_port(const float *dy, const float *x, const float *w, const float *rstd,
                             float *dx, float *dw, int64_t r0, int64_t r1, int64_t n) {
    rmsnorm_bwd_body(dy, x, w, rstd, dx, dw, r0, r1, n);
}

#if LTT_HAVE_X86
LTT_AVX512 static void rmsnorm_fwd_512(const float *x, const float *w, float *y, float *rstd_out,
                                       int64_t rows, int64_t n, float eps) {
    rmsnorm_fwd_body(x, w, y, rstd_out, rows, n, eps, ltt_dot_512);
}
LTT_AVX512 static void rmsnorm_bwd_512(const float *dy, const float *x, const float *w,
                                       const float *rstd, float *dx, float *dw, int64_t r0,
                                       int64_t r1, int64_t n) {
    rmsnorm_bwd_body(dy, x, w, rstd, dx, dw, r0, r1, n);
}
LTT_AVX2 static void rmsnorm_fwd_256(const float *x, const float *w, float *y, float *rstd_out,
                                     int64_t rows, int64_t n, float eps) {
    rmsnorm_fwd_body(x, w, y, rstd_out, rows, n, eps, ltt_dot_256);
}
LTT_AVX2 static void rmsnorm_bwd_256(const float *dy, const float *x, const float *w, const float *rstd,
                                     float *dx, float *dw, int64_t r0, int64_t r1, int64_t n) {
    rmsnorm_bwd_body(dy, x, w, rstd, dx, dw, r0, r1, n);
}
#endif
#if LTT_HAVE_NEON
static void rmsnorm_fwd_neon(const float *x, const float *w, float *y, float *rstd_out, int64_t rows,
                             int64_t n, float eps) {
    rmsnorm_fwd_body(x, w, y, rstd_out, rows, n, eps, ltt_dot_neon);
}
#define rmsnorm_bwd_neon rmsnorm_bwd_port  // the compiler vectorizes it for NEON, the baseline there
#endif

void ltt_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd_out, int64_t rows,
                         int64_t n, float eps) {
    if (rows <= 0 || n <= 0) return;
    LTT_CALL(rmsnorm_fwd, x, w, y, rstd_out, rows, n, eps);
}

void ltt_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd,
                          float *dx, float *dw_accum, int64_t r0, int64_t r1, int64_t n) {
    if (r1 <= r0 || n <= 0) return;
    LTT_CALL(rmsnorm_bwd, dy, x, w, rstd, dx, dw_accum, r0, r1, n);
}
