#ifndef LANGTUNE_KERNELS_H
#define LANGTUNE_KERNELS_H
// Hot loops of LangTune in C. Each function works on a row range so the Swift
// side can split work across threads without sharing state.
#include <stddef.h>
#include <stdint.h>

// --- CPU features and kernel tiers, detected once at run time --------------------
enum {
    LT_CPU_AVX2 = 1 << 0,
    LT_CPU_FMA = 1 << 1,
    LT_CPU_F16C = 1 << 2,
    LT_CPU_AVX512F = 1 << 3,
    LT_CPU_AVX512BW = 1 << 4,
    LT_CPU_AVX512BF16 = 1 << 5,
    LT_CPU_AMX_BF16 = 1 << 6,
    LT_CPU_AVX512DQVL = 1 << 7,
    LT_CPU_AVX512VNNI = 1 << 8,
    LT_CPU_NEON = 1 << 9,
    LT_CPU_NEON_DOTPROD = 1 << 10,
    LT_CPU_NEON_I8MM = 1 << 11,
};
/// Bit set of LT_CPU_* the running CPU supports.
int lt_cpu_features(void);

/// Kernel tiers, one instruction set each; a higher tier on x86 includes the lower ones.
enum {
    LT_ISA_PORTABLE = 0,  ///< plain C for the baseline target
    LT_ISA_NEON = 1,      ///< ARM64 Advanced SIMD (dotprod where present)
    LT_ISA_AVX2 = 2,      ///< AVX2 + FMA + F16C
    LT_ISA_AVX512 = 3,    ///< AVX-512 F/BW/DQ/VL (+VNNI, AVX512-BF16 where present)
    LT_ISA_AMX = 4,       ///< AVX-512 plus AMX-BF16 tiles the OS granted
};
/// The tier the kernels use now: the CPU's best, or a lower one from LANGTUNE_ISA / lt_set_isa.
int lt_isa(void);
/// The best tier this CPU (and OS) runs.
int lt_isa_best(void);
/// 1 when this CPU runs `isa`'s kernels.
int lt_isa_runs(int isa);
/// Makes `isa` the active tier (process-wide). Returns 0, or -1 (nothing changed) when the CPU cannot run it.
int lt_set_isa(int isa);
/// "portable", "neon", "avx2", "avx512", "amx".
const char *lt_isa_name(int isa);
/// The tier of a name above, or -1.
int lt_isa_parse(const char *name);
/// Why LANGTUNE_ISA was ignored (unknown name, or a tier above the CPU's), or NULL when it is unset or taken.
const char *lt_isa_env_problem(void);
/// 1 when the CPU has AMX-BF16 and the kernel granted this process the tile state (checked once).
int lt_amx_permitted(void);
/// glibc: fixes the mmap threshold at `bytes` (no dynamic growth); returns mallopt's result, 0 elsewhere.
int lt_pin_mmap_threshold(int64_t bytes);
// Returns the heap's free pages to the system (glibc's malloc_trim; a no-op elsewhere): a server gone
// idle gives back what its requests' KV caches took.
void lt_release_free_memory(void);
/// 0 forces the portable tier, 1 restores the best (or LANGTUNE_ISA's); kept for older callers.
void lt_set_simd_enabled(int enabled);
/// 1 unless the portable tier is active.
int lt_simd_enabled(void);

// --- worker threads -------------------------------------------------------------
/// One part of a parallel loop.
typedef void (*lt_parallel_fn)(void *ctx, int64_t part);
/// Runs fn(ctx, p) for every p in [0, parts) on up to `threads` threads (the caller is one of them) of a
/// persistent pool whose workers spin briefly between short jobs; returns when all parts are done.
/// Returns 0, or -1 (nothing ran) when the pool is busy: called from inside a task or by another thread at
/// the same time, or with threads < 2.
int lt_pool_run(int threads, int64_t parts, lt_parallel_fn fn, void *ctx);

// --- half precision ---------------------------------------------------------
float lt_f16_to_f32(uint16_t h);
uint16_t lt_f32_to_f16(float f);

// --- oneDNN, bound at run time -----------------------------------------------
/// 1 when libdnnl could be loaded (once); 0 otherwise. `path_out` (may be NULL)
/// receives the library name that loaded.
int lt_dnnl_available(const char **path_out);
/// 1 when LangTune set OMP_WAIT_POLICY=PASSIVE for oneDNN's OpenMP (the user had not set it): programs
/// started from LangTune (benchmark baselines) should not inherit it.
int lt_dnnl_set_wait_policy(void);
/// Forces the built-in GEMM even when oneDNN is present (for tests/benchmarks).
void lt_set_dnnl_enabled(int enabled);

