// Training kernels: forward and backward of every op of a Llama block other
// than the matrix products, plus the optimizer. float32 throughout; sizes are
// int64_t; layouts are row-major [rows, features].
//
// Threading: no kernel allocates or keeps state. Kernels that take a range
// (r0..r1, h0..h1, kv0..kv1) write only the outputs of that range, so threads
// given disjoint ranges never race. Kernels without a range are split by the
// caller by offsetting the pointers (rows are independent).
//
// Each kernel runs an AVX-512 body when the CPU and OS support it, otherwise a
// portable body; ltt_set_portable(1) forces the portable one (for tests).
#ifndef LANGTUNE_TRAIN_H
#define LANGTUNE_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---- dispatch --------------------------------------------------------------

/// Forces the portable (non-SIMD) bodies when `on` is non-zero. Process-wide;
/// meant for tests that compare both paths.
void ltt_set_portable(int on);
/// 1 when the AVX-512 bodies are in use now, 0 otherwise.
int ltt_simd_active(void);

// ---- RMSNorm ---------------------------------------------------------------

/// y = w * (x * rstd), rstd = 1 / sqrt(mean(x^2) + eps) per row, as Hugging
/// Face's LlamaRMSNorm computes it in float32. rstd_out[rows] (may be NULL)
/// receives rstd for the backward pass. x and y may alias.
void ltt_rmsnorm_forward(const float *x, const float *w, float *y, float *rstd_out,
                         int64_t rows, int64_t n, float eps);
/// Rows r0..<r1: dx = d/dx of sum(dy * y) (overwritten); when dw_accum is not
/// NULL, dw_accum[n] += sum over rows of dy * x * rstd (give each thread its
/// own dw_accum and add them up afterwards). dx may alias dy.
void ltt_rmsnorm_backward(const float *dy, const float *x, const float *w, const float *rstd,
                          float *dx, float *dw_accum, int64_t r0, int64_t r1, int64_t n);

// ---- RoPE (Hugging Face rotate-half layout) --------------------------------

/// In place on x[T, heads*hd]: for each row t, head, and i < hd/2, with
/// angle = (float)positions[t] * invFreq[i] rounded to float32 (as Hugging
/// Face computes it) and c, s its cosine and sine:
///   x[i] <- x[i]*c - x[i+hd/2]*s,   x[i+hd/2] <- x[i+hd/2]*c + x[i]*s.
/// hd must be even; invFreq has hd/2 entries. Split rows across threads by
/// offsetting x and positions.
void ltt_rope_forward(float *x, int64_t T, int64_t heads, int64_t hd,
                      const int64_t *positions, const float *invFreq);
/// In place on dx: the transpose of the forward rotation (rotation by -angle).
void ltt_rope_backward(float *dx, int64_t T, int64_t heads, int64_t hd,
                       const int64_t *positions, const float *invFreq);
/// cos_out, sin_out [T, half] (half = hd/2): the cosines and sines the two
/// functions above compute on the fly. Every layer shares them; compute once.
void ltt_rope_table(const int64_t *positions, int64_t T, const float *invFreq, int64_t half,
                    float *cos_out, float *sin_out);
/// ltt_rope_forward / ltt_rope_backward with a table from ltt_rope_table
/// (identical results). Split rows by offsetting x, cos and sin.
void ltt_rope_forward_table(float *x, int64_t T, int64_t heads, int64_t hd, const float *cos,
                            const float *sin);
void ltt_rope_backward_table(float *dx, int64_t T, int64_t heads, int64_t hd, const float *cos,
                             const float *sin);

// ---- causal grouped-query attention ----------------------------------------

/// q[T, nHeads*hd], k and v [T, nKV*hd], out[T, nHeads*hd]; query head h reads
/// kv head h / (nHeads/nKV). Scores are scale * q.k, causal (key j <= query t);
/// when segment (int32 per position, example ids of a packed sequence) is not
/// NULL, key j is visible to query t only if j <= t and all positions j..t
/// carry the same id: segments must be contiguous runs (a packed batch is).
/// lse[nHeads*T] receives lse[h*T + t] = log(sum_j exp(score_tj)) for the
/// backward pass. window > 0 also hides keys at or past `window` positions back
/// (visible only when t - j < window, transformers' sliding_window_overlay:
/// Gemma 3's local layers); window <= 0: no window. scale is the caller's
/// (1/sqrt(hd) for Llama, query_pre_attn_scalar^-0.5 for Gemma).
/// Writes heads h0..<h1 only. Memory beyond the outputs is the
/// fixed-size scratch (online softmax over blocks of keys; see
/// ltt_attention_forward_scratch_floats), one per thread.
void ltt_attention_forward(const float *q, const float *k, const float *v, float *out, float *lse,
                           int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                           int64_t h0, int64_t h1, float *scratch, const int32_t *segment,
                           int64_t window);

/// Floats of scratch ltt_attention_forward needs per call (per thread); independent of T.
int64_t ltt_attention_forward_scratch_floats(int64_t hd);

/// Floats of scratch ltt_attention_backward needs per call (per thread).
int64_t ltt_attention_backward_scratch_floats(int64_t T, int64_t nHeads, int64_t nKV, int64_t hd);

