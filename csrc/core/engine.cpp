// Forward pass: tiles of series through patch embedding, the transformer
// stack and the linear head, all inside the caller's arena.
#include <stdint.h>

#include "kernels/core_kernels.h"
#include "forward_checks.h"
#include "ofa/ofa.h"
#include "planner.h"
#include "window_tokens.h"

namespace {

struct Tile {
  const ofa_model* m;
  const ofa_kernels* k;
  const ofa_arena_plan* plan;
  float* base;
  int32_t n_series;  // series in this tile
  int32_t n_tokens;  // N
  const ofa_prepacked* packed;  // weights packed for t.k at load, or NULL
  float* at(size_t off) const { return base + off; }
};

// The packed form of one weight when it was packed for this table.
const float* packed_for(const Tile& t, const float* ofa_prepacked::*which) {
  return t.packed ? t.packed->*which : nullptr;
}
const float* packed_for(const Tile& t, int32_t layer, const float* ofa_prepacked_layer::*which) {
  return t.packed && t.packed->layers ? t.packed->layers[layer].*which : nullptr;
}

// C = A W^T + bias (+C when accumulate); the GEMM packing scratch is shared.
// wp: W packed at load for t.k (then W itself is not read), or NULL.
void linear(const Tile& t, int32_t rows, const float* a, int32_t k,
            const float* w, const float* wp, const float* bias, float* c, int32_t n,
            int32_t accumulate) {
  const ofa_gemm_dims dims = {rows, n, k, k, k, n, accumulate, wp != nullptr};
  t.k->gemm(&dims, a, wp ? wp : w, bias, c, t.at(t.plan->gemm_scratch));
}

void layer_norm(const Tile& t, int32_t rows, const float* x, const float* w,
                const float* b, float* y) {
  const ofa_config& c = t.m->config;
  const ofa_layer_norm_dims dims = {rows, c.d_model, c.d_model, c.ln_eps};
  t.k->layer_norm(&dims, x, w, b, y);
}

// Each series' attention, on its own buffers: in order, or at once through
// the table's parallel_for.
struct AttentionJob {
  const Tile* t;
  ofa_attention_dims dims;
  const float* qkv;
  float* out;
  static void one(void* arg, int32_t s) {
    const AttentionJob& j = *static_cast<const AttentionJob*>(arg);
    const Tile& t = *j.t;
    const ofa_config& c = t.m->config;
    const ofa_arena_plan& p = *t.plan;
    ofa_attention(t.k, &j.dims, j.qkv + (size_t)s * t.n_tokens * 3 * c.d_model,
                  j.out + (size_t)s * t.n_tokens * c.d_model, t.at(p.scores + s * p.scores_stride),
                  t.at(p.v_t + s * p.v_t_stride), t.at(p.attn_scratch + s * p.attn_scratch_stride));
  }
};

void attention(const Tile& t, const float* qkv, float* out) {
  const ofa_config& c = t.m->config;
  AttentionJob job = {&t, {t.n_tokens, c.n_heads, c.d_model / c.n_heads, c.layout == OFA_LAYOUT_GPT2}, qkv, out};
  if (t.k->parallel_for) {
    t.k->parallel_for(t.n_series, AttentionJob::one, &job);
  } else {
    for (int32_t s = 0; s < t.n_series; ++s) AttentionJob::one(&job, s);
  }
}

void feed_forward(const Tile& t, int32_t rows, int32_t i, const float* x, float* hidden, float* residual) {
  const ofa_config& c = t.m->config;
  const ofa_layer_weights& l = t.m->layers[i];
  linear(t, rows, x, c.d_model, l.ff_in_w, packed_for(t, i, &ofa_prepacked_layer::ff_in_w), l.ff_in_b, hidden,
         c.d_ff, 0);
  t.k->gelu(hidden, (size_t)rows * c.d_ff, c.gelu);
  linear(t, rows, hidden, c.d_ff, l.ff_out_w, packed_for(t, i, &ofa_prepacked_layer::ff_out_w), l.ff_out_b,
         residual, c.d_model, 1);
}

// BERT: h = LN1(h + Attn(h)); h = LN2(h + FF(h)).
// GPT-2: h = h + Attn(LN1(h)); h = h + FF(LN2(h)).
// Residual adds are fused into the output GEMMs (accumulate into h).
void transformer_layer(const Tile& t, int32_t i) {
  const ofa_config& c = t.m->config;
  const ofa_layer_weights& l = t.m->layers[i];
  const int32_t rows = t.n_series * t.n_tokens;
  const int32_t d = c.d_model;
  float* h = t.at(t.plan->hidden);
  float* normed = t.at(t.plan->normed);
  float* wide = t.at(t.plan->wide);
  const bool pre_ln = c.layout == OFA_LAYOUT_GPT2;

  const float* attn_in = h;
  if (pre_ln) {
    layer_norm(t, rows, h, l.ln1_w, l.ln1_b, normed);
    attn_in = normed;
  }
  linear(t, rows, attn_in, d, l.attn_qkv_w, packed_for(t, i, &ofa_prepacked_layer::attn_qkv_w), l.attn_qkv_b,
         wide, 3 * d, 0);
  attention(t, wide, normed);
  linear(t, rows, normed, d, l.attn_out_w, packed_for(t, i, &ofa_prepacked_layer::attn_out_w), l.attn_out_b, h,
         d, 1);
  if (pre_ln) {
    layer_norm(t, rows, h, l.ln2_w, l.ln2_b, normed);
    feed_forward(t, rows, i, normed, wide, h);
  } else {
    layer_norm(t, rows, h, l.ln1_w, l.ln1_b, h);
    feed_forward(t, rows, i, h, wide, h);
    layer_norm(t, rows, h, l.ln2_w, l.ln2_b, h);
  }
}

// The tile's (rows, W) tokens in plan->wide -> its final states (rows, d):
// input layer, positions, the blocks and GPT-2's final LN.
const float* encode(const Tile& t) {
  const ofa_model& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t n = t.n_tokens, d = c.d_model, rows = t.n_series * n;
  float* h = t.at(t.plan->hidden);
  linear(t, rows, t.at(t.plan->wide), ofa_token_width(&c), m.in_w, packed_for(t, &ofa_prepacked::in_w), m.in_b, h,
         d, 0);
  for (int32_t r = 0; r < rows; ++r) {
    const float* p = m.pos + (size_t)(r % n) * d;
    float* hr = h + (size_t)r * d;
    for (int32_t j = 0; j < d; ++j) hr[j] += p[j];
  }
  if (c.layout == OFA_LAYOUT_BERT) layer_norm(t, rows, h, m.emb_ln_w, m.emb_ln_b, h);
  for (int32_t i = 0; i < c.n_layers; ++i) transformer_layer(t, i);
  if (c.layout != OFA_LAYOUT_GPT2) return h;
  float* normed = t.at(t.plan->normed);
  layer_norm(t, rows, h, m.final_ln_w, m.final_ln_b, normed);
  return normed;
}

void run_tile(const Tile& t, const float* x, int32_t first_series, float* y) {
  const ofa_model& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t n = t.n_tokens, d = c.d_model, C = c.n_channels;
  float* wide = t.at(t.plan->wide);
  float* mu = t.at(t.plan->stats);
  float* sd = mu + t.n_series;

  const ofa_series_dims sdims = {c.seq_len, C, c.patch_len, c.stride, n, c.revin_eps};
  for (int32_t s = 0; s < t.n_series; ++s) {
    const int32_t g = first_series + s;
    const int32_t b = g / C, ch = g % C;
    ofa_series_to_patches(&sdims, x + (size_t)b * c.seq_len * C + ch,
                          m.scaler_mean[ch], m.scaler_std[ch],
                          wide + (size_t)s * n * c.patch_len, &mu[s], &sd[s]);
  }
  const int32_t flat = n * d, H = c.horizon;
  float* yh = t.at(t.plan->head_out);
  if (c.linear_path) {  // yh = W u, before the layers overwrite the patches
    float* u = t.at(t.plan->window);
    for (int32_t s = 0; s < t.n_series; ++s)
      for (int32_t k = 0; k < c.seq_len; ++k)
        u[(size_t)s * c.seq_len + k] = wide[(size_t)s * n * c.patch_len + ofa_patch_offset(&sdims, k)];
    linear(t, t.n_series, u, c.seq_len, m.linear_w, packed_for(t, &ofa_prepacked::linear_w), nullptr, yh, H, 0);
  }
  const float* final_h = encode(t);

  // Head: each series' (N, d) block is already its flattened row of N*d. It
  // accumulates onto the linear path's W u when there is one.
  const int32_t acc = c.linear_path;
  if (c.head_rank == 0) {
    linear(t, t.n_series, final_h, flat, m.head_w, packed_for(t, &ofa_prepacked::head_w), m.head_bias, yh, H, acc);
  } else {
    float* low = t.at(t.plan->head_low);
    linear(t, t.n_series, final_h, flat, m.head_a, packed_for(t, &ofa_prepacked::head_a), nullptr, low,
           c.head_rank, 0);
    linear(t, t.n_series, low, c.head_rank, m.head_b_lr, packed_for(t, &ofa_prepacked::head_b_lr), m.head_bias,
           yh, H, acc);
  }

  for (int32_t s = 0; s < t.n_series; ++s) {
    const int32_t g = first_series + s;
    const int32_t b = g / C, ch = g % C;
    const float mean = m.scaler_mean[ch], std = m.scaler_std[ch];
    for (int32_t k = 0; k < H; ++k) {
      float v = yh[(size_t)s * H + k] * sd[s] + mu[s];
      if (c.linear_path) v += m.linear_b[k];
      y[((size_t)b * H + k) * C + ch] = v * std + mean;
    }
  }
}

// A classifier's tile: t.n_series = whole windows x ofa_window_sequences,
// window `first_window` first; x (batch, C, L). One window's final states are
// its sequences' N*d features one after another, so the head is one GEMM over
// the tile's windows (the sum over sequences is its depth).
void run_tile_classify(const Tile& t, const float* x, int32_t first_window, float* logits) {
  const ofa_model& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t windows = t.n_series / ofa_window_sequences(&c);
  ofa_detail::windows_to_tokens(c, m.scaler_mean, m.scaler_std, x + (size_t)first_window * c.n_channels * c.seq_len,
                                windows, t.n_tokens, t.at(t.plan->wide), t.at(t.plan->staged));
  const float* final_h = encode(t);
  const int32_t K = c.n_classes, depth = (int32_t)ofa_head_depth(&c);
  linear(t, windows, final_h, depth, m.head_w, packed_for(t, &ofa_prepacked::head_w), m.head_bias,
         logits + (size_t)first_window * K, K, 0);
}

// The Tile of a validated model's call; n_series is set per tile.
Tile tile_for(const ofa_model* model, const ofa_kernels* kernels, const ofa_arena_plan* plan, void* arena) {
  Tile t;
  t.m = model;
  t.k = kernels ? kernels : &ofa_kernels_scalar;
  t.plan = plan;
  t.base = static_cast<float*>(arena);
  t.n_tokens = ofa_patch_count(model->config.seq_len, model->config.patch_len, model->config.stride);
  t.n_series = 0;
  t.packed = model->prepacked && t.k->pack_w && model->prepacked->pack_w == t.k->pack_w ? model->prepacked : nullptr;
  return t;
}

}  // namespace

