// ISA-independent kernels the engine composes (they call the ISA-specific
// ofa_kernels table for their inner GEMM/softmax work).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "ofa/ofa_kernels.h"
#include "ofa/ofa_kernels_int8.h"

struct ofa_series_dims {
  int32_t seq_len;    // L
  int32_t x_stride;   // floats between consecutive time steps (C)
  int32_t patch_len;  // P
  int32_t stride;     // S
  int32_t n_patches;  // N
  float revin_eps;
};

// Scales one series, instance-normalises it and writes its (N, P) patches
// (replication padded at the end). Returns the instance mean/std in *mu/*sd.
void ofa_series_to_patches(const ofa_series_dims* d, const float* x,
                           float scaler_mean, float scaler_std, float* patches,
                           float* mu, float* sd);

// The scaler alone, then the same (N, P) patches: a classifier's global norm
// (OFA_NORM_GLOBAL), which has no instance statistics.
void ofa_series_to_scaled_patches(const ofa_series_dims* d, const float* x, float scaler_mean,
                                  float scaler_std, float* patches);

// Where step t of the normalised window sits in its (N, P) patches: the
// first patch that holds it. Needs stride <= patch_len (the config checks).
inline size_t ofa_patch_offset(const ofa_series_dims* d, int32_t t) {
  int32_t n = t / d->stride;
  if (n > d->n_patches - 1) n = d->n_patches - 1;
  return (size_t)n * d->patch_len + (size_t)(t - n * d->stride);
}

struct ofa_attention_dims {
  int32_t n_tokens;
  int32_t n_heads;
  int32_t head_dim;
  int32_t causal;
};

// One series: qkv (n_tokens, 3d) rows [q | k | v] -> out (n_tokens, d).
// scores: n_tokens^2 floats, v_t: ofa_attention_v_floats(dims) floats,
// gemm_scratch: ofa_attention_gemm_scratch_floats(dims) floats.
void ofa_attention(const ofa_kernels* kern, const ofa_attention_dims* d,
                   const float* qkv, float* out, float* scores, float* v_t,
                   float* gemm_scratch);

size_t ofa_attention_gemm_scratch_floats(const ofa_attention_dims* d);
// One head's V as P V's W: transposed (head_dim, n_tokens), or packed by a
// table's pack_wt into panels of up to OFA_GEMM_N_PAD columns.
size_t ofa_attention_v_floats(const ofa_attention_dims* d);

// The portable table with the Cortex-M DSP GEMM's 2x2 blocked form (gemm_s8_scalar.cpp), on any
// host: the kernel tests run it beside the other tables, so its blocking and tails are checked
// where the SXTB16/SMLAD steps are spelled in C. Not offered by the dispatch.
extern "C" const ofa_kernels_int8 ofa_kernels_int8_pairs;
