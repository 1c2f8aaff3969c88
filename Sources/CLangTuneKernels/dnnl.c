// oneDNN is loaded with dlopen rather than linked: the package then builds on
// machines without it (macOS, a bare Linux) and falls back to the built-in GEMM.
#include "langtune_kernels.h"
#include <stdatomic.h>
#include <stddef.h>
#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#define LT_HAVE_DLOPEN 1
#endif

typedef int (*sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);

typedef int (*gemm_bf16_fn)(char, char, int64_t, int64_t, int64_t, float, const uint16_t *, int64_t,
                            const uint16_t *, int64_t, float, float *, int64_t);

static sgemm_fn dnnl_sgemm_ptr = NULL;
// oneDNN exports dnnl_gemm_bf16bf16f32 (C linkage, dnnl_sgemm's argument order) without declaring it in
// dnnl.h; it runs on AMX or AVX512-BF16 where the CPU has them.
static gemm_bf16_fn dnnl_bf16_ptr = NULL;
static const char *dnnl_name = NULL;
static atomic_int dnnl_enabled = 1;
static int wait_policy_ours = 0;  // whether load() set OMP_WAIT_POLICY (the user had not)

#ifdef LT_HAVE_DLOPEN
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void load(void) {
    // oneDNN runs on OpenMP, whose idle threads spin by default; LangTune's own
    // kernels run on other threads between GEMMs, and spinning OpenMP workers
    // would take their cores. libgomp reads this when it loads (with libdnnl).
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        wait_policy_ours = 1;
    }
    // A tier forced below the CPU's best (LANGTUNE_ISA=avx2 on an AVX-512 machine) caps oneDNN's own
    // code too, so the run stands for a machine of that tier. oneDNN reads this once, at its first call.
    if (lt_isa() < lt_isa_best()) {
        const char *cap = lt_isa() >= LT_ISA_AVX512 ? "AVX512_CORE_BF16" : lt_isa() == LT_ISA_AVX2 ? "AVX2" : "SSE41";
        setenv("DNNL_MAX_CPU_ISA", cap, 0);
        setenv("ONEDNN_MAX_CPU_ISA", cap, 0);
    }
    const char *names[] = {"libdnnl.so.3", "libdnnl.so.2", "libdnnl.so", NULL};
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        sgemm_fn f = (sgemm_fn)dlsym(h, "dnnl_sgemm");
        if (f) {
            dnnl_sgemm_ptr = f;
            dnnl_bf16_ptr = (gemm_bf16_fn)dlsym(h, "dnnl_gemm_bf16bf16f32");
            dnnl_name = names[i];
            return;
        }
        dlclose(h);
    }
}
#endif

int lt_dnnl_set_wait_policy(void) {
#ifdef LT_HAVE_DLOPEN
    pthread_once(&once, load);
#endif
    return wait_policy_ours;
}

int lt_dnnl_available(const char **path_out) {
#ifdef LT_HAVE_DLOPEN
    pthread_once(&once, load);
#endif
    if (path_out) *path_out = dnnl_name;
    return dnnl_sgemm_ptr != NULL;
}

void lt_set_dnnl_enabled(int enabled) { atomic_store(&dnnl_enabled, enabled ? 1 : 0); }

int lt_sgemm_uses_dnnl(void) { return atomic_load(&dnnl_enabled) && lt_dnnl_available(NULL); }

