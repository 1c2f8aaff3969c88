// Built-in GEMM for machines without oneDNN: C = A · B^T with both operands
// read along K, in 4x4 register tiles.
#include "langtune_kernels.h"
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f,fma")))
static void tile_avx512(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t K,
                        const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                        float alpha, float beta) {
    __m512 acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 av[4], bv[4];
        for (int a = 0; a < 4; a++) av[a] = _mm512_loadu_ps(A + (i0 + (a < mi ? a : 0)) * lda + k);
        for (int b = 0; b < 4; b++) bv[b] = _mm512_loadu_ps(B + (j0 + (b < nj ? b : 0)) * ldb + k);
        for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(av[a], bv[b], acc[a][b]);
    }
    if (k < K) {
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 av[4], bv[4];
        for (int a = 0; a < 4; a++) av[a] = _mm512_maskz_loadu_ps(m, A + (i0 + (a < mi ? a : 0)) * lda + k);
        for (int b = 0; b < 4; b++) bv[b] = _mm512_maskz_loadu_ps(m, B + (j0 + (b < nj ? b : 0)) * ldb + k);
        for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm512_fmadd_ps(av[a], bv[b], acc[a][b]);
    }
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            float *c = C + (i0 + a) * ldc + j0 + b;
            float s = alpha * _mm512_reduce_add_ps(acc[a][b]);
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}

// AVX2: the same 4x4 tile of dot products on 8 lanes (16 accumulators; the compiler keeps what fits).
__attribute__((target("avx2,fma")))
static void tile_avx2(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t K,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                      float alpha, float beta) {
    __m256 acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 bv[4];
        for (int b = 0; b < 4; b++) bv[b] = _mm256_loadu_ps(B + (j0 + (b < nj ? b : 0)) * ldb + k);
        for (int a = 0; a < 4; a++) {
            const __m256 av = _mm256_loadu_ps(A + (i0 + (a < mi ? a : 0)) * lda + k);
            for (int b = 0; b < 4; b++) acc[a][b] = _mm256_fmadd_ps(av, bv[b], acc[a][b]);
        }
    }
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc[a][b]), _mm256_extractf128_ps(acc[a][b], 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
            float s = _mm_cvtss_f32(s4);
            const float *x = A + (i0 + a) * lda, *y = B + (j0 + b) * ldb;
            for (int64_t kk = k; kk < K; kk++) s += x[kk] * y[kk];
            float *c = C + (i0 + a) * ldc + j0 + b;
            s *= alpha;
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}
#endif

#if defined(__aarch64__)
#include <arm_neon.h>
static void tile_neon(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t K,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                      float alpha, float beta) {
    float32x4_t acc[4][4];
    for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = vdupq_n_f32(0);
    int64_t k = 0;
    for (; k + 4 <= K; k += 4) {
        float32x4_t av[4], bv[4];
        for (int a = 0; a < 4; a++) av[a] = vld1q_f32(A + (i0 + (a < mi ? a : 0)) * lda + k);
        for (int b = 0; b < 4; b++) bv[b] = vld1q_f32(B + (j0 + (b < nj ? b : 0)) * ldb + k);
        for (int a = 0; a < 4; a++) for (int b = 0; b < 4; b++) acc[a][b] = vfmaq_f32(acc[a][b], av[a], bv[b]);
    }
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            float s = vaddvq_f32(acc[a][b]);
            const float *x = A + (i0 + a) * lda, *y = B + (j0 + b) * ldb;
            for (int64_t kk = k; kk < K; kk++) s += x[kk] * y[kk];
            float *c = C + (i0 + a) * ldc + j0 + b;
            s *= alpha;
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}
#endif

static void tile_portable(int64_t i0, int64_t mi, int64_t j0, int64_t nj, int64_t K,
                          const float *A, int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc,
                          float alpha, float beta) {
    for (int a = 0; a < mi; a++)
        for (int b = 0; b < nj; b++) {
            const float *x = A + (i0 + a) * lda, *y = B + (j0 + b) * ldb;
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            int64_t k = 0;
            for (; k + 4 <= K; k += 4) { s0 += x[k] * y[k]; s1 += x[k + 1] * y[k + 1]; s2 += x[k + 2] * y[k + 2]; s3 += x[k + 3] * y[k + 3]; }
            for (; k < K; k++) s0 += x[k] * y[k];
            float s = alpha * ((s0 + s1) + (s2 + s3));
            float *c = C + (i0 + a) * ldc + j0 + b;
            *c = beta == 0.0f ? s : s + beta * *c;
        }
}

static void nt_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const float *A, int64_t lda,
                    const float *B, int64_t ldb, float *C, int64_t ldc, float alpha, float beta) {
    const int isa = lt_isa();
    // Walk B in panels that stay in L2 while all rows of this range use them.
    const int64_t panel = 64;
    for (int64_t j0 = 0; j0 < N; j0 += panel) {
        int64_t j1 = j0 + panel < N ? j0 + panel : N;
        for (int64_t i = m0; i < m1; i += 4) {
            int64_t mi = m1 - i < 4 ? m1 - i : 4;
            for (int64_t j = j0; j < j1; j += 4) {
                int64_t nj = j1 - j < 4 ? j1 - j : 4;
#if defined(__x86_64__)
                if (isa >= LT_ISA_AVX512) { tile_avx512(i, mi, j, nj, K, A, lda, B, ldb, C, ldc, alpha, beta); continue; }
                if (isa == LT_ISA_AVX2) { tile_avx2(i, mi, j, nj, K, A, lda, B, ldb, C, ldc, alpha, beta); continue; }
#elif defined(__aarch64__)
                if (isa == LT_ISA_NEON) { tile_neon(i, mi, j, nj, K, A, lda, B, ldb, C, ldc, alpha, beta); continue; }
#endif
                tile_portable(i, mi, j, nj, K, A, lda, B, ldb, C, ldc, alpha, beta);
            }
        }
    }
}

void lt_sgemm_nt_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const float *A, const float *B, float *C, float beta) {
    nt_rows(m0, m1, N, K, A, K, B, K, C, N, 1.0f, beta);
}

// Copies the (rows x cols, leading dimension ld) matrix X transposed into a new buffer.
static float *transposed(const float *X, int64_t rows, int64_t cols, int64_t ld) {
    float *t = (float *)malloc((size_t)(rows * cols > 0 ? rows * cols : 1) * sizeof(float));
    if (!t) return NULL;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) t[c * rows + r] = X[r * ld + c];
    return t;
}

int lt_sgemm_builtin(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    // Bring both operands to the "A rows along K, B rows along K" form the tiles read.
    float *ta = NULL, *tb = NULL;
    const float *a = A, *b = B;
    int64_t la = lda, lb = ldb;
    if (transA == 'T' || transA == 't') { ta = transposed(A, K, M, lda); a = ta; la = K; }
    if (transB == 'N' || transB == 'n') { tb = transposed(B, K, N, ldb); b = tb; lb = K; }
    if ((ta == NULL && a != A) || (tb == NULL && b != B) || !a || !b) { free(ta); free(tb); return -1; }
    nt_rows(0, M, N, K, a, la, b, lb, C, ldc, alpha, beta);
    free(ta);
    free(tb);
    return 0;
}
