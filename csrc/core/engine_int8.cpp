// int8 forward pass: the fp32 engine's graph with int8 GEMMs, an int32
// residual stream and integer layer norm / softmax / GELU, all in the arena.
// Float appears only at the ends (input normalisation, output scaling), with
// +,-,*,/,sqrt in a fixed order and no contraction (-ffp-contract=off).
#include <stdint.h>

#include "forward_checks.h"
#include "kernels/core_kernels.h"
#include "ofa/ofa_int8.h"
#include "planner_int8.h"
#include "window_tokens.h"

// The forecaster's per-tile cost is budgeted on Cortex-M (firmware/instruction_budget.json): the steps
// it shares with the classifier are inlined into each, so the sharing costs it no calls.
#define OFA_SHARED_STEP __attribute__((always_inline)) inline

namespace {

struct Tile {
  const ofa_model_int8* m;
  const ofa_kernels_int8* k;
  const ofa_arena_plan_int8* plan;
  unsigned char* base;
  int32_t n_series;
  int32_t n_tokens;
  bool packed;  // the linears' w_packed were packed for t.k (at load)
  template <class T>
  T* at(size_t off) const { return reinterpret_cast<T*>(base + off); }
  // The GEMM shape of a (rows, k) x l (n, k)^T, and the W it reads.
  ofa_gemm_s8_dims dims(const ofa_linear_int8& l, int32_t rows, int32_t k, int32_t lda, int32_t n) const {
    return {rows, n, k, lda, k, n, packed && l.w_packed};
  }
  const int8_t* w(const ofa_linear_int8& l) const { return packed && l.w_packed ? l.w_packed : l.w; }
};

// acc (rows, n) = a (rows, k) W^T + bias
void linear(const Tile& t, int32_t rows, const int8_t* a, int32_t lda,
            const ofa_linear_int8& l, int32_t k, int32_t n, int32_t* acc) {
  const ofa_gemm_s8_dims dims = t.dims(l, rows, k, lda, n);
  t.k->gemm_s8(&dims, a, t.w(l), l.b, acc, t.at<void>(t.plan->gemm_scratch));
}

// out (rows, n) int8 = requant(a W^T + bias), fused in the GEMM epilogue
void linear_to_s8(const Tile& t, int32_t rows, const int8_t* a, int32_t lda,
                  const ofa_linear_int8& l, int32_t k, int32_t n, int8_t* out) {
  const ofa_gemm_s8_dims dims = t.dims(l, rows, k, lda, n);
  t.k->gemm_s8_requant_s8(&dims, a, t.w(l), l.b, l.out.table, l.out.count, out,
                          t.at<void>(t.plan->gemm_scratch));
}

// h (rows, n) += requant(a W^T + bias), fused in the GEMM epilogue
void linear_add_into(const Tile& t, int32_t rows, const int8_t* a, int32_t lda,
                     const ofa_linear_int8& l, int32_t k, int32_t n, int32_t* h) {
  const ofa_gemm_s8_dims dims = t.dims(l, rows, k, lda, n);
  t.k->gemm_s8_requant_add_s32(&dims, a, t.w(l), l.b, l.out.table, l.out.count, h,
                               t.at<void>(t.plan->gemm_scratch));
}

void to_s8(const Tile& t, int32_t rows, int32_t cols, const int32_t* in, const ofa_requant& q,
           int8_t* out) {
  const ofa_requant_dims d = {rows, cols, cols, cols, q.count};
  t.k->requant_to_s8(&d, in, q.table, out);
}

// y (int32, may be x) = LN(x); narrow (int8) = its requantised copy.
void layer_norm(const Tile& t, int32_t rows, const int32_t* x, const ofa_layer_norm_int8& ln,
                int32_t* y, int8_t* narrow) {
  const int32_t d = t.m->config.d_model;
  const ofa_layer_norm_s32_dims dims = {rows, d, d};
  t.k->layer_norm_s32_s8(&dims, x, *ln.eps, ln.out.table, y, ln.narrow.table, narrow);
}

// q|k|v int8 (rows, 3d) -> int8 context (rows, d), requantised per head in
// the p.v GEMM's epilogue. The scores of plan->score_rows queries at a time
// (all N on a host, a few on a microcontroller): integer sums and a row-wise
// softmax, so the bits do not depend on the block. One series at a time, on
// that series' buffers (a host's plan has a set per series): in order, or at
// once through the table's parallel_for.
struct AttentionJob {
  const Tile* t;
  const ofa_layer_int8* l;
  const int8_t* qkv;
  int8_t* ctx;

