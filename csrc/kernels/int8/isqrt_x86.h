// floor(sqrt(v)) for the x86 layer norms: the SSE2 double square root, then corrected to the exact
// integer floor, so it returns what the portable bit-by-bit ofa_isqrt64 returns for every v.
#pragma once
#include <immintrin.h>
#include <stdint.h>

inline int64_t ofa_isqrt64_x86(int64_t v) {
  if (v <= 0) return 0;
  const uint64_t u = (uint64_t)v;
  uint64_t r = (uint64_t)_mm_cvtsd_f64(_mm_sqrt_sd(_mm_setzero_pd(), _mm_set_sd((double)u)));
  while (r * r > u) --r;  // r < 2^32: no overflow
  while ((r + 1) * (r + 1) <= u) ++r;
  return (int64_t)r;
}
