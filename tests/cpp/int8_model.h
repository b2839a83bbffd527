// A synthetic int8 model for the C++ tests: random int8 weights and random
// but valid quantisation tables (multipliers normalised, shifts chosen so the
// activations stay in range). Exercises every code path, not accuracy.
#pragma once
#include <stdint.h>

#include <random>
#include <vector>

#include "ofa/ofa_int8.h"

struct Int8TestModel {
  ofa_model_int8 model{};
  std::vector<ofa_layer_int8> layers;
  std::vector<std::vector<int8_t>> i8;
  std::vector<std::vector<int32_t>> i32;
  std::vector<std::vector<int64_t>> i64;
  std::vector<std::vector<float>> f32;
  std::mt19937 rng;

  int32_t uniform(int32_t lo, int32_t hi) { return std::uniform_int_distribution<int32_t>(lo, hi)(rng); }

  const int8_t* weights(size_t n) {
    i8.emplace_back(n);
    for (auto& v : i8.back()) v = (int8_t)uniform(-127, 127);
    return i8.back().data();
  }
  const int32_t* ints(size_t n, int32_t lo, int32_t hi) {
    i32.emplace_back(n);
    for (auto& v : i32.back()) v = uniform(lo, hi);
    return i32.back().data();
  }
  // (3, count): multipliers in [2^30, 2^31), shifts in [s_lo, s_hi], zps in [z_lo, z_hi].
  ofa_requant table(int32_t count, int32_t s_lo, int32_t s_hi, int32_t z_lo, int32_t z_hi,
                    bool signed_mult = false) {
    i32.emplace_back((size_t)3 * count);
    auto& t = i32.back();
    for (int32_t i = 0; i < count; ++i) {
      t[i] = uniform(1 << 30, INT32_MAX);
      if (signed_mult && uniform(0, 1)) t[i] = -t[i];
      t[count + i] = uniform(s_lo, s_hi);
      t[2 * count + i] = uniform(z_lo, z_hi);
    }
    return ofa_requant{t.data(), count};
  }
  ofa_linear_int8 linear(int32_t n_out, int32_t k, ofa_requant out) {
    return ofa_linear_int8{weights((size_t)n_out * k), ints(n_out, -2000, 2000), out};
  }
  ofa_layer_norm_int8 layer_norm(int32_t d) {
    i64.push_back({(int64_t)uniform(0, 100)});
    return ofa_layer_norm_int8{i64.back().data(), table(d, -9, -7, -300, 300, true),
                               table(1, -4, -2, -5, 5)};
  }
  const float* floats(size_t n, float v) {
    f32.emplace_back(n, v);
    return f32.back().data();
  }

  explicit Int8TestModel(const ofa_config& c, uint32_t seed = 1) : rng(seed) {
    const int32_t d = c.d_model, f = c.d_ff, n = ofa_n_patches(&c), H = c.horizon;  // H: 0 for a classifier
    i8.reserve(64);
    i32.reserve(256);
    i64.reserve(64);
    f32.reserve(8);
    model.config = c;
    model.patch_inv_scale = floats(1, 20.f);
    // Shifts chosen so every stage's int8 values spread over tens of steps (neither all 0 nor
    // saturated): with the first tables here q, k and v were all 0 and no test saw attention.
    model.in_layer = linear(d, ofa_token_width(&c), table(d, -4, -2, 0, 0));
    model.pos = ints((size_t)n * d, -5000, 5000);
    model.emb_ln = layer_norm(d);
    model.final_ln = layer_norm(d);
    layers.resize(c.n_layers);
    for (auto& l : layers) {
      l.qkv = linear(3 * d, d, table(3 * d, -9, -7, 0, 0));
      l.scores = table(1, -2, 0, 0, 0);
      l.context = table(1, -7, -6, -5, 5);
      l.attn_out = linear(d, d, table(d, -4, -2, 0, 0));
      l.ln1 = layer_norm(d);
      l.ln2 = layer_norm(d);
      l.ff_in = linear(f, d, table(f, -9, -7, -5, 5));
      l.gelu_lut = weights(256);
      l.ff_out = linear(d, f, table(d, -4, -2, 0, 0));
    }
    model.layers = layers.data();
    if (c.head_rank == 0) {
      model.head = linear(ofa_head_outputs(&c), (int32_t)ofa_head_depth(&c), ofa_requant{});  // classify: (K, C*N*d)
    } else {
      model.head_a = linear(c.head_rank, n * d, table(c.head_rank, -16, -14, -5, 5));
      model.head_b = linear(H, c.head_rank, ofa_requant{});
    }
    model.head_out_scale = floats(ofa_head_outputs(&c), 1e-4f);
    model.scaler_mean = floats(c.n_channels, 0.5f);
    model.scaler_std = floats(c.n_channels, 2.f);
  }
};