  static void one(void* arg, int32_t s) {
    const AttentionJob& j = *static_cast<const AttentionJob*>(arg);
    const Tile& t = *j.t;
    const ofa_arena_plan_int8& p = *t.plan;
    const ofa_config& c = t.m->config;
    const int32_t n = t.n_tokens, d = c.d_model, hd = d / c.n_heads, block = p.score_rows;
    int32_t* scores = t.at<int32_t>(p.scores + s * p.scores_stride);
    int8_t* probs = t.at<int8_t>(p.probs + s * p.probs_stride);
    int8_t* v_t = t.at<int8_t>(p.v_t + s * p.v_t_stride);
    void* scratch = t.at<void>(p.attn_scratch + s * p.attn_scratch_stride);
    const ofa_gemm_s8_dims pv = {n, hd, n, n, n, d, 0};
    const int32_t causal = c.layout == OFA_LAYOUT_GPT2;
    const int8_t* qs = j.qkv + (size_t)s * n * 3 * d;
    int8_t* cs = j.ctx + (size_t)s * n * d;
    for (int32_t h = 0; h < c.n_heads; ++h) {
      const int8_t* q = qs + (size_t)h * hd;
      const int8_t* k = q + d;
      const int8_t* v = q + 2 * d;
      for (int32_t r0 = 0; r0 < n; r0 += block) {
        const int32_t rows = n - r0 < block ? n - r0 : block;
        const ofa_gemm_s8_dims qk = {rows, n, hd, 3 * d, 3 * d, n, 0};
        const ofa_softmax_s8_dims sm = {rows, n, n, n, causal, r0};
        t.k->gemm_s8(&qk, q + (size_t)r0 * 3 * d, k, nullptr, scores, scratch);
        t.k->softmax_s8(&sm, scores, j.l->scores.table, probs + (size_t)r0 * n);
      }
      ofa_gemm_s8_dims pvd = pv;
      if (t.k->pack_wt && p.v_t_packed) {  // V is P V's W^T: straight into the GEMM's panels
        t.k->pack_wt(v, 3 * d, hd, n, v_t);
        pvd.w_packed = 1;
      } else {
        for (int32_t tok = 0; tok < n; ++tok)
          for (int32_t jj = 0; jj < hd; ++jj) v_t[(size_t)jj * n + tok] = v[(size_t)tok * 3 * d + jj];
      }
      t.k->gemm_s8_requant_s8(&pvd, probs, v_t, nullptr, j.l->context.table, j.l->context.count,
                              cs + (size_t)h * hd, scratch);
    }
  }
};

void attention(const Tile& t, const ofa_layer_int8& l, const int8_t* qkv, int8_t* ctx) {
  AttentionJob job = {&t, &l, qkv, ctx};
  if (t.k->parallel_for && t.plan->scores_stride) {  // a set of buffers per series
    t.k->parallel_for(t.n_series, AttentionJob::one, &job);
  } else {
    for (int32_t s = 0; s < t.n_series; ++s) AttentionJob::one(&job, s);
  }
}

// h += FF(x8)
void feed_forward(const Tile& t, int32_t rows, const ofa_layer_int8& l, const int8_t* x8,
                  int32_t* h) {
  const ofa_config& c = t.m->config;
  const int32_t d = c.d_model, f = c.d_ff;
  int8_t* wide = t.at<int8_t>(t.plan->wide);
  linear_to_s8(t, rows, x8, d, l.ff_in, d, f, wide);
  t.k->lut_s8(l.gelu_lut, wide, (size_t)rows * f);
  linear_add_into(t, rows, wide, f, l.ff_out, f, d, h);
}

// BERT: h = LN1(h + Attn(h)); h = LN2(h + FF(h)).
// GPT-2: h = h + Attn(LN1(h)); h = h + FF(LN2(h)).
// On entry (BERT) `narrow` already holds h as int8 (the previous LN's copy).
void transformer_layer(const Tile& t, const ofa_layer_int8& l) {
  const ofa_config& c = t.m->config;
  const int32_t rows = t.n_series * t.n_tokens, d = c.d_model;
  int32_t* h = t.at<int32_t>(t.plan->hidden);
  int32_t* acc = t.at<int32_t>(t.plan->acc);
  int8_t* x8 = t.at<int8_t>(t.plan->narrow);
  int8_t* wide = t.at<int8_t>(t.plan->wide);
  const bool pre_ln = c.layout == OFA_LAYOUT_GPT2;

  if (pre_ln) layer_norm(t, rows, h, l.ln1, acc, x8);
  linear_to_s8(t, rows, x8, d, l.qkv, d, 3 * d, wide);
  attention(t, l, wide, x8);  // x8 (this layer's input) is free once q|k|v exist
  linear_add_into(t, rows, x8, d, l.attn_out, d, d, h);
  if (pre_ln) {
    layer_norm(t, rows, h, l.ln2, acc, x8);
    feed_forward(t, rows, l, x8, h);
  } else {
    layer_norm(t, rows, h, l.ln1, h, x8);
    feed_forward(t, rows, l, x8, h);
    layer_norm(t, rows, h, l.ln2, h, x8);
  }
}

// The head's depth is tokens*d: N*d per series (16k for MiniLM), a
// classifier's C*N*d per window. One GEMM over it would need a packing panel
// of NR * depth bytes in the arena (0.5 MB), more than a microcontroller has,
// so it runs token by token (depth d) and sums the partial int32 results:
// integer addition, so the bits are the same. W packed at load needs no
// panel: then it is one GEMM over the whole depth.
OFA_SHARED_STEP void head_linear(const Tile& t, const int8_t* x8, const ofa_linear_int8& l, int32_t rows,
                                 int32_t tokens, int32_t n_out, int32_t* yh) {
  const int32_t d = t.m->config.d_model, flat = tokens * d;
  if (t.packed && l.w_packed) return linear(t, rows, x8, flat, l, flat, n_out, yh);
  int32_t* part = t.at<int32_t>(t.plan->acc);  // free here: the last layer is done with it
  void* scratch = t.at<void>(t.plan->gemm_scratch);
  for (int32_t tok = 0; tok < tokens; ++tok) {
    const ofa_gemm_s8_dims dims = {rows, n_out, d, flat, flat, n_out, 0};
    const int8_t* a = x8 + (size_t)tok * d;
    const int8_t* w = l.w + (size_t)tok * d;
    if (tok == 0) {
      t.k->gemm_s8(&dims, a, w, l.b, yh, scratch);
      continue;
    }
    t.k->gemm_s8(&dims, a, w, nullptr, part, scratch);
    for (size_t i = 0; i < (size_t)rows * n_out; ++i) yh[i] += part[i];
  }
}

int8_t quantize_patch(float u, float inv_scale) {
  float v = u * inv_scale;
  v = v > 127.f ? 127.f : v < -128.f ? -128.f : v;
  return (int8_t)(int32_t)(v >= 0.f ? v + 0.5f : v - 0.5f);  // half away from zero
}

// The tile's (rows, W) float tokens in plan->patches -> its final int8
// states (rows, d) in plan->narrow: quantised tokens, input layer onto the
// positions, the blocks and GPT-2's final LN.
OFA_SHARED_STEP void encode(const Tile& t) {
  const ofa_model_int8& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t n = t.n_tokens, d = c.d_model, W = ofa_token_width(&c);
  const int32_t rows = t.n_series * n;
  int32_t* h = t.at<int32_t>(t.plan->hidden);
  int8_t* x8 = t.at<int8_t>(t.plan->narrow);
  const float* patches = t.at<float>(t.plan->patches);
  const float inv_scale = *m.patch_inv_scale;
  for (size_t i = 0; i < (size_t)rows * W; ++i) x8[i] = quantize_patch(patches[i], inv_scale);
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t* p = m.pos + (size_t)(r % n) * d;
    int32_t* hr = h + (size_t)r * d;
    for (int32_t j = 0; j < d; ++j) hr[j] = p[j];
  }
  linear_add_into(t, rows, x8, W, m.in_layer, W, d, h);
  if (c.layout == OFA_LAYOUT_BERT) layer_norm(t, rows, h, m.emb_ln, h, x8);
  for (int32_t i = 0; i < c.n_layers; ++i) transformer_layer(t, m.layers[i]);
  if (c.layout == OFA_LAYOUT_GPT2) layer_norm(t, rows, h, m.final_ln, t.at<int32_t>(t.plan->acc), x8);
}

