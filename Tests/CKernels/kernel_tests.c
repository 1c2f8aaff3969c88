// Every public C kernel against a float64 reference computed here, on fresh random inputs, on every
// kernel tier this CPU runs (portable, neon, avx2, avx512, amx: lt_set_isa picks each in turn).
//
// Build (scripts/test-kernels.sh does this, natively and for ARM64 under qemu-aarch64):
//   cc -O2 -I Sources/CLangTuneKernels/include -I Sources/CLangTuneKernels
//      Tests/CKernels/kernel_tests.c Sources/CLangTuneKernels/*.c -lm -ldl -lpthread
//
// Output: one line per kernel and tier, `ok <tier> <kernel>` or
// `FAIL <tier> <kernel>: got X want Y at i [case] (seed S)`, `skip ...` where a tier has no such path,
// then `N passed, M failed`; the exit status is 1 when anything failed. The inputs come from a seed
// taken from the clock (printed first); LANGTUNE_TEST_SEED=S replays a run. Every tier sees the same
// inputs for the same seed (each kernel's generator is reseeded from the seed and its name).
//
// Tolerances are those of the Swift tests (Tests/LangTuneTests/Kernels, .../Gradients): float32
// results within 1e-5 of the float64 value relative to the output's scale (1e-4 for backward passes,
// which chain more float32 roundings); conversions, dropout and copies bit for bit.
#include "langtune_kernels.h"
#include "langtune_train.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// ------------------------------------------------------------------------------------------------
// Random numbers: splitmix64.

static uint64_t g_seed, rng_state;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rnd_u64(void) { return mix64(rng_state += 0x9E3779B97F4A7C15ull); }
static double rnd_unit(void) { return (double)(rnd_u64() >> 11) * 0x1p-53; }
static float rnd_f(float lo, float hi) { return lo + (hi - lo) * (float)rnd_unit(); }
static int64_t rnd_int(int64_t bound) { return (int64_t)(rnd_u64() % (uint64_t)bound); }
static void fill(float *x, int64_t n, float lo, float hi) {
    for (int64_t i = 0; i < n; i++) x[i] = rnd_f(lo, hi);
}

// Each kernel's inputs depend only on the seed and the kernel's name, so tiers see the same inputs.
static void reseed(const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    rng_state = g_seed ^ h;
}

// ------------------------------------------------------------------------------------------------
// Reporting: one kernel (line) at a time; its first failure is kept.

static int n_pass, n_fail;
static const char *tier = "?";
static char k_name[128];
static int k_failed;
static char k_msg[768];

// Buffers of the current kernel, freed when it ends.
static void *k_allocs[512];
static int k_nallocs;
static int k_hold;  // 1: kend keeps the buffers (several kernels checked on the same inputs)

static void *talloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || k_nallocs == (int)(sizeof k_allocs / sizeof k_allocs[0])) {
        fprintf(stderr, "kernel_tests: out of memory\n");
        exit(2);
    }
    k_allocs[k_nallocs++] = p;
    return p;
}
#define FALLOC(n) ((float *)talloc((size_t)(n) * sizeof(float)))
#define DALLOC(n) ((double *)talloc((size_t)(n) * sizeof(double)))

static void kbegin(const char *name) {
    snprintf(k_name, sizeof k_name, "%s", name);
    k_failed = 0;
    k_msg[0] = 0;
    reseed(name);
}

static void kfail(const char *fmt, ...) {
    if (k_failed) return;
    k_failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k_msg, sizeof k_msg, fmt, ap);
    va_end(ap);
}

static void kend(void) {
    if (k_failed) {
        printf("FAIL %s %s: %s (seed %llu; rerun with LANGTUNE_TEST_SEED=%llu)\n", tier, k_name, k_msg,
               (unsigned long long)g_seed, (unsigned long long)g_seed);
        n_fail++;
    } else {
        printf("ok %s %s\n", tier, k_name);
        n_pass++;
    }
    if (k_hold) return;
    for (int i = 0; i < k_nallocs; i++) free(k_allocs[i]);
    k_nallocs = 0;
}

static void kskip(const char *name, const char *why) { printf("skip %s %s: %s\n", tier, name, why); }

// A crash (SIGSEGV, SIGILL: an instruction this CPU lacks) is reported against the kernel it hit.
static void on_signal(int sig) {
    char buf[512];
    int len = snprintf(buf, sizeof buf, "FAIL %s %s: crashed with signal %d (seed %llu)\n%d passed, %d failed\n", tier,
                       k_name, sig, (unsigned long long)g_seed, n_pass, n_fail + 1);
    if (len > 0) { ssize_t w = write(1, buf, (size_t)len); (void)w; }
    _exit(1);
}

// ------------------------------------------------------------------------------------------------
// Comparisons. Each returns 1 when it passed; the first failure of a kernel is what its line shows.

static double max_abs(const double *w, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(w[i]) > m ? fabs(w[i]) : m;
    return m;
}
static double rms(const double *w, int64_t n) {
    if (n <= 0) return 0;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += w[i] * w[i];
    return sqrt(s / (double)n);
}

/// |got - want| <= rel * max|want| + abs_tol (the Swift KernelTests rule).
static int close_max(const char *ctx, const float *got, const double *want, int64_t n, double rel, double abs_tol) {
    const double tol = rel * max_abs(want, n) + abs_tol;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]);
        if (!(e <= tol)) {
            kfail("got %.9g want %.9g at %lld [%s; tolerance %.3g]", got[i], want[i], (long long)i, ctx, tol);
            return 0;
        }
    }
    return 1;
}

/// |got - want| <= rel * max(|want|, floor), floor = rms(want) when floor <= 0 (the Swift Gradients rule).
static int close_rel(const char *ctx, const float *got, const double *want, int64_t n, double rel, double floor_) {
    const double fl = floor_ > 0 ? floor_ : (rms(want, n) > 1e-300 ? rms(want, n) : 1e-300);
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) > fl ? fabs(want[i]) : fl);
        if (!(e <= rel)) {
            kfail("got %.9g want %.9g at %lld [%s; relative error %.3g > %.3g]", got[i], want[i], (long long)i, ctx, e,
                  rel);
            return 0;
        }
    }
    return 1;
}

/// |got - want| <= rel * mag[i]: mag is the sum of the magnitudes of the terms (sums that cancel).
static int close_mag(const char *ctx, const float *got, const double *want, const double *mag, int64_t n, double rel) {
    for (int64_t i = 0; i < n; i++) {
        const double tol = rel * mag[i] + 1e-30;
        if (!(fabs((double)got[i] - want[i]) <= tol)) {
            kfail("got %.9g want %.9g at %lld [%s; tolerance %.3g]", got[i], want[i], (long long)i, ctx, tol);
            return 0;
        }
    }
    return 1;
}

static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/// Bit for bit.
static int same_f32(const char *ctx, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (bits_of(got[i]) != bits_of(want[i])) {
            kfail("got %.9g (0x%08x) want %.9g (0x%08x) at %lld [%s]", got[i], bits_of(got[i]), want[i], bits_of(want[i]),
                  (long long)i, ctx);
            return 0;
        }
    return 1;
}
static int same_u16(const char *ctx, const uint16_t *got, const uint16_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            kfail("got 0x%04x want 0x%04x at %lld [%s]", got[i], want[i], (long long)i, ctx);
            return 0;
        }
    return 1;
}
static int expect_int(const char *ctx, long long got, long long want) {
    if (got != want) { kfail("got %lld want %lld at 0 [%s]", got, want, ctx); return 0; }
    return 1;
}

static const float SENTINEL = -12345.5f;
static void fill_const(float *x, int64_t n, float v) { for (int64_t i = 0; i < n; i++) x[i] = v; }
static void fill_nan(float *x, int64_t n) { fill_const(x, n, NAN); }
static double *to_double(const float *x, int64_t n) {
    double *d = DALLOC(n);
    for (int64_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

// ------------------------------------------------------------------------------------------------
// Scalar references for the number formats.

static uint16_t f16_bits(float v) { return lt_f32_to_f16(v); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v & 0xff); p[1] = (uint8_t)(v >> 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/// float32 -> bfloat16 round to nearest even, NaN kept quiet with its sign and top payload bits.
static uint16_t ref_bf16(uint32_t u) {
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu)) return (uint16_t)((u >> 16) | 0x0040u);
    uint32_t hi = u >> 16, rem = u & 0xFFFFu;
    if (rem > 0x8000u || (rem == 0x8000u && (hi & 1u))) hi++;  // may carry into the exponent (-> inf)
    return (uint16_t)hi;
}
static double bf16_value(uint16_t h) { return (double)from_bits((uint32_t)h << 16); }

// ================================================================================================
// Inference kernels (langtune_kernels.h)

static void t_dot(void) {
    kbegin("lt_dot_f32");
    const int64_t ns[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 1000, 4099};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *a = FALLOC(n + 1) + 1, *b = FALLOC(n + 1) + 1;  // off 16-byte alignment
        fill(a, n, -1, 1);
        fill(b, n, -2, 2);
        double want = 0, mag = 0;
        for (int64_t i = 0; i < n; i++) { want += (double)a[i] * b[i]; mag += fabs((double)a[i] * b[i]); }
        const float got = lt_dot_f32(a, b, n);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)n);
        close_mag(ctx, &got, &want, &mag, 1, 1e-5);
    }
    kend();
}

// Writes rows [1, rows-1) first (rows outside must keep the sentinel), then the first and last row.
typedef void (*rows_fn)(void *ctx, float *y, int64_t r0, int64_t r1);
static void run_rows_split(const char *ctx, rows_fn fn, void *c, float *y, int64_t rows) {
    fill_const(y, rows, SENTINEL);
    fn(c, y, 1, rows - 1);
    if (y[0] != SENTINEL || y[rows - 1] != SENTINEL) kfail("got %.9g want %.9g at 0 [%s: row outside [1, rows-1) written]",
                                                           y[0] != SENTINEL ? y[0] : y[rows - 1], SENTINEL, ctx);
    fn(c, y, 0, 1);
    fn(c, y, rows - 1, rows);
}

// type 0 f32, 1 q4_0, 2 q4_1, 3 q8_0, 4 q4_K, 5 q5_K, 6 q6_K, 7 q5_0
typedef struct { const void *W; const float *x, *xs; int64_t cols; int type; } mv_ctx;
static void mv_call(void *cv, float *y, int64_t r0, int64_t r1) {
    const mv_ctx *c = (const mv_ctx *)cv;
    switch (c->type) {
    case 0: lt_matvec_f32((const float *)c->W, c->x, y, c->cols, r0, r1); break;
    case 1: lt_matvec_q4_0(c->W, c->x, c->xs, y, c->cols, r0, r1); break;
    case 2: lt_matvec_q4_1(c->W, c->x, c->xs, y, c->cols, r0, r1); break;
    case 4: lt_matvec_q4_k(c->W, c->x, c->xs, y, c->cols, r0, r1); break;
    case 5: lt_matvec_q5_k(c->W, c->x, c->xs, y, c->cols, r0, r1); break;
    case 6: lt_matvec_q6_k(c->W, c->x, y, c->cols, r0, r1); break;
    case 7: lt_matvec_q5_0(c->W, c->x, y, c->cols, r0, r1); break;
    default: lt_matvec_q8_0(c->W, c->x, y, c->cols, r0, r1); break;
    }
}

static void t_matvec_f32(void) {
    kbegin("lt_matvec_f32");
    const int64_t shapes[][2] = {{37, 608}, {5, 77}, {9, 1}, {6, 4096}, {3, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1];
        float *W = FALLOC(rows * cols), *x = FALLOC(cols), *y = FALLOC(rows);
        double *want = DALLOC(rows), *mag = DALLOC(rows);
        fill(W, rows * cols, -1, 1);
        fill(x, cols, -1, 1);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++) {
                want[r] += (double)W[r * cols + j] * x[j];
                mag[r] += fabs((double)W[r * cols + j] * x[j]);
            }
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%lldx%lld", (long long)rows, (long long)cols);
        mv_ctx c = {W, x, NULL, cols, 0};
        run_rows_split(ctx, mv_call, &c, y, rows);
        // Float32 sums that cancel: the bound follows the sum of the terms' magnitudes, not the result
        // (a 5-row case whose largest result was small once failed a bound relative to max|want|).
        close_mag(ctx, y, want, mag, rows, 1e-5);
    }
    kend();
}

