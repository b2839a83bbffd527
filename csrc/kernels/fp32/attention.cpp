// Multi-head scaled dot-product attention for one series. Both products go
// through the table's GEMM: Q K^T already matches its A W^T form (K rows are
// W rows); for P V, V is transposed into a (head_dim, n_tokens) block first.
#include <math.h>

#include "kernels/core_kernels.h"

size_t ofa_attention_gemm_scratch_floats(const ofa_attention_dims* d) {
  const size_t qk = ofa_gemm_scratch_floats(d->head_dim, d->n_tokens);
  const size_t pv = ofa_gemm_scratch_floats(d->n_tokens, d->head_dim);
  return qk > pv ? qk : pv;
}

void ofa_attention(const ofa_kernels* kern, const ofa_attention_dims* d,
                   const float* qkv, float* out, float* scores, float* v_t,
                   float* gemm_scratch) {
  const int32_t n = d->n_tokens, hd = d->head_dim;
  const int32_t dm = d->n_heads * hd;
  const int32_t ld_qkv = 3 * dm;
  const ofa_gemm_dims qk = {n, n, hd, ld_qkv, ld_qkv, n, 0};
  const ofa_gemm_dims pv = {n, hd, n, n, n, dm, 0};
  const ofa_softmax_dims sm = {n, n, n, 1.f / sqrtf((float)hd), d->causal};
  for (int32_t h = 0; h < d->n_heads; ++h) {
    const float* q = qkv + (size_t)h * hd;
    const float* k = q + dm;
    const float* v = q + 2 * dm;
    kern->gemm(&qk, q, k, nullptr, scores, gemm_scratch);
    kern->softmax(&sm, scores);
    for (int32_t t = 0; t < n; ++t)
      for (int32_t c = 0; c < hd; ++c)
        v_t[(size_t)c * n + t] = v[(size_t)t * ld_qkv + c];
    kern->gemm(&pv, scores, v_t, nullptr, out + (size_t)h * hd, gemm_scratch);
  }
}
