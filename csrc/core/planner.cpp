// Arena planner: the exact scratch the engine needs for one tile of series.
#include "planner.h"

#include "kernels/core_kernels.h"

namespace {
constexpr uint64_t kAlignFloats = OFA_ARENA_ALIGN / sizeof(float);
constexpr int64_t kMaxTileRows = 1 << 24;

uint64_t round_up(uint64_t v) { return (v + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
uint64_t max2(uint64_t a, uint64_t b) { return a > b ? a : b; }

// Carves regions in order, each rounded to the alignment.
struct Carver {
  uint64_t next = 0;
  size_t take(uint64_t floats) {
    const uint64_t at = next;
    next += round_up(floats);
    return (size_t)at;
  }
};
}  // namespace

ofa_status ofa_plan_arena(const ofa_config* c, int32_t tile_series, ofa_arena_plan* p) {
  if (tile_series <= 0) return OFA_ERR_BAD_BATCH;
  const uint64_t n = (uint64_t)ofa_patch_count(c->seq_len, c->patch_len, c->stride);
  const uint64_t d = (uint64_t)c->d_model, f = (uint64_t)c->d_ff;
  const uint64_t hd = d / (uint64_t)c->n_heads;
  const uint64_t r = (uint64_t)c->head_rank, h = (uint64_t)ofa_head_outputs(c);
  const uint64_t t = (uint64_t)ofa_tile_series(c, tile_series);
  if ((int64_t)(t * n) > kMaxTileRows) return OFA_ERR_BAD_BATCH;
  const uint64_t rows = t * n;

  // Largest packing scratch over every GEMM the forward pass issues.
  const int32_t di = c->d_model, fi = c->d_ff, ni = (int32_t)n;
  const int32_t flat = (int32_t)ofa_head_depth(c);
  const uint64_t width = (uint64_t)ofa_token_width(c);
  uint64_t gs = ofa_gemm_scratch_floats((int32_t)width, di);
  gs = max2(gs, ofa_gemm_scratch_floats(di, 3 * di));
  gs = max2(gs, ofa_gemm_scratch_floats(di, di));
  gs = max2(gs, ofa_gemm_scratch_floats(di, fi));
  gs = max2(gs, ofa_gemm_scratch_floats(fi, di));
  const ofa_attention_dims ad = {ni, c->n_heads, (int32_t)hd, 0};
  if (c->head_rank == 0) {
    gs = max2(gs, ofa_gemm_scratch_floats(flat, (int32_t)h));
  } else {
    gs = max2(gs, ofa_gemm_scratch_floats(flat, c->head_rank));
    gs = max2(gs, ofa_gemm_scratch_floats(c->head_rank, c->horizon));
  }
  if (c->linear_path) gs = max2(gs, ofa_gemm_scratch_floats(c->seq_len, c->horizon));

  Carver cv;
  p->hidden = cv.take(rows * d);
  p->normed = cv.take(rows * d);
  p->wide = cv.take(rows * max2(max2(3 * d, f), width));
  p->scores_stride = (size_t)round_up(n * n);
  p->v_t_stride = (size_t)round_up(ofa_attention_v_floats(&ad));
  p->attn_scratch_stride = (size_t)round_up(ofa_attention_gemm_scratch_floats(&ad));
  p->scores = cv.take(t * p->scores_stride);
  p->v_t = cv.take(t * p->v_t_stride);
  p->attn_scratch = cv.take(t * p->attn_scratch_stride);
  p->head_low = cv.take(t * r);
  p->head_out = cv.take(t * h);
  p->stats = cv.take(2 * t);
  p->window = cv.take(c->linear_path ? t * (uint64_t)c->seq_len : 0);
  p->staged = cv.take(c->tokens == OFA_TOKENS_JOINED ? (uint64_t)c->n_channels * n * c->patch_len : 0);
  p->gemm_scratch = cv.take(gs);
  // The last region is not padded: the planned size is exactly what is used.
  const uint64_t total = (uint64_t)p->gemm_scratch + gs;
  if (total > (uint64_t)(SIZE_MAX / sizeof(float))) return OFA_ERR_BAD_BATCH;
  if (total * sizeof(float) > (uint64_t)OFA_MAX_ARENA_BYTES) return OFA_ERR_ARENA_TOO_LARGE;
  p->total_floats = (size_t)total;
  return OFA_OK;
}

extern "C" ofa_status ofa_arena_bytes(const ofa_config* cfg, int32_t tile_series,
                                      size_t* out_bytes) {
  if (!cfg || !out_bytes) return OFA_ERR_NULL_ARG;
  const ofa_status st = ofa_validate_config(cfg);
  if (st != OFA_OK) return st;
  ofa_arena_plan plan;
  const ofa_status ps = ofa_plan_arena(cfg, tile_series, &plan);
  if (ps != OFA_OK) return ps;
  *out_bytes = plan.total_floats * sizeof(float);
  return OFA_OK;
}
