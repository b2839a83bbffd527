// Helium (MVE, Cortex-M55/M85) steps of the int8 path, four int32 lanes at a time, each with the
// bits of its scalar twin in requant_inline.h (the QEMU Cortex-M55 demo checks them bit for bit
// against the host). Only Cortex-M builds with __ARM_FEATURE_MVE include this.
#pragma once
#include <arm_mve.h>
#include <stdint.h>

namespace ofa_mve {

// requantize_one_shift(x, mult, shift) per lane, for mult != INT32_MIN (callers check):
//   left shift: VQSHL saturates x * 2^shift as saturate32 does;
//   srdhm_floor: VQRDMULH is (2ab + 2^31) >> 32 = floor((ab + 2^30) / 2^31), saturating only
//   for INT32_MIN * INT32_MIN;
//   rdbpot32 (half away from zero): VRSHL rounds half up, so a negative value is first lowered by
//   one (saturating; INT32_MIN divides exactly either way): floor((s - 1 + 2^(e-1)) / 2^e) is
//   the away-from-zero rounding for every s < 0.
inline int32x4_t requant4(int32x4_t x, int32x4_t mult, int32x4_t shift) {
  const int32x4_t zero = vdupq_n_s32(0);
  const int32x4_t e = vmaxq_s32(vnegq_s32(shift), zero);
  int32x4_t s = vqrdmulhq_s32(vqshlq_s32(x, vmaxq_s32(shift, zero)), mult);
  const mve_pred16_t lower = vcmpltq_n_s32(s, 0) & vcmpgtq_n_s32(e, 0);
  s = vqsubq_m_n_s32(s, s, 1, lower);
  return vrshlq_s32(s, vnegq_s32(e));
}

inline int32x4_t clamp_s8(int32x4_t v) { return vmaxq_s32(vminq_s32(v, vdupq_n_s32(127)), vdupq_n_s32(-128)); }

// The table's (mult, shift, zp) of columns j..j+3: per channel (step 1) or one set (step 0).
struct Requant4 {
  int32x4_t mult, shift, zp;
};
inline Requant4 requant_params(const int32_t* mult, const int32_t* shift, const int32_t* zp, int32_t j,
                               int32_t step) {
  if (step) return {vld1q_s32(mult + j), vld1q_s32(shift + j), vld1q_s32(zp + j)};
  return {vdupq_n_s32(mult[0]), vdupq_n_s32(shift[0]), vdupq_n_s32(zp[0])};
}

inline bool any_int32_min(const int32_t* mult, int32_t count) {
  for (int32_t j = 0; j < count; ++j)
    if (mult[j] == INT32_MIN) return true;
  return false;
}

}  // namespace ofa_mve
