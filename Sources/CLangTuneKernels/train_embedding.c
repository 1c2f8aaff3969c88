// Token embedding for a float32 table: gather forward, scatter-add backward.
#include "train_simd.h"

void ltt_embedding_forward(const float *table, const int32_t *ids, int64_t T, int64_t dim,
                           int64_t vocab, float *out) {
    for (int64_t t = 0; t < T; t++) {
        const int64_t id = ids[t];
        if (id >= 0 && id < vocab)
            memcpy(out + t * dim, table + id * dim, (size_t)dim * sizeof(float));
        else
            memset(out + t * dim, 0, (size_t)dim * sizeof(float));
    }
}

LTT_BODY void emb_bwd_body(const float *dout, const int32_t *ids, int64_t T, int64_t dim,
                           int64_t vocab, float *dtable) {
    for (int64_t t = 0; t < T; t++) {
        const int64_t id = ids[t];
        if (id < 0 || id >= vocab) continue;
        float *dst = dtable + id * dim;
        const float *src = dout + t * dim;
        for (int64_t i = 0; i < dim; i++) dst[i] += src[i];
    }
}

static void emb_bwd_port(const float *dout, const int32_t *ids, int64_t T, int64_t dim,
                         int64_t vocab, float *dtable) {
    emb_bwd_body(dout, ids, T, dim, vocab, dtable);
}

#if LTT_HAVE_X86
LTT_AVX512 static void emb_bwd_512(const float *dout, const int32_t *ids, int64_t T, int64_t dim,
                                   int64_t vocab, float *dtable) {
    emb_bwd_body(dout, ids, T, dim, vocab, dtable);
}
LTT_AVX2 static void emb_bwd_256(const float *dout, const int32_t *ids, int64_t T, int64_t dim, int64_t vocab,
                                 float *dtable) {
    emb_bwd_body(dout, ids, T, dim, vocab, dtable);
}
#endif
#if LTT_HAVE_NEON
#define emb_bwd_neon emb_bwd_port  // vectorized by the compiler: NEON is the baseline there
#endif

void ltt_embedding_backward(const float *dout, const int32_t *ids, int64_t T, int64_t dim,
                            int64_t vocab, float *dtable) {
    if (T <= 0 || dim <= 0) return;
    LTT_CALL(emb_bwd, dout, ids, T, dim, vocab, dtable);
}