extern "C" ofa_status ofa_forward_series_validated(const ofa_model* model, const ofa_kernels* kernels,
                                                   int32_t tile_series, const float* x, int32_t batch,
                                                   int32_t first_series, int32_t n_series, float* y, void* arena,
                                                   size_t arena_bytes) {
  ofa_status st =
      ofa_detail::check_call(model, OFA_TASK_FORECAST, x, y, arena, batch, tile_series, first_series, n_series);
  if (st != OFA_OK) return st;
  const ofa_config& c = model->config;
  ofa_arena_plan plan;
  if ((st = ofa_plan_arena(&c, tile_series, &plan)) != OFA_OK) return st;
  if ((st = ofa_detail::check_arena(arena, arena_bytes, plan.total_floats * sizeof(float))) != OFA_OK) return st;

  Tile t = tile_for(model, kernels, &plan, arena);
  ofa_detail::for_each_tile(t, first_series, n_series, tile_series, x, y, run_tile);
  return OFA_OK;
}

extern "C" ofa_status ofa_classify_windows_validated(const ofa_model* model, const ofa_kernels* kernels,
                                                     int32_t tile_series, const float* x, int32_t batch,
                                                     int32_t first_window, int32_t n_windows, float* logits,
                                                     void* arena, size_t arena_bytes) {
  ofa_status st =
      ofa_detail::check_call(model, OFA_TASK_CLASSIFY, x, logits, arena, batch, tile_series, first_window, n_windows);
  if (st != OFA_OK) return st;
  const ofa_config& c = model->config;
  ofa_arena_plan plan;
  if ((st = ofa_plan_arena(&c, tile_series, &plan)) != OFA_OK) return st;
  if ((st = ofa_detail::check_arena(arena, arena_bytes, plan.total_floats * sizeof(float))) != OFA_OK) return st;

  Tile t = tile_for(model, kernels, &plan, arena);
  ofa_detail::for_each_window_tile(t, c, first_window, n_windows, tile_series, x, logits, run_tile_classify);
  return OFA_OK;
}