/// Random GGUF blocks (finite f16 scales, random quants) and their float64 dequantized rows: type 1
/// Q4_0, 2 Q4_1, 3 Q8_0, 4 Q5_0.
static int block_bytes(int type) { return type == 1 ? 18 : type == 2 ? 20 : type == 3 ? 34 : 22; }
/// Quant j (0..31) of a Q5_0 block, -16..15, from ggml's layout.
static int q5_0_quant(const uint8_t *blk, int j) {
    const uint32_t qh = (uint32_t)blk[2] | (uint32_t)blk[3] << 8 | (uint32_t)blk[4] << 16 | (uint32_t)blk[5] << 24;
    const uint8_t byte = blk[6 + (j & 15)];
    return ((j < 16 ? byte & 15 : byte >> 4) | (int)((qh >> j) & 1) << 4) - 16;
}
static uint8_t *random_blocks(int type, int64_t rows, int64_t cols, double *deq, int int8_range) {
    const int bs = block_bytes(type);
    const int64_t nb = cols / 32;
    uint8_t *w = (uint8_t *)talloc((size_t)(rows * nb * bs));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = w + (r * nb + b) * bs;
            const uint16_t d = f16_bits((float)(rnd_unit() * 0.1 + 0.001));
            const uint16_t m = f16_bits((float)(rnd_unit() * 0.2 - 0.1));
            put16(blk, d);
            const double dd = lt_f16_to_f32(d), dm = lt_f16_to_f32(m);
            double *o = deq + r * cols + b * 32;
            if (type == 3) {
                for (int j = 0; j < 32; j++) {
                    const int8_t q = int8_range ? (int8_t)(rnd_int(255) - 127) : (int8_t)(uint8_t)rnd_u64();
                    blk[2 + j] = (uint8_t)q;
                    o[j] = dd * q;
                }
            } else if (type == 4) {
                for (int j = 2; j < 22; j++) blk[j] = (uint8_t)rnd_u64();
                for (int j = 0; j < 32; j++) o[j] = dd * q5_0_quant(blk, j);
            } else {
                uint8_t *qs = blk + 2;
                if (type == 2) { put16(blk + 2, m); qs = blk + 4; }
                for (int j = 0; j < 16; j++) {
                    qs[j] = (uint8_t)rnd_u64();
                    const int lo = qs[j] & 15, hi = qs[j] >> 4;
                    o[j] = type == 2 ? dd * lo + dm : dd * (lo - 8);
                    o[j + 16] = type == 2 ? dd * hi + dm : dd * (hi - 8);
                }
            }
        }
    return w;
}

static const char *const qnames[] = {"", "lt_matvec_q4_0", "lt_matvec_q4_1", "lt_matvec_q8_0"};

static void t_matvec_q(int type) {
    kbegin(qnames[type]);
    const int64_t shapes[][2] = {{37, 608}, {6, 32}, {13, 224}, {8, 576}, {5, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], nb = cols / 32;
        double *deq = DALLOC(rows * cols), *want = DALLOC(rows), *mag = DALLOC(rows);
        const uint8_t *W = random_blocks(type, rows, cols, deq, 0);
        float *x = FALLOC(cols), *xs = FALLOC(nb), *y = FALLOC(rows);
        fill(x, cols, -1, 1);
        lt_block_sums(x, xs, cols);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++) {
                want[r] += deq[r * cols + j] * x[j];
                // Q4_1 adds its minimum separately (m * block sum), so |m| counts on its own.
                double m = 0;
                if (type == 2) {
                    const uint8_t *blk = W + (r * nb + j / 32) * 20;
                    m = fabs((double)lt_f16_to_f32((uint16_t)(blk[2] | blk[3] << 8)));
                }
                mag[r] += (fabs(deq[r * cols + j]) + 2 * m) * fabs(x[j]);
            }
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%lldx%lld", (long long)rows, (long long)cols);
        mv_ctx c = {W, x, xs, cols, type};
        run_rows_split(ctx, mv_call, &c, y, rows);
        // Relative to the sum of the terms' magnitudes: with few rows, max|want| can be far below it
        // (seed 1796299800324430 on qemu cortex-a53 failed the old max|want| bound by 1e-5 relative).
        // At most 608 columns: 32 products per block, then 19 block sums, each rounding by 2^-24
        // relative, stay within about 3e-6 of the magnitudes (53 roundings); 4e-6 as the K-quant tests.
        close_mag(ctx, y, want, mag, rows, 4e-6);
    }
    kend();
}

/// Block decoding as ggml does it (a float multiply, then a float add): bit for bit on every tier.
static void t_dequant(int type) {
    static const char *const names[] = {"", "lt_dequantize_q4 (Q4_0)", "lt_dequantize_q4 (Q4_1)", "lt_dequantize_q8_0"};
    kbegin(names[type]);
    const int64_t rows = 3, cols = 32 * 37, n = rows * cols, nb = n / 32;
    double *deq = DALLOC(n);
    const uint8_t *W = random_blocks(type, rows, cols, deq, 0);
    float *y = FALLOC(n);
    if (type == 3) lt_dequantize_q8_0(W, y, nb);
    else lt_dequantize_q4(W, y, nb, type == 2);
    const int bs = type == 1 ? 18 : type == 2 ? 20 : 34;
    for (int64_t b = 0; b < nb && !k_failed; b++) {
        const uint8_t *blk = W + b * bs;
        const volatile float d = lt_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
        const volatile float m = type == 2 ? lt_f16_to_f32((uint16_t)(blk[2] | blk[3] << 8)) : 0.0f;
        for (int j = 0; j < 32; j++) {
            float want;
            if (type == 3) want = (float)(int8_t)blk[2 + j] * d;
            else {
                const uint8_t q = blk[(type == 2 ? 4 : 2) + (j & 15)];
                const int v = j < 16 ? (q & 15) : (q >> 4);
                volatile float prod = (float)(type == 2 ? v : v - 8) * d;  // rounded before the add, as ggml
                want = type == 2 ? prod + m : prod;
            }
            uint32_t gb, wb;
            memcpy(&gb, &y[b * 32 + j], 4);
            memcpy(&wb, &want, 4);
            if (gb != wb) kfail("got %.9g want %.9g at %lld [bits differ]", y[b * 32 + j], want, (long long)(b * 32 + j));
        }
    }
    kend();
}

// ---------------------------------------------------------------- K-quants and Q5_0
// Test ids: 4 Q4_K, 5 Q5_K, 6 Q6_K, 7 Q5_0.
static const char *const kq_names[] = {"Q4_K", "Q5_K", "Q6_K", "Q5_0"};
static int kq_bytes(int t) { return t == 4 ? 144 : t == 5 ? 176 : t == 6 ? 210 : 22; }
static int kq_elems(int t) { return t == 7 ? 32 : 256; }
static float f16_at(const uint8_t *p) { return lt_f16_to_f32(get16(p)); }

/// Element e of a block straight from ggml's layout, written independently of kquants.h: `bits`
/// is ggml's float32 value (each product rounded before the subtraction), `comp` the sum of the
/// magnitudes of its two terms (the error scale of products that split them).
static void kq_ref_elem(int t, const uint8_t *blk, int e, float *bits, double *comp) {
    if (t == 7) {
        const uint32_t qh = (uint32_t)blk[2] | (uint32_t)blk[3] << 8 | (uint32_t)blk[4] << 16 | (uint32_t)blk[5] << 24;
        const uint8_t byte = blk[6 + (e & 15)];
        const int q = ((e < 16 ? byte & 15 : byte >> 4) | (int)((qh >> e) & 1) << 4) - 16;
        const volatile float p = (float)q * f16_at(blk);
        *bits = p;
        *comp = fabs((double)p);
    } else if (t == 6) {
        const int h = e / 128, k = (e % 128) / 32, l = e % 32;
        const uint8_t ql = blk[64 * h + l + (k & 1) * 32];
        const int q = ((k < 2 ? ql & 15 : ql >> 4) | ((blk[128 + 32 * h + l] >> (2 * k)) & 3) << 4) - 32;
        const volatile float s = f16_at(blk + 208) * (float)(int8_t)blk[192 + e / 16];
        const volatile float p = s * (float)q;
        *bits = p;
        *comp = fabs((double)p);
    } else {
        const int sub = e / 32, l = e % 32;
        const uint8_t *s = blk + 4, byte = blk[(t == 5 ? 48 : 16) + 32 * (e / 64) + l];
        int q = sub & 1 ? byte >> 4 : byte & 15;
        if (t == 5) q += 16 * ((blk[16 + l] >> sub) & 1);
        const int sc = sub < 4 ? s[sub] & 63 : (s[sub + 4] & 15) | (s[sub - 4] >> 6) << 4;
        const int m = sub < 4 ? s[sub + 4] & 63 : (s[sub + 4] >> 4) | (s[sub] >> 6) << 4;
        const volatile float ds = f16_at(blk) * (float)sc, dm = f16_at(blk + 2) * (float)m;
        const volatile float p = ds * (float)q;
        *bits = p - dm;
        *comp = fabs((double)p) + fabs((double)dm);
    }
}

/// Random blocks: random bytes, then finite f16 scales (and minimum scales) in place.
static uint8_t *kq_random(int t, int64_t blocks) {
    const int bs = kq_bytes(t);
    uint8_t *w = (uint8_t *)talloc((size_t)(blocks * bs));
    for (int64_t i = 0; i < blocks * bs; i++) w[i] = (uint8_t)rnd_u64();
    for (int64_t b = 0; b < blocks; b++) {
        uint8_t *blk = w + b * bs;
        const uint16_t d = f16_bits((float)(rnd_unit() * 0.05 + 0.0005)), dmin = f16_bits((float)(rnd_unit() * 0.05));
        if (t == 6) put16(blk + 208, d);
        else put16(blk, d);
        if (t == 4 || t == 5) put16(blk + 2, dmin);
    }
    return w;
}

/// Decoding bit for bit against the reference, on every tier; Q5_0 in runs that are not multiples of
/// the 8 blocks it unpacks at a time.
static void t_kq_dequant(int t) {
    static const char *const names[] = {"lt_dequantize_q4_k", "lt_dequantize_q5_k", "lt_dequantize_q6_k", "lt_dequantize_q5_0"};
    kbegin(names[t - 4]);
    const int64_t counts[] = {1, 5, 37};
    for (size_t c = 0; c < 3 && !k_failed; c++) {
        const int64_t blocks = counts[c], n = blocks * kq_elems(t);
        const uint8_t *W = kq_random(t, blocks);
        float *y = FALLOC(n + 1);
        fill_nan(y, n);
        y[n] = SENTINEL;
        if (t == 4) lt_dequantize_q4_k(W, y, blocks);
        else if (t == 5) lt_dequantize_q5_k(W, y, blocks);
        else if (t == 6) lt_dequantize_q6_k(W, y, blocks);
        else lt_dequantize_q5_0(W, y, blocks);
        for (int64_t i = 0; i < n; i++) {
            float want;
            double comp;
            kq_ref_elem(t, W + (i / kq_elems(t)) * kq_bytes(t), (int)(i % kq_elems(t)), &want, &comp);
            if (bits_of(y[i]) != bits_of(want)) {
                kfail("got %.9g want %.9g at %lld [%s, %lld blocks: bits differ]", y[i], want, (long long)i, kq_names[t - 4],
                      (long long)blocks);
                break;
            }
        }
        if (y[n] != SENTINEL) kfail("got %.9g want %.9g at %lld [written past the last block]", y[n], SENTINEL, (long long)n);
    }
    kend();
}

static void t_kq_matvec(int t) {
    static const char *const names[] = {"lt_matvec_q4_k", "lt_matvec_q5_k", "lt_matvec_q6_k", "lt_matvec_q5_0"};
    kbegin(names[t - 4]);
    const int64_t kshapes[][2] = {{7, 256}, {13, 1024}, {5, 2048}, {37, 512}};
    const int64_t qshapes[][2] = {{9, 640}, {6, 32}, {13, 288}, {5, 256}, {4, 2048}};
    const int ns = t == 7 ? 5 : 4;
    for (int s = 0; s < ns; s++) {
        const int64_t rows = t == 7 ? qshapes[s][0] : kshapes[s][0], cols = t == 7 ? qshapes[s][1] : kshapes[s][1];
        const int64_t per = kq_elems(t), nb = cols / per;
        const uint8_t *W = kq_random(t, rows * nb);
        float *x = FALLOC(cols), *xs = FALLOC(cols / 32), *y = FALLOC(rows);
        double *want = DALLOC(rows), *mag = DALLOC(rows);
        fill(x, cols, -1, 1);
        lt_block_sums(x, xs, cols);
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < cols; j++) {
                float w;
                double comp;
                kq_ref_elem(t, W + (r * nb + j / per) * kq_bytes(t), (int)(j % per), &w, &comp);
                want[r] += (double)w * x[j];
                mag[r] += comp * fabs(x[j]);
            }
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%s %lldx%lld", kq_names[t - 4], (long long)rows, (long long)cols);
        mv_ctx c = {W, x, xs, cols, t};
        run_rows_split(ctx, mv_call, &c, y, rows);
        // Float32 sums of `cols` products: a few ulps of the sum of the magnitudes of the terms.
        close_mag(ctx, y, want, mag, rows, 4e-6);
    }
    kend();
}

