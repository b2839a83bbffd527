// AVX2 requantisation, layer norm and softmax, lane for lane the same integers
// as the portable ofa_requant_to_s8 / _add_s32, ofa_layer_norm_s32(_s8) and
// ofa_softmax_s8 (int8_ops.cpp). AVX2 has no 64-bit
// arithmetic shift, so the high multiply keeps only what it needs: the 32x32
// -> 64-bit products go through vpmuldq on even and odd lanes and bits 31..62
// of (a*b + 2^30) are moved into place with logical shifts, which give the
// same low 32 bits as an arithmetic shift. Requantisation column tails run the
// portable functions.
#include <immintrin.h>

#include "ofa/ofa_kernels_int8.h"
#include "iexp_q10.h"
#include "int8_ops_avx2.h"
#include "isqrt_x86.h"
#include "requant_inline.h"

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

inline __m256i clamp_s8(__m256i v) {
  return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-128)), _mm256_set1_epi32(127));
}

// Byte 0 of the first `count` (1..8) lanes, values already in int8 range, stored in lane order.
inline void store_s8(int8_t* o, __m256i v, int32_t count) {
  // pack within each 128-bit half, then join the halves
  const __m256i bytes = _mm256_shuffle_epi8(
      v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
  const __m128i joined = _mm_unpacklo_epi32(_mm256_castsi256_si128(bytes), _mm256_extracti128_si256(bytes, 1));
  if (count >= 8) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o), joined);
    return;
  }
  alignas(16) int8_t lanes[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), joined);
  for (int32_t i = 0; i < count; ++i) o[i] = lanes[i];
}

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
        store_s8(o, clamp_s8(v), 8);
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

// ---- layer norm and softmax ------------------------------------------------
// Row by row, 8 lanes at a time; a row's tail runs in the same loop with masked loads and stores.
// The steps are the portable code's 32-bit ones (ln_row / ln_apply_row<true>, ofa_softmax_s8), and a
// layer-norm row outside their range (a spread of 2^31 or more, or inv >= 2^31) goes whole to the
// portable function.

namespace {

using namespace ofa_iexp;

// Lanes [0, live) of p; the masked forms only for a row's tail (AMD microcodes masked stores).
inline __m256i load_first(const int32_t* p, int32_t live) {
  return live >= 8 ? load8(p) : _mm256_maskload_epi32(p, first_lanes_avx2(live));
}
inline void store_first(int32_t* p, __m256i v, int32_t live) {
  if (live >= 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  else
    _mm256_maskstore_epi32(p, first_lanes_avx2(live), v);
}

inline int64_t sum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// Sign-extended sum of 8 int32 lanes into 4 int64 lanes.
inline __m256i add_widened(__m256i acc, __m256i v) {
  acc = _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)));
  return _mm256_add_epi64(acc, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(v, 1)));
}

template <class Op>
inline int32_t reduce_epi32(__m256i v, Op op) {
  __m128i r = op(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  r = op(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(1, 0, 3, 2)));
  r = op(r, _mm_shuffle_epi32(r, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(r);
}

// floor((a * b + 2^31) / 2^32) per lane for products that fit int64 and results that fit int32:
// the high dword of the rounded 64-bit product, on even and odd lanes.
inline __m256i mul_round_high(__m256i a, __m256i b) {
  const __m256i round = _mm256_set1_epi64x((int64_t)1 << 31);
  const __m256i even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, b), round), 32);
  const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(b, 32)), round);
  return _mm256_blend_epi32(even, odd, 0xAA);
}

