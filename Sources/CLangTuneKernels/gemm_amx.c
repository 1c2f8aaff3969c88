// bf16 GEMM on AMX tiles: C[M, n0..n1) = A[M,K] · op(B) (+ C), bf16 inputs,
// float32 accumulation and output.
//
// Why our own: Debian's oneDNN 2.6 reaches 640-780 GFLOP/s here while the
// tiles can do about twice that (PyTorch's newer oneDNN: 1.9 TFLOP/s). The
// kernel is the textbook one: 2x2 tiles of 16x16 float accumulators (32 rows x
// 32 columns of C), two A tiles read straight from the row-major activations,
// two B tiles from a VNNI-packed copy of the weight columns. Columns go in
// groups whose packed copy stays in L2; for each group, every 32-row panel of A
// (in L1) meets every panel of B. Callers split columns across threads.
//
// Packed B: per 32-column panel, per 32-deep k chunk, two 16x16-dword tiles
// back to back (columns 0-15, then 16-31); tile row r holds, for each column c,
// the pair (B[k=2r][c], B[k=2r+1][c]) of the chunk, zeros past K and N.
#include "langtune_kernels.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#define LT_HAVE_AMX 1
#endif

static atomic_int amx_enabled = 1;
void lt_set_amx_enabled(int enabled) { atomic_store(&amx_enabled, enabled ? 1 : 0); }

#ifdef LT_HAVE_AMX
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_ok = 0;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static void amx_probe(void) {
    // LANGTUNE_AMX=0 leaves bf16 products to oneDNN (A/B comparisons in benchmarks).
    const char *env = getenv("LANGTUNE_AMX");
    if (env && env[0] == '0') return;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    // AMX-BF16 (bit 22) and AMX-TILE (bit 24); then the kernel must enable the
    // tile state for this process (Linux 5.16+), or the first tile instruction dies with SIGILL.
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return;
    amx_ok = 1;
}
#endif

int lt_amx_permitted(void) {
#ifdef LT_HAVE_AMX
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
#else
    return 0;
#endif
}

int lt_amx_available(void) { return atomic_load(&amx_enabled) && lt_isa() == LT_ISA_AMX; }

#ifdef LT_HAVE_AMX
#define LT_AMX __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw")))

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// Per-thread scratch (packed B group + a zero-padded A panel), kept for the
// thread's life so the training step asks the system for no memory.
static _Thread_local uint16_t *tls_buf = NULL;
static _Thread_local size_t tls_cap = 0;

static uint16_t *scratch_u16(size_t count) {
    if (count > tls_cap) {
        free(tls_buf);
        tls_buf = aligned_alloc(64, (count * 2 + 63) / 64 * 64);
        tls_cap = tls_buf ? count : 0;
    }
    return tls_buf;
}

// 16x16 dwords: out[r][c] = in[c][r] (rows of `in` at stride `is` dwords, rows of `out` contiguous).
static inline __attribute__((always_inline)) LT_AMX void transpose16(const uint32_t *in, int64_t is, uint32_t *out) {
    __m512i r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_si512(in + i * is);
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    // r[4q + j] holds, in 128-bit lane L, column 4L + j of rows 4q..4q+3; out row 4L + j is lane L of
    // r[j], r[4 + j], r[8 + j], r[12 + j].
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0x88);       // lanes 0,2 of r[i], 0,2 of r[4+i]
        t[4 + i] = _mm512_shuffle_i32x4(r[i], r[4 + i], 0xDD);   // lanes 1,3
        t[8 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_i32x4(r[8 + i], r[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        _mm512_storeu_si512(out + (i) * 16, _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88));
        _mm512_storeu_si512(out + (4 + i) * 16, _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0x88));
        _mm512_storeu_si512(out + (8 + i) * 16, _mm512_shuffle_i32x4(t[i], t[8 + i], 0xDD));
        _mm512_storeu_si512(out + (12 + i) * 16, _mm512_shuffle_i32x4(t[4 + i], t[12 + i], 0xDD));
    }
}

