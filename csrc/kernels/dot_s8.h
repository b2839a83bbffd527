// Dot products of one int8 A row against 1 or 4 int8 W rows: the inner loops of the portable GEMM
// (gemm_s8_scalar.cpp). Two formulations, bit-identical because integer sums are exact:
//   plain: one multiply-add per byte;
//   pairs: 4 bytes per load, widened to two int16 pairs (SXTB16) and multiplied-accumulated two at a
//          time (SMLAD). On Cortex-M with the DSP extension (__ARM_FEATURE_DSP: M4, M7, M33+DSP, M55)
//          these are single instructions, and the GEMM uses this form; elsewhere the same steps are
//          spelled in C, so the host's ctest checks the DSP arithmetic against the plain one.
// Sums are exact: |dot| < 2^31 for K <= 2^16 (ofa_validate_model_int8), and so is every partial sum.
#pragma once
#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define OFA_DOT_S8_DSP 1
#else
#define OFA_DOT_S8_DSP 0
#endif

namespace ofa_dot {

inline uint32_t load4(const int8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);  // one LDR on Cortex-M3 and up (unaligned word loads allowed)
  return v;
}

#if OFA_DOT_S8_DSP
inline uint32_t even_pairs(uint32_t x) { return __sxtb16(x); }            // bytes 0, 2 -> int16 x2
inline uint32_t odd_pairs(uint32_t x) {  // bytes 1, 3: SXTB16 with its own ROR #8 (GCC does not fold it)
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
inline int32_t mla_pairs(uint32_t a, uint32_t b, int32_t acc) { return __smlad(a, b, acc); }
#else
inline uint32_t pack16(int32_t lo, int32_t hi) { return (uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16); }
inline uint32_t even_pairs(uint32_t x) { return pack16((int8_t)(x & 0xff), (int8_t)((x >> 16) & 0xff)); }
inline uint32_t odd_pairs(uint32_t x) { return pack16((int8_t)((x >> 8) & 0xff), (int8_t)(x >> 24)); }
inline int32_t mla_pairs(uint32_t a, uint32_t b, int32_t acc) {
  return acc + (int32_t)(int16_t)a * (int16_t)b + (int32_t)(int16_t)(a >> 16) * (int16_t)(b >> 16);
}
#endif

inline void plain_1x4(const int8_t* ar, const int8_t* w0, int32_t ldw, int32_t k, int32_t* sums) {
  const int8_t* w1 = w0 + ldw;
  const int8_t* w2 = w1 + ldw;
  const int8_t* w3 = w2 + ldw;
  int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int32_t p = 0; p < k; ++p) {
    const int32_t av = ar[p];
    s0 += av * w0[p];
    s1 += av * w1[p];
    s2 += av * w2[p];
    s3 += av * w3[p];
  }
  sums[0] = s0; sums[1] = s1; sums[2] = s2; sums[3] = s3;
}

inline int32_t plain_1x1(const int8_t* ar, const int8_t* wr, int32_t k) {
  int32_t s = 0;
  for (int32_t p = 0; p < k; ++p) s += (int32_t)ar[p] * wr[p];
  return s;
}

// Two W rows per pass: the A word is widened once per pass and every value stays in a register
// (a 4-row pass needs 15 registers and spills on Thumb-2).
inline void pairs_1x2(const int8_t* ar, const int8_t* w0, const int8_t* w1, int32_t k, int32_t* sums) {
  int32_t s0 = 0, s1 = 0, p = 0;
  for (; p + 4 <= k; p += 4) {
    const uint32_t aw = load4(ar + p);
    const uint32_t ae = even_pairs(aw), ao = odd_pairs(aw);
    const uint32_t t0 = load4(w0 + p), t1 = load4(w1 + p);
    s0 = mla_pairs(ae, even_pairs(t0), s0);
    s1 = mla_pairs(ae, even_pairs(t1), s1);
    s0 = mla_pairs(ao, odd_pairs(t0), s0);
    s1 = mla_pairs(ao, odd_pairs(t1), s1);
  }
  for (; p < k; ++p) {
    const int32_t av = ar[p];
    s0 += av * w0[p];
    s1 += av * w1[p];
  }
  sums[0] = s0;
  sums[1] = s1;
}

inline void pairs_1x4(const int8_t* ar, const int8_t* w0, int32_t ldw, int32_t k, int32_t* sums) {
  pairs_1x2(ar, w0, w0 + ldw, k, sums);
  pairs_1x2(ar, w0 + 2 * ldw, w0 + 3 * ldw, k, sums + 2);
}

inline int32_t pairs_1x1(const int8_t* ar, const int8_t* wr, int32_t k) {
  int32_t s = 0, p = 0;
  for (; p + 4 <= k; p += 4) {
    const uint32_t aw = load4(ar + p), t = load4(wr + p);
    s = mla_pairs(even_pairs(aw), even_pairs(t), s);
    s = mla_pairs(odd_pairs(aw), odd_pairs(t), s);
  }
  for (; p < k; ++p) s += (int32_t)ar[p] * wr[p];
  return s;
}

}  // namespace ofa_dot