void run_tile(const Tile& t, const float* x, int32_t first_series, float* y) {
  const ofa_model_int8& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t n = t.n_tokens, C = c.n_channels, P = c.patch_len;
  int32_t* acc = t.at<int32_t>(t.plan->acc);
  int8_t* x8 = t.at<int8_t>(t.plan->narrow);
  float* patches = t.at<float>(t.plan->patches);
  float* mu = t.at<float>(t.plan->stats);
  float* sd = mu + t.n_series;

  const ofa_series_dims sdims = {c.seq_len, C, P, c.stride, n, c.revin_eps};
  for (int32_t s = 0; s < t.n_series; ++s) {
    const int32_t g = first_series + s;
    const int32_t b = g / C, ch = g % C;
    ofa_series_to_patches(&sdims, x + (size_t)b * c.seq_len * C + ch, m.scaler_mean[ch],
                          m.scaler_std[ch], patches + (size_t)s * n * P, &mu[s], &sd[s]);
  }
  encode(t);

  // Head: each series' (N, d) int8 block is its flattened row of N*d.
  const int32_t H = c.horizon;
  int32_t* yh = t.at<int32_t>(t.plan->head_acc);
  if (c.head_rank == 0) {
    head_linear(t, x8, m.head, t.n_series, n, H, yh);
  } else {
    int8_t* low = t.at<int8_t>(t.plan->head_low);
    head_linear(t, x8, m.head_a, t.n_series, n, c.head_rank, yh);
    to_s8(t, t.n_series, c.head_rank, yh, m.head_a.out, low);
    linear(t, t.n_series, low, c.head_rank, m.head_b, c.head_rank, H, yh);
  }

  // Linear path: the window's steps on the patch grid (requantised from the
  // float patches, which are still intact) times int8 W. x8 and acc are free
  // once the head has run.
  const int32_t* lin = acc;
  if (c.linear_path) {
    const int32_t L = c.seq_len;
    const float inv_scale = *m.patch_inv_scale;  // once: the int8 stores below may alias it
    for (int32_t s = 0; s < t.n_series; ++s)
      for (int32_t k = 0; k < L; ++k)
        x8[(size_t)s * L + k] = quantize_patch(patches[(size_t)s * n * P + ofa_patch_offset(&sdims, k)], inv_scale);
    const ofa_gemm_s8_dims dims = t.dims(m.linear, t.n_series, L, L, H);
    t.k->gemm_s8(&dims, x8, t.w(m.linear), nullptr, acc, t.at<void>(t.plan->gemm_scratch));
  }

  for (int32_t s = 0; s < t.n_series; ++s) {
    const int32_t g = first_series + s;
    const int32_t b = g / C, ch = g % C;
    const float mean = m.scaler_mean[ch], std = m.scaler_std[ch];
    for (int32_t k = 0; k < H; ++k) {
      float z = (float)yh[(size_t)s * H + k] * m.head_out_scale[k];
      if (c.linear_path) z = z + (float)lin[(size_t)s * H + k] * m.linear_out_scale[k];
      float v = z * sd[s] + mu[s];
      if (c.linear_path) v = v + m.linear_bias[k];
      y[((size_t)b * H + k) * C + ch] = v * std + mean;
    }
  }
}

