// Softmax cross-entropy with an ignore index, fused with its backward pass:
// the logits are turned into dlogits in place, so a chunk of rows needs no
// memory beyond its logits.
#include "train_simd.h"

typedef float (*max_fn)(const float *, int64_t);
typedef float (*expsum_fn)(float *, float, int64_t);
typedef void (*scal_fn)(float *, float, int64_t);

// exp sums are accumulated in float lanes per chunk and in double across
// chunks: rows can be 128k wide.
#define CE_CHUNK 4096

LTT_BODY double ce_body(float *logits, const int32_t *targets, int64_t rows, int64_t vocab,
                        float scale, double *loss_rows, max_fn maxf, expsum_fn expsum,
                        scal_fn scal) {
    double total = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        float *x = logits + r * vocab;
        const int64_t tgt = targets[r];
        if (tgt < 0 || tgt >= vocab) {
            memset(x, 0, (size_t)vocab * sizeof(float));
            if (loss_rows) loss_rows[r] = 0.0;
            continue;
        }
        const float xt = x[tgt];
        const float m = maxf(x, vocab);
        double sum = 0.0;
        for (int64_t c = 0; c < vocab; c += CE_CHUNK) {
            const int64_t len = vocab - c < CE_CHUNK ? vocab - c : CE_CHUNK;
            sum += (double)expsum(x + c, m, len);
        }
        const double loss = (double)m + log(sum) - (double)xt;
        if (loss_rows) loss_rows[r] = loss;
        total += loss;
        scal(x, (float)((double)scale / sum), vocab);
        x[tgt] -= scale;
    }
    return total;
}

static double ce_port(float *logits, const int32_t *targets, int64_t rows, int64_t vocab,
                      float scale, double *loss_rows) {
    return ce_body(logits, targets, rows, vocab, scale, loss_rows, ltt_max_port,
                   ltt_expsub_sum_port, ltt_scal_port);
}

#if LTT_HAVE_X86
LTT_AVX512 static double ce_512(float *logits, const int32_t *targets, int64_t rows, int64_t vocab,
                                float scale, double *loss_rows) {
    return ce_body(logits, targets, rows, vocab, scale, loss_rows, ltt_max_512, ltt_expsub_sum_512,
                   ltt_scal_512);
}
LTT_AVX2 static double ce_256(float *logits, const int32_t *targets, int64_t rows, int64_t vocab, float scale,
                              double *loss_rows) {
    return ce_body(logits, targets, rows, vocab, scale, loss_rows, ltt_max_256, ltt_expsub_sum_256, ltt_scal_256);
}
#endif
#if LTT_HAVE_NEON
static double ce_neon(float *logits, const int32_t *targets, int64_t rows, int64_t vocab, float scale,
                      double *loss_rows) {
    return ce_body(logits, targets, rows, vocab, scale, loss_rows, ltt_max_neon, ltt_expsub_sum_neon, ltt_scal_neon);
}
#endif

double ltt_cross_entropy_forward_backward(float *logits, const int32_t *targets, int64_t rows,
                                          int64_t vocab, float scale, double *loss_rows) {
    if (rows <= 0 || vocab <= 0) return 0.0;
    return LTT_CALL(ce, logits, targets, rows, vocab, scale, loss_rows);
}
