// Inline requantisation (gemmlowp SaturatingRoundingDoublingHighMul +
// RoundingDivideByPOT) for the per-element loops; int8_ops.cpp exports the
// same functions under the C API. Internal linkage so calls inline instead of
// going through the shared object's PLT.
#pragma once
#include <stdint.h>

namespace ofa_rq {

// n / d rounded half up, for n >= 0, d > 0: the layer norm's and softmax's one division per row.
static inline int64_t div_round(int64_t n, int64_t d) { return (n + d / 2) / d; }

static inline int32_t saturate32(int64_t v) {
  return v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
}

static inline int32_t srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * (int64_t)b;
  const int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));  // truncates toward zero
}

static inline int32_t rdbpot(int32_t x, int32_t exponent) {
  const int64_t mask = ((int64_t)1 << exponent) - 1;
  const int64_t remainder = (int64_t)x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (int32_t)(((int64_t)x >> exponent) + (remainder > threshold ? 1 : 0));
}

static inline int32_t requantize(int32_t x, int32_t mult, int32_t shift) {
  const int32_t left = shift > 0 ? shift : 0;
  const int32_t right = shift > 0 ? 0 : -shift;
  const int32_t shifted = saturate32((int64_t)x * ((int64_t)1 << left));
  return rdbpot(srdhm(shifted, mult), right);
}

// requantize(x, mult, shift) for mult != INT32_MIN as one rounding shift of
// a 64-bit value. A left shift (shift > 0) first saturates x * 2^shift to
// int32, as requantize does; then, with e = max(-shift, 0) and
// p = x * mult + 2^30 (exact in int64), srdhm is floor(p / 2^31) and
// RoundingDivideByPOT of it by 2^e rounds half away from zero; the nested
// floors merge into
//   (p + 2^(e+30) - (p < 0 && e > 0 ? 2^31 : 0)) >> (31 + e)
// (|p + ...| < 2^63). In the form the SIMD kernels use:
//   x = sat32(x << left); q = x * mult + add; q += (q < base ? neg : 0); result = q >> sh.
struct FastRequant {
  int64_t add, base, neg, sh, left;
  static bool applies(int32_t mult) { return mult != INT32_MIN; }
  explicit FastRequant(int32_t shift) {
    const int32_t e = shift < 0 ? -shift : 0;
    base = e > 0 ? (int64_t)1 << (e + 30) : 0;
    add = base + ((int64_t)1 << 30);
    neg = e > 0 ? -((int64_t)1 << 31) : 0;
    sh = 31 + e;
    left = shift > 0 ? shift : 0;
  }
};

// requantize() in 32-bit steps, for scalar code on 32-bit cores. For mult != INT32_MIN, srdhm is
// floor((x * mult + 2^30) / 2^31) for either sign (its nudge and truncation merge into one floor):
// one 32x32->64 multiply, a 64-bit add and a constant shift. RoundingDivideByPOT never needs more
// than 32 bits. About 15 Thumb-2 instructions against about 60 for the int64 form above, with no
// variable 64-bit shift; the same result for every input (the INT32_MIN multiplier, srdhm's
// saturating corner, takes the form above).
static inline int32_t srdhm_floor(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t rdbpot32(int32_t x, int32_t exponent) {
  const uint32_t mask = ((uint32_t)1 << exponent) - 1u;  // exponent 0..31
  const int32_t remainder = (int32_t)((uint32_t)x & mask);
  const int32_t threshold = (int32_t)(mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

static inline int32_t requantize_one_shift(int32_t x, int32_t mult, int32_t shift) {
  if (mult == INT32_MIN) return requantize(x, mult, shift);
  if (shift > 0) return srdhm_floor(saturate32((int64_t)x * ((int64_t)1 << shift)), mult);
  return rdbpot32(srdhm_floor(x, mult), -shift);
}

// sat32(sat32(a + b) + c) and clamp8(sat32(a + b)): the epilogues' saturating adds; QADD and
// SSAT on cores with the DSP extension.
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
static inline int32_t add_sat32(int32_t a, int32_t b) { return __builtin_arm_qadd(a, b); }
static inline int32_t clamp_s8(int32_t v) { return __builtin_arm_ssat(v, 8); }
#else
static inline int32_t add_sat32(int32_t a, int32_t b) { return saturate32((int64_t)a + b); }
static inline int32_t clamp_s8(int32_t v) { return v > 127 ? 127 : v < -128 ? -128 : v; }
#endif

}  // namespace ofa_rq
