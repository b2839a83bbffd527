// 8-lane float vector ops for AVX2+FMA; included only by avx2.cpp, which is
// compiled with -mavx2 -mfma. All static inline: see vec_avx512.h.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace ofa_avx2 {

struct Vec {
  static constexpr int W = 8;
  using reg = __m256;
  using mask = __m256i;
  using idx = __m256i;

  static inline reg zero() { return _mm256_setzero_ps(); }
  static inline reg set1(float v) { return _mm256_set1_ps(v); }
  static inline reg load(const float* p) { return _mm256_loadu_ps(p); }
  static inline void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static inline mask tail(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static inline reg load_m(const float* p, mask m) { return _mm256_maskload_ps(p, m); }
  static inline void store_m(float* p, mask m, reg v) { _mm256_maskstore_ps(p, m, v); }
  static inline reg fmadd(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static inline reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static inline reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static inline reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
  static inline reg div(reg a, reg b) { return _mm256_div_ps(a, b); }
  static inline reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static inline reg min(reg a, reg b) { return _mm256_min_ps(a, b); }
  static inline reg abs(reg a) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a);
  }
  static inline reg round(reg a) {
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  static inline reg pow2n(reg n) {
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static inline reg select_m(mask m, reg a, reg b) {
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(m));
  }
  static inline reg select_nonneg(reg x, reg a, reg b) {
    reg ge = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_blendv_ps(b, a, ge);
  }
  static inline float reduce_add(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline float reduce_max(reg v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static inline idx lane_offsets(int32_t stride) {
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                              _mm256_set1_epi32(stride));
  }
  static inline reg gather_m(const float* base, idx offs, mask m) {
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, offs,
                                    _mm256_castsi256_ps(m), 4);
  }
};

}  // namespace ofa_avx2
