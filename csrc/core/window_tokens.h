// A classifier's windows -> the float tokens its input layer reads: the one
// place config.tokens is laid out, shared by the fp32 and int8 engines.
#pragma once
#include <stdint.h>

#include "kernels/core_kernels.h"
#include "ofa/ofa.h"

namespace ofa_detail {

// Windows [0, windows) at x (each (C, L), channel after channel, data units)
// -> tokens (windows * ofa_window_sequences, N, ofa_token_width). Each channel
// is scaled (norm GLOBAL) or instance-normalised and cut into N patches of P
// (the instance statistics are not kept: a classifier's output is logits).
// CHANNEL tokens: channel c's patches are sequence c of its window. JOINED:
// token n of a window's one sequence holds value p*C + c = patch n of channel
// c, step p, gathered from `staged` ((C, N, P) floats, one window at a time).
inline void windows_to_tokens(const ofa_config& c, const float* scaler_mean, const float* scaler_std,
                              const float* x, int32_t windows, int32_t n, float* tokens, float* staged) {
  const int32_t C = c.n_channels, L = c.seq_len, P = c.patch_len;
  const bool joined = c.tokens == OFA_TOKENS_JOINED;
  const ofa_series_dims sdims = {L, 1, P, c.stride, n, c.revin_eps};
  for (int32_t w = 0; w < windows; ++w) {
    float* window_tokens = tokens + (size_t)w * C * n * P;  // C*n*P floats a window either way
    float* out = joined ? staged : window_tokens;
    for (int32_t ch = 0; ch < C; ++ch) {
      const float* series = x + ((size_t)w * C + ch) * L;
      float* patches = out + (size_t)ch * n * P;
      if (c.norm == OFA_NORM_GLOBAL) {
        ofa_series_to_scaled_patches(&sdims, series, scaler_mean[ch], scaler_std[ch], patches);
      } else {
        float mu, sd;
        ofa_series_to_patches(&sdims, series, scaler_mean[ch], scaler_std[ch], patches, &mu, &sd);
      }
    }
    if (!joined) continue;
    for (int32_t tok = 0; tok < n; ++tok)
      for (int32_t p = 0; p < P; ++p)
        for (int32_t ch = 0; ch < C; ++ch)
          window_tokens[((size_t)tok * P + p) * C + ch] = staged[((size_t)ch * n + tok) * P + p];
  }
}

}  // namespace ofa_detail
