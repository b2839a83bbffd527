// Arena layout of the int8 forward pass, shared by the size query and the
// engine. Offsets in bytes from the arena base, each 64-byte aligned.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "ofa/ofa_int8.h"
#include "forward_checks.h"

struct ofa_arena_plan_int8 {
  size_t hidden;     // int32 (R, d) residual stream, R = tile_series * N
  size_t acc;        // int32: GPT-2's pre-LN output (R, d); the head's per-token partial sums and
                     // the linear path's sums (tile_series, max(H, r))
  size_t narrow;     // int8 (R, max(d, W)) GEMM input: tokens (W = ofa_token_width), LN out, context
  size_t wide;       // int8 (R, max(3d, f)) q|k|v, GELU activations
  size_t patches;    // float (R, W) normalised tokens before quantisation
  size_t staged;     // float (C, N, P) one window's patches before joining, joined tokens only (else empty)
  // Attention works on one series at a time. HOST: each series of the tile has
  // its own scores, probs, v_t and attn_scratch (at series s: offset + s *
  // *_stride), so a host may run them at once (parallel_for); MCU: one set,
  // strides 0, and attn_scratch is gemm_scratch.
  size_t scores;     // int32 (score_rows, N) q.k of score_rows queries of one head
  size_t probs;      // int8 (N, N) one head's probabilities
  size_t v_t;        // int8 (head_dim, N) one head's V transposed, or (HOST) packed as P V's W panels
  size_t attn_scratch;  // the attention GEMMs' packing scratch
  size_t scores_stride, probs_stride, v_t_stride, attn_scratch_stride;
  size_t head_acc;   // int32 (tile_series, max(H, r)); a classifier's (windows, K)
  size_t head_low;   // int8 (tile_series, r) factored head intermediate
  size_t stats;      // float (2, tile_series) instance mean / std
  size_t gemm_scratch;  // the largest ofa_gemm_s8_scratch_bytes of any GEMM
  size_t total_bytes;
  int32_t score_rows;   // N (HOST) or min(N, OFA_MCU_SCORE_ROWS) (MCU)
  int32_t v_t_packed;   // HOST: v_t holds a pack_wt layout (OFA_GEMM_S8_NR columns x N rounded to 4)
};

// Assumes a validated config; fails only on tile_series / size overflow.
ofa_status ofa_plan_arena_int8(const ofa_config* cfg, int32_t tile_series, ofa_arena_rules rules,
                               ofa_arena_plan_int8* plan);

namespace ofa_detail {
// ofa_forward_int8_series_validated under given arena rules (the public entries use the build's):
// the host tests run the microcontroller's layout (blocked scores, small GEMM scratch) with it.
ofa_status forward_int8_validated(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                  int32_t tile_series, const float* x, int32_t batch, int32_t first_series,
                                  int32_t n_series, float* y, void* arena, size_t arena_bytes,
                                  ofa_arena_rules rules);
// Over the whole batch.
inline ofa_status forward_int8_validated(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                         int32_t tile_series, const float* x, int32_t batch, float* y, void* arena,
                                         size_t arena_bytes, ofa_arena_rules rules) {
  return forward_int8_validated(model, kernels, tile_series, x, batch, 0, all_series(model, batch), y, arena,
                                arena_bytes, rules);
}
// ofa_classify_int8_windows_validated under given arena rules.
ofa_status classify_int8_validated(const ofa_model_int8* model, const ofa_kernels_int8* kernels,
                                   int32_t tile_series, const float* x, int32_t batch, int32_t first_window,
                                   int32_t n_windows, float* logits, void* arena, size_t arena_bytes,
                                   ofa_arena_rules rules);
}  // namespace ofa_detail
