// ARM64 Advanced SIMD helpers of the training kernels (the neon tier): the same functions as the
// portable, AVX2 and AVX-512 sets, on 4 lanes. NEON is part of every AArch64 CPU, so no target
// attribute is needed; tails are finished in scalar code.
#ifndef LANGTUNE_SIMD_NEON_H
#define LANGTUNE_SIMD_NEON_H

#include <arm_neon.h>
#include <math.h>
#include <stdint.h>

// exp(x) on 4 lanes: the Cephes reduction and polynomial of ltt_exp512 / ltt_exp256.
static inline float32x4_t ltt_exp_neon(float32x4_t x) {
    const uint32x4_t tiny = vcltq_f32(x, vdupq_n_f32(-87.33f));
    const uint32x4_t huge = vcgtq_f32(x, vdupq_n_f32(88.7228394f));
    const uint32x4_t isnum = vceqq_f32(x, x);
    x = vmaxq_f32(vdupq_n_f32(-87.33f), x);
    x = vminq_f32(vdupq_n_f32(88.72f), x);
    const float32x4_t fx = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, fx, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t y = vdupq_n_f32(1.9875691500e-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), y, r);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), y, r);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), y, r);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), y, r);
    y = vfmaq_f32(r, y, vmulq_f32(r, r));
    y = vaddq_f32(y, vdupq_n_f32(1.0f));
    const int32x4_t n = vcvtnq_s32_f32(fx);
    const int32x4_t n1 = vshrq_n_s32(n, 1), n2 = vsubq_s32(n, n1);
    const float32x4_t p1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    const float32x4_t p2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    y = vmulq_f32(vmulq_f32(y, p1), p2);
    y = vbslq_f32(huge, vdupq_n_f32(INFINITY), y);
    y = vbslq_f32(tiny, vdupq_n_f32(0.0f), y);
    return vbslq_f32(isnum, y, vdupq_n_f32(NAN));
}

// 1 / (1 + exp(-x)), as ltt_sigmoid512.
static inline float32x4_t ltt_sigmoid_neon(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, ltt_exp_neon(vnegq_f32(x))));
}

static inline float ltt_dot_neon(const float *a, const float *b, int64_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0), s2 = vdupq_n_f32(0), s3 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline void ltt_axpy_neon(float *y, float a, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static inline void ltt_scal_neon(float *y, float a, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
    for (; i < n; i++) y[i] *= a;
}

static inline float ltt_max_neon(const float *x, int64_t n) {
    float32x4_t m = vdupq_n_f32(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
    float r = vmaxvq_f32(m);
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

static inline float ltt_expsub_sum_neon(float *x, float sub, int64_t n) {
    const float32x4_t vs = vdupq_n_f32(sub);
    float32x4_t acc = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const float32x4_t e = ltt_exp_neon(vsubq_f32(vld1q_f32(x + i), vs));
        vst1q_f32(x + i, e);
        acc = vaddq_f32(acc, e);
    }
    float s = vaddvq_f32(acc);
    for (; i < n; i++) {
        const float e = vgetq_lane_f32(ltt_exp_neon(vdupq_n_f32(x[i] - sub)), 0);
        x[i] = e;
        s += e;
    }
    return s;
}

static inline void ltt_expdiff_neon(float *x, const float *sub, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, ltt_exp_neon(vsubq_f32(vld1q_f32(x + i), vld1q_f32(sub + i))));
    for (; i < n; i++) x[i] = vgetq_lane_f32(ltt_exp_neon(vdupq_n_f32(x[i] - sub[i])), 0);
}

#endif