template <bool kNarrow>
void layer_norm_rows(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps, const int32_t* table,
                     int32_t* y, const int32_t* narrow_table, int8_t* narrow) {
  const int32_t n = d->dim;
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  const int32_t* beta = table + 2 * n;
  const __m256i vn = _mm256_set1_epi32(n);
  for (int32_t r = 0; r < d->rows; ++r) {
    const size_t at = (size_t)r * d->ld;
    const int32_t* xr = x + at;
    int32_t* yr = y + at;
    // sum, min and max in one pass: max |n x - sum| is at the smallest or largest x
    __m256i acc = _mm256_setzero_si256();
    __m256i lo = _mm256_set1_epi32(INT32_MAX), hi = _mm256_set1_epi32(INT32_MIN);
    for (int32_t j = 0; j < n; j += 8) {
      const __m256i m = first_lanes_avx2(n - j);
      const __m256i v = load_first(xr + j, n - j);  // off lanes read 0
      acc = add_widened(acc, v);
      lo = _mm256_min_epi32(lo, _mm256_blendv_epi8(lo, v, m));
      hi = _mm256_max_epi32(hi, _mm256_blendv_epi8(hi, v, m));
    }
    const int64_t sum = sum_epi64(acc);
    const int64_t up = (int64_t)n * reduce_epi32(hi, _mm_max_epi32) - sum;
    const int64_t down = sum - (int64_t)n * reduce_epi32(lo, _mm_min_epi32);
    const int64_t max_abs = up > down ? up : down;
    int64_t inv = 0;
    int32_t sh = 0;
    if (max_abs < ((int64_t)1 << 31)) {  // |n x - sum| fits int32: the wrapped 32-bit difference is exact
      while ((max_abs >> sh) >= ((int64_t)1 << 22)) ++sh;
      const __m128i shc = _mm_cvtsi32_si128(sh);
      const __m256i sum_lo = _mm256_set1_epi32((int32_t)(uint32_t)sum);
      acc = _mm256_setzero_si256();
      for (int32_t j = 0; j < n; j += 8) {
        const __m256i m = first_lanes_avx2(n - j);
        const __m256i v = load_first(xr + j, n - j);
        const __m256i t = _mm256_and_si256(_mm256_sra_epi32(_mm256_sub_epi32(_mm256_mullo_epi32(v, vn), sum_lo), shc), m);
        const __m256i t_odd = _mm256_srli_epi64(t, 32);
        acc = _mm256_add_epi64(acc, _mm256_add_epi64(_mm256_mul_epi32(t, t), _mm256_mul_epi32(t_odd, t_odd)));
      }
      int64_t root = ofa_isqrt64_x86(sum_epi64(acc) + (eps >> (2 * sh)));
      if (root == 0) root = 1;  // a constant row: every t is 0, output = beta
      inv = ofa_rq::div_round((int64_t)1 << 46, root);
    }
    if (inv == 0 || inv >= ((int64_t)1 << 31)) {  // outside the 32-bit steps: the portable row
      const ofa_layer_norm_s32_dims one = {1, n, d->ld};
      if (kNarrow)
        ofa_layer_norm_s32_s8(&one, xr, eps, table, yr, narrow_table, narrow + at);
      else
        ofa_layer_norm_s32(&one, xr, eps, table, yr);
      continue;
    }
    const __m128i shc = _mm_cvtsi32_si128(sh);
    const __m256i sum_lo = _mm256_set1_epi32((int32_t)(uint32_t)sum), vinv = _mm256_set1_epi32((int32_t)inv);
    for (int32_t j = 0; j < n; j += 8) {
      const int32_t live = n - j;
      const __m256i t = _mm256_sra_epi32(_mm256_sub_epi32(_mm256_mullo_epi32(load_first(xr + j, live), vn), sum_lo), shc);
      // k = (t * inv + 2^29) >> 30 = (4t * inv + 2^31) >> 32, with |4t| < 2^24
      const __m256i k = mul_round_high(_mm256_slli_epi32(t, 2), vinv);
      const __m256i v = add_saturating_epi32_avx2(
          requantize(k, load_first(mult + j, live), load_first(shift + j, live)), load_first(beta + j, live));
      store_first(yr + j, v, live);
      if (kNarrow) {
        const __m256i q = add_saturating_epi32_avx2(
            requantize(v, _mm256_set1_epi32(narrow_table[0]), _mm256_set1_epi32(narrow_table[1])),
            _mm256_set1_epi32(narrow_table[2]));
        store_s8(narrow + at + j, clamp_s8(q), live);
      }
    }
  }
}

}  // namespace