int lt_sgemm(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (lt_sgemm_uses_dnnl() && K > 0 &&
        dnnl_sgemm_ptr(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0) return 0;
    return lt_sgemm_builtin(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void lt_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C, float beta) {
    if (M <= 0 || N <= 0) return;
    if (lt_sgemm_uses_dnnl() && K > 0) {
        // Row-major C = A · B^T: transa 'N', transb 'T'.
        if (dnnl_sgemm_ptr('N', 'T', M, N, K, 1.0f, A, K, B, K, beta, C, N) == 0) return;
    }
    lt_sgemm_nt_rows(0, M, N, K, A, B, C, beta);
}

int lt_bf16_gemm_available(void) {
    if (!lt_sgemm_uses_dnnl() || dnnl_bf16_ptr == NULL) return 0;
    // Without bf16 units oneDNN emulates bf16 products (slower than float32): not worth it. A tier forced
    // below AVX-512 has none either.
    return lt_isa() >= LT_ISA_AVX512 && (lt_cpu_features() & (LT_CPU_AVX512BF16 | LT_CPU_AMX_BF16)) != 0;
}

int lt_bf16_products_available(void) { return lt_amx_available() || lt_bf16_gemm_available(); }

int lt_gemm_bf16(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (!lt_bf16_gemm_available()) return -1;
    return dnnl_bf16_ptr(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0 ? 0 : -1;
}

static inline uint16_t f32_to_bf16_one(float f) {
    uint32_t u;
    __builtin_memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u | 0x00400000u) >> 16);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#if defined(__x86_64__)
#include <immintrin.h>
// The scalar rule on 16 lanes with integer arithmetic, so both paths give the same bits.
__attribute__((target("avx512f,avx512bw"))) static void f32_to_bf16_avx512(const float *x, uint16_t *y, int64_t n) {
    const __m512i bias = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x00400000);
    const __m512i absmask = _mm512_set1_epi32(0x7FFFFFFF), inf = _mm512_set1_epi32(0x7F800000);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(x + i));
        __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        __m512i r = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(u, quiet));
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
    for (; i < n; i++) y[i] = f32_to_bf16_one(x[i]);
}

__attribute__((target("avx2"))) static void f32_to_bf16_avx2(const float *x, uint16_t *y, int64_t n) {
    const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(0x00400000);
    const __m256i absmask = _mm256_set1_epi32(0x7FFFFFFF), inf = _mm256_set1_epi32(0x7F800000);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            const __m256i u = _mm256_loadu_si256((const __m256i *)(x + i + 8 * h));
            const __m256i rounded = _mm256_add_epi32(_mm256_add_epi32(u, bias), _mm256_and_si256(_mm256_srli_epi32(u, 16), one));
            // |u| > inf as signed compare is safe: both sides are below 2^31.
            const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, absmask), inf);
            r[h] = _mm256_srli_epi32(_mm256_blendv_epi8(rounded, _mm256_or_si256(u, quiet), nan), 16);
        }
        // packus works within 128-bit lanes: fix the order of the four quarters afterwards.
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(y + i), packed);
    }
    for (; i < n; i++) y[i] = f32_to_bf16_one(x[i]);
}

__attribute__((target("avx2"))) static void bf16_to_f32_avx2(const void *x, float *y, int64_t n) {
    const uint8_t *b = (const uint8_t *)x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(b + 2 * i));
        _mm256_storeu_si256((__m256i *)(y + i), _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    for (; i < n; i++) {
        uint16_t h;
        __builtin_memcpy(&h, b + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        __builtin_memcpy(&y[i], &u, 4);
    }
}
#endif

void lt_f32_to_bf16(const float *x, uint16_t *y, int64_t n) {
    // Round to nearest even (NaN kept quiet), as PyTorch and BFloat16Bits.fromFloat.
#if defined(__x86_64__)
    const int isa = lt_isa();
    if (isa >= LT_ISA_AVX512) { f32_to_bf16_avx512(x, y, n); return; }
    if (isa == LT_ISA_AVX2) { f32_to_bf16_avx2(x, y, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = f32_to_bf16_one(x[i]);
}

void lt_bf16_to_f32(const void *x, float *y, int64_t n) {
    // Byte loads: a bf16 tensor inside a mapped file need not be 2-byte aligned.
#if defined(__x86_64__)
    if (lt_isa() >= LT_ISA_AVX2) { bf16_to_f32_avx2(x, y, n); return; }
#endif
    const uint8_t *b = (const uint8_t *)x;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        __builtin_memcpy(&h, b + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        __builtin_memcpy(&y[i], &u, 4);
    }
}
