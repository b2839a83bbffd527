// Multi-head scaled dot-product attention for one series. Both products go
// through the table's GEMM: Q K^T already matches its A W^T form (K rows are
// W rows); for P V, V is W^T: a table with pack_wt packs it as it stands,
// others get it transposed into a (head_dim, n_tokens) block first. v_t holds
// either (the planner sizes it for both).
#include <math.h>

#include "kernels/core_kernels.h"

size_t ofa_attention_gemm_scratch_floats(const ofa_attention_dims* d) {
  const size_t qk = ofa_gemm_scratch_floats(d->head_dim, d->n_tokens);
  const size_t pv = ofa_gemm_scratch_floats(d->n_tokens, d->head_dim);
  return qk > pv ? qk : pv;
}

size_t ofa_attention_v_floats(const ofa_attention_dims* d) {
  const size_t padded = ((size_t)d->head_dim + OFA_GEMM_N_PAD - 1) / OFA_GEMM_N_PAD * OFA_GEMM_N_PAD;
  return padded * (size_t)d->n_tokens;
}

void ofa_attention(const ofa_kernels* kern, const ofa_attention_dims* d,
                   const float* qkv, float* out, float* scores, float* v_t,
                   float* gemm_scratch) {
  const int32_t n = d->n_tokens, hd = d->head_dim;
  const int32_t dm = d->n_heads * hd;
  const int32_t ld_qkv = 3 * dm;
  const ofa_gemm_dims qk = {n, n, hd, ld_qkv, ld_qkv, n, 0, 0};
  const ofa_gemm_dims pv = {n, hd, n, n, n, dm, 0, 0};
  const ofa_softmax_dims sm = {n, n, n, 1.f / sqrtf((float)hd), d->causal};
  for (int32_t h = 0; h < d->n_heads; ++h) {
    const float* q = qkv + (size_t)h * hd;
    const float* k = q + dm;
    const float* v = q + 2 * dm;
    kern->gemm(&qk, q, k, nullptr, scores, gemm_scratch);
    kern->softmax(&sm, scores);
    ofa_gemm_dims pvd = pv;
    if (kern->pack_wt) {  // V's rows are W^T's: straight into the GEMM's panels
      kern->pack_wt(v, ld_qkv, hd, n, v_t);
      pvd.w_packed = 1;
    } else {
      for (int32_t t = 0; t < n; ++t)
        for (int32_t c = 0; c < hd; ++c)
          v_t[(size_t)c * n + t] = v[(size_t)t * ld_qkv + c];
    }
    kern->gemm(&pvd, scores, v_t, nullptr, out + (size_t)h * hd, gemm_scratch);
  }
}
