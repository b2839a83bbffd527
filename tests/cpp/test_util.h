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