static void t_block_sums(void) {
    kbegin("lt_block_sums");
    const int64_t n = 32 * 19;
    float *x = FALLOC(n), *s = FALLOC(n / 32);
    double *want = DALLOC(n / 32), *mag = DALLOC(n / 32);
    fill(x, n, -3, 3);
    for (int64_t b = 0; b < n / 32; b++)
        for (int j = 0; j < 32; j++) { want[b] += x[b * 32 + j]; mag[b] += fabs(x[b * 32 + j]); }
    lt_block_sums(x, s, n);
    close_mag("n=608", s, want, mag, n / 32, 1e-5);
    kend();
}

/// lt_quantize_q8 on its own, then the int8 products against float64 of the quantized input.
static void t_int8(void) {
    const int64_t cases[][2] = {{224, 13}, {576, 8}, {32, 5}, {96, 7}};
    struct q { int8_t *q4; uint8_t *q8; float *d, *xs, *x; } Q[4];
    kbegin("lt_quantize_q8");
    // Kept across the three product checks below (allocated outside the kernel arena).
    for (int c = 0; c < 4; c++) {
        const int64_t k = cases[c][0], nb = k / 32, bytes = lt_quantize_q8_bytes(k);
        Q[c].x = malloc((size_t)k * sizeof(float));
        Q[c].q4 = malloc((size_t)bytes);
        Q[c].q8 = malloc((size_t)bytes);
        Q[c].d = malloc((size_t)nb * sizeof(float));
        Q[c].xs = malloc((size_t)nb * sizeof(float));
        fill(Q[c].x, k, -2, 2);
        if (c == 3) for (int j = 32; j < 64; j++) Q[c].x[j] = 0;  // an all-zero block: d = 0
        lt_quantize_q8(Q[c].x, k, Q[c].q4, Q[c].q8, Q[c].d, Q[c].xs);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "k=%lld", (long long)k);
        for (int64_t b = 0; b < nb; b++) {
            double amax = 0, sum = 0, mag = 0;
            for (int j = 0; j < 32; j++) {
                const double v = Q[c].x[b * 32 + j];
                amax = fabs(v) > amax ? fabs(v) : amax;
                sum += v;
                mag += fabs(v);
            }
            const double dwant = amax / 127.0;
            close_rel(ctx, &Q[c].d[b], &dwant, 1, 1e-6, 1e-30);
            close_mag(ctx, &Q[c].xs[b], &sum, &mag, 1, 1e-5);
            for (int j = 0; j < 32; j++) {
                const int v = (int)Q[c].q8[b * 32 + j] - 128;
                const int v4 = Q[c].q4[(b / 2) * 64 + (b % 2) * 16 + (j < 16 ? j : j + 16)];
                const double err = fabs(Q[c].x[b * 32 + j] - (double)v * Q[c].d[b]);
                if (!(err <= Q[c].d[b] / 2 * 1.0001 + 1e-7) || v < -127 || v > 127) {
                    float g = (float)v * Q[c].d[b];
                    double w = Q[c].x[b * 32 + j];
                    close_max(ctx, &g, &w, 1, 0, Q[c].d[b] / 2);
                }
                if (v4 != v) kfail("got %d want %d at %lld [%s: Q4 layout of block %lld]", v4, v, (long long)(b * 32 + j), ctx,
                                   (long long)b);
            }
        }
    }
    kend();

    for (int type = 1; type <= 4; type++) {
        const char *name = type == 1 ? "lt_matvec_q4_int8(q4_0)" : type == 2 ? "lt_matvec_q4_int8(q4_1)"
                         : type == 3 ? "lt_matvec_q8_0_int8" : "lt_matvec_q5_0_int8";
        kbegin(name);
        int skipped = 0;
        for (int c = 0; c < 4 && !skipped; c++) {
            const int64_t k = cases[c][0], rows = cases[c][1], nb = k / 32;
            double *deq = DALLOC(rows * k), *want = DALLOC(rows);
            const uint8_t *W = random_blocks(type, rows, k, deq, 1);
            const int bs = block_bytes(type);
            // want = sum_b d_w d_x sum_j q_w q_x (+ min terms on the exact block sums, as documented).
            for (int64_t r = 0; r < rows; r++)
                for (int64_t b = 0; b < nb; b++) {
                    const uint8_t *blk = W + (r * nb + b) * bs;
                    const double dw = lt_f16_to_f32(get16(blk)), dx = Q[c].d[b];
                    double dot = 0;
                    for (int j = 0; j < 32; j++) {
                        const int qx = (int)Q[c].q8[b * 32 + j] - 128;
                        int qw;
                        if (type == 3) qw = (int8_t)blk[2 + j];
                        else if (type == 4) qw = q5_0_quant(blk, j);
                        else {
                            const uint8_t byte = blk[(type == 2 ? 4 : 2) + (j & 15)];
                            qw = j < 16 ? byte & 15 : byte >> 4;
                        }
                        dot += (double)qw * qx;
                    }
                    want[r] += dw * dx * dot;
                    if (type == 2) want[r] += (double)lt_f16_to_f32(get16(blk + 2)) * Q[c].xs[b];
                    if (type == 1) want[r] -= 8 * dw * Q[c].xs[b];
                }
            float *y = FALLOC(rows);
            fill_const(y, rows, SENTINEL);
            const int rc = type == 3 ? lt_matvec_q8_0_int8(W, Q[c].q8, Q[c].d, y, k, 0, rows)
                         : type == 4 ? lt_matvec_q5_0_int8(W, Q[c].q8, Q[c].d, y, k, 0, rows)
                                     : lt_matvec_q4_int8(W, type == 2, Q[c].q4, Q[c].d, Q[c].xs, y, k, 0, rows);
            char ctx[64];
            snprintf(ctx, sizeof ctx, "k=%lld rows=%lld", (long long)k, (long long)rows);
            if (rc == -1) {
                for (int64_t r = 0; r < rows; r++)
                    if (y[r] != SENTINEL) { kfail("got %.9g want %.9g at %lld [%s: returned -1 but wrote y]", y[r], SENTINEL, (long long)r, ctx); break; }
                skipped = !k_failed;
                continue;
            }
            expect_int(ctx, rc, 0);
            close_max(ctx, y, want, rows, 1e-5, 1e-6);
        }
        if (skipped && !k_failed) {
            kskip(name, "returns -1 (no int8 path on this tier)");
            for (int i = 0; i < k_nallocs; i++) free(k_allocs[i]);
            k_nallocs = 0;
        } else kend();
    }
    for (int c = 0; c < 4; c++) { free(Q[c].x); free(Q[c].q4); free(Q[c].q8); free(Q[c].d); free(Q[c].xs); }

    // Many inputs at once (serving's batched decoding): each input's outputs are bit for bit those of
    // the single-input call, for every count of inputs (groups of 8 and their remainders) and sub-range.
    for (int type = 1; type <= 4; type++) {
        const char *name = type == 1 ? "lt_matvec_q4_int8_inputs(q4_0)" : type == 2 ? "lt_matvec_q4_int8_inputs(q4_1)"
                         : type == 3 ? "lt_matvec_q8_0_int8_inputs" : "lt_matvec_q5_0_int8_inputs";
        kbegin(name);
        const int64_t k = 224, rows = 29, nb = k / 32, bytes = lt_quantize_q8_bytes(k), J = 11;
        double *deq = DALLOC(rows * k);
        const uint8_t *W = random_blocks(type, rows, k, deq, 1);
        float *x = FALLOC(J * k), *d = FALLOC(J * nb), *xs = FALLOC(J * nb);
        int8_t *q4 = talloc((size_t)(J * bytes));
        uint8_t *q8 = talloc((size_t)(J * bytes));
        fill(x, J * k, -2, 2);
        for (int64_t j = 0; j < J; j++) lt_quantize_q8(x + j * k, k, q4 + j * bytes, q8 + j * bytes, d + j * nb, xs + j * nb);
        float *one = FALLOC(rows), *many = FALLOC(J * rows);
        int skipped = 0;
        const int64_t counts[] = {1, 2, 3, 8, 9, 11}, ranges[][2] = {{0, 29}, {3, 22}, {5, 6}};
        for (int ci = 0; ci < 6 && !skipped && !k_failed; ci++)
            for (int ri = 0; ri < 3 && !k_failed; ri++) {
                const int64_t n = counts[ci], r0 = ranges[ri][0], r1 = ranges[ri][1];
                fill_const(many, J * rows, SENTINEL);
                const int rc = type == 3 ? lt_matvec_q8_0_int8_inputs(W, q8, bytes, d, nb, many, rows, n, k, r0, r1)
                             : type == 4 ? lt_matvec_q5_0_int8_inputs(W, q8, bytes, d, nb, many, rows, n, k, r0, r1)
                                         : lt_matvec_q4_int8_inputs(W, type == 2, q4, bytes, d, xs, nb, many, rows, n, k, r0, r1);
                if (rc == -1) { skipped = 1; break; }
                for (int64_t j = 0; j < J; j++) {
                    fill_const(one, rows, SENTINEL);
                    if (j < n) {
                        if (type == 3) lt_matvec_q8_0_int8(W, q8 + j * bytes, d + j * nb, one, k, r0, r1);
                        else if (type == 4) lt_matvec_q5_0_int8(W, q8 + j * bytes, d + j * nb, one, k, r0, r1);
                        else lt_matvec_q4_int8(W, type == 2, q4 + j * bytes, d + j * nb, xs + j * nb, one, k, r0, r1);
                    }
                    for (int64_t r = 0; r < rows; r++)
                        if (memcmp(&one[r], &many[j * rows + r], sizeof(float)) != 0) {
                            kfail("got %.9g want %.9g at %lld [inputs=%lld input %lld rows %lld..%lld: differs from the single-input call]",
                                  many[j * rows + r], one[r], (long long)r, (long long)n, (long long)j, (long long)r0, (long long)r1);
                            j = J;
                            break;
                        }
                }
            }
        if (skipped && !k_failed) {
            kskip(name, "returns -1 (no int8 path on this tier)");
            for (int i = 0; i < k_nallocs; i++) free(k_allocs[i]);
            k_nallocs = 0;
        } else kend();
    }
}