/// C[M,N] = A[M,K] · B[N,K]^T (+ beta·C), row-major, f32. Uses oneDNN's sgemm
/// when available (it threads itself), else the built-in kernel over rows
/// [m0, m1) of A (callers split rows across threads themselves).
void lt_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C, float beta);
/// Whether lt_sgemm_nt will use oneDNN (so callers need not thread it).
int lt_sgemm_uses_dnnl(void);
/// 1 when oneDNN's bf16 GEMM is loaded and the CPU has bf16 units (AVX512-BF16 or AMX-BF16).
int lt_bf16_gemm_available(void);
/// 1 when some bf16 GEMM runs here: LangTune's AMX kernel or oneDNN's (lt_bf16_gemm_available).
int lt_bf16_products_available(void);
/// C[M,N] = alpha · op(A) · op(B) + beta · C, row-major, A and B bfloat16, C float32 (float32
/// accumulation). Returns 0, or -1 when lt_bf16_gemm_available() is 0 (C untouched).
int lt_gemm_bf16(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
                 const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);
/// 1 when the CPU has AMX-BF16 and the kernel granted this process the tile state (checked once), and
/// neither lt_set_amx_enabled(0) nor lt_set_simd_enabled(0) turned it off.
int lt_amx_available(void);
/// Turns LangTune's own AMX GEMM off (1 = on, the default), for tests and benchmarks against oneDNN.
void lt_set_amx_enabled(int enabled);
/// LangTune's AMX kernel on columns [n0, n1) of C: C[M, n0..n1) = A[M,K] · op(B)[K, n0..n1) + beta·C,
/// A row-major bf16 (lda), op(B) = B[K][N] ('N') or B[N][K]ᵀ ('T') bf16 (ldb), C float32 (ldc).
/// Threads split columns (multiples of 32 keep blocks whole). Returns 0, or -1 when AMX is not
/// available, transB is neither 'N' nor 'T', alpha is not 1, or scratch memory could not be had (C untouched).
int lt_gemm_bf16_amx(char transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A, int64_t lda,
                     const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc, int64_t n0, int64_t n1);
