// Validation of an int8 model: every tensor the config needs is present and
// every quantisation parameter lies where the integer kernels stay exact and
// free of overflow. The forward pass relies on it and checks nothing more.
#include <math.h>

#include "ofa/ofa_int8.h"

namespace {
constexpr int32_t kQ30 = 1 << 30;
constexpr int32_t kMaxBias = 1 << 30;  // with K <= 2^16: |dot + bias| < 2^31

// A Q31 multiplier is 0 or has magnitude in [2^30, 2^31): normalised.
bool valid_mult(int32_t m) {
  return m == 0 || (m >= kQ30 && m <= INT32_MAX) || (m <= -kQ30 && m > INT32_MIN);
}

// expected: channels; 1 is also accepted (one set for the whole tensor).
// zp_lo/zp_hi bound the zero-point row.
ofa_status check_requant(const ofa_requant& q, int32_t expected, int64_t zp_lo, int64_t zp_hi) {
  if (!q.table) return OFA_ERR_MISSING_TENSOR;
  if (q.count != expected && q.count != 1) return OFA_ERR_BAD_QUANT;
  for (int32_t i = 0; i < q.count; ++i) {
    const int32_t shift = q.table[q.count + i], zp = q.table[2 * q.count + i];
    if (!valid_mult(q.table[i]) || shift < OFA_SHIFT_MIN || shift > OFA_SHIFT_MAX ||
        zp < zp_lo || zp > zp_hi)
      return OFA_ERR_BAD_QUANT;
  }
  return OFA_OK;
}

ofa_status check_to_s8(const ofa_requant& q, int32_t expected) {
  return check_requant(q, expected, -128, 127);
}
ofa_status check_to_residual(const ofa_requant& q, int32_t expected) {
  return check_requant(q, expected, 0, 0);
}

ofa_status check_linear(const ofa_linear_int8& l, int32_t n_out, int32_t k) {
  if (!l.w || !l.b) return OFA_ERR_MISSING_TENSOR;
  if (k > OFA_GEMM_S8_MAX_K) return OFA_ERR_BAD_CONFIG;
  for (int32_t i = 0; i < n_out; ++i)
    if (l.b[i] <= -kMaxBias || l.b[i] >= kMaxBias) return OFA_ERR_BAD_QUANT;
  return OFA_OK;
}

ofa_status check_layer_norm(const ofa_layer_norm_int8& ln, int32_t d) {
  if (!ln.eps) return OFA_ERR_MISSING_TENSOR;
  // <= 2^62, as the quantiser writes it: the kernels add it to a variance < 2^60 in int64.
  if (*ln.eps < 0 || *ln.eps > ((int64_t)1 << 62)) return OFA_ERR_BAD_QUANT;
  ofa_status st = check_requant(ln.out, d, -kMaxBias + 1, kMaxBias - 1);
  if (st != OFA_OK) return st;
  return check_to_s8(ln.narrow, 1);
}

#define OFA_TRY(expr)                      \
  do {                                     \
    const ofa_status s_ = (expr);          \
    if (s_ != OFA_OK) return s_;           \
  } while (0)

ofa_status check_layer(const ofa_layer_int8& l, int32_t d, int32_t f) {
  OFA_TRY(check_linear(l.qkv, 3 * d, d));
  OFA_TRY(check_requant(l.qkv.out, 3 * d, 0, 0));  // q, k, v symmetric
  OFA_TRY(check_requant(l.scores, 1, 0, 0));
  OFA_TRY(check_to_s8(l.context, 1));
  OFA_TRY(check_linear(l.attn_out, d, d));
  OFA_TRY(check_to_residual(l.attn_out.out, d));
  OFA_TRY(check_layer_norm(l.ln1, d));
  OFA_TRY(check_layer_norm(l.ln2, d));
  OFA_TRY(check_linear(l.ff_in, f, d));
  OFA_TRY(check_to_s8(l.ff_in.out, f));
  if (!l.gelu_lut) return OFA_ERR_MISSING_TENSOR;
  OFA_TRY(check_linear(l.ff_out, d, f));
  return check_to_residual(l.ff_out.out, d);
}
}  // namespace

extern "C" ofa_status ofa_validate_model_int8(const ofa_model_int8* m) {
  if (!m) return OFA_ERR_NULL_ARG;
  const ofa_config& c = m->config;
  OFA_TRY(ofa_validate_config(&c));
  const int32_t n = ofa_n_patches(&c), d = c.d_model, H = ofa_head_outputs(&c);
  // The sequence length is a GEMM depth too (probabilities . V).
  if (n > OFA_GEMM_S8_MAX_K || c.d_ff > OFA_GEMM_S8_MAX_K) return OFA_ERR_BAD_CONFIG;
  if (!m->patch_inv_scale || !m->pos || !m->head_out_scale || !m->scaler_mean || !m->scaler_std)
    return OFA_ERR_MISSING_TENSOR;
  if (!isfinite(*m->patch_inv_scale) || !(*m->patch_inv_scale > 0.f)) return OFA_ERR_BAD_QUANT;
  for (int32_t i = 0; i < H; ++i)
    if (!isfinite(m->head_out_scale[i])) return OFA_ERR_BAD_QUANT;
  for (int32_t i = 0; i < c.n_channels; ++i)
    if (!isfinite(m->scaler_mean[i]) || !isfinite(m->scaler_std[i]) || !(m->scaler_std[i] > 0.f))
      return OFA_ERR_BAD_TENSOR;
  OFA_TRY(check_linear(m->in_layer, d, ofa_token_width(&c)));
  OFA_TRY(check_to_residual(m->in_layer.out, d));
  if (c.layout == OFA_LAYOUT_BERT) OFA_TRY(check_layer_norm(m->emb_ln, d));
  if (c.layout == OFA_LAYOUT_GPT2) OFA_TRY(check_layer_norm(m->final_ln, d));
  if (c.n_layers > 0 && !m->layers) return OFA_ERR_MISSING_TENSOR;
  for (int32_t i = 0; i < c.n_layers; ++i) OFA_TRY(check_layer(m->layers[i], d, c.d_ff));
  if (c.head_rank == 0) {
    // check_linear bounds the depth, so the int32 sums fit (a classifier's spans every channel: C*N*d).
    OFA_TRY(check_linear(m->head, H, (int32_t)ofa_head_depth(&c)));
  } else {
    OFA_TRY(check_linear(m->head_a, c.head_rank, n * d));
    OFA_TRY(check_to_s8(m->head_a.out, c.head_rank));
    OFA_TRY(check_linear(m->head_b, H, c.head_rank));
  }
  if (c.linear_path) {
    if (!m->linear.w || !m->linear_out_scale || !m->linear_bias) return OFA_ERR_MISSING_TENSOR;
    if (c.seq_len > OFA_GEMM_S8_MAX_K) return OFA_ERR_BAD_CONFIG;
    for (int32_t i = 0; i < H; ++i)
      if (!isfinite(m->linear_out_scale[i]) || !isfinite(m->linear_bias[i])) return OFA_ERR_BAD_QUANT;
  }
  return OFA_OK;
}