/// Causal GQA over a cache; float32 cache, or bf16 (k, v given as bfloat16 bits). With a sliding
/// window (Gemma 3's local layers) the caller attends one query row at a time from the window's
/// first cached row, as langtune_kernels.h documents: that recipe is what is checked.
static void t_attention_cache(int bf16) {
    kbegin(bf16 ? "lt_attention_causal_bf16" : "lt_attention_causal");
    // T, p0, nHeads, nKV, hd, kv row padding, window (0: none; keys with t - j < window)
    const int64_t cfg[][7] = {{1, 0, 4, 2, 64, 0, 0},   {1, 37, 6, 2, 64, 8, 0}, {5, 3, 6, 2, 64, 0, 0},
                              {17, 100, 8, 8, 64, 4, 0}, {3, 10, 4, 1, 128, 0, 0}, {2, 5, 4, 2, 36, 3, 0},
                              {40, 0, 9, 3, 64, 0, 0},  {4, 70, 2, 1, 80, 0, 0}, {1, 37, 6, 2, 64, 8, 16},
                              {9, 30, 4, 2, 64, 0, 12}, {6, 2, 4, 1, 40, 0, 5},  {3, 10, 2, 1, 64, 0, 1000}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const int64_t T = cfg[c][0], p0 = cfg[c][1], nH = cfg[c][2], nKV = cfg[c][3], hd = cfg[c][4];
        const int64_t n = p0 + T, stride = nKV * hd + cfg[c][5], qs = nH * hd, group = nH / nKV, window = cfg[c][6];
        const float scale = 1.0f / sqrtf((float)hd);
        float *q = FALLOC(T * qs), *kf = FALLOC(n * stride), *vf = FALLOC(n * stride);
        uint16_t *kb = (uint16_t *)talloc((size_t)(n * stride) * 2), *vb = (uint16_t *)talloc((size_t)(n * stride) * 2);
        double *kd = DALLOC(n * stride), *vd = DALLOC(n * stride);
        fill(q, T * qs, -2, 2);
        fill(kf, n * stride, -1, 1);
        fill(vf, n * stride, -1, 1);
        for (int64_t i = 0; i < n * stride; i++) {
            kb[i] = ref_bf16(bits_of(kf[i]));
            vb[i] = ref_bf16(bits_of(vf[i]));
            kd[i] = bf16 ? bf16_value(kb[i]) : kf[i];
            vd[i] = bf16 ? bf16_value(vb[i]) : vf[i];
        }
        double *want = DALLOC(T * qs), *s = DALLOC(n);
        for (int64_t h = 0; h < nH; h++) {
            const int64_t kh = h / group;
            for (int64_t t = 0; t < T; t++) {
                const int64_t keys = p0 + t + 1, first = window > 0 && keys > window ? keys - window : 0;
                double mx = -INFINITY, z = 0;
                for (int64_t j = first; j < keys; j++) {
                    double a = 0;
                    for (int64_t d = 0; d < hd; d++) a += (double)q[t * qs + h * hd + d] * kd[j * stride + kh * hd + d];
                    s[j] = a * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int64_t j = first; j < keys; j++) { s[j] = exp(s[j] - mx); z += s[j]; }
                for (int64_t j = first; j < keys; j++)
                    for (int64_t d = 0; d < hd; d++) want[t * qs + h * hd + d] += s[j] / z * vd[j * stride + kh * hd + d];
            }
        }
        float *out = FALLOC(T * qs), *scratch = FALLOC(n);
        fill_const(out, T * qs, SENTINEL);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "T=%lld p0=%lld heads=%lld/%lld hd=%lld stride=%lld window=%lld", (long long)T,
                 (long long)p0, (long long)nH, (long long)nKV, (long long)hd, (long long)stride, (long long)window);
        // Heads [1, nH) first: head 0 must stay untouched; then head 0.
        for (int part = 0; part < 2; part++) {
            const int64_t h0 = part == 0 ? 1 : 0, h1 = part == 0 ? nH : 1;
            fill_nan(scratch, n);
            if (window > 0) {
                // Row t sees cached rows [first, p0 + t]: the cache from `first` on, with p0 + t - first before it.
                for (int64_t t = 0; t < T; t++) {
                    const int64_t first = p0 + t + 1 > window ? p0 + t + 1 - window : 0, o = first * stride;
                    if (bf16)
                        lt_attention_causal_bf16(q + t * qs, kb + o, vb + o, out + t * qs, 1, p0 + t - first, nH, nKV, hd,
                                                 stride, scale, h0, h1, scratch);
                    else
                        lt_attention_causal(q + t * qs, kf + o, vf + o, out + t * qs, 1, p0 + t - first, nH, nKV, hd, stride,
                                            scale, h0, h1, scratch);
                }
            } else if (bf16) lt_attention_causal_bf16(q, kb, vb, out, T, p0, nH, nKV, hd, stride, scale, h0, h1, scratch);
            else lt_attention_causal(q, kf, vf, out, T, p0, nH, nKV, hd, stride, scale, h0, h1, scratch);
            if (part == 0)
                for (int64_t t = 0; t < T; t++)
                    for (int64_t d = 0; d < hd; d++)
                        if (out[t * qs + d] != SENTINEL) {
                            kfail("got %.9g want %.9g at %lld [%s: head 0 written by a call for heads 1..]", out[t * qs + d],
                                  SENTINEL, (long long)(t * qs + d), ctx);
                            t = T;
                            break;
                        }
        }
        close_max(ctx, out, want, T * qs, 1e-5, 0);
    }
    kend();
}

static void t_rmsnorm(void) {
    kbegin("lt_rmsnorm");
    const int64_t ns[] = {577, 64, 4096, 3, 17};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *x = FALLOC(n), *w = FALLOC(n), *y = FALLOC(n);
        double *want = DALLOC(n), ms = 0;
        fill(x, n, -3, 3);
        fill(w, n, -1, 1);
        for (int64_t i = 0; i < n; i++) ms += (double)x[i] * x[i];
        ms /= (double)n;
        for (int64_t i = 0; i < n; i++) want[i] = (double)w[i] * x[i] / sqrt(ms + 1e-5);
        fill_nan(y, n);
        lt_rmsnorm(x, w, y, n, 1e-5f);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)n);
        close_max(ctx, y, want, n, 1e-5, 0);
    }
    kend();
}

static double silu(double g) { return g / (1 + exp(-g)); }
static double sigm(double g) { return 1 / (1 + exp(-g)); }

/// Gate inputs in [-lim, lim] with a few large magnitudes (exp overflow / underflow paths).
static void fill_gate(float *g, int64_t n, float lim) {
    fill(g, n, -lim, lim);
    const float extremes[] = {-100, 100, -88.5f, 88.5f, -30, 30, 0, -0.0f};
    if (n >= 64)
        for (int64_t i = 0; i < 8; i++) g[(i * 37) % n] = extremes[i];
}

static void t_swiglu(void) {
    kbegin("lt_swiglu");
    const int64_t ns[] = {577, 5, 16, 17, 64};
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *g = FALLOC(n), *u = FALLOC(n), *o = FALLOC(n);
        double *want = DALLOC(n);
        fill_gate(g, n, 8);
        fill(u, n, -1, 1);
        for (int64_t i = 0; i < n; i++) want[i] = silu(g[i]) * u[i];
        fill_nan(o, n);
        lt_swiglu(g, u, o, n);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)n);
        close_rel(ctx, o, want, n, 1e-5, 0);  // per element: the large gates would dominate max|want|
    }
    kend();
}

static void t_bf16(void) {
    // Inputs: special values, every class of bit pattern at random (NaN, inf, denormals, normals),
    // ties at every position of the dropped half, and plain floats.
    const int64_t N = 4133;
    const uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0xFFC00000u,
                                 0x7F800001u, 0xFF800001u, 0x7FBFFFFFu, 0x7F80FFFFu, 0x7F810000u, 0x7F7FFFFFu,
                                 0xFF7FFFFFu, 0x7F7F8000u, 0x7F7F7FFFu, 0x00000001u, 0x80000001u, 0x00008000u,
                                 0x00018000u, 0x00007FFFu, 0x0000FFFFu, 0x007FFFFFu, 0x00800000u, 0x3F808000u,
                                 0x3F818000u, 0x3F807FFFu, 0x3F808001u, 0xBF808000u, 0xBF818000u, 0x3F800000u};
    const int nsp = (int)(sizeof specials / sizeof specials[0]);
    kbegin("lt_f32_to_bf16");
    uint32_t *u = (uint32_t *)talloc((size_t)(N + 1) * 4);
    for (int64_t i = 0; i < N; i++) {
        if (i < nsp) u[i] = specials[i];
        else if (i % 4 == 0) u[i] = (uint32_t)rnd_u64();
        else if (i % 4 == 1) u[i] = ((uint32_t)rnd_u64() & 0xFFFF0000u) | 0x8000u;  // ties
        else if (i % 4 == 2) u[i] = (uint32_t)rnd_u64() & 0x80FFFFFFu;               // denormals, tiny normals
        else u[i] = bits_of(rnd_f(-1000, 1000));
    }
    float *x = FALLOC(N + 1);
    uint16_t *want = (uint16_t *)talloc((size_t)N * 2), *y = (uint16_t *)talloc((size_t)(N + 2) * 2);
    for (int64_t i = 0; i < N; i++) { x[i + 1] = from_bits(u[i]); want[i] = ref_bf16(u[i]); }
    const int64_t lens[] = {N, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100};
    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
        const int64_t n = lens[c];
        for (int64_t i = 0; i < N + 2; i++) y[i] = 0xBEEF;
        lt_f32_to_bf16(x + 1, y + 1, n);  // both off their natural vector alignment
        char ctx[48];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)n);
        same_u16(ctx, y + 1, want, n);
        if (y[0] != 0xBEEF || y[n + 1] != 0xBEEF) kfail("got 0x%04x want 0xbeef at %lld [%s: wrote outside y]",
                                                       y[0] != 0xBEEF ? y[0] : y[n + 1], (long long)(y[0] != 0xBEEF ? -1 : n), ctx);
    }
    kend();

    kbegin("lt_bf16_to_f32");
    uint8_t *raw = (uint8_t *)talloc((size_t)N * 2 + 3);
    uint16_t *h = (uint16_t *)talloc((size_t)N * 2);
    float *got = FALLOC(N + 2), *exp_ = FALLOC(N);
    for (int64_t i = 0; i < N; i++) {
        h[i] = i < nsp ? (uint16_t)(specials[i] >> 16) : (uint16_t)rnd_u64();
        put16(raw + 1 + 2 * i, h[i]);  // odd address: the API reads unaligned bf16
        exp_[i] = from_bits((uint32_t)h[i] << 16);
    }
    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
        const int64_t n = lens[c];
        fill_const(got, N + 2, SENTINEL);
        lt_bf16_to_f32(raw + 1, got + 1, n);
        char ctx[48];
        snprintf(ctx, sizeof ctx, "n=%lld, unaligned input", (long long)n);
        same_f32(ctx, got + 1, exp_, n);
        if (got[0] != SENTINEL || got[n + 1] != SENTINEL) kfail("got %.9g want %.9g at %lld [%s: wrote outside y]",
                                                               got[0] != SENTINEL ? got[0] : got[n + 1], SENTINEL, (long long)n, ctx);
    }
    kend();
}

/// Half precision: every half widens to its exact value; every finite half survives the round trip;
/// random floats go to the nearest half (ties to even).
static double f16_value(uint16_t h) {
    const int e = (h >> 10) & 31, m = h & 1023;
    const double mag = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -mag : mag;
}

static void t_f16(void) {
    kbegin("lt_f16_to_f32/lt_f32_to_f16");
    for (uint32_t h = 0; h <= 0xFFFF; h++) {
        const float f = lt_f16_to_f32((uint16_t)h);
        const double w = f16_value((uint16_t)h);
        if (isnan(w)) {
            if (!isnan(f)) kfail("got %.9g want nan at %u [lt_f16_to_f32]", f, h);
            continue;
        }
        if ((double)f != w || !signbit(f) != !signbit(w)) kfail("got %.9g want %.9g at %u [lt_f16_to_f32]", f, w, h);
        if (lt_f32_to_f16(f) != h) kfail("got 0x%04x want 0x%04x at %u [lt_f32_to_f16 round trip]", lt_f32_to_f16(f), h, h);
    }
    for (int i = 0; i < 20000; i++) {
        const float x = i % 2 ? rnd_f(-70000, 70000) : (float)ldexp(rnd_f(-1, 1), -(int)rnd_int(30));
        const uint16_t h = lt_f32_to_f16(x);
        const double v = f16_value(h), err = fabs(v - x);
        if (isinf(v)) {  // only past the largest half + half an ulp
            if (!(fabs(x) >= 65520.0)) kfail("got 0x%04x want a finite half at %d [lt_f32_to_f16(%.9g)]", h, i, x);
            continue;
        }
        for (int dlt = -1; dlt <= 1; dlt += 2) {  // no neighbour closer; on a tie, the even one
            const uint16_t nb = (uint16_t)(h + dlt);
            if ((nb & 0x7FFF) >= 0x7C00 || ((nb ^ h) & 0x8000)) continue;
            const double en = fabs(f16_value(nb) - x);
            if (en < err || (en == err && (h & 1))) {
                kfail("got 0x%04x want 0x%04x at %d [lt_f32_to_f16(%.9g): not the nearest half, ties to even]", h, nb, i, x);
                break;
            }
        }
    }
    const float ties[] = {1.0f + 2.0f / 4096, 1.0f + 6.0f / 4096, 1.0f + 3.0f / 4096, 65520.0f};
    const uint16_t tw[] = {0x3c00, 0x3c02, 0x3c01, 0x7c00};
    for (int i = 0; i < 4; i++)
        if (lt_f32_to_f16(ties[i]) != tw[i]) kfail("got 0x%04x want 0x%04x at %d [lt_f32_to_f16(%.9g)]", lt_f32_to_f16(ties[i]), tw[i], i, ties[i]);
    kend();
}