/// float32 -> bfloat16, round to nearest even; and back (exact; `x` may be unaligned).
void lt_f32_to_bf16(const float *x, uint16_t *y, int64_t n);
void lt_bf16_to_f32(const void *x, float *y, int64_t n);
/// General row-major GEMM, BLAS-style: C = alpha·op(A)·op(B) + beta·C with
/// op(X) = X ('N') or Xᵀ ('T'); op(A) is M×K, op(B) is K×N. oneDNN when present,
/// else the built-in kernel (single-threaded; transposed operands are copied).
/// Returns 0, or -1 when memory for a transposed copy could not be had.
int lt_sgemm(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
int lt_sgemm_builtin(char transA, char transB, int64_t M, int64_t N, int64_t K, float alpha,
                     const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/// Built-in kernel on a row range of A / C: C[m0..m1, :] = A[m0..m1, :] · B^T + beta·C.
void lt_sgemm_nt_rows(int64_t m0, int64_t m1, int64_t N, int64_t K, const float *A, const float *B, float *C, float beta);

// --- matrix-vector products on rows [r0, r1) of W (row length = cols) ----------
// y[r] = dot(W[r, :], x). For block types, `cols` is a multiple of 32 and
// `xsum` holds the sum of x over each block of 32 (computed by lt_block_sums).
void lt_matvec_f32(const float *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q4_0(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q4_1(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q8_0(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_block_sums(const float *x, float *xsum, int64_t n);
/// GGUF K-quant blocks (Q4_K, Q5_K, Q6_K: super-blocks of 256, `cols` a multiple of 256) and Q5_0
/// (blocks of 32; the fallback type of a Q4_K_M file for rows that are not whole super-blocks), read
/// directly; Q4_K and Q5_K also take the block sums of x (lt_block_sums, per 32).
void lt_matvec_q4_k(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q5_k(const void *W, const float *x, const float *xsum, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q6_k(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1);
void lt_matvec_q5_0(const void *W, const float *x, float *y, int64_t cols, int64_t r0, int64_t r1);

/// Q4_1 (has_min 1) or Q4_0 blocks to float32, `blocks` blocks of 32, bit for bit as ggml dequantizes them.
void lt_dequantize_q4(const void *src, float *dst, int64_t blocks, int has_min);
/// Q8_0 blocks to float32, bit for bit as ggml.
void lt_dequantize_q8_0(const void *src, float *dst, int64_t blocks);
/// Q4_K / Q5_K / Q6_K super-blocks (256 elements each) and Q5_0 blocks (32) to float32, bit for bit as
/// ggml and gguf-py dequantize them, on every tier.
void lt_dequantize_q4_k(const void *src, float *dst, int64_t blocks);
void lt_dequantize_q5_k(const void *src, float *dst, int64_t blocks);
void lt_dequantize_q6_k(const void *src, float *dst, int64_t blocks);
void lt_dequantize_q5_0(const void *src, float *dst, int64_t blocks);

// --- the same against an int8-quantized input (AVX512-VNNI; `--dtype bf16` only) ----------------
/// 1 when the CPU has AVX512-VNNI (and AVX-512BW, F16C) and SIMD is enabled.
int lt_int8_matvec_available(void);
/// Bytes of each quantized layout lt_quantize_q8 writes for `cols` inputs (a multiple of 32).
int64_t lt_quantize_q8_bytes(int64_t cols);
/// x -> int8 per block of 32: d[b] = max|x_b|/127, q = round(x/d); writes the Q4-weight layout
/// (blocks paired, halves interleaved), the Q8-weight layout (plain, +128 as unsigned), d and the
/// exact float block sums.
void lt_quantize_q8(const float *x, int64_t cols, int8_t *q4layout, uint8_t *q8layout, float *d, float *xsum);
/// y[r] for rows [r0, r1) of Q4_1 (has_min 1) or Q4_0 blocks against the quantized input. Returns -1
/// (y untouched) without VNNI.
int lt_matvec_q4_int8(const void *W, int has_min, const int8_t *qx, const float *dx, const float *xsum, float *y,
                      int64_t cols, int64_t r0, int64_t r1);
/// Q8_0 blocks against the quantized input (Q8 layout). Returns -1 without VNNI.
int lt_matvec_q8_0_int8(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0, int64_t r1);
/// The same for `inputs` inputs at once (serving's batched decoding): input j's quantized values at
/// qx + j*qstride, its scales and sums at + j*sstride, its outputs at y + j*ystride (rows r0..<r1).
/// Every input's results are bit for bit those of the single-input call: a block's weights are
/// unpacked once and used for all inputs, the arithmetic per input unchanged.
int lt_matvec_q4_int8_inputs(const void *W, int has_min, const int8_t *qx, int64_t qstride, const float *dx,
                             const float *xsum, int64_t sstride, float *y, int64_t ystride, int64_t inputs, int64_t cols,
                             int64_t r0, int64_t r1);
int lt_matvec_q8_0_int8_inputs(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                               float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1);
/// Q5_0 blocks (a Q4_K_M file's rows that are not whole super-blocks) against the quantized input in
/// the Q8 layout, as lt_matvec_q8_0_int8(_inputs): the weights' quants (-16..15) times the input's, exact
/// in int32 per block. On x86 every int8 tier runs the AVX2 code (an AVX-512 CPU runs AVX2 too). Returns
/// -1 (y untouched) where there is no int8 path.
int lt_matvec_q5_0_int8(const void *W, const uint8_t *qx, const float *dx, float *y, int64_t cols, int64_t r0, int64_t r1);
int lt_matvec_q5_0_int8_inputs(const void *W, const uint8_t *qx, int64_t qstride, const float *dx, int64_t sstride,
                               float *y, int64_t ystride, int64_t inputs, int64_t cols, int64_t r0, int64_t r1);

// --- attention ------------------------------------------------------------------
/// Causal grouped-query attention for T new queries at positions p0..p0+T-1.
/// q: [T, nHeads*hd]; k, v caches: [>= p0+T, nKV*hd] (row stride kvStride floats);
/// out: [T, nHeads*hd]. Heads [h0, h1) only. `scratch` holds p0+T floats.
/// A sliding window (Gemma 3's local layers: query at position p sees keys with p - j < window)
/// needs no parameter: attend one query row at a time from the window's first row,
///   first = max(0, p0 + t + 1 - window):  lt_attention_causal(q + t*nHeads*hd, k + first*kvStride,
///   v + first*kvStride, out + t*nHeads*hd, 1, p0 + t - first, ...)
/// (the kernel works a query row at a time anyway, so this costs nothing; tested in kernel_tests.c).
void lt_attention_causal(const float *q, const float *k, const float *v, float *out,
                         int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, int64_t hd,
                         int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch);

/// lt_attention_causal over a bfloat16 cache (k, v widened to float32 row by row); hd <= 1024.
void lt_attention_causal_bf16(const float *q, const uint16_t *k, const uint16_t *v, float *out,
                              int64_t T, int64_t p0, int64_t nHeads, int64_t nKV, int64_t hd,
                              int64_t kvStride, float scale, int64_t h0, int64_t h1, float *scratch);

// --- small vector helpers -------------------------------------------------------
float lt_dot_f32(const float *a, const float *b, int64_t n);
/// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]; accumulates in double like a float64 reference would not need to.
void lt_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps);
/// out[i] = silu(g[i]) * u[i]
void lt_swiglu(const float *g, const float *u, float *out, int64_t n);
/// out[i] = gelu_tanh(g[i]) * u[i] (Gemma's MLP gate): ltt_geglu_forward on every tier.
void lt_geglu(const float *g, const float *u, float *out, int64_t n);

#endif
