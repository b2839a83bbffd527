// Config validation: every dimension the planner and kernels rely on is
// checked here, so later code can assume sane, overflow-free sizes.
#include <math.h>

#include "ofa/ofa.h"

namespace {
// Generous bounds that keep every index product far inside int32/size_t.
constexpr int32_t kMaxDim = 1 << 16;
constexpr int64_t kMaxFlat = 1 << 26;  // the head's depth: N * d (classify: C * N * d)

bool in_range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }
bool valid_eps(float e) { return isfinite(e) && e > 0.f; }
}  // namespace

extern "C" ofa_status ofa_validate_config(const ofa_config* c) {
  if (!c) return OFA_ERR_NULL_ARG;
  if (c->layout != OFA_LAYOUT_BERT && c->layout != OFA_LAYOUT_GPT2) return OFA_ERR_BAD_CONFIG;
  if (c->gelu != OFA_GELU_ERF && c->gelu != OFA_GELU_TANH) return OFA_ERR_BAD_CONFIG;
  if (!in_range(c->d_model, 1, kMaxDim) || !in_range(c->n_heads, 1, kMaxDim) ||
      !in_range(c->d_ff, 1, kMaxDim) || !in_range(c->n_layers, 0, kMaxDim) ||
      !in_range(c->seq_len, 1, kMaxDim) || !in_range(c->patch_len, 1, kMaxDim) ||
      !in_range(c->stride, 1, kMaxDim) || !in_range(c->n_channels, 1, kMaxDim) ||
      !in_range(c->head_rank, 0, kMaxDim))
    return OFA_ERR_BAD_CONFIG;
  if (c->task == OFA_TASK_FORECAST) {
    // The forecast is de-normalised with the instance statistics: RevIN is not optional.
    if (!in_range(c->horizon, 1, kMaxDim) || c->n_classes != 0 || c->norm != OFA_NORM_INSTANCE ||
        c->tokens != OFA_TOKENS_CHANNEL)
      return OFA_ERR_BAD_CONFIG;
  } else if (c->task == OFA_TASK_CLASSIFY) {
    // One dense linear head over the window's states: no horizon, no factored head, no linear path.
    if (c->horizon != 0 || !in_range(c->n_classes, 2, kMaxDim) || c->head_rank != 0 || c->linear_path != 0 ||
        (c->norm != OFA_NORM_INSTANCE && c->norm != OFA_NORM_GLOBAL) ||
        (c->tokens != OFA_TOKENS_CHANNEL && c->tokens != OFA_TOKENS_JOINED))
      return OFA_ERR_BAD_CONFIG;
    // A joined token's width is the input layer's depth: bounded as every other dimension.
    // (int64: patch_len * n_channels may pass int32 before this check.)
    if (c->tokens == OFA_TOKENS_JOINED && (int64_t)c->patch_len * c->n_channels > kMaxDim) return OFA_ERR_BAD_CONFIG;
  } else {
    return OFA_ERR_BAD_CONFIG;
  }
  if (c->d_model % c->n_heads != 0) return OFA_ERR_BAD_CONFIG;
  if (c->patch_len > c->seq_len) return OFA_ERR_BAD_CONFIG;
  if (!valid_eps(c->ln_eps) || !valid_eps(c->revin_eps)) return OFA_ERR_BAD_CONFIG;
  // The linear path reads the window back from the patches: they must cover every step.
  if (c->linear_path != 0 && c->linear_path != 1) return OFA_ERR_BAD_CONFIG;
  if (c->linear_path && c->stride > c->patch_len) return OFA_ERR_BAD_CONFIG;
  if (ofa_head_depth(c) > kMaxFlat) return OFA_ERR_BAD_CONFIG;
  return OFA_OK;
}

extern "C" int32_t ofa_n_patches(const ofa_config* c) {
  if (ofa_validate_config(c) != OFA_OK) return 0;
  return ofa_patch_count(c->seq_len, c->patch_len, c->stride);
}

extern "C" ofa_status ofa_validate_model(const ofa_model* m) {
  if (!m) return OFA_ERR_NULL_ARG;
  const ofa_config* c = &m->config;
  const ofa_status st = ofa_validate_config(c);
  if (st != OFA_OK) return st;
  if (!m->in_w || !m->in_b || !m->pos || !m->head_bias || !m->scaler_mean ||
      !m->scaler_std)
    return OFA_ERR_MISSING_TENSOR;
  if (c->layout == OFA_LAYOUT_BERT && (!m->emb_ln_w || !m->emb_ln_b))
    return OFA_ERR_MISSING_TENSOR;
  if (c->layout == OFA_LAYOUT_GPT2 && (!m->final_ln_w || !m->final_ln_b))
    return OFA_ERR_MISSING_TENSOR;
  if (c->head_rank == 0 ? !m->head_w : (!m->head_a || !m->head_b_lr))
    return OFA_ERR_MISSING_TENSOR;
  if (c->n_layers > 0 && !m->layers) return OFA_ERR_MISSING_TENSOR;
  if (c->linear_path && (!m->linear_w || !m->linear_b)) return OFA_ERR_MISSING_TENSOR;
  // The scaler divides by std: a zero, negative or non-finite one turns every forecast to inf/NaN.
  for (int32_t i = 0; i < c->n_channels; ++i)
    if (!isfinite(m->scaler_mean[i]) || !isfinite(m->scaler_std[i]) || !(m->scaler_std[i] > 0.f))
      return OFA_ERR_BAD_TENSOR;
  for (int32_t i = 0; i < c->n_layers; ++i) {
    const ofa_layer_weights* l = &m->layers[i];
    if (!l->attn_qkv_w || !l->attn_qkv_b || !l->attn_out_w || !l->attn_out_b ||
        !l->ln1_w || !l->ln1_b || !l->ln2_w || !l->ln2_b || !l->ff_in_w ||
        !l->ff_in_b || !l->ff_out_w || !l->ff_out_b)
      return OFA_ERR_MISSING_TENSOR;
  }
  return OFA_OK;
}

extern "C" const char* ofa_status_name(ofa_status s) {
  switch (s) {
    case OFA_OK: return "ok";
    case OFA_ERR_NULL_ARG: return "null argument";
    case OFA_ERR_BAD_CONFIG: return "invalid config";
    case OFA_ERR_MISSING_TENSOR: return "missing tensor";
    case OFA_ERR_BAD_BATCH: return "invalid batch or tile_series";
    case OFA_ERR_ARENA_TOO_SMALL: return "arena too small";
    case OFA_ERR_ARENA_MISALIGNED: return "arena misaligned";
    case OFA_ERR_BAD_QUANT: return "quantisation parameter out of range";
    case OFA_ERR_BAD_TENSOR: return "tensor value out of range (scaler: finite mean, finite std > 0)";
    case OFA_ERR_ARENA_TOO_LARGE:
      return "arena larger than OFA_MAX_ARENA_BYTES (a build-time cap: -DOFA_MAX_ARENA_BYTES=N raises it)";
  }
  return "unknown status";
}