static void t_sgemm(void) {
    kbegin("lt_sgemm_builtin");
    const int64_t shapes[][3] = {{13, 21, 37}, {1, 1, 1}, {5, 7, 3}, {17, 33, 65}, {64, 48, 576}, {4, 16, 8}};
    const float betas[] = {0.0f, 1.0f, 0.5f};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 3; bi++) {
                    const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
                    const float alpha = 0.75f, beta = betas[bi];
                    float *a = FALLOC((ta ? k : m) * lda), *b = FALLOC((tb ? n : k) * ldb), *c = FALLOC(m * ldc);
                    fill(a, (ta ? k : m) * lda, -1, 1);
                    fill(b, (tb ? n : k) * ldb, -1, 1);
                    fill(c, m * ldc, -1, 1);
                    // beta 0: C is not read (BLAS); NaN there must not leak. Padding columns stay.
                    if (beta == 0.0f)
                        for (int64_t i = 0; i < m; i++) fill_nan(c + i * ldc, n);
                    double *want = DALLOC(m * ldc);
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < ldc; j++) {
                            if (j >= n) { want[i * ldc + j] = c[i * ldc + j]; continue; }
                            double acc = 0;
                            for (int64_t p = 0; p < k; p++)
                                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                            want[i * ldc + j] = alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * c[i * ldc + j]);
                        }
                    const int rc = lt_sgemm_builtin(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                    char ctx[80];
                    snprintf(ctx, sizeof ctx, "%c%c %lldx%lldx%lld beta=%g", ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m,
                             (long long)n, (long long)k, beta);
                    expect_int(ctx, rc, 0);
                    close_max(ctx, c, want, m * ldc, 1e-5, 0);
                }
    kend();

    kbegin("lt_sgemm_nt_rows");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int bi = 0; bi < 2; bi++) {
            const int64_t m = shapes[s][0] + 2, n = shapes[s][1], k = shapes[s][2];
            float *a = FALLOC(m * k), *b = FALLOC(n * k), *c = FALLOC(m * n);
            fill(a, m * k, -1, 1);
            fill(b, n * k, -1, 1);
            fill(c, m * n, -1, 1);
            const float beta = bi ? 1.0f : 0.0f;
            double *want = DALLOC(m * n);
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double acc = 0;
                    for (int64_t p = 0; p < k; p++) acc += (double)a[i * k + p] * b[j * k + p];
                    want[i * n + j] = (i == 0 || i == m - 1) ? c[i * n + j] : acc + beta * c[i * n + j];
                }
            lt_sgemm_nt_rows(1, m - 1, n, k, a, b, c, beta);  // rows 0 and m-1 stay as they were
            char ctx[80];
            snprintf(ctx, sizeof ctx, "rows 1..%lld of %lldx%lldx%lld beta=%g", (long long)(m - 1), (long long)m,
                     (long long)n, (long long)k, beta);
            close_max(ctx, c, want, m * n, 1e-5, 0);
        }
    kend();
}

// ================================================================================================
// Training kernels (langtune_train.h)

static void t_ltt_rmsnorm(void) {
    const int64_t shapes[][2] = {{5, 131}, {3, 2048}, {2, 7}, {4, 64}};
    const float eps = 1e-6f;
    kbegin("ltt_rmsnorm_forward");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], n = shapes[s][1];
        float *x = FALLOC(rows * n), *w = FALLOC(n), *y = FALLOC(rows * n), *rstd = FALLOC(rows), *y2 = FALLOC(rows * n);
        double *yr = DALLOC(rows * n), *rr = DALLOC(rows);
        fill(x, rows * n, -3, 3);
        fill(w, n, -1, 1);
        for (int64_t r = 0; r < rows; r++) {
            double ms = 0;
            for (int64_t i = 0; i < n; i++) ms += (double)x[r * n + i] * x[r * n + i];
            rr[r] = 1 / sqrt(ms / (double)n + eps);
            for (int64_t i = 0; i < n; i++) yr[r * n + i] = (double)w[i] * x[r * n + i] * rr[r];
        }
        fill_nan(y, rows * n);
        fill_nan(rstd, rows);
        ltt_rmsnorm_forward(x, w, y, rstd, rows, n, eps);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%lldx%lld", (long long)rows, (long long)n);
        close_rel(ctx, y, yr, rows * n, 1e-5, 0);
        close_rel(ctx, rstd, rr, rows, 1e-5, 0);
        // rstd_out NULL, and y aliasing x.
        memcpy(y2, x, (size_t)(rows * n) * sizeof(float));
        ltt_rmsnorm_forward(y2, w, y2, NULL, rows, n, eps);
        snprintf(ctx, sizeof ctx, "%lldx%lld, in place, rstd NULL", (long long)rows, (long long)n);
        close_rel(ctx, y2, yr, rows * n, 1e-5, 0);
    }
    kend();

    kbegin("ltt_rmsnorm_backward");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], n = shapes[s][1];
        float *x = FALLOC(rows * n), *w = FALLOC(n), *dy = FALLOC(rows * n), *rstd = FALLOC(rows);
        float *dx = FALLOC(rows * n), *dw = FALLOC(n), *dw0 = FALLOC(n), *dyip = FALLOC(rows * n);
        double *dxr = DALLOC(rows * n), *dwr = DALLOC(n), *dwdelta = DALLOC(n);
        fill(x, rows * n, -3, 3);
        fill(w, n, -1, 1);
        fill(dy, rows * n, -1, 1);
        fill(dw0, n, -1, 1);
        for (int64_t r = 0; r < rows; r++) {
            double ms = 0;
            for (int64_t i = 0; i < n; i++) ms += (double)x[r * n + i] * x[r * n + i];
            rstd[r] = (float)(1 / sqrt(ms / (double)n + eps));
        }
        // Rows [1, rows): row 0 of dx must stay untouched.
        for (int64_t r = 1; r < rows; r++) {
            const double rs = rstd[r];
            double sdot = 0;
            for (int64_t i = 0; i < n; i++) sdot += (double)dy[r * n + i] * w[i] * x[r * n + i];
            for (int64_t j = 0; j < n; j++) {
                dxr[r * n + j] = rs * w[j] * dy[r * n + j] - (double)x[r * n + j] * rs * rs * rs / (double)n * sdot;
                dwdelta[j] += (double)dy[r * n + j] * x[r * n + j] * rs;
            }
        }
        for (int64_t j = 0; j < n; j++) dwr[j] = dw0[j] + dwdelta[j];
        for (int64_t j = 0; j < n; j++) dxr[j] = SENTINEL;
        fill_const(dx, rows * n, SENTINEL);
        memcpy(dw, dw0, (size_t)n * sizeof(float));
        ltt_rmsnorm_backward(dy, x, w, rstd, dx, dw, 1, rows, n);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%lldx%lld rows 1..", (long long)rows, (long long)n);
        close_rel(ctx, dx + n, dxr + n, (rows - 1) * n, 1e-4, 0);
        for (int64_t j = 0; j < n; j++)
            if (dx[j] != SENTINEL) { kfail("got %.9g want %.9g at %lld [%s: row 0 written]", dx[j], SENTINEL, (long long)j, ctx); break; }
        close_rel(ctx, dw, dwr, n, 1e-4, rms(dwdelta, n));
        // dx aliasing dy, dw NULL.
        memcpy(dyip, dy, (size_t)(rows * n) * sizeof(float));
        ltt_rmsnorm_backward(dyip, x, w, rstd, dyip, NULL, 1, rows, n);
        snprintf(ctx, sizeof ctx, "%lldx%lld, dx aliasing dy, dw NULL", (long long)rows, (long long)n);
        close_rel(ctx, dyip + n, dxr + n, (rows - 1) * n, 1e-4, 0);
    }
    kend();
}

/// silu'(g) and the tanh GELU written as g * sigmoid(2z) (the same function, without the tanh form's
/// cancellation for g << 0), with its derivative taken from the tanh form, so the kernels' identity
/// is checked rather than assumed.
static double silu_prime(double g) { return sigm(g) * (1 + g * (1 - sigm(g))); }
static const double GELU_K = 0.79788456080286535588;  // sqrt(2/pi)
static double gelu_tanh(double g) { return g / (1 + exp(-2 * GELU_K * (g + 0.044715 * g * g * g))); }
static double gelu_tanh_prime(double g) {
    const double t = tanh(GELU_K * (g + 0.044715 * g * g * g));
    return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * g * g);
}

typedef void (*gate_fwd_fn)(const float *, const float *, float *, int64_t);
typedef void (*gate_bwd_fn)(const float *, const float *, const float *, float *, float *, int64_t);

/// A gated activation out = act(g) * u and its backward against float64 (act and act'), with
/// aliasing, per-element checks on moderate gates, and central differences of the float64 forward.
static void t_gate(const char *fname, const char *bname, gate_fwd_fn fwd, gate_bwd_fn bwd, double (*act)(double),
                   double (*act_prime)(double), float lim, double rel_fwd, double rel_bwd) {
    const int64_t ns[] = {777, 5, 16, 17, 64};
    kbegin(fname);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *g = FALLOC(n), *u = FALLOC(n), *o = FALLOC(n), *g2 = FALLOC(n);
        double *want = DALLOC(n);
        fill_gate(g, n, lim);
        fill(u, n, -1, 1);
        for (int64_t i = 0; i < n; i++) want[i] = act(g[i]) * u[i];
        fill_nan(o, n);
        fwd(g, u, o, n);
        char ctx[48];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)n);
        close_rel(ctx, o, want, n, rel_fwd, 0);
        // Element by element on moderate gates (the RMS floor above is set by the large ones).
        for (int64_t i = 0; i < n && !k_failed; i++)
            if (fabs(g[i]) <= lim && !(fabs(o[i] - want[i]) <= 20 * rel_fwd * fabs(want[i]) + 1e-37))
                kfail("got %.9g want %.9g at %lld [n=%lld, gate %g, per element]", o[i], want[i], (long long)i,
                      (long long)n, g[i]);
        memcpy(g2, g, (size_t)n * sizeof(float));  // out aliasing g
        fwd(g2, u, g2, n);
        snprintf(ctx, sizeof ctx, "n=%lld, out aliasing g", (long long)n);
        close_rel(ctx, g2, want, n, rel_fwd, 0);
    }
    kend();

    kbegin(bname);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *g = FALLOC(n), *u = FALLOC(n), *d = FALLOC(n), *dg = FALLOC(n), *du = FALLOC(n);
        double *dgr = DALLOC(n), *dur = DALLOC(n);
        fill_gate(g, n, lim);
        fill(u, n, -1, 1);
        fill(d, n, -1, 1);
        for (int64_t i = 0; i < n; i++) {
            dgr[i] = (double)d[i] * u[i] * act_prime(g[i]);
            dur[i] = (double)d[i] * act(g[i]);
        }
        fill_nan(dg, n);
        fill_nan(du, n);
        bwd(d, g, u, dg, du, n);
        char ctx[48];
        snprintf(ctx, sizeof ctx, "n=%lld dg", (long long)n);
        close_rel(ctx, dg, dgr, n, rel_bwd, 0);
        snprintf(ctx, sizeof ctx, "n=%lld du", (long long)n);
        close_rel(ctx, du, dur, n, rel_bwd, 0);
        // Central differences of the float64 forward against the kernel's dg.
        for (int64_t i = 0; i < n && i < 40 && !k_failed; i++) {
            const double x = g[i], h = 1e-6 * fmax(1, fabs(x));
            const double fd = (double)d[i] * u[i] * (act(x + h) - act(x - h)) / (2 * h);
            if (!(fabs(dg[i] - fd) <= 1e-4 * fmax(fabs(fd), rms(dgr, n))))
                kfail("got %.9g want %.9g at %lld [n=%lld dg vs central difference]", dg[i], fd, (long long)i, (long long)n);
        }
        float *dd = FALLOC(n), *du2 = FALLOC(n);  // dg aliasing dout
        memcpy(dd, d, (size_t)n * sizeof(float));
        bwd(dd, g, u, dd, du2, n);
        snprintf(ctx, sizeof ctx, "n=%lld, dg aliasing dout", (long long)n);
        close_rel(ctx, dd, dgr, n, rel_bwd, 0);
    }
    kend();
}

static void t_ltt_swiglu(void) {
    t_gate("ltt_swiglu_forward", "ltt_swiglu_backward", ltt_swiglu_forward, ltt_swiglu_backward, silu, silu_prime, 9,
           1e-5, 1e-4);
}

static void t_ltt_geglu(void) {
    t_gate("ltt_geglu_forward", "ltt_geglu_backward", ltt_geglu_forward, ltt_geglu_backward, gelu_tanh, gelu_tanh_prime,
           6, 1e-6, 1e-5);
    kbegin("lt_geglu");  // the inference entry point is the training kernel
    const int64_t n = 777;
    float *g = FALLOC(n), *u = FALLOC(n), *o = FALLOC(n), *o2 = FALLOC(n);
    fill_gate(g, n, 6);
    fill(u, n, -1, 1);
    fill_nan(o, n);
    lt_geglu(g, u, o, n);
    ltt_geglu_forward(g, u, o2, n);
    same_f32("lt_geglu vs ltt_geglu_forward", o, o2, n);
    kend();
}