/// Gradients for kv heads kv0..<kv1: overwrites dk and dv of those kv heads
/// and dq of the query heads that read them, so threads given disjoint kv
/// ranges never write the same memory. Probabilities are recomputed from q.k
/// and lse; D_t = sum(dout_t * out_t). scratch: see
/// ltt_attention_backward_scratch_floats. segment and window as in the forward pass.
void ltt_attention_backward(const float *q, const float *k, const float *v, const float *out,
                            const float *dout, const float *lse, float *dq, float *dk, float *dv,
                            int64_t T, int64_t nHeads, int64_t nKV, int64_t hd, float scale,
                            int64_t kv0, int64_t kv1, float *scratch, const int32_t *segment,
                            int64_t window);

// ---- small products (LoRA) -------------------------------------------------------

/// Y[i][0..n) += sum_{t<m} C[i*crs + t*ccs] * X[t*ldx + 0..n) for rows i < ny, in t order (float32,
/// AVX-512 where present). With crs/ccs either operand may be read transposed. LoRA's products
/// (one side of rank r) are all of this form; split rows or columns across threads by offsetting.
void ltt_combine(float *Y, int64_t ldy, int64_t ny, const float *C, int64_t crs, int64_t ccs, const float *X,
                 int64_t ldx, int64_t m, int64_t n);

// ---- SwiGLU ----------------------------------------------------------------

/// out = silu(g) * u = g * sigmoid(g) * u. out may alias g or u.
void ltt_swiglu_forward(const float *g, const float *u, float *out, int64_t n);
/// dg = dout * u * s * (1 + g * (1 - s)), du = dout * g * s, s = sigmoid(g).
/// dg and du may alias dout (not g or u).
void ltt_swiglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du,
                         int64_t n);

// ---- GeGLU (Gemma) -----------------------------------------------------------

/// out = gelu_tanh(g) * u, gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) (PyTorch's
/// gelu(approximate="tanh"), transformers' gelu_pytorch_tanh), computed as g * sigmoid(2 z), the
/// same value without the tanh form's cancellation for negative g. out may alias g or u.
void ltt_geglu_forward(const float *g, const float *u, float *out, int64_t n);
/// dg = dout * u * gelu_tanh'(g), du = dout * gelu_tanh(g). dg and du may alias dout (not g or u).
void ltt_geglu_backward(const float *dout, const float *g, const float *u, float *dg, float *du,
                        int64_t n);

// ---- cross-entropy ---------------------------------------------------------

/// For each of `rows` rows of logits[rows, vocab]: logits becomes dlogits =
/// (softmax(row) - onehot(target)) * scale in place; rows whose target is not
/// in [0, vocab) (the ignore index -100 included) become all zeros and add no
/// loss. Returns the sum over non-ignored rows of the loss lse(row) - row[target],
/// computed in double; loss_rows (may be NULL) receives each row's loss (0 for
/// ignored rows). Call it on chunks of rows to keep the logits small.
double ltt_cross_entropy_forward_backward(float *logits, const int32_t *targets, int64_t rows,
                                          int64_t vocab, float scale, double *loss_rows);

// ---- embedding -------------------------------------------------------------

/// out[t] = table[ids[t]] for a float32 table[vocab, dim]; ids outside
/// [0, vocab) give a zero row.
void ltt_embedding_forward(const float *table, const int32_t *ids, int64_t T, int64_t dim,
                           int64_t vocab, float *out);
/// dtable[ids[t]] += dout[t] (scatter-add); ids outside [0, vocab) are skipped.
/// Not to be split across threads (two rows may share an id).
void ltt_embedding_backward(const float *dout, const int32_t *ids, int64_t T, int64_t dim,
                            int64_t vocab, float *dtable);

// ---- optimizer -------------------------------------------------------------

/// One step of torch.optim.AdamW (amsgrad=False, maximize=False), step >= 1
/// counting this step:
///   param *= 1 - lr*weight_decay
///   m = lerp(m, grad, 1 - beta1);  v = v*beta2 + (1 - beta2)*grad*grad
///   param -= (lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
/// Scalars are computed in double and rounded to float, as PyTorch does.
void ltt_adamw_step(float *param, const float *grad, float *m, float *v, int64_t n, double lr,
                    double beta1, double beta2, double eps, double weight_decay, int64_t step);
/// sum(grad^2) in double (for global-norm clipping across tensors).
double ltt_grad_sumsq(const float *grad, int64_t n);
/// x *= s.
void ltt_scale(float *x, int64_t n, float s);

// ---- dropout ---------------------------------------------------------------

/// Element i (global index offset + i) is kept when the top 32 bits of
/// splitmix64 output number offset+i of the stream seeded by `seed`, that is
/// mix(seed + (offset+i+1) * 0x9E3779B97F4A7C15), are >= round(p * 2^32);
/// kept elements are scaled by 1/(1-p), dropped ones are 0. p <= 0 copies,
/// p >= 1 zeroes. mask_bits (may be NULL, (n+7)/8 bytes) receives bit i%8 of
/// byte i/8 = kept. out may alias x. The mask depends only on (seed, offset+i),
/// so the backward pass recomputes it and threads can split by offset.
void ltt_dropout_forward(const float *x, float *out, uint8_t *mask_bits, int64_t n, float p,
                         uint64_t seed, uint64_t offset);
/// dx = dout masked and scaled exactly as the forward call with the same
/// (n, p, seed, offset). dx may alias dout.
void ltt_dropout_backward(const float *dout, float *dx, int64_t n, float p, uint64_t seed,
                          uint64_t offset);

#ifdef __cplusplus
}
#endif

#endif
