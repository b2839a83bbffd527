// AVX-512 requantisation, lane for lane the same integers as the portable
// ofa_requant_to_s8 / ofa_requant_add_s32 (the unit tests compare them on
// edge cases): the 32x32 -> 64-bit products go through vpmuldq on even and
// odd lanes, the rounding of gemmlowp is rebuilt with shifts and compares.
#include <immintrin.h>

#include "ofa/ofa_kernels_int8.h"
#include "requant_avx512.h"

namespace {

inline __mmask16 tail_mask(int32_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

// (int64) even lanes of a*b + nudge, divided by 2^31 truncating toward zero.
inline __m512i high_mul_even(__m512i a, __m512i b) {
  const __m512i ab = _mm512_mul_epi32(a, b);
  const __mmask8 neg = _mm512_cmplt_epi64_mask(ab, _mm512_setzero_si512());
  const __m512i nudge = _mm512_mask_blend_epi64(neg, _mm512_set1_epi64(1 << 30),
                                                _mm512_set1_epi64(1 - (1 << 30)));
  const __m512i v = _mm512_add_epi64(ab, nudge);
  const __mmask8 vneg = _mm512_cmplt_epi64_mask(v, _mm512_setzero_si512());
  const __m512i bias = _mm512_maskz_mov_epi64(vneg, _mm512_set1_epi64(((int64_t)1 << 31) - 1));
  return _mm512_srai_epi64(_mm512_add_epi64(v, bias), 31);
}

inline __m512i srdhm(__m512i a, __m512i b) {
  const __m512i even = high_mul_even(a, b);
  const __m512i odd = high_mul_even(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(b, 32));
  __m512i r = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
  const __m512i min = _mm512_set1_epi32(INT32_MIN);
  const __mmask16 both_min = _mm512_cmpeq_epi32_mask(a, min) & _mm512_cmpeq_epi32_mask(b, min);
  return _mm512_mask_mov_epi32(r, both_min, _mm512_set1_epi32(INT32_MAX));
}

inline __m512i rdbpot(__m512i x, __m512i e) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
  const __m512i remainder = _mm512_and_si512(x, mask);
  const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
  const __m512i threshold = _mm512_mask_add_epi32(_mm512_srli_epi32(mask, 1), neg,
                                                  _mm512_srli_epi32(mask, 1), one);
  const __mmask16 up = _mm512_cmpgt_epi32_mask(remainder, threshold);
  return _mm512_mask_add_epi32(_mm512_srav_epi32(x, e), up, _mm512_srav_epi32(x, e), one);
}

// Saturating x << left (left in 0..30).
inline __m512i shift_left_saturating(__m512i x, __m512i left) {
  const __m512i shifted = _mm512_sllv_epi32(x, left);
  const __mmask16 lost = _mm512_cmpneq_epi32_mask(_mm512_srav_epi32(shifted, left), x);
  const __mmask16 neg = _mm512_cmplt_epi32_mask(x, _mm512_setzero_si512());
  const __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX),
                                              _mm512_set1_epi32(INT32_MIN));
  return _mm512_mask_mov_epi32(shifted, lost, sat);
}

inline __m512i requantize(__m512i x, __m512i mult, __m512i shift) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i left = _mm512_max_epi32(shift, zero);
  const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
  return rdbpot(srdhm(shift_left_saturating(x, left), mult), right);
}

// a + b saturated to int32.
inline __m512i add_saturating(__m512i a, __m512i b) {
  const __m512i s = _mm512_add_epi32(a, b);
  const __m512i overflow = _mm512_and_si512(_mm512_xor_si512(a, s), _mm512_xor_si512(b, s));
  const __mmask16 bad = _mm512_cmplt_epi32_mask(overflow, _mm512_setzero_si512());
  const __mmask16 neg = _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512());
  const __m512i sat = _mm512_mask_blend_epi32(neg, _mm512_set1_epi32(INT32_MAX),
                                              _mm512_set1_epi32(INT32_MIN));
  return _mm512_mask_mov_epi32(s, bad, sat);
}

struct Params {
  __m512i mult, shift, zp;
};
inline Params params(const int32_t* table, int32_t count, int32_t j, __mmask16 m) {
  if (count == 1)
    return {_mm512_set1_epi32(table[0]), _mm512_set1_epi32(table[1]), _mm512_set1_epi32(table[2])};
  return {_mm512_maskz_loadu_epi32(m, table + j), _mm512_maskz_loadu_epi32(m, table + count + j),
          _mm512_maskz_loadu_epi32(m, table + 2 * count + j)};
}

}  // namespace

void ofa_requant_to_s8_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int8_t* out) {
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    int8_t* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0; j < d->cols; j += 16) {
      const __mmask16 m = tail_mask(d->cols - j);
      const Params p = params(table, d->count, j, m);
      __m512i v = requantize(_mm512_maskz_loadu_epi32(m, ir + j), p.mult, p.shift);
      v = add_saturating(v, p.zp);
      v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
      _mm512_mask_cvtepi32_storeu_epi8(orow + j, m, v);
    }
  }
}

void ofa_requant_add_s32_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                                int32_t* out) {
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    int32_t* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0; j < d->cols; j += 16) {
      const __mmask16 m = tail_mask(d->cols - j);
      const Params p = params(table, d->count, j, m);
      const __m512i v = requantize(_mm512_maskz_loadu_epi32(m, ir + j), p.mult, p.shift);
      // Same order as the scalar code: saturate(saturate(out + v) + zp).
      const __m512i o = _mm512_maskz_loadu_epi32(m, orow + j);
      _mm512_mask_storeu_epi32(orow + j, m, add_saturating(add_saturating(o, v), p.zp));
    }
  }
}
