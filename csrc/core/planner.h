// Arena layout shared by the planner (size query) and the engine (carving).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "ofa/ofa.h"

// Offsets in floats from the arena base; every region starts 64B aligned.
struct ofa_arena_plan {
  size_t hidden;      // (R, d) residual stream, R = tile_series * N
  size_t normed;      // (R, d) LN output / attention heads concat
  size_t wide;        // (R, max(3d, f, W)) tokens (W = ofa_token_width), qkv, ff hidden
  // Attention works on one series at a time, each with its own set of these
  // three (at series s: offset + s * stride), so a host may run the series of
  // a tile at once (ofa_kernels.parallel_for).
  size_t scores;      // (N, N) one head's attention probabilities
  size_t v_t;         // one head's V as P V's W (ofa_attention_v_floats)
  size_t attn_scratch;  // ofa_attention_gemm_scratch_floats
  size_t scores_stride, v_t_stride, attn_scratch_stride;
  size_t head_low;    // (tile_series, r) factored head intermediate
  size_t head_out;    // (tile_series, H) normalised forecasts
  size_t stats;       // (2, tile_series) instance mean / std
  size_t window;      // (tile_series, L) normalised windows, linear path only (else empty)
  size_t staged;      // (C, N, P) one window's patches before joining, joined tokens only (else empty)
  size_t gemm_scratch;
  size_t total_floats;
};

// Assumes a validated config; fails only on tile_series / size overflow.
ofa_status ofa_plan_arena(const ofa_config* cfg, int32_t tile_series,
                          ofa_arena_plan* plan);
