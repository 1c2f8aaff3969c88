// oneDNN is loaded with dlopen rather than linked: the package then builds on
// machines without it (macOS, a bare Linux) and falls back to the built-in GEMM.
#include "langtune_kernels.h"
#include <stdatomic.h>
#include <stddef.h>
#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#define LT_HAVE_DLOPEN 1
#endif

typedef int (*sgemm_fn)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);

static sgemm_fn dnnl_sgemm_ptr = NULL;
static const char *dnnl_name = NULL;
static atomic_int dnnl_enabled = 1;

#ifdef LT_HAVE_DLOPEN
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void load(void) {
    const char *names[] = {"libdnnl.so.3", "libdnnl.so.2", "libdnnl.so", NULL};
    for (int i = 0; names[i]; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) continue;
        sgemm_fn f = (sgemm_fn)dlsym(h, "dnnl_sgemm");
        if (f) { dnnl_sgemm_ptr = f; dnnl_name = names[i]; return; }
        dlclose(h);
    }
}
#endif

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