// A classifier's tile (engine.cpp's run_tile_classify): whole windows, x
// (batch, C, L). The head runs over each window's tokens (all its
// sequences'), so its int32 sums cover every channel before the one
// dequantisation per logit.
void run_tile_classify(const Tile& t, const float* x, int32_t first_window, float* logits) {
  const ofa_model_int8& m = *t.m;
  const ofa_config& c = m.config;
  const int32_t sequences = ofa_window_sequences(&c), windows = t.n_series / sequences;
  ofa_detail::windows_to_tokens(c, m.scaler_mean, m.scaler_std, x + (size_t)first_window * c.n_channels * c.seq_len,
                                windows, t.n_tokens, t.at<float>(t.plan->patches), t.at<float>(t.plan->staged));
  encode(t);
  const int32_t K = c.n_classes;
  int32_t* acc = t.at<int32_t>(t.plan->head_acc);
  head_linear(t, t.at<int8_t>(t.plan->narrow), m.head, windows, sequences * t.n_tokens, K, acc);
  for (int32_t w = 0; w < windows; ++w)
    for (int32_t k = 0; k < K; ++k)
      logits[(size_t)(first_window + w) * K + k] = (float)acc[(size_t)w * K + k] * m.head_out_scale[k];
}

Tile tile_for(const ofa_model_int8* model, const ofa_kernels_int8* kernels, const ofa_arena_plan_int8* plan,
              void* arena) {
  Tile t;
  t.m = model;
  t.k = kernels ? kernels : &ofa_kernels_int8_scalar;
  t.plan = plan;
  t.base = static_cast<unsigned char*>(arena);
  t.n_tokens = ofa_patch_count(model->config.seq_len, model->config.patch_len, model->config.stride);
  t.n_series = 0;
  t.packed = model->packed_by && t.k->pack_w && model->packed_by == t.k->pack_w;
  return t;
}

}  // namespace

