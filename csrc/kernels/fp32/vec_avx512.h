// 16-lane float vector ops for AVX-512F; included only by avx512.cpp, which is
// compiled with -mavx512f -mfma. Everything is static inline so no symbol can
// leak to (and be picked up by) a TU built for a lesser ISA.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace ofa_avx512 {

struct Vec {
  static constexpr int W = 16;
  using reg = __m512;
  using mask = __mmask16;
  using idx = __m512i;

  static inline reg zero() { return _mm512_setzero_ps(); }
  static inline reg set1(float v) { return _mm512_set1_ps(v); }
  static inline reg load(const float* p) { return _mm512_loadu_ps(p); }
  static inline void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static inline mask tail(int n) {
    return (mask)(n >= W ? 0xFFFFu : ((1u << n) - 1u));
  }
  static inline reg load_m(const float* p, mask m) {
    return _mm512_maskz_loadu_ps(m, p);
  }
  static inline void store_m(float* p, mask m, reg v) {
    _mm512_mask_storeu_ps(p, m, v);
  }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
  static inline reg div(reg a, reg b) { return _mm512_div_ps(a, b); }
  static inline reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static inline reg min(reg a, reg b) { return _mm512_min_ps(a, b); }
  static inline reg abs(reg a) { return _mm512_abs_ps(a); }
  static inline reg round(reg a) {
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // 2^n for integral n in [-126, 127].
  static inline reg pow2n(reg n) {
    __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static inline reg select_m(mask m, reg a, reg b) { return _mm512_mask_blend_ps(m, b, a); }
  // a where x >= 0, else b.
  static inline reg select_nonneg(reg x, reg a, reg b) {
    mask ge = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_blend_ps(ge, b, a);
  }
  static inline float reduce_add(reg v) { return _mm512_reduce_add_ps(v); }
  static inline float reduce_max(reg v) { return _mm512_reduce_max_ps(v); }
  static inline idx lane_offsets(int32_t stride) {
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(stride));
  }
  // lane j = base[offs[j]] for lanes in m, 0 elsewhere.
  static inline reg gather_m(const float* base, idx offs, mask m) {
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, offs, base, 4);
  }
};

}  // namespace ofa_avx512
