// One generated token's matrix-vector products over every Q4_K / Q5_K / Q6_K / Q5_0 matrix of a GGUF
// (dumped by kquant_matvec_dump.py), one thread, one kernel tier: the blocks as stored
// (lt_matvec_q4_k / q5_k / q6_k / q5_0) against their float32 copies (lt_matvec_f32), the working set
// far beyond the caches as in generation. Also checks that both give the same products (float32 rounding).
//   cc -O3 -fno-math-errno -I Sources/CLangTuneKernels/include -I Sources/CLangTuneKernels \
//      Benchmarks/kquant_matvec.c Sources/CLangTuneKernels/*.c -o kquant_matvec -lm -ldl -lpthread
//   ./kquant_matvec DUMPDIR avx2
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "langtune_kernels.h"

typedef struct { int type; long rows, cols; void *raw; float *f; } matrix;

static void *slurp(const char *dir, const char *name, long *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "rb");
    if (!f) { perror(p); exit(1); }
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *b = malloc((size_t)*n);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) { perror(p); exit(1); }
    fclose(f);
    return b;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void blocks_matvec(const matrix *m, const float *x, float *xs, float *y) {
    switch (m->type) {
    case 12: lt_block_sums(x, xs, m->cols); lt_matvec_q4_k(m->raw, x, xs, y, m->cols, 0, m->rows); break;
    case 13: lt_block_sums(x, xs, m->cols); lt_matvec_q5_k(m->raw, x, xs, y, m->cols, 0, m->rows); break;
    case 14: lt_matvec_q6_k(m->raw, x, y, m->cols, 0, m->rows); break;
    default: lt_matvec_q5_0(m->raw, x, y, m->cols, 0, m->rows); break;
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || lt_isa_parse(argv[2]) < 0 || lt_set_isa(lt_isa_parse(argv[2])) != 0) {
        fprintf(stderr, "usage: %s DUMPDIR TIER (a tier this CPU runs)\n", argv[0]);
        return 2;
    }
    static matrix m[4096];
    int nm = 0;
    long qbytes = 0, fbytes = 0, maxcols = 0, maxrows = 0;
    char path[1024], raw[256], f32[256], name[256];
    snprintf(path, sizeof path, "%s/list.txt", argv[1]);
    FILE *list = fopen(path, "r");
    if (!list) { perror(path); return 1; }
    matrix t;
    while (nm < 4096 && fscanf(list, "%d %ld %ld %255s %255s %255s", &t.type, &t.rows, &t.cols, raw, f32, name) == 6) {
        long nr, nf;
        t.raw = slurp(argv[1], raw, &nr);
        t.f = slurp(argv[1], f32, &nf);
        qbytes += nr;
        fbytes += nf;
        maxcols = t.cols > maxcols ? t.cols : maxcols;
        maxrows = t.rows > maxrows ? t.rows : maxrows;
        m[nm++] = t;
    }
    float *x = malloc((size_t)maxcols * 4), *xs = malloc((size_t)maxcols / 32 * 4);
    float *y = malloc((size_t)maxrows * 4), *y2 = malloc((size_t)maxrows * 4);
    for (long i = 0; i < maxcols; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    double worst = 0;  // largest |blocks - float32| relative to the row's largest |y|
    for (int i = 0; i < nm; i++) {
        blocks_matvec(&m[i], x, xs, y);
        lt_matvec_f32(m[i].f, x, y2, m[i].cols, 0, m[i].rows);
        double big = 1e-30, d = 0;
        for (long r = 0; r < m[i].rows; r++) {
            big = fabs(y2[r]) > big ? fabs(y2[r]) : big;
            d = fabs(y[r] - y2[r]) > d ? fabs(y[r] - y2[r]) : d;
        }
        worst = d / big > worst ? d / big : worst;
    }
    double bq = 1e30, bf = 1e30;
    for (int round = 0; round < 9; round++) {  // best of 9: the machine is shared
        double t0 = now();
        for (int i = 0; i < nm; i++) blocks_matvec(&m[i], x, xs, y);
        const double tq = now() - t0;
        t0 = now();
        for (int i = 0; i < nm; i++) lt_matvec_f32(m[i].f, x, y, m[i].cols, 0, m[i].rows);
        const double tf = now() - t0;
        bq = tq < bq ? tq : bq;
        bf = tf < bf ? tf : bf;
    }
    printf("%s, %d matrices: blocks %.1f ms (%.0f MB read, %.2f GB/s), float32 %.1f ms (%.0f MB, %.2f GB/s): "
           "blocks at %.2fx the float32 speed; max |difference| %.2g of the largest output\n",
           lt_isa_name(lt_isa()), nm, bq * 1e3, qbytes / 1e6, qbytes / bq / 1e9, bf * 1e3, fbytes / 1e6, fbytes / bf / 1e9,
           bf / bq, worst);
    return 0;
}
