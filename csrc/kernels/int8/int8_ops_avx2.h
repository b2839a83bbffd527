// AVX2 versions of the int8 path's requantisations (same bits as the portable
// ones); built with per-file target flags, used by the avx2 int8 table only.
// Include only from files built with -mavx2.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "ofa/ofa_kernels_int8.h"

// The first `live` int32 lanes set (any int: <= 0 none, >= 8 all): masks for row and column tails.
inline __m256i first_lanes_avx2(int32_t live) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(live), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// a + b saturated to int32, per lane (the residual adds of the int8 path).
inline __m256i add_saturating_epi32_avx2(__m256i a, __m256i b) {
  const __m256i s = _mm256_add_epi32(a, b);
  const __m256i overflow = _mm256_and_si256(_mm256_xor_si256(a, s), _mm256_xor_si256(b, s));
  const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(a, 31), _mm256_set1_epi32(INT32_MAX));
  // blendv_ps selects by bit 31 of each lane: exactly the overflow flag
  return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(s), _mm256_castsi256_ps(sat),
                                               _mm256_castsi256_ps(overflow)));
}

void ofa_requant_to_s8_avx2(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                            int8_t* out);
void ofa_requant_add_s32_avx2(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int32_t* out);
void ofa_layer_norm_s32_avx2(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                             const int32_t* table, int32_t* y);
void ofa_layer_norm_s32_s8_avx2(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                const int32_t* table, int32_t* y, const int32_t* narrow_table, int8_t* narrow);
void ofa_softmax_s8_avx2(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table, int8_t* probs);
