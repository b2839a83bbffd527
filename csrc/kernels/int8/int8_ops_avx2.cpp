// AVX2 requantisation, lane for lane the same integers as the portable
// ofa_requant_to_s8 / ofa_requant_add_s32 (int8_ops.cpp). AVX2 has no 64-bit
// arithmetic shift, so the high multiply keeps only what it needs: the 32x32
// -> 64-bit products go through vpmuldq on even and odd lanes and bits 31..62
// of (a*b + 2^30) are moved into place with logical shifts, which give the
// same low 32 bits as an arithmetic shift. Column tails run the portable functions.
#include <immintrin.h>

#include "ofa/ofa_kernels_int8.h"
#include "int8_ops_avx2.h"

namespace {

// gemmlowp's SaturatingRoundingDoublingHighMul: floor((a*b + 2^30) / 2^31)
// (its nudge and truncation merge into one floor), INT32_MAX for MIN * MIN.
inline __m256i srdhm(__m256i a, __m256i b) {
  const __m256i nudge = _mm256_set1_epi64x(1 << 30);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), nudge), 31);
  const __m256i odd = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), nudge), 1);
  const __m256i r = _mm256_blend_epi32(even, odd, 0xAA);
  const __m256i min = _mm256_set1_epi32(INT32_MIN);
  const __m256i both_min = _mm256_and_si256(_mm256_cmpeq_epi32(a, min), _mm256_cmpeq_epi32(b, min));
  return _mm256_blendv_epi8(r, _mm256_set1_epi32(INT32_MAX), both_min);
}

// RoundingDivideByPOT by e (0..31 per lane): round half away from zero.
inline __m256i rdbpot(__m256i x, __m256i e) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
  const __m256i remainder = _mm256_and_si256(x, mask);
  // threshold = mask / 2 + (x < 0): cmpgt gives -1 for a negative lane
  const __m256i threshold = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1),
                                             _mm256_cmpgt_epi32(_mm256_setzero_si256(), x));
  return _mm256_sub_epi32(_mm256_srav_epi32(x, e), _mm256_cmpgt_epi32(remainder, threshold));
}

// Saturating x << left (left in 0..30).
inline __m256i shift_left_saturating(__m256i x, __m256i left) {
  const __m256i shifted = _mm256_sllv_epi32(x, left);
  const __m256i kept = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
  const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(x, 31), _mm256_set1_epi32(INT32_MAX));
  return _mm256_blendv_epi8(sat, shifted, kept);
}

inline __m256i requantize(__m256i x, __m256i mult, __m256i shift) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
  // Left shifts (multipliers > 1) are rare: skip the saturating shift when no lane has one.
  if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(shift, zero)))
    x = shift_left_saturating(x, _mm256_max_epi32(shift, zero));
  return rdbpot(srdhm(x, mult), right);
}

struct Params {
  __m256i mult, shift, zp;
};

inline __m256i load8(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// The rows of a requantisation, 8 lanes at a time: store(out + j, v, p) finishes lanes j..j+7. The
// columns past the last full 8 go, for all rows at once, through `portable`: the same function the
// scalar table runs, on the tail's slice of the table.
template <class Out, class Store, class Portable>
void requant_rows(const ofa_requant_dims* d, const int32_t* in, const int32_t* table, Out* out,
                  Store store, Portable portable) {
  const int32_t count = d->count, full = d->cols / 8 * 8;
  const Params one = {_mm256_set1_epi32(table[0]), _mm256_set1_epi32(table[count]),
                      _mm256_set1_epi32(table[2 * count])};
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    Out* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0; j < full; j += 8) {
      const Params p = count == 1 ? one
                                  : Params{load8(table + j), load8(table + count + j), load8(table + 2 * count + j)};
      store(orow + j, requantize(load8(ir + j), p.mult, p.shift), p);
    }
  }
  if (full == d->cols) return;
  const ofa_requant_dims tail = {d->rows, d->cols - full, d->ld_in, d->ld_out, count};
  portable(&tail, in + full, count > 1 ? table + full : table, out + full);  // rows stay `count` apart
}

}  // namespace

void ofa_requant_to_s8_avx2(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                            int8_t* out) {
  requant_rows(
      d, in, table, out,
      [](int8_t* o, __m256i v, const Params& p) {
        v = add_saturating_epi32_avx2(v, p.zp);
        v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-128)), _mm256_set1_epi32(127));
        // byte 0 of each lane, in lane order: pack within each half, then join the halves
        const __m256i bytes = _mm256_shuffle_epi8(
            v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const __m128i joined = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(o), joined);
      },
      ofa_requant_to_s8);
}

void ofa_requant_add_s32_avx2(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int32_t* out) {
  requant_rows(
      d, in, table, out,
      [](int32_t* o, __m256i v, const Params& p) {
        // Same order as the scalar code: saturate(saturate(out + v) + zp).
        const __m256i old = load8(o);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o),
                            add_saturating_epi32_avx2(add_saturating_epi32_avx2(old, v), p.zp));
      },
      ofa_requant_add_s32);
}