ofa_status ofa_detail::forward_int8_validated(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                              int32_t tile_series, const float* x, int32_t batch,
                                              int32_t first_series, int32_t n_series, float* y, void* arena,
                                              size_t arena_bytes, ofa_arena_rules rules) {
  ofa_status st =
      ofa_detail::check_call(model, OFA_TASK_FORECAST, x, y, arena, batch, tile_series, first_series, n_series);
  if (st != OFA_OK) return st;
  const ofa_config& c = model->config;
  ofa_arena_plan_int8 plan;
  if ((st = ofa_plan_arena_int8(&c, tile_series, rules, &plan)) != OFA_OK) return st;
  if ((st = ofa_detail::check_arena(arena, arena_bytes, plan.total_bytes)) != OFA_OK) return st;

  Tile t = tile_for(model, kernels, &plan, arena);
  ofa_detail::for_each_tile(t, first_series, n_series, tile_series, x, y, run_tile);
  return OFA_OK;
}

ofa_status ofa_detail::classify_int8_validated(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                               int32_t tile_series, const float* x, int32_t batch,
                                               int32_t first_window, int32_t n_windows, float* logits, void* arena,
                                               size_t arena_bytes, ofa_arena_rules rules) {
  ofa_status st =
      ofa_detail::check_call(model, OFA_TASK_CLASSIFY, x, logits, arena, batch, tile_series, first_window, n_windows);
  if (st != OFA_OK) return st;
  const ofa_config& c = model->config;
  ofa_arena_plan_int8 plan;
  if ((st = ofa_plan_arena_int8(&c, tile_series, rules, &plan)) != OFA_OK) return st;
  if ((st = ofa_detail::check_arena(arena, arena_bytes, plan.total_bytes)) != OFA_OK) return st;

  Tile t = tile_for(model, kernels, &plan, arena);
  ofa_detail::for_each_window_tile(t, c, first_window, n_windows, tile_series, x, logits, run_tile_classify);
  return OFA_OK;
}

extern "C" ofa_status ofa_classify_int8_windows_validated(const ofa_model_int8* model,
                                                          const ofa_kernels_int8* kernels, int32_t tile_series,
                                                          const float* x, int32_t batch, int32_t first_window,
                                                          int32_t n_windows, float* logits, void* arena,
                                                          size_t arena_bytes) {
  return ofa_detail::classify_int8_validated(model, kernels, tile_series, x, batch, first_window, n_windows, logits,
                                             arena, arena_bytes, OFA_BUILD_ARENA_RULES);
}

extern "C" ofa_status ofa_classify_int8(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                        int32_t tile_series, const float* x, int32_t batch, float* logits,
                                        void* arena, size_t arena_bytes) {
  ofa_status st = ofa_detail::check_pointers(model, x, logits, arena);
  if (st != OFA_OK) return st;
  if ((st = ofa_validate_model_int8(model)) != OFA_OK) return st;
  return ofa_classify_int8_windows_validated(model, kernels, tile_series, x, batch, 0, batch, logits, arena,
                                             arena_bytes);
}

extern "C" ofa_status ofa_forward_int8_validated(const ofa_model_int8* model,
                                                 const ofa_kernels_int8* kernels, int32_t tile_series,
                                                 const float* x, int32_t batch, float* y, void* arena,
                                                 size_t arena_bytes) {
  return ofa_detail::forward_int8_validated(model, kernels, tile_series, x, batch, y, arena, arena_bytes,
                                            OFA_BUILD_ARENA_RULES);
}

extern "C" ofa_status ofa_forward_int8_series_validated(const ofa_model_int8* model,
                                                        const ofa_kernels_int8* kernels, int32_t tile_series,
                                                        const float* x, int32_t batch, int32_t first_series,
                                                        int32_t n_series, float* y, void* arena,
                                                        size_t arena_bytes) {
  return ofa_detail::forward_int8_validated(model, kernels, tile_series, x, batch, first_series, n_series, y, arena,
                                            arena_bytes, OFA_BUILD_ARENA_RULES);
}

extern "C" ofa_status ofa_forward_int8(const ofa_model_int8* model,
                                       const ofa_kernels_int8* kernels, int32_t tile_series,
                                       const float* x, int32_t batch, float* y, void* arena,
                                       size_t arena_bytes) {
  return ofa_detail::validate_then_forward(ofa_validate_model_int8, ofa_forward_int8_validated, model, kernels,
                                           tile_series, x, batch, y, arena, arena_bytes);
}
