// Shared helpers for the C++ tests: deterministic random data and the list
// of kernel variants this machine can run.
#pragma once
#include <stdint.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ofa/ofa.h"

// The small model shapes the C++ tests build their configs from, so a change of convention (the GELU or
// eps a layout takes) is made once.
struct TestShape {
  int32_t d_model, n_heads, d_ff, n_layers, seq_len, patch_len, stride, n_channels;
};
// d 20, 4 heads, 6 patches (seq_len 23, patch 6, stride 4: N = 17 / 4 + 2), 3 channels.
constexpr TestShape kSmallShape = {20, 4, 36, 2, 23, 6, 4, 3};
// Wide enough for the SIMD blocks to have full and tail parts (d 40, 2 heads of 20, N = 32 / 4 + 2 = 10).
constexpr TestShape kHostShape = {40, 2, 72, 2, 40, 8, 4, 3};

// A forecaster's config of that shape (horizon 0: set a classifier's task instead); the layout picks the
// GELU (BERT erf, GPT-2 tanh).
inline ofa_config test_config(const TestShape& s, int layout, int32_t horizon, float ln_eps) {
  ofa_config c{};
  c.layout = layout;
  c.d_model = s.d_model;
  c.n_heads = s.n_heads;
  c.d_ff = s.d_ff;
  c.n_layers = s.n_layers;
  c.seq_len = s.seq_len;
  c.patch_len = s.patch_len;
  c.stride = s.stride;
  c.horizon = horizon;
  c.n_channels = s.n_channels;
  c.gelu = layout == OFA_LAYOUT_BERT ? OFA_GELU_ERF : OFA_GELU_TANH;
  c.ln_eps = ln_eps;
  c.revin_eps = 1e-5f;
  return c;
}

inline std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.f,
                                     float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// All variants the library knows about; tests skip the ones the CPU lacks.
inline std::vector<std::string> all_variant_names() { return {"scalar", "avx2", "avx512"}; }

#define OFA_REQUIRE_VARIANT(kern, name)                                  \
  const ofa_kernels* kern = ofa_kernels_by_name((name).c_str());         \
  if (!kern) GTEST_SKIP() << (name) << " not built or not supported here"

// Arena inside a larger buffer, with guard bytes on both sides.
struct GuardedArena {
  static constexpr size_t kGuard = 256;
  static constexpr unsigned char kPattern = 0xA5;
  std::vector<unsigned char> buf;
  unsigned char* arena;
  size_t bytes;
  explicit GuardedArena(size_t n) : buf(n + 2 * kGuard + OFA_ARENA_ALIGN, kPattern), bytes(n) {
    size_t off = kGuard;
    while ((uintptr_t)(buf.data() + off) % OFA_ARENA_ALIGN) ++off;
    arena = buf.data() + off;
  }
  bool guards_intact() const {
    for (const unsigned char* p = buf.data(); p < arena; ++p)
      if (*p != kPattern) return false;
    for (const unsigned char* p = arena + bytes; p < buf.data() + buf.size(); ++p)
      if (*p != kPattern) return false;
    return true;
  }
  bool arena_untouched() const {
    for (size_t i = 0; i < bytes; ++i)
      if (arena[i] != kPattern) return false;
    return true;
  }
};