static void t_ltt_rope(void) {
    const int64_t cfg[][3] = {{7, 3, 64}, {5, 2, 128}, {4, 3, 36}, {3, 1, 2}};  // T, heads, hd
    const char *names[] = {"ltt_rope_forward", "ltt_rope_backward", "ltt_rope_table", "ltt_rope_forward_table",
                           "ltt_rope_backward_table"};
    for (int which = 0; which < 5; which++) {
        kbegin(names[which]);
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            const int64_t T = cfg[c][0], heads = cfg[c][1], hd = cfg[c][2], half = hd / 2, n = T * heads * hd;
            int64_t *pos = (int64_t *)talloc((size_t)T * 8);
            float *inv = FALLOC(half), *x = FALLOC(n), *y = FALLOC(n), *cs = FALLOC(T * half), *sn = FALLOC(T * half);
            double *want = DALLOC(n), *ca = DALLOC(T * half), *sa = DALLOC(T * half);
            for (int64_t t = 0; t < T; t++) pos[t] = t == 0 ? 0 : rnd_int(t == 1 ? 8192 : 131072);
            for (int64_t i = 0; i < half; i++) inv[i] = (float)(1 / pow(500000.0, (double)(2 * i) / (double)hd));
            fill(x, n, -2, 2);
            for (int64_t t = 0; t < T; t++)
                for (int64_t i = 0; i < half; i++) {
                    const float ang = (float)pos[t] * inv[i];  // float32 angle, as documented
                    ca[t * half + i] = cos((double)ang);
                    sa[t * half + i] = sin((double)ang);
                }
            const double sign = which == 1 || which == 4 ? -1 : 1;
            for (int64_t t = 0; t < T; t++)
                for (int64_t h = 0; h < heads; h++)
                    for (int64_t i = 0; i < half; i++) {
                        const int64_t o = t * heads * hd + h * hd + i;
                        const double a = x[o], b = x[o + half], cc = ca[t * half + i], ss = sign * sa[t * half + i];
                        want[o] = a * cc - b * ss;
                        want[o + half] = b * cc + a * ss;
                    }
            char ctx[64];
            snprintf(ctx, sizeof ctx, "T=%lld heads=%lld hd=%lld", (long long)T, (long long)heads, (long long)hd);
            memcpy(y, x, (size_t)n * sizeof(float));
            if (which == 2) {
                fill_nan(cs, T * half);
                fill_nan(sn, T * half);
                ltt_rope_table(pos, T, inv, half, cs, sn);
                close_rel(ctx, cs, ca, T * half, 1e-6, 1.0);
                close_rel(ctx, sn, sa, T * half, 1e-6, 1.0);
                continue;
            }
            if (which <= 1) {
                if (which == 0) ltt_rope_forward(y, T, heads, hd, pos, inv);
                else ltt_rope_backward(y, T, heads, hd, pos, inv);
                close_rel(ctx, y, want, n, which == 0 ? 1e-5 : 1e-4, 0);
                continue;
            }
            // Table variants: the same bits as the position variants (documented), and float64.
            float *z = FALLOC(n);
            memcpy(z, x, (size_t)n * sizeof(float));
            ltt_rope_table(pos, T, inv, half, cs, sn);
            if (which == 3) { ltt_rope_forward_table(y, T, heads, hd, cs, sn); ltt_rope_forward(z, T, heads, hd, pos, inv); }
            else { ltt_rope_backward_table(y, T, heads, hd, cs, sn); ltt_rope_backward(z, T, heads, hd, pos, inv); }
            close_rel(ctx, y, want, n, which == 3 ? 1e-5 : 1e-4, 0);
            char ctx2[160];
            snprintf(ctx2, sizeof ctx2, "%s: table vs positions, bit for bit", ctx);
            same_f32(ctx2, y, z, n);
        }
        kend();
    }
}

static void t_ltt_cross_entropy(void) {
    kbegin("ltt_cross_entropy_forward_backward");
    struct { int64_t rows, vocab; int32_t tg[5]; float scale; int spike; } cs[] = {
        {4, 5003, {17, -100, 5002, 5003, 0}, 0.5f, 0},
        {3, 37, {0, 36, 5, 0, 0}, 1.0f, 1},
        {5, 4096, {4095, 1, -1, 2048, 7}, 0.25f, 1},
        {1, 9000, {8999, 0, 0, 0, 0}, 1.0f, 0},
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        const int64_t rows = cs[c].rows, V = cs[c].vocab;
        float *x0 = FALLOC(rows * V), *x = FALLOC(rows * V);
        double *gw = DALLOC(rows * V), *lw = DALLOC(rows), *lg = DALLOC(rows);
        fill(x0, rows * V, -10, 10);
        if (cs[c].spike) x0[3] = 60.0f, x0[V + 1] = -60.0f;  // probabilities near 0 and 1
        double total_want = 0;
        for (int64_t r = 0; r < rows; r++) {
            const int64_t t = cs[c].tg[r];
            const float *xr = x0 + r * V;
            if (t < 0 || t >= V) { lw[r] = 0; continue; }
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < V; j++) m = xr[j] > m ? xr[j] : m;
            for (int64_t j = 0; j < V; j++) s += exp(xr[j] - m);
            const double lse = m + log(s);
            lw[r] = lse - xr[t];
            total_want += lw[r];
            for (int64_t j = 0; j < V; j++) gw[r * V + j] = (exp(xr[j] - lse) - (j == t)) * cs[c].scale;
        }
        memcpy(x, x0, (size_t)(rows * V) * sizeof(float));
        for (int64_t r = 0; r < rows; r++) lg[r] = NAN;
        const double total = ltt_cross_entropy_forward_backward(x, cs[c].tg, rows, V, cs[c].scale, lg);
        char ctx[80];
        snprintf(ctx, sizeof ctx, "rows=%lld vocab=%lld", (long long)rows, (long long)V);
        close_rel(ctx, x, gw, rows * V, 1e-4, 0);
        float *lgf = FALLOC(rows), tf = (float)total;
        for (int64_t r = 0; r < rows; r++) lgf[r] = (float)lg[r];
        char ctx2[160];
        snprintf(ctx2, sizeof ctx2, "%s: row losses", ctx);
        close_rel(ctx2, lgf, lw, rows, 1e-5, 0);
        snprintf(ctx2, sizeof ctx2, "%s: returned total", ctx);
        close_rel(ctx2, &tf, &total_want, 1, 1e-5, 0);
        for (int64_t r = 0; r < rows; r++) {  // ignored rows: exactly zero, loss 0
            const int64_t t = cs[c].tg[r];
            if (t >= 0 && t < V) continue;
            for (int64_t j = 0; j < V; j++)
                if (bits_of(x[r * V + j]) != 0) { kfail("got %.9g want 0 at %lld [%s: ignored row]", x[r * V + j], (long long)(r * V + j), ctx); break; }
            if (lg[r] != 0) kfail("got %.9g want 0 at %lld [%s: ignored row's loss]", lg[r], (long long)r, ctx);
        }
        // loss_rows NULL: same gradient.
        memcpy(x, x0, (size_t)(rows * V) * sizeof(float));
        const double total2 = ltt_cross_entropy_forward_backward(x, cs[c].tg, rows, V, cs[c].scale, NULL);
        snprintf(ctx2, sizeof ctx2, "%s, loss_rows NULL", ctx);
        close_rel(ctx2, x, gw, rows * V, 1e-4, 0);
        tf = (float)total2;
        close_rel(ctx2, &tf, &total_want, 1, 1e-5, 0);
    }
    kend();
}

/// Visibility start of each query: the first position of its segment (0 without segments).
static void seg_starts(const int32_t *seg, int64_t T, int64_t *st) {
    int64_t s = 0;
    for (int64_t t = 0; t < T; t++) {
        if (seg && t > 0 && seg[t] != seg[t - 1]) s = t;
        st[t] = s;
    }
}