void ofa_layer_norm_s32_avx2(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                             const int32_t* table, int32_t* y) {
  layer_norm_rows<false>(d, x, eps, table, y, nullptr, nullptr);
}

void ofa_layer_norm_s32_s8_avx2(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                const int32_t* table, int32_t* y, const int32_t* narrow_table, int8_t* narrow) {
  layer_norm_rows<true>(d, x, eps, table, y, narrow_table, narrow);
}

void ofa_softmax_s8_avx2(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table, int8_t* probs) {
  const __m256i mult = _mm256_set1_epi32(table[0]), shift = _mm256_set1_epi32(table[1]);
  const __m256i zp = _mm256_set1_epi32(table[2]), lowest = _mm256_set1_epi32(INT32_MIN);
  for (int32_t r = 0; r < d->rows; ++r) {
    int32_t* sr = scores + (size_t)r * d->ld_in;
    int8_t* pr = probs + (size_t)r * d->ld_out;
    const int32_t last = d->first_row + r + 1;
    const int32_t used = d->causal ? (last < d->cols ? last : d->cols) : d->cols;
    __m256i mxv = lowest;
    for (int32_t j = 0; j < used; j += 8) {
      const __m256i v = add_saturating_epi32_avx2(requantize(load_first(sr + j, used - j), mult, shift), zp);
      store_first(sr + j, v, used - j);
      mxv = _mm256_max_epi32(mxv, _mm256_blendv_epi8(lowest, v, first_lanes_avx2(used - j)));
    }
    const int32_t mx = reduce_epi32(mxv, _mm_max_epi32);
    // A lane is inside the cutoff when v - mx > -cutoff. Near the bottom of int32 every lane is
    // (v >= INT32_MIN > mx - cutoff), and mx - v cannot wrap.
    const bool all_inside = mx < INT32_MIN + kExpCutoff;
    const __m256i lim = _mm256_set1_epi32(all_inside ? 0 : mx - kExpCutoff), mx_v = _mm256_set1_epi32(mx);
    __m256i total_v = _mm256_setzero_si256();
    for (int32_t j = 0; j < used; j += 8) {
      const __m256i m = first_lanes_avx2(used - j);
      const __m256i v = load_first(sr + j, used - j);
      const __m256i inside = all_inside ? m : _mm256_and_si256(m, _mm256_cmpgt_epi32(v, lim));
      const __m256i nn = _mm256_sub_epi32(mx_v, v);  // -delta, in [0, cutoff) on inside lanes
      const __m256i z = _mm256_srli_epi32(_mm256_mullo_epi32(nn, _mm256_set1_epi32(kInvLn2Mul)), kInvLn2Shift);
      const __m256i q = _mm256_add_epi32(_mm256_sub_epi32(_mm256_mullo_epi32(z, _mm256_set1_epi32(kLn2Q10)), nn),
                                         _mm256_set1_epi32(kBQ10));
      const __m256i e = _mm256_and_si256(
          _mm256_srav_epi32(_mm256_add_epi32(_mm256_mullo_epi32(q, q), _mm256_set1_epi32(kCScaled)), z), inside);
      store_first(sr + j, e, used - j);
      total_v = add_widened(total_v, e);
    }
    // total >= iexp(0) > 2^21, so inv < 2^29 and e * inv < 2^51.
    const __m256i inv = _mm256_set1_epi32((int32_t)ofa_rq::div_round((int64_t)127 << 32, sum_epi64(total_v)));
    for (int32_t j = 0; j < used; j += 8) {
      const __m256i p = mul_round_high(load_first(sr + j, used - j), inv);
      store_s8(pr + j, _mm256_min_epi32(p, _mm256_set1_epi32(127)), used - j);
    }
    for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
  }
}
