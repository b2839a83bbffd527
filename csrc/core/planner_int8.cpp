// Arena planner of the int8 path: the exact bytes one tile of series needs.
#include "planner_int8.h"

namespace {
constexpr uint64_t kAlign = OFA_ARENA_ALIGN;
constexpr int64_t kMaxTileRows = 1 << 24;

uint64_t round_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }
uint64_t max2(uint64_t a, uint64_t b) { return a > b ? a : b; }

struct Carver {
  uint64_t next = 0, last_end = 0;
  size_t take(uint64_t bytes) {
    const uint64_t at = next;
    last_end = at + bytes;
    next = round_up(last_end);
    return (size_t)at;
  }
};
}  // namespace

ofa_status ofa_plan_arena_int8(const ofa_config* c, int32_t tile_series, ofa_arena_rules rules,
                               ofa_arena_plan_int8* p) {
  if (rules != OFA_ARENA_HOST && rules != OFA_ARENA_MCU) return OFA_ERR_BAD_CONFIG;
  if (tile_series <= 0) return OFA_ERR_BAD_BATCH;
  const uint64_t n = (uint64_t)ofa_patch_count(c->seq_len, c->patch_len, c->stride);
  const uint64_t d = (uint64_t)c->d_model, f = (uint64_t)c->d_ff, P = (uint64_t)c->patch_len;
  const uint64_t hd = d / (uint64_t)c->n_heads;
  const uint64_t r = (uint64_t)c->head_rank, h = (uint64_t)ofa_head_outputs(c);
  const uint64_t t = (uint64_t)ofa_tile_series(c, tile_series);
  if ((int64_t)(t * n) > kMaxTileRows) return OFA_ERR_BAD_BATCH;
  const uint64_t rows = t * n;
  const uint64_t wide = max2(3 * d, f);
  const bool mcu = rules == OFA_ARENA_MCU;
  p->score_rows = (int32_t)(mcu && n > OFA_MCU_SCORE_ROWS ? OFA_MCU_SCORE_ROWS : n);
  size_t (*gemm_scratch_bytes)(int32_t) = mcu ? ofa_gemm_s8_scratch_bytes_mcu : ofa_gemm_s8_scratch_bytes;

  Carver cv;
  p->hidden = cv.take(rows * d * 4);
  // The fused GEMM epilogues write int8 or add into hidden, so acc holds only GPT-2's pre-LN
  // output and the head's and linear path's sums.
  const uint64_t pre_ln = c->layout == OFA_LAYOUT_GPT2 ? rows * d : 0;
  p->acc = cv.take(max2(pre_ln, t * max2(h, r)) * 4);
  const uint64_t W = (uint64_t)ofa_token_width(c);  // a token's values (P, or P*C joined)
  p->narrow = cv.take(rows * max2(d, W));
  p->wide = cv.take(rows * wide);
  p->patches = cv.take(rows * W * 4);
  p->staged = cv.take(c->tokens == OFA_TOKENS_JOINED ? (uint64_t)c->n_channels * n * P * 4 : 0);
  // HOST: V may be packed (pack_wt) into OFA_GEMM_S8_NR-column panels of N rounded up to 4 depths.
  p->v_t_packed = !mcu;
  const uint64_t v_packed = (hd + OFA_GEMM_S8_NR - 1) / OFA_GEMM_S8_NR * OFA_GEMM_S8_NR * ((n + 3) / 4 * 4);
  const uint64_t sets = mcu ? 1 : t;  // attention buffer sets: one per series of the tile on a host
  p->scores_stride = mcu ? 0 : (size_t)round_up((uint64_t)p->score_rows * n * 4);
  p->probs_stride = mcu ? 0 : (size_t)round_up(n * n);
  const uint64_t v_bytes = mcu ? hd * n : max2(hd * n, v_packed);
  p->v_t_stride = mcu ? 0 : (size_t)round_up(v_bytes);
  const uint64_t attn_gs = max2(gemm_scratch_bytes((int32_t)hd), gemm_scratch_bytes((int32_t)n));
  p->attn_scratch_stride = mcu ? 0 : (size_t)round_up(attn_gs);
  p->scores = cv.take(mcu ? (uint64_t)p->score_rows * n * 4 : sets * p->scores_stride);
  p->probs = cv.take(mcu ? n * n : sets * p->probs_stride);
  p->v_t = cv.take(mcu ? v_bytes : sets * p->v_t_stride);
  p->attn_scratch = mcu ? 0 : cv.take(sets * p->attn_scratch_stride);
  p->head_acc = cv.take(t * max2(h, r) * 4);
  p->head_low = cv.take(t * r);
  p->stats = cv.take(2 * t * 4);
  // Every GEMM depth: W, d, f, head_dim, N (probabilities . V) and r. The
  // head (depth N*d) runs token by token at depth d, see engine_int8.cpp.
  uint64_t gs = 0;
  const int32_t depths[] = {(int32_t)W, c->d_model, c->d_ff, (int32_t)hd, (int32_t)n,
                            c->head_rank};
  for (int32_t k : depths) gs = max2(gs, gemm_scratch_bytes(k));
  if (c->linear_path) gs = max2(gs, gemm_scratch_bytes(c->seq_len));
  p->gemm_scratch = cv.take(gs);
  if (mcu) p->attn_scratch = p->gemm_scratch;
  // The last region is not padded: the planned size is exactly what is used.
  if (cv.last_end > (uint64_t)SIZE_MAX) return OFA_ERR_BAD_BATCH;
  if (cv.last_end > (uint64_t)OFA_MAX_ARENA_BYTES) return OFA_ERR_ARENA_TOO_LARGE;
  p->total_bytes = (size_t)cv.last_end;
  return OFA_OK;
}

extern "C" ofa_status ofa_arena_bytes_int8(const ofa_config* cfg, int32_t tile_series,
                                           size_t* out_bytes) {
  return ofa_arena_bytes_int8_for(cfg, tile_series, OFA_BUILD_ARENA_RULES, out_bytes);
}

extern "C" ofa_status ofa_arena_bytes_int8_for(const ofa_config* cfg, int32_t tile_series,
                                               ofa_arena_rules rules, size_t* out_bytes) {
  if (!cfg || !out_bytes) return OFA_ERR_NULL_ARG;
  const ofa_status st = ofa_validate_config(cfg);
  if (st != OFA_OK) return st;
  ofa_arena_plan_int8 plan;
  const ofa_status ps = ofa_plan_arena_int8(cfg, tile_series, rules, &plan);
  if (ps != OFA_OK) return ps;
  *out_bytes = plan.total_bytes;
  return OFA_OK;
}