static void t_ltt_attention(void) {
    // T, nH, nKV, hd, segments (0 none, 1 three runs, 2 runs incl. length-1 ones), window (0 none;
    // Gemma 3's local layers see keys with t - j < window)
    const int64_t cfg[][6] = {{141, 6, 2, 32, 0, 0}, {141, 6, 2, 64, 1, 0}, {70, 4, 4, 64, 2, 0}, {1, 2, 1, 64, 0, 0},
                              {65, 8, 2, 128, 1, 0}, {33, 3, 1, 40, 2, 0}, {141, 4, 1, 32, 0, 17},
                              {200, 4, 2, 64, 1, 64}, {70, 2, 1, 40, 2, 1}, {130, 2, 2, 16, 0, 65},
                              {1, 2, 1, 64, 0, 3}, {97, 3, 1, 24, 1, 1000}};
    const int ncfg = (int)(sizeof cfg / sizeof cfg[0]);
    // Forward and backward share inputs and the references: both kernels in one pass per config.
    char fwd_fail[768] = "", bwd_fail[768] = "";
    int fwd_failed = 0, bwd_failed = 0;
    kbegin("ltt_attention_forward");
    for (int c = 0; c < ncfg; c++) {
        const int64_t T = cfg[c][0], nH = cfg[c][1], nKV = cfg[c][2], hd = cfg[c][3], group = nH / nKV;
        const int64_t qs = nH * hd, ks = nKV * hd;
        const float scale = c % 2 ? 0.17f : 1.0f / sqrtf((float)hd);
        int32_t *seg = NULL;
        if (cfg[c][4]) {
            seg = (int32_t *)talloc((size_t)T * 4);
            for (int64_t t = 0; t < T; t++) {
                if (cfg[c][4] == 1) seg[t] = t < T / 7 ? 0 : (t < (2 * T) / 3 ? 1 : 2);
                else seg[t] = t < 3 ? (int32_t)t : (t < T / 2 ? 3 : (t == T / 2 ? 4 : 5));
            }
        }
        int64_t *st = (int64_t *)talloc((size_t)T * 8);
        seg_starts(seg, T, st);
        const int64_t window = cfg[c][5];
        for (int64_t t = 0; t < T; t++)
            if (window > 0 && t - window + 1 > st[t]) st[t] = t - window + 1;
        float *q = FALLOC(T * qs), *k = FALLOC(T * ks), *v = FALLOC(T * ks), *dout = FALLOC(T * qs);
        fill(q, T * qs, -2, 2);
        fill(k, T * ks, -2, 2);
        fill(v, T * ks, -1, 1);
        fill(dout, T * qs, -1, 1);
        double *outr = DALLOC(T * qs), *lser = DALLOC(nH * T), *dqr = DALLOC(T * qs), *dkr = DALLOC(T * ks), *dvr = DALLOC(T * ks);
        // Sums of |terms| of dq and dk: their error scale where the sums cancel (T = 1: exactly 0).
        double *dqm = DALLOC(T * qs), *dkm = DALLOC(T * ks);
        double *p = DALLOC(T);
        for (int64_t h = 0; h < nH; h++) {
            const int64_t g = h / group;
            for (int64_t t = 0; t < T; t++) {
                double mx = -INFINITY, z = 0;
                for (int64_t j = st[t]; j <= t; j++) {
                    double a = 0;
                    for (int64_t d = 0; d < hd; d++) a += (double)q[t * qs + h * hd + d] * k[j * ks + g * hd + d];
                    p[j] = a * scale;
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (int64_t j = st[t]; j <= t; j++) z += exp(p[j] - mx);
                const double lse = mx + log(z);
                lser[h * T + t] = lse;
                for (int64_t j = st[t]; j <= t; j++) {
                    p[j] = exp(p[j] - lse);
                    for (int64_t d = 0; d < hd; d++) outr[t * qs + h * hd + d] += p[j] * v[j * ks + g * hd + d];
                }
                double D = 0, Dm = 0;
                for (int64_t d = 0; d < hd; d++) {
                    D += (double)dout[t * qs + h * hd + d] * outr[t * qs + h * hd + d];
                    Dm += fabs((double)dout[t * qs + h * hd + d] * outr[t * qs + h * hd + d]);
                }
                for (int64_t j = st[t]; j <= t; j++) {
                    double dp = 0, dpm = 0;
                    for (int64_t d = 0; d < hd; d++) {
                        dp += (double)dout[t * qs + h * hd + d] * v[j * ks + g * hd + d];
                        dpm += fabs((double)dout[t * qs + h * hd + d] * v[j * ks + g * hd + d]);
                    }
                    const double ds = p[j] * (dp - D), dsm = p[j] * (dpm + Dm);
                    for (int64_t d = 0; d < hd; d++) {
                        dqr[t * qs + h * hd + d] += scale * ds * k[j * ks + g * hd + d];
                        dkr[j * ks + g * hd + d] += scale * ds * q[t * qs + h * hd + d];
                        dqm[t * qs + h * hd + d] += scale * dsm * fabs(k[j * ks + g * hd + d]);
                        dkm[j * ks + g * hd + d] += scale * dsm * fabs(q[t * qs + h * hd + d]);
                        dvr[j * ks + g * hd + d] += p[j] * dout[t * qs + h * hd + d];
                    }
                }
            }
        }
        char ctx[96];
        snprintf(ctx, sizeof ctx, "T=%lld heads=%lld/%lld hd=%lld scale=%g %s window=%lld", (long long)T, (long long)nH,
                 (long long)nKV, (long long)hd, scale, seg ? "segments" : "no segments", (long long)window);
        // Forward in two head ranges (as threads split it), scratch poisoned.
        float *out = FALLOC(T * qs), *lse = FALLOC(nH * T);
        const int64_t fs = ltt_attention_forward_scratch_floats(hd);
        float *scr = FALLOC(fs);
        fill_nan(out, T * qs);
        fill_nan(lse, nH * T);
        const int64_t hs = nH > 1 ? 1 : nH;
        fill_nan(scr, fs);
        ltt_attention_forward(q, k, v, out, lse, T, nH, nKV, hd, scale, 0, hs, scr, seg, window);
        fill_nan(scr, fs);
        if (hs < nH) ltt_attention_forward(q, k, v, out, lse, T, nH, nKV, hd, scale, hs, nH, scr, seg, window);
        char c2[192];
        snprintf(c2, sizeof c2, "%s: out", ctx);
        close_rel(c2, out, outr, T * qs, 1e-5, 0);
        snprintf(c2, sizeof c2, "%s: lse", ctx);
        close_rel(c2, lse, lser, nH * T, 1e-5, 0);
        if (k_failed && !fwd_failed) { fwd_failed = 1; snprintf(fwd_fail, sizeof fwd_fail, "%s", k_msg); }
        k_failed = 0;

        // Backward from the kernel's own out and lse, kv heads in two ranges; outputs poisoned
        // (they are documented as overwritten).
        float *dq = FALLOC(T * qs), *dk = FALLOC(T * ks), *dv = FALLOC(T * ks);
        const int64_t bs = ltt_attention_backward_scratch_floats(T, nH, nKV, hd);
        float *bscr = FALLOC(bs);
        fill_nan(dq, T * qs);
        fill_nan(dk, T * ks);
        fill_nan(dv, T * ks);
        const int64_t kvs = nKV > 1 ? 1 : nKV;
        fill_nan(bscr, bs);
        ltt_attention_backward(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, 0, kvs, bscr, seg, window);
        fill_nan(bscr, bs);
        if (kvs < nKV) ltt_attention_backward(q, k, v, out, dout, lse, dq, dk, dv, T, nH, nKV, hd, scale, kvs, nKV, bscr, seg, window);
        snprintf(c2, sizeof c2, "%s: dq", ctx);
        close_rel(c2, dq, dqr, T * qs, 1e-4, fmax(rms(dqr, T * qs), 1e-2 * rms(dqm, T * qs)));
        snprintf(c2, sizeof c2, "%s: dk", ctx);
        close_rel(c2, dk, dkr, T * ks, 1e-4, fmax(rms(dkr, T * ks), 1e-2 * rms(dkm, T * ks)));
        snprintf(c2, sizeof c2, "%s: dv", ctx);
        close_rel(c2, dv, dvr, T * ks, 1e-4, 0);
        if (k_failed && !bwd_failed) { bwd_failed = 1; snprintf(bwd_fail, sizeof bwd_fail, "%s", k_msg); }
        k_failed = 0;
    }
    k_failed = fwd_failed;
    snprintf(k_msg, sizeof k_msg, "%s", fwd_fail);
    kend();
    kbegin("ltt_attention_backward");
    k_failed = bwd_failed;
    snprintf(k_msg, sizeof k_msg, "%s", bwd_fail);
    kend();
}

static void t_ltt_combine(void) {
    kbegin("ltt_combine");
    // ny, n, m, C transposed
    const int64_t cfg[][4] = {{13, 70, 9, 0}, {10, 16, 5, 0}, {9, 8, 33, 1}, {1, 1, 1, 0},
                              {17, 130, 64, 1}, {8, 64, 16, 0}, {21, 3, 7, 1}, {4, 200, 2, 0}};
    for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
        const int64_t ny = cfg[c][0], n = cfg[c][1], m = cfg[c][2], tr = cfg[c][3];
        const int64_t ldy = n + 3, ldx = n + 5, crs = tr ? 1 : m, ccs = tr ? ny : 1;
        float *Y = FALLOC(ny * ldy), *C = FALLOC(ny * m), *X = FALLOC(m * ldx);
        double *want = DALLOC(ny * ldy);
        fill(Y, ny * ldy, -1, 1);
        fill(C, ny * m, -1, 1);
        fill(X, m * ldx, -1, 1);
        for (int64_t i = 0; i < ny; i++)
            for (int64_t d = 0; d < ldy; d++) {
                double s = Y[i * ldy + d];
                if (d < n)
                    for (int64_t t = 0; t < m; t++) s += (double)C[i * crs + t * ccs] * X[t * ldx + d];
                want[i * ldy + d] = s;
            }
        ltt_combine(Y, ldy, ny, C, crs, ccs, X, ldx, m, n);
        char ctx[80];
        snprintf(ctx, sizeof ctx, "ny=%lld n=%lld m=%lld %s", (long long)ny, (long long)n, (long long)m,
                 tr ? "C transposed" : "C plain");
        close_rel(ctx, Y, want, ny * ldy, 1e-5, 0);
        for (int64_t i = 0; i < ny; i++)  // padding columns: untouched, exactly
            for (int64_t d = n; d < ldy; d++)
                if ((double)Y[i * ldy + d] != want[i * ldy + d]) {
                    kfail("got %.9g want %.9g at %lld [%s: padding column written]", Y[i * ldy + d], want[i * ldy + d],
                          (long long)(i * ldy + d), ctx);
                    i = ny;
                    break;
                }
    }
    kend();
}

static void t_ltt_adamw(void) {
    kbegin("ltt_adamw_step");
    const double H[][5] = {{0.01, 0.9, 0.999, 1e-6, 0.1}, {0.02, 0.3, 0.95, 1e-8, 0.0}};  // lr beta1 beta2 eps wd
    const int64_t ns[] = {45, 1001};
    for (int hi = 0; hi < 2; hi++)
        for (int ni = 0; ni < 2; ni++) {
            const int64_t n = ns[ni];
            const double lr = H[hi][0], b1 = H[hi][1], b2 = H[hi][2], eps = H[hi][3], wd = H[hi][4];
            float *p0 = FALLOC(n), *p = FALLOC(n), *m = FALLOC(n), *v = FALLOC(n), *g = FALLOC(n);
            float *pf = FALLOC(n), *mf = FALLOC(n), *vf = FALLOC(n), *moved = FALLOC(n);
            double *pd = DALLOC(n), *md = DALLOC(n), *vd = DALLOC(n), *movedr = DALLOC(n);
            fill(p0, n, -1, 1);
            memcpy(p, p0, (size_t)n * 4);
            memcpy(pf, p0, (size_t)n * 4);
            for (int64_t i = 0; i < n; i++) pd[i] = p0[i];
            for (int step = 1; step <= 3; step++) {
                fill(g, n, -1, 1);
                for (int i = 0; i < 6; i++) g[i] = (i % 2 ? -1 : 1) * 1e-7f;  // eps's place in the denominator
                g[6] = 0;
                ltt_adamw_step(p, g, m, v, n, lr, b1, b2, eps, wd, step);
                const double bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step);
                for (int64_t i = 0; i < n; i++) {  // float64
                    const double gi = g[i];
                    pd[i] *= 1 - lr * wd;
                    md[i] += (1 - b1) * (gi - md[i]);
                    vd[i] = vd[i] * b2 + (1 - b2) * gi * gi;
                    pd[i] -= lr / bc1 * md[i] / (sqrt(vd[i]) / sqrt(bc2) + eps);
                }
                // float32 in PyTorch's order (scalars in double, rounded)
                const float decay = (float)(1 - lr * wd), w = (float)(1 - b1), b2f = (float)b2, omb2 = (float)(1 - b2);
                const float bc2s = (float)sqrt(bc2), epsf = (float)eps, neg = (float)(-(lr / bc1));
                for (int64_t i = 0; i < n; i++) {
                    pf[i] = pf[i] * decay;
                    mf[i] = fabsf(w) < 0.5f ? mf[i] + w * (g[i] - mf[i]) : g[i] - (g[i] - mf[i]) * (1 - w);
                    vf[i] = vf[i] * b2f + omb2 * g[i] * g[i];
                    const float denom = sqrtf(vf[i]) / bc2s + epsf;
                    pf[i] = pf[i] + neg * mf[i] / denom;
                }
                char ctx[96];
                snprintf(ctx, sizeof ctx, "n=%lld beta1=%g step %d", (long long)n, b1, step);
                char c2[192];
                snprintf(c2, sizeof c2, "%s exp_avg", ctx);
                close_rel(c2, m, md, n, 1e-5, 0);
                snprintf(c2, sizeof c2, "%s exp_avg_sq", ctx);
                close_rel(c2, v, vd, n, 1e-5, 1e-30);
                for (int64_t i = 0; i < n; i++) { moved[i] = p[i] - p0[i]; movedr[i] = pd[i] - p0[i]; }
                snprintf(c2, sizeof c2, "%s param - param0", ctx);
                close_rel(c2, moved, movedr, n, 1e-4, 0);
                snprintf(c2, sizeof c2, "%s param vs float32 PyTorch order", ctx);
                close_rel(c2, p, to_double(pf, n), n, 1e-6, 0);
                snprintf(c2, sizeof c2, "%s exp_avg vs float32 PyTorch order", ctx);
                close_rel(c2, m, to_double(mf, n), n, 1e-6, 0);
                snprintf(c2, sizeof c2, "%s exp_avg_sq vs float32 PyTorch order", ctx);
                close_rel(c2, v, to_double(vf, n), n, 1e-6, 1e-30);
            }
        }
    kend();
}

static void t_ltt_sumsq_scale(void) {
    const int64_t ns[] = {1037, 5, 16, 17, 1};
    kbegin("ltt_grad_sumsq");
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *g = FALLOC(n);
        fill(g, n, -3, 3);
        double ref = 0;
        for (int64_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
        const double got = ltt_grad_sumsq(g, n);
        if (!(fabs(got - ref) <= ref * 1e-12)) kfail("got %.17g want %.17g at 0 [n=%lld; tolerance 1e-12 relative]", got, ref, (long long)n);
    }
    kend();
    kbegin("ltt_scale");
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int64_t n = ns[c];
        float *x = FALLOC(n + 1), *want = FALLOC(n + 1);
        fill(x, n + 1, -3, 3);
        for (int64_t i = 0; i < n; i++) want[i] = x[i] * 0.37f;
        want[n] = x[n];
        ltt_scale(x, n, 0.37f);
        char ctx[48];
        snprintf(ctx, sizeof ctx, "n=%lld, bit for bit", (long long)n);
        same_f32(ctx, x, want, n + 1);
    }
    kend();
}

static void t_ltt_embedding(void) {
    const int64_t V = 50, dim = 67, T = 24;
    int32_t ids[24];
    reseed("ltt_embedding");
    for (int64_t t = 0; t < T; t++) ids[t] = (int32_t)rnd_int(V / 2);  // repeats
    ids[3] = -1, ids[7] = (int32_t)V, ids[11] = -100, ids[5] = ids[6];
    kbegin("ltt_embedding_forward");
    {
        float *table = FALLOC(V * dim), *out = FALLOC(T * dim), *want = FALLOC(T * dim);
        fill(table, V * dim, -1, 1);
        for (int64_t t = 0; t < T; t++)
            for (int64_t d = 0; d < dim; d++) want[t * dim + d] = ids[t] >= 0 && ids[t] < V ? table[ids[t] * dim + d] : 0.0f;
        fill_nan(out, T * dim);
        ltt_embedding_forward(table, ids, T, dim, V, out);
        same_f32("V=50 dim=67 T=24, bit for bit", out, want, T * dim);
    }
    kend();
    kbegin("ltt_embedding_backward");
    {
        float *dtable = FALLOC(V * dim), *dout = FALLOC(T * dim);
        fill(dtable, V * dim, -1, 1);
        fill(dout, T * dim, -1, 1);
        double *want = to_double(dtable, V * dim);
        for (int64_t t = 0; t < T; t++)
            if (ids[t] >= 0 && ids[t] < V)
                for (int64_t d = 0; d < dim; d++) want[ids[t] * dim + d] += dout[t * dim + d];
        float *before = FALLOC(V * dim);
        memcpy(before, dtable, (size_t)(V * dim) * 4);
        ltt_embedding_backward(dout, ids, T, dim, V, dtable);
        close_rel("V=50 dim=67 T=24", dtable, want, V * dim, 1e-6, 0);
        for (int64_t r = 0; r < V; r++) {  // rows no id names: untouched
            int used = 0;
            for (int64_t t = 0; t < T; t++) used |= ids[t] == r;
            if (!used) same_f32("row without ids", dtable + r * dim, before + r * dim, dim);
        }
    }
    kend();
}