// Packs columns [c0, c0 + 32*panels) (clipped at N) and k in [k0, k0 + 32*chunks) (zeros at K and beyond)
// of op(B) into `dst`.
static LT_AMX void pack_b(char transB, const uint16_t *B, int64_t ldb, int64_t N, int64_t K, int64_t k0,
                          int64_t chunks, int64_t c0, int64_t panels, uint16_t *dst) {
    for (int64_t p = 0; p < panels; p++) {
        for (int64_t half = 0; half < 2; half++) {
            const int64_t cb = c0 + p * 32 + half * 16;
            for (int64_t kc = 0; kc < chunks; kc++) {
                uint32_t *tile = (uint32_t *)(dst + ((p * chunks + kc) * 2 + half) * 512);
                const int64_t kk = k0 + kc * 32;
                if (cb + 16 <= N && kk + 32 <= K && (transB == 'N' || ldb % 2 == 0)) {
                    if (transB == 'T') {
                        // B[n][k]: the pair (k, k+1) is one dword of row n, so the tile is a dword transpose.
                        transpose16((const uint32_t *)(B + cb * ldb + kk), ldb / 2, tile);
                    } else {
                        // B[k][n]: interleave rows 2r and 2r+1.
                        for (int64_t r = 0; r < 16; r++) {
                            const __m256i lo = _mm256_loadu_si256((const __m256i *)(B + (kk + 2 * r) * ldb + cb));
                            const __m256i hi = _mm256_loadu_si256((const __m256i *)(B + (kk + 2 * r + 1) * ldb + cb));
                            const __m512i l = _mm512_cvtepu16_epi32(lo), h = _mm512_cvtepu16_epi32(hi);
                            _mm512_storeu_si512(tile + r * 16, _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
                        }
                    }
                    continue;
                }
                for (int64_t r = 0; r < 16; r++)
                    for (int64_t c = 0; c < 16; c++) {
                        const int64_t n = cb + c, ka = kk + 2 * r, kb = ka + 1;
                        uint32_t lo = 0, hi = 0;
                        if (n < N) {
                            if (ka < K) lo = transB == 'T' ? B[n * ldb + ka] : B[ka * ldb + n];
                            if (kb < K) hi = transB == 'T' ? B[n * ldb + kb] : B[kb * ldb + n];
                        }
                        tile[r * 16 + c] = lo | (hi << 16);
                    }
            }
        }
    }
}

// C[32x32] = cin (or zero when NULL) + A panel (32 rows, stride `as` bytes) · packed B panel, over `chunks`
// k chunks of 32; C read from `cin` and written to `out` (stride `cs` bytes both).
static inline __attribute__((always_inline)) LT_AMX void
block_32x32(const uint16_t *a, int64_t as, const uint16_t *bp, int64_t chunks, const float *cin, float *out,
            int64_t cs) {
    if (cin) {
        _tile_loadd(0, cin, cs);
        _tile_loadd(1, cin + 16, cs);
        _tile_loadd(2, (const char *)cin + 16 * cs, cs);
        _tile_loadd(3, (const char *)cin + 16 * cs + 64, cs);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t kc = 0; kc < chunks; kc++) {
        _tile_loadd(4, a + kc * 32, as);
        _tile_loadd(6, bp + kc * 1024, 64);
        _tile_loadd(7, bp + kc * 1024 + 512, 64);
        _tile_loadd(5, (const char *)(a + kc * 32) + 16 * as, as);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, cs);
    _tile_stored(1, (char *)out + 64, cs);
    _tile_stored(2, (char *)out + 16 * cs, cs);
    _tile_stored(3, (char *)out + 16 * cs + 64, cs);
}

#define AMX_KBLOCK 768          // most k per pass: a 32-row A panel (<= 48 KiB) stays in L1
#define AMX_GROUP_BYTES (512 * 1024)  // packed B per pass, kept in L2

static LT_AMX int amx_gemm(char transB, int64_t M, int64_t N, int64_t K, const uint16_t *A, int64_t lda,
                           const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc, int64_t n0, int64_t n1) {
    // k passes of equal depth (a short last pass would reload C for little work).
    const int64_t Kp = (K + 31) / 32 * 32, passes = (Kp + AMX_KBLOCK - 1) / AMX_KBLOCK;
    const int64_t kbMax = ((Kp / 32 + passes - 1) / passes) * 32;
    int64_t gpanels = AMX_GROUP_BYTES / (kbMax * 64);
    if (gpanels < 1) gpanels = 1;
    const int64_t totalPanels = (n1 - n0 + 31) / 32;
    if (gpanels > totalPanels) gpanels = totalPanels;
    const size_t packCount = (size_t)(gpanels * 32 * kbMax), padCount = (size_t)(32 * kbMax);
    uint16_t *buf = scratch_u16(packCount + padCount + 32 * 32 * 2);
    if (!buf) return -1;
    uint16_t *packed = buf, *apad = buf + packCount;
    float *ctmp = (float *)(apad + padCount);  // 32x32 floats
    if (beta != 0.0f && beta != 1.0f) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = n0; n < n1; n++) C[m * ldc + n] *= beta;
        beta = 1.0f;
    }

    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);

    for (int64_t g0 = n0; g0 < n1; g0 += gpanels * 32) {
        const int64_t gp = ((n1 - g0 + 31) / 32) < gpanels ? (n1 - g0 + 31) / 32 : gpanels;
        const int64_t gend = g0 + gp * 32 < n1 ? g0 + gp * 32 : n1;
        for (int64_t k0 = 0; k0 < Kp; k0 += kbMax) {
            const int64_t kb = Kp - k0 < kbMax ? Kp - k0 : kbMax, chunks = kb / 32;
            const int first = k0 == 0 && beta == 0.0f;  // C starts from zero
            pack_b(transB, B, ldb, gend, K, k0, chunks, g0, gp, packed);
            for (int64_t m0 = 0; m0 < M; m0 += 32) {
                const int64_t rows = M - m0 < 32 ? M - m0 : 32;
                const uint16_t *a;
                int64_t as;
                if (rows == 32 && k0 + kb <= K) {
                    a = A + m0 * lda + k0;
                    as = lda * 2;
                } else {
                    const int64_t valid = K - k0 < kb ? K - k0 : kb;
                    for (int64_t r = 0; r < 32; r++) {
                        uint16_t *d = apad + r * kb;
                        if (r < rows) {
                            memcpy(d, A + (m0 + r) * lda + k0, (size_t)valid * 2);
                            memset(d + valid, 0, (size_t)(kb - valid) * 2);
                        } else memset(d, 0, (size_t)kb * 2);
                    }
                    a = apad;
                    as = kb * 2;
                }
                // The next A panel comes from L3 or memory: fetch it while this one works from L1.
                const int64_t nextRows = M - m0 - 32 < 32 ? M - m0 - 32 : 32, lines = (kb * 2 + 63) / 64;
                const char *next = (const char *)(A + (m0 + 32) * lda + k0);
                int64_t pf = 0;
                const int64_t pfTotal = nextRows > 0 ? nextRows * lines : 0, pfPer = (pfTotal + gp - 1) / gp;
                for (int64_t p = 0; p < gp; p++) {
                    const int64_t c0 = g0 + p * 32, cols = gend - c0 < 32 ? gend - c0 : 32;
                    for (int64_t e = pf + pfPer < pfTotal ? pf + pfPer : pfTotal; pf < e; pf++)
                        _mm_prefetch(next + (pf / lines) * lda * 2 + (pf % lines) * 64, _MM_HINT_T0);
                    const uint16_t *bp = packed + p * chunks * 1024;
                    float *cblk = C + m0 * ldc + c0;
                    if (rows == 32 && cols == 32) {
                        block_32x32(a, as, bp, chunks, first ? NULL : cblk, cblk, ldc * 4);
                        continue;
                    }
                    // Edge block: through a zero-padded 32x32 copy of C.
                    memset(ctmp, 0, 32 * 32 * sizeof(float));
                    if (!first)
                        for (int64_t r = 0; r < rows; r++) memcpy(ctmp + r * 32, cblk + r * ldc, (size_t)cols * 4);
                    block_32x32(a, as, bp, chunks, ctmp, ctmp, 128);
                    for (int64_t r = 0; r < rows; r++) memcpy(cblk + r * ldc, ctmp + r * 32, (size_t)cols * 4);
                }
            }
        }
    }
    _tile_release();
    return 0;
}
#endif

int lt_gemm_bf16_amx(char transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A, int64_t lda,
                     const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc, int64_t n0, int64_t n1) {
    if (n1 > N) n1 = N;
    if (M <= 0 || n0 >= n1) return 0;
#ifdef LT_HAVE_AMX
    if (!lt_amx_available() || (transB != 'N' && transB != 'T') || alpha != 1.0f) return -1;
    if (K <= 0) {
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = n0; n < n1; n++) C[m * ldc + n] = beta == 0.0f ? 0.0f : beta * C[m * ldc + n];
        return 0;
    }
    return amx_gemm(transB, M, N, K, A, lda, B, ldb, beta, C, ldc, n0, n1);
#else
    (void)transB; (void)K; (void)alpha; (void)A; (void)lda; (void)B; (void)ldb; (void)beta; (void)C; (void)ldc;
    return -1;
#endif
}
