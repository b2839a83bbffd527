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
