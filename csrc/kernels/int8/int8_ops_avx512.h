// AVX-512 versions of the elementwise int8-path ops (same bits as the
// portable ones); built with per-file target flags, used by the avx512vnni
// int8 table only. Include only from files built with the AVX-512 flags.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "ofa/ofa_kernels_int8.h"

// a + b saturated to int32, per lane (the residual adds of the int8 path).
inline __m512i add_saturating_epi32(__m512i a, __m512i b) {
  const __m512i s = _mm512_add_epi32(a, b);
  const __m512i overflow = _mm512_and_si512(_mm512_xor_si512(a, s), _mm512_xor_si512(b, s));
  const __mmask16 bad = _mm512_cmplt_epi32_mask(overflow, _mm512_setzero_si512());
  const __mmask16 neg = _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512());
  const __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX),
                                              _mm512_set1_epi32(INT32_MIN));
  return _mm512_mask_mov_epi32(s, bad, sat);
}

void ofa_requant_to_s8_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int8_t* out);
void ofa_requant_add_s32_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                                int32_t* out);
void ofa_layer_norm_s32_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                               const int32_t* table, int32_t* y);
void ofa_softmax_s8_avx512(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table,
                           int8_t* probs);
void ofa_layer_norm_s32_s8_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                  const int32_t* table, int32_t* y, const int32_t* narrow_table,
                                  int8_t* narrow);
void ofa_lut_s8_avx512(const int8_t* lut, int8_t* x, size_t n);
