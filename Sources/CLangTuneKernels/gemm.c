// Built-in GEMM for machines without oneDNN: C = A · B^T with both operands
// read along K, in 4x4 register tiles.
#include "langtune_kernels.h"
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,fma")))
static void tile_avx512(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t N, int64_t K,
                        const float *A, const float *B, float *C, float beta) {
    __m512 acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 av[4], bv[4];
        for (int a = 0; a < 4; a++) av[a] = _mm512_loadu_ps(A + (i0 + (a < mi ? a : 0)) * K + k);
        for (int b = 0; b < 4; b++) bv[b] = _mm512_loadu_ps(B + (j0 + (b < nj ? b : 0)) * K + k);
        for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(av[a], bv[b], acc[a][b]);
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 av[4], bv[4];
        for (int a = 0; a < 4; a++) av[a] = _mm512_maskz_loadu_ps(m, A + (i0 + (a < mi ? a : 0)) * K + k);
        for (int b = 0; b < 4; b++) bv[b] = _mm512_maskz_loadu_ps(m, B + (j0 + (b < nj ? b : 0)) * K + k);
        for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(av[a], bv[b], acc[a][b]);
    }
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            float *c = C + (i0 + a) * N + j0 + b;
            float s = _mm512_reduce_add_ps(acc[a][b]);
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}
#endif

static void tile_portable(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t N, int64_t K,
                          const float *A, const float *B, float *C, float beta) {
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            const float *x = A + (i0 + a) * K, *y = B + (j0 + b) * K;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t k = 0;
            for (; k + 4 <= K; k += 4) { s0 += x[k] * y[k]; s1 += x[k + 1] * y[k + 1]; s2 += x[k + 2] * y[k + 2]; s3 += x[k + 3] * y[k + 3]; }
            for (; k < K; k++) s0 += x[k] * y[k];
            float s = (s0 + s1) + (s2 + s3);
            float *c = C + (i0 + a) * N + j0 + b;
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}

void lt_sgemm_nt_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const float *A, const float *B, float *C, float beta) {
#if defined(__x86_64__)
    int fast = lt_simd_enabled() && (lt_cpu_features() & LT_CPU_AVX512F);
#else
    int fast = 0;
#endif
    // Walk B in panels that stay in L2 while all rows of this range use them.
    const int64_t panel = 64;
    for (int64_t j0 = 0; j0 < N; j0 += panel) {
        int64_t j1 = j0 + panel < N ? j0 + panel : N;
        for (int64_t i = m0; i < m1; i += 4) {
            int64_t mi = m1 - i < 4 ? m1 - i : 4;
            for (int64_t j = j0; j < j1; j += 4) {
                int64_t nj = j1 - j < 4 ? j1 - j : 4;
#if defined(__x86_64__)
                if (fast) { tile_avx512(i, mi, j, nj, N, K, A, B, C, beta); continue; }
#endif
                tile_portable(i, mi, j, nj, N, K, A, B, C, beta);
            }
        }
    }
}
