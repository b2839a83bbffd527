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

// The 2x2 block of the Cortex-M DSP GEMM (gemm_s8_scalar.cpp), after CMSIS-NN's
// arm_nn_mat_mult_kernel_s8_s16: two A rows are widened once into `ax` and then reused against
// every pair of W rows, so each W word is widened once for two rows and each A pair feeds two
// SMLADs. Per 4 depths: 2 W loads, 4 SXTB16, 4 A loads and 8 SMLAD for 16 multiply-adds (about
// 1.1 instructions each, against 1.9 for pairs_1x2), with 13 values live: no spills on Thumb-2.
//
// ax layout, per group of 4 depths: {even pairs of a0, odd pairs of a0, even of a1, odd of a1},
// the same pairing SXTB16 / SXTB16 ROR #8 gives W, so no weight re-packing is needed.
inline void widen_pairs_2(const int8_t* a0, const int8_t* a1, int32_t k4, uint32_t* ax) {
  for (int32_t p = 0; p < k4; p += 4, ax += 4) {
    const uint32_t x0 = load4(a0 + p), x1 = load4(a1 + p);
    ax[0] = even_pairs(x0);
    ax[1] = odd_pairs(x0);
    ax[2] = even_pairs(x1);
    ax[3] = odd_pairs(x1);
  }
}

// sums = {a0.w0, a0.w1, a1.w0, a1.w1} over the first k4 depths (k4 a multiple of 4).
struct Sums2x2 {
  int32_t s00, s01, s10, s11;
};

// One group of 4 depths into the 2x2 sums.
inline void pairs_2x2_step(const uint32_t* ax, uint32_t t0, uint32_t t1, Sums2x2& s) {
  const uint32_t w0e = even_pairs(t0), w0o = odd_pairs(t0);
  const uint32_t w1e = even_pairs(t1), w1o = odd_pairs(t1);
  uint32_t av = ax[0];
  s.s00 = mla_pairs(av, w0e, s.s00);
  s.s01 = mla_pairs(av, w1e, s.s01);
  av = ax[1];
  s.s00 = mla_pairs(av, w0o, s.s00);
  s.s01 = mla_pairs(av, w1o, s.s01);
  av = ax[2];
  s.s10 = mla_pairs(av, w0e, s.s10);
  s.s11 = mla_pairs(av, w1e, s.s11);
  av = ax[3];
  s.s10 = mla_pairs(av, w0o, s.s10);
  s.s11 = mla_pairs(av, w1o, s.s11);
}

// sums = {a0.w0, a0.w1, a1.w0, a1.w1} over the first k4 depths (k4 a multiple of 4).
inline void pairs_2x2(const uint32_t* ax, const int8_t* w0, const int8_t* w1, int32_t k4, int32_t* sums) {
  Sums2x2 s = {0, 0, 0, 0};
#if OFA_DOT_S8_DSP
  // The same steps as pairs_2x2_step, two groups per pass, in the registers GCC would not keep
  // them in (its unrolled schedule spills). 14 values live, every register but SP and PC: 4 sums,
  // 3 pointers and the end, W widened in 4, an A row's two pairs in 2. Per group: 2 W loads, 2 A
  // double-word loads, 4 SXTB16 and 8 SMLAD (16 multiply-adds); 2 loop instructions per 2 groups.
  int32_t p = 0;
  const int32_t k8 = k4 & ~7;
  if (k8 > 0) {
    const int8_t* w0_end = w0 + k8;
    uint32_t t0, t1, w0o, w1o, ae, ao;
#define OFA_PAIRS_2X2_GROUP                                             \
  "ldr %[t0], [%[w0]], #4\n\t"                                          \
  "ldr %[t1], [%[w1]], #4\n\t"                                          \
  "sxtb16 %[w0o], %[t0], ror #8\n\t"                                    \
  "sxtb16 %[t0], %[t0]\n\t"                                             \
  "sxtb16 %[w1o], %[t1], ror #8\n\t"                                    \
  "sxtb16 %[t1], %[t1]\n\t"                                             \
  "ldrd %[ae], %[ao], [%[ax]], #8\n\t"                                  \
  "smlad %[s00], %[ae], %[t0], %[s00]\n\t"                              \
  "smlad %[s01], %[ae], %[t1], %[s01]\n\t"                              \
  "smlad %[s00], %[ao], %[w0o], %[s00]\n\t"                             \
  "smlad %[s01], %[ao], %[w1o], %[s01]\n\t"                             \
  "ldrd %[ae], %[ao], [%[ax]], #8\n\t"                                  \
  "smlad %[s10], %[ae], %[t0], %[s10]\n\t"                              \
  "smlad %[s11], %[ae], %[t1], %[s11]\n\t"                              \
  "smlad %[s10], %[ao], %[w0o], %[s10]\n\t"                             \
  "smlad %[s11], %[ao], %[w1o], %[s11]\n\t"
    __asm__ volatile(
        "1:\n\t" OFA_PAIRS_2X2_GROUP OFA_PAIRS_2X2_GROUP
        "cmp %[w0], %[end]\n\t"
        "bne 1b\n\t"
        : [s00] "+r"(s.s00), [s01] "+r"(s.s01), [s10] "+r"(s.s10), [s11] "+r"(s.s11), [ax] "+r"(ax),
          [w0] "+r"(w0), [w1] "+r"(w1), [t0] "=&r"(t0), [t1] "=&r"(t1), [w0o] "=&r"(w0o), [w1o] "=&r"(w1o),
          [ae] "=&r"(ae), [ao] "=&r"(ao)
        : [end] "r"(w0_end)
        : "cc", "memory");
#undef OFA_PAIRS_2X2_GROUP
    p = k8;
  }
  if (p < k4) pairs_2x2_step(ax, load4(w0), load4(w1), s);  // the pointers have moved past k8
#else
  for (int32_t p = 0; p < k4; p += 4, ax += 4) pairs_2x2_step(ax, load4(w0 + p), load4(w1 + p), s);
#endif
  sums[0] = s.s00;
  sums[1] = s.s01;
  sums[2] = s.s10;
  sums[3] = s.s11;
}

}  // namespace ofa_dot