// Dropout: exactly the documented splitmix64 mask, on every tier, and the portable tier's bits.
#define DROP_N 1003
static float drop_port_out[DROP_N], drop_port_dx[DROP_N];
static uint8_t drop_port_mask[(DROP_N + 7) / 8];
static int drop_have_port;

static void t_ltt_dropout(int isa) {
    const int64_t n = DROP_N;
    const float p = 0.3f;
    kbegin("ltt_dropout_forward");
    k_hold = 1;  // the buffers serve the three checks below
    const uint64_t dseed = rnd_u64(), offset = rnd_u64() >> 8;
    float *x = FALLOC(n), *dout = FALLOC(n), *out = FALLOC(n), *dx = FALLOC(n), *ref = FALLOC(n), *dxref = FALLOC(n);
    uint8_t *mask = (uint8_t *)talloc((n + 7) / 8);
    int *keep = (int *)talloc((size_t)n * sizeof(int));
    fill(x, n, -1, 1);
    fill(dout, n, -1, 1);
    const uint64_t thr = (uint64_t)llround((double)p * 4294967296.0);
    const float ks = (float)(1.0 / (1.0 - (double)p));
    int kept = 0;
    for (int64_t i = 0; i < n; i++) {
        keep[i] = (mix64(dseed + (offset + (uint64_t)i + 1) * 0x9E3779B97F4A7C15ull) >> 32) >= thr;
        kept += keep[i];
        ref[i] = keep[i] ? x[i] * ks : 0.0f;
        dxref[i] = keep[i] ? dout[i] * ks : 0.0f;
    }
    if (!(fabs(kept - 0.7 * n) < 87)) kfail("got %d want ~%.0f at 0 [kept count of the reference mask]", kept, 0.7 * n);
    fill_nan(out, n);
    memset(mask, 0xAA, (n + 7) / 8);
    ltt_dropout_forward(x, out, mask, n, p, dseed, offset);
    same_f32("n=1003 p=0.3 out", out, ref, n);
    for (int64_t i = 0; i < n; i++)
        if (((mask[i / 8] >> (i % 8)) & 1) != keep[i]) {
            kfail("got %d want %d at %lld [mask bit]", (mask[i / 8] >> (i % 8)) & 1, keep[i], (long long)i);
            break;
        }
    // Split by offset (how threads split it), and in place.
    float *split = FALLOC(n);
    const int64_t cut = 517;
    ltt_dropout_forward(x, split, NULL, cut, p, dseed, offset);
    ltt_dropout_forward(x + cut, split + cut, NULL, n - cut, p, dseed, offset + cut);
    same_f32("split by offset at 517", split, ref, n);
    float *ip = FALLOC(n);
    memcpy(ip, x, (size_t)n * 4);
    ltt_dropout_forward(ip, ip, NULL, n, p, dseed, offset);
    same_f32("in place", ip, ref, n);
    // Short lengths (tails only).
    const int64_t shorts[] = {1, 7, 8, 9, 16, 17, 33};
    for (size_t c = 0; c < sizeof shorts / sizeof shorts[0]; c++) {
        const int64_t len = shorts[c];
        float *o = FALLOC(len);
        uint8_t *mk = (uint8_t *)talloc((len + 7) / 8);
        ltt_dropout_forward(x, o, mk, len, p, dseed, offset);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "n=%lld", (long long)len);
        same_f32(ctx, o, ref, len);
        for (int64_t i = 0; i < len; i++)
            if (((mk[i / 8] >> (i % 8)) & 1) != keep[i]) { kfail("got %d want %d at %lld [%s mask bit]", (mk[i / 8] >> (i % 8)) & 1, keep[i], (long long)i, ctx); break; }
    }
    // p = 0 copies (mask all ones), p = 1 zeroes (mask all zeros).
    fill_nan(out, n);
    memset(mask, 0, (n + 7) / 8);
    ltt_dropout_forward(x, out, mask, n, 0.0f, dseed, offset);
    same_f32("p=0", out, x, n);
    for (int64_t i = 0; i < n; i++)
        if (!((mask[i / 8] >> (i % 8)) & 1)) { kfail("got 0 want 1 at %lld [p=0 mask bit]", (long long)i); break; }
    fill_nan(out, n);
    memset(mask, 0xFF, (n + 7) / 8);
    ltt_dropout_forward(x, out, mask, n, 1.0f, dseed, offset);
    for (int64_t i = 0; i < n; i++)
        if (bits_of(out[i]) != 0 || ((mask[i / 8] >> (i % 8)) & 1)) { kfail("got %.9g want 0 at %lld [p=1]", out[i], (long long)i); break; }
    kend();

    kbegin("ltt_dropout_backward");
    fill_nan(dx, n);
    ltt_dropout_backward(dout, dx, n, p, dseed, offset);
    same_f32("n=1003 p=0.3", dx, dxref, n);
    memcpy(ip, dout, (size_t)n * 4);
    ltt_dropout_backward(ip, ip, n, p, dseed, offset);
    same_f32("dx aliasing dout", ip, dxref, n);
    kend();

    // The same bits as the portable tier (mask bits compared as bits; bytes past n unspecified).
    kbegin("ltt_dropout(=portable bits)");
    k_hold = 0;
    ltt_dropout_forward(x, out, mask, n, p, dseed, offset);
    ltt_dropout_backward(dout, dx, n, p, dseed, offset);
    if (isa == LT_ISA_PORTABLE) {
        memcpy(drop_port_out, out, sizeof drop_port_out);
        memcpy(drop_port_dx, dx, sizeof drop_port_dx);
        memcpy(drop_port_mask, mask, sizeof drop_port_mask);
        drop_have_port = 1;
    } else if (!drop_have_port) {
        kfail("got nothing want portable output at 0 [the portable tier did not run first]");
    } else {
        same_f32("forward vs portable tier", out, drop_port_out, n);
        same_f32("backward vs portable tier", dx, drop_port_dx, n);
        for (int64_t i = 0; i < n; i++)
            if (((mask[i / 8] ^ drop_port_mask[i / 8]) >> (i % 8)) & 1) {
                kfail("got %d want %d at %lld [mask bit vs portable tier]", (mask[i / 8] >> (i % 8)) & 1,
                      (drop_port_mask[i / 8] >> (i % 8)) & 1, (long long)i);
                break;
            }
    }
    kend();
}

// ================================================================================================

static void t_tier_api(int isa) {
    kbegin("lt_set_isa");
    expect_int("lt_isa() after lt_set_isa", lt_isa(), isa);
    expect_int("lt_simd_enabled()", lt_simd_enabled(), isa != LT_ISA_PORTABLE);
    expect_int("ltt_simd_active()", ltt_simd_active(), isa >= LT_ISA_AVX512);
    expect_int("lt_isa_parse(lt_isa_name(isa))", lt_isa_parse(lt_isa_name(isa)), isa);
    expect_int("lt_isa_runs(isa)", lt_isa_runs(isa), 1);
    if (isa > lt_isa_best()) kfail("got %d want <= %d at 0 [tier above lt_isa_best]", isa, lt_isa_best());
    for (int other = LT_ISA_PORTABLE; other <= LT_ISA_AMX; other++)
        if (!lt_isa_runs(other)) {  // refused, nothing changed
            expect_int("lt_set_isa(a tier this CPU cannot run)", lt_set_isa(other), -1);
            expect_int("lt_isa() after a refused lt_set_isa", lt_isa(), isa);
        }
    expect_int("lt_isa_parse(\"bogus\")", lt_isa_parse("bogus"), -1);
    expect_int("lt_set_isa(99)", lt_set_isa(99), -1);
    kend();
}

// The worker pool: every part of every job runs exactly once (many short jobs, so workers spin and
// park in between), and a call from inside a task is refused (-1) rather than deadlocking.
typedef struct { _Atomic int *hits; _Atomic int nested_rc; } pool_ctx;
static void pool_task(void *ctx, int64_t part) {
    pool_ctx *c = (pool_ctx *)ctx;
    atomic_fetch_add(&c->hits[part], 1);
    if (part == 0) atomic_store(&c->nested_rc, lt_pool_run(2, 1, pool_task, ctx));
}
static void t_pool(void) {
    kbegin("lt_pool_run");
    enum { PARTS = 7, JOBS = 3000 };
    _Atomic int hits[PARTS];
    pool_ctx c = {hits, 0};
    for (int j = 0; j < JOBS && !k_failed; j++) {
        const int parts = 1 + j % PARTS;
        for (int p = 0; p < PARTS; p++) atomic_store(&hits[p], 0);
        const int rc = lt_pool_run(1 + j % 4 + (j % 4 == 0), parts, pool_task, &c);
        if (rc != 0) { kfail("got %d want 0 at job %d [lt_pool_run refused]", rc, j); break; }
        for (int p = 0; p < PARTS; p++)
            if (atomic_load(&hits[p]) != (p < parts)) kfail("got %d want %d at part %d [job %d]", atomic_load(&hits[p]), p < parts, p, j);
        if (atomic_load(&c.nested_rc) != -1) kfail("got %d want -1 at job %d [nested call]", atomic_load(&c.nested_rc), j);
        if (j % 500 == 499) usleep(300);  // past the spin window: workers park and must be woken
    }
    expect_int("lt_pool_run(1 thread)", lt_pool_run(1, 3, pool_task, &c), -1);
    kend();
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("LANGTUNE_TEST_SEED");
    if (env && *env) g_seed = strtoull(env, NULL, 10);
    else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g_seed = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000;
    }
    signal(SIGSEGV, on_signal);
    signal(SIGILL, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    // Without oneDNN the built-in kernels are what runs; lt_sgemm_builtin is tested directly anyway.
    lt_set_dnnl_enabled(0);

    char ran[128] = "";
    for (int isa = LT_ISA_PORTABLE; isa <= LT_ISA_AMX; isa++)
        if (lt_isa_runs(isa)) {
            strcat(ran, ran[0] ? " " : "");
            strcat(ran, lt_isa_name(isa));
        }
    printf("kernel tests: seed %llu; tiers this CPU runs: %s (best %s)\n", (unsigned long long)g_seed, ran,
           lt_isa_name(lt_isa_best()));

    tier = "any";
    t_pool();
    for (int isa = LT_ISA_PORTABLE; isa <= LT_ISA_AMX; isa++) {
        if (!lt_isa_runs(isa)) continue;
        tier = lt_isa_name(isa);
        if (lt_set_isa(isa) != 0) {
            snprintf(k_name, sizeof k_name, "lt_set_isa");
            k_failed = 1;
            snprintf(k_msg, sizeof k_msg, "got -1 want 0 at 0 [lt_isa_runs says it runs]");
            kend();
            continue;
        }
        t_tier_api(isa);
        t_dot();
        t_matvec_f32();
        for (int type = 1; type <= 3; type++) t_matvec_q(type);
        for (int type = 1; type <= 3; type++) t_dequant(type);
        for (int type = 4; type <= 7; type++) t_kq_dequant(type);
        for (int type = 4; type <= 7; type++) t_kq_matvec(type);
        t_block_sums();
        t_int8();
        t_attention_cache(0);
        t_attention_cache(1);
        t_rmsnorm();
        t_swiglu();
        t_bf16();
        t_f16();
        t_sgemm();
        t_ltt_rmsnorm();
        t_ltt_swiglu();
        t_ltt_geglu();
        t_ltt_rope();
        t_ltt_cross_entropy();
        t_ltt_attention();
        t_ltt_combine();
        t_ltt_adamw();
        t_ltt_sumsq_scale();
        t_ltt_embedding();
        t_ltt_dropout(isa);
    }
    lt_set_isa(lt_isa_best());
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