extern "C" ofa_status ofa_classify(const ofa_model* model, const ofa_kernels* kernels, int32_t tile_series,
                                   const float* x, int32_t batch, float* logits, void* arena, size_t arena_bytes) {
  ofa_status st = ofa_detail::check_pointers(model, x, logits, arena);
  if (st != OFA_OK) return st;
  if ((st = ofa_validate_model(model)) != OFA_OK) return st;
  return ofa_classify_windows_validated(model, kernels, tile_series, x, batch, 0, batch, logits, arena, arena_bytes);
}

extern "C" ofa_status ofa_forward_validated(const ofa_model* model, const ofa_kernels* kernels,
                                            int32_t tile_series, const float* x, int32_t batch,
                                            float* y, void* arena, size_t arena_bytes) {
  return ofa_forward_series_validated(model, kernels, tile_series, x, batch, 0, ofa_detail::all_series(model, batch),
                                      y, arena, arena_bytes);
}

extern "C" ofa_status ofa_forward(const ofa_model* model, const ofa_kernels* kernels,
                                  int32_t tile_series, const float* x, int32_t batch,
                                  float* y, void* arena, size_t arena_bytes) {
  return ofa_detail::validate_then_forward(ofa_validate_model, ofa_forward_validated, model, kernels, tile_series, x,
                                           batch, y, arena, arena_bytes);
}
