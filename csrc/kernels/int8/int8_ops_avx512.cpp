// AVX-512 (F, BW, DQ) elementwise int8-path ops, lane for lane the same
// integers as the portable ones in int8_ops.cpp (the unit tests compare them
// on edge cases): the 32x32 -> 64-bit products of requantisation go through
// vpmuldq on even and odd lanes, gemmlowp's rounding is rebuilt with shifts
// and compares; layer-norm and softmax statistics are summed in int64 lanes
// (integer sums: the order does not change the result); row tails use the
// scalar formulas.
#include <immintrin.h>

#include "ofa/ofa_kernels_int8.h"
#include "iexp_q10.h"
#include "isqrt_x86.h"
#include "requant_inline.h"
#include "int8_ops_avx512.h"

namespace {

inline __mmask16 tail_mask(int32_t left) {
  return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

// Even lanes of gemmlowp's high multiply. Its nudge (2^30, or 1 - 2^30 for a
// negative product) followed by a division truncating toward zero equals
// floor((a*b + 2^30) / 2^31) for every product: one add and one shift.
inline __m512i high_mul_even(__m512i a, __m512i b) {
  return _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, b), _mm512_set1_epi64(1 << 30)), 31);
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
  const __m512i right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
  // Left shifts (multipliers > 1) are rare: skip the saturating shift when no lane has one.
  if (_mm512_cmpgt_epi32_mask(shift, zero)) x = shift_left_saturating(x, _mm512_max_epi32(shift, zero));
  return rdbpot(srdhm(x, mult), right);
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

namespace {

// The rows of a requantisation, 16 lanes at a time; store(out_row, j, mask, v, p) finishes lane j..j+15.
template <class Out, class Store>
void requant_rows(const ofa_requant_dims* d, const int32_t* in, const int32_t* table, Out* out, Store store) {
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    Out* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0; j < d->cols; j += 16) {
      const __mmask16 m = tail_mask(d->cols - j);
      const Params p = params(table, d->count, j, m);
      store(orow + j, m, requantize(_mm512_maskz_loadu_epi32(m, ir + j), p.mult, p.shift), p);
    }
  }
}

}  // namespace

void ofa_requant_to_s8_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int8_t* out) {
  requant_rows(d, in, table, out, [](int8_t* o, __mmask16 m, __m512i v, const Params& p) {
    v = add_saturating_epi32(v, p.zp);
    v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(-128)), _mm512_set1_epi32(127));
    _mm512_mask_cvtepi32_storeu_epi8(o, m, v);
  });
}

void ofa_requant_add_s32_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                                int32_t* out) {
  requant_rows(d, in, table, out, [](int32_t* o, __mmask16 m, __m512i v, const Params& p) {
    // Same order as the scalar code: saturate(saturate(out + v) + zp).
    const __m512i old = _mm512_maskz_loadu_epi32(m, o);
    _mm512_mask_storeu_epi32(o, m, add_saturating_epi32(add_saturating_epi32(old, v), p.zp));
  });
}

namespace {
using namespace ofa_iexp;

inline int64_t centred(int32_t x, int64_t n, int64_t sum) { return n * x - sum; }
}  // namespace

void ofa_layer_norm_s32_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                               const int32_t* table, int32_t* y) {
  const int32_t n = d->dim, full = n / 16 * 16;
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  const int32_t* beta = table + 2 * n;
  const __m512i n64 = _mm512_set1_epi64(n);
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* xr = x + (size_t)r * d->ld;
    int32_t* yr = y + (size_t)r * d->ld;
    __m512i acc = _mm512_setzero_si512();
    for (int32_t j = 0; j < full; j += 16) {
      const __m512i v = _mm512_loadu_si512(xr + j);
      acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
      acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    }
    int64_t sum = _mm512_reduce_add_epi64(acc);
    for (int32_t j = full; j < n; ++j) sum += xr[j];
    const __m512i sum64 = _mm512_set1_epi64(sum);
    __m512i mx = _mm512_setzero_si512();
    for (int32_t j = 0; j < full; j += 8) {
      const __m512i t = _mm512_sub_epi64(
          _mm512_mullo_epi64(_mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(xr + j))), n64), sum64);
      mx = _mm512_max_epi64(mx, _mm512_abs_epi64(t));
    }
    int64_t max_abs = _mm512_reduce_max_epi64(mx);
    for (int32_t j = full; j < n; ++j) {
      const int64_t t = centred(xr[j], n, sum);
      max_abs = (t < 0 ? -t : t) > max_abs ? (t < 0 ? -t : t) : max_abs;
    }
    int32_t sh = 0;
    while ((max_abs >> sh) >= ((int64_t)1 << 22)) ++sh;
    acc = _mm512_setzero_si512();
    for (int32_t j = 0; j < full; j += 8) {
      const __m512i t = _mm512_srai_epi64(
          _mm512_sub_epi64(
              _mm512_mullo_epi64(_mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(xr + j))), n64),
              sum64),
          (unsigned)sh);
      acc = _mm512_add_epi64(acc, _mm512_mul_epi32(t, t));  // |t| < 2^22: low halves hold it
    }
    int64_t var = _mm512_reduce_add_epi64(acc);
    for (int32_t j = full; j < n; ++j) {
      const int64_t t = centred(xr[j], n, sum) >> sh;
      var += t * t;
    }
    var += eps >> (2 * sh);
    int64_t root = ofa_isqrt64_x86(var);
    if (root == 0) root = 1;
    const int64_t inv = ofa_rq::div_round((int64_t)1 << 46, root);
    const __m512i inv64 = _mm512_set1_epi64(inv), half = _mm512_set1_epi64((int64_t)1 << 29);
    for (int32_t j = 0; j < full; j += 16) {
      __m256i k2[2];
      for (int h = 0; h < 2; ++h) {
        const __m512i t = _mm512_srai_epi64(
            _mm512_sub_epi64(
                _mm512_mullo_epi64(_mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(xr + j + 8 * h))),
                                   n64),
                sum64),
            (unsigned)sh);
        k2[h] = _mm512_cvtepi64_epi32(_mm512_srai_epi64(_mm512_add_epi64(_mm512_mullo_epi64(t, inv64), half), 30));
      }
      const __m512i k = _mm512_inserti64x4(_mm512_castsi256_si512(k2[0]), k2[1], 1);
      const __m512i v = requantize(k, _mm512_loadu_si512(mult + j), _mm512_loadu_si512(shift + j));
      _mm512_storeu_si512(yr + j, add_saturating_epi32(v, _mm512_loadu_si512(beta + j)));
    }
    for (int32_t j = full; j < n; ++j) {
      const int64_t t = centred(xr[j], n, sum) >> sh;
      const int32_t k = (int32_t)((t * inv + ((int64_t)1 << 29)) >> 30);
      yr[j] = ofa_rq::saturate32((int64_t)ofa_rq::requantize(k, mult[j], shift[j]) + beta[j]);
    }
  }
}

namespace {
// requantize(x, mult, shift) of 16 int32 lanes by one (mult, shift), mult !=
// INT32_MIN, in ofa_rq::FastRequant's one-shift form on even and odd lanes.
struct UniformRequant {
  __m512i mult, add, base, neg;
  __m128i sh, left;
  bool has_left;
  UniformRequant(int32_t m, int32_t shift) {
    const ofa_rq::FastRequant f(shift);
    mult = _mm512_set1_epi64(m);
    add = _mm512_set1_epi64(f.add);
    base = _mm512_set1_epi64(f.base);
    neg = _mm512_set1_epi64(f.neg);
    sh = _mm_cvtsi64_si128(f.sh);
    left = _mm_cvtsi64_si128(f.left);
    has_left = f.left > 0;
  }
  inline __m512i lanes(__m512i x) const {  // x: int32 in the low dword (sign-extended if has_left)
    if (has_left)
      x = _mm512_min_epi64(_mm512_max_epi64(_mm512_sll_epi64(x, left), _mm512_set1_epi64(INT32_MIN)),
                           _mm512_set1_epi64(INT32_MAX));
    const __m512i p = _mm512_add_epi64(_mm512_mul_epi32(x, mult), add);
    return _mm512_sra_epi64(_mm512_mask_add_epi64(p, _mm512_cmplt_epi64_mask(p, base), p, neg), sh);
  }
  inline __m512i apply(__m512i x) const {
    const __m512i even = lanes(has_left ? _mm512_srai_epi64(_mm512_slli_epi64(x, 32), 32) : x);
    const __m512i odd = lanes(has_left ? _mm512_srai_epi64(x, 32) : _mm512_srli_epi64(x, 32));
    return _mm512_mask_shuffle_epi32(even, (__mmask16)0xAAAA, odd, _MM_PERM_CCAA);
  }
};
}  // namespace

void ofa_softmax_s8_avx512(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table,
                           int8_t* probs) {
  if (!ofa_rq::FastRequant::applies(table[0])) {  // the INT32_MIN multiplier: portable code
    ofa_softmax_s8(d, scores, table, probs);
    return;
  }
  const UniformRequant rq(table[0], table[1]);
  const __m512i zp = _mm512_set1_epi32(table[2]);
  for (int32_t r = 0; r < d->rows; ++r) {
    int32_t* sr = scores + (size_t)r * d->ld_in;
    int8_t* pr = probs + (size_t)r * d->ld_out;
    const int32_t last = d->first_row + r + 1;
    const int32_t used = d->causal ? (last < d->cols ? last : d->cols) : d->cols;
    __m512i mxv = _mm512_set1_epi32(INT32_MIN);
    for (int32_t j = 0; j < used; j += 16) {
      const __mmask16 m = tail_mask(used - j);
      const __m512i v = add_saturating_epi32(rq.apply(_mm512_maskz_loadu_epi32(m, sr + j)), zp);
      _mm512_mask_storeu_epi32(sr + j, m, v);
      mxv = _mm512_mask_max_epi32(mxv, m, mxv, v);
    }
    const int32_t mx = _mm512_reduce_max_epi32(mxv);
    if (mx < INT32_MIN + kExpCutoff) {  // logits at the very bottom of int32: scalar formulas
      int64_t total = 0;
      for (int32_t j = 0; j < used; ++j) {
        const int64_t delta = (int64_t)sr[j] - mx;
        sr[j] = delta <= -kExpCutoff ? 0 : ofa_iexp_q10((int32_t)delta);
        total += sr[j];
      }
      const int64_t inv = ofa_rq::div_round((int64_t)127 << 32, total);
      for (int32_t j = 0; j < used; ++j) {
        const int64_t p = ((int64_t)sr[j] * inv + ((int64_t)1 << 31)) >> 32;
        pr[j] = (int8_t)(p > 127 ? 127 : p);
      }
      for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
      continue;
    }
    const __m512i lim = _mm512_set1_epi32(mx - kExpCutoff), mx_v = _mm512_set1_epi32(mx);
    __m512i total_v = _mm512_setzero_si512();
    for (int32_t j = 0; j < used; j += 16) {
      const __mmask16 m = tail_mask(used - j);
      const __m512i v = _mm512_maskz_loadu_epi32(m, sr + j);
      const __mmask16 live = m & _mm512_cmpgt_epi32_mask(v, lim);
      const __m512i nn = _mm512_sub_epi32(mx_v, v);  // in [0, cutoff) on live lanes
      const __m512i z = _mm512_srli_epi32(_mm512_mullo_epi32(nn, _mm512_set1_epi32(kInvLn2Mul)), kInvLn2Shift);
      const __m512i q = _mm512_add_epi32(
          _mm512_sub_epi32(_mm512_mullo_epi32(z, _mm512_set1_epi32(kLn2Q10)), nn), _mm512_set1_epi32(kBQ10));
      const __m512i e = _mm512_maskz_srav_epi32(
          live, _mm512_add_epi32(_mm512_mullo_epi32(q, q), _mm512_set1_epi32(kCScaled)), z);
      _mm512_mask_storeu_epi32(sr + j, m, e);
      total_v = _mm512_add_epi64(total_v, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(e)));
      total_v = _mm512_add_epi64(total_v, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(e, 1)));
    }
    const int64_t total = _mm512_reduce_add_epi64(total_v);
    const int64_t inv = ofa_rq::div_round((int64_t)127 << 32, total);  // < 2^29
    const __m512i inv_v = _mm512_set1_epi64(inv), round = _mm512_set1_epi64((int64_t)1 << 31);
    for (int32_t j = 0; j < used; j += 16) {
      const __mmask16 m = tail_mask(used - j);
      const __m512i e = _mm512_maskz_loadu_epi32(m, sr + j);
      const __m512i even = _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epu32(e, inv_v), round), 32);
      const __m512i odd = _mm512_srli_epi64(
          _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(e, 32), inv_v), round), 32);
      __m512i p = _mm512_mask_blend_epi32((__mmask16)0xAAAA, even, _mm512_slli_epi64(odd, 32));
      p = _mm512_min_epi32(p, _mm512_set1_epi32(127));
      _mm512_mask_cvtepi32_storeu_epi8(pr + j, m, p);
    }
    for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
  }
}

// ---- layer norm with the int8 copy fused; table lookup ------------------

namespace {

// Requantisation by one (mult, shift) per 64-bit lane (x a sign-extended
// int32), for mult != INT32_MIN; see ofa_rq::FastRequant.
template <bool Left>
inline __m512i requantize64(__m512i x, __m512i mult, __m512i add, __m512i base, __m512i neg,
                            __m512i sh, __m512i left) {
  if (Left)
    x = _mm512_min_epi64(_mm512_max_epi64(_mm512_sllv_epi64(x, left), _mm512_set1_epi64(INT32_MIN)),
                         _mm512_set1_epi64(INT32_MAX));
  const __m512i p = _mm512_add_epi64(_mm512_mul_epi32(x, mult), add);
  return _mm512_srav_epi64(_mm512_mask_add_epi64(p, _mm512_cmplt_epi64_mask(p, base), p, neg), sh);
}

constexpr int32_t kFusedLnMaxDim = 1024;  // per-column constants on the stack (32 KB)

}  // namespace

namespace {
// Per-column constants of the layer norm's requantisation (FastRequant).
struct LnConstants {
  alignas(64) int64_t add[kFusedLnMaxDim], base[kFusedLnMaxDim], neg[kFusedLnMaxDim],
      sh[kFusedLnMaxDim], left[kFusedLnMaxDim];
};

template <bool Left>
void layer_norm_s8_rows(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                        const int32_t* table, int32_t* y, const int32_t* narrow_table, int8_t* narrow,
                        const LnConstants& c);
}  // namespace

void ofa_layer_norm_s32_s8_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                  const int32_t* table, int32_t* y, const int32_t* narrow_table,
                                  int8_t* narrow) {
  const int32_t n = d->dim;
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  bool fast = n <= kFusedLnMaxDim && ofa_rq::FastRequant::applies(narrow_table[0]);
  for (int32_t j = 0; fast && j < n; ++j) fast = ofa_rq::FastRequant::applies(mult[j]);
  if (!fast) {  // the INT32_MIN multiplier: the two unfused kernels, row by row
    const ofa_layer_norm_s32_dims row = {1, n, d->ld};
    const ofa_requant_dims rq = {1, n, d->ld, d->ld, 1};
    for (int32_t r = 0; r < d->rows; ++r) {
      int32_t* yr = y + (size_t)r * d->ld;
      ofa_layer_norm_s32_avx512(&row, x + (size_t)r * d->ld, eps, table, yr);
      ofa_requant_to_s8_avx512(&rq, yr, narrow_table, narrow + (size_t)r * d->ld);
    }
    return;
  }
  LnConstants c;
  bool left = narrow_table[1] > 0;
  for (int32_t j = 0; j < n; ++j) {
    const ofa_rq::FastRequant f(shift[j]);
    c.add[j] = f.add;
    c.base[j] = f.base;
    c.neg[j] = f.neg;
    c.sh[j] = f.sh;
    c.left[j] = f.left;
    left |= f.left > 0;
  }
  if (left) {
    layer_norm_s8_rows<true>(d, x, eps, table, y, narrow_table, narrow, c);
  } else {
    layer_norm_s8_rows<false>(d, x, eps, table, y, narrow_table, narrow, c);
  }
}

namespace {
template <bool Left>
void layer_norm_s8_rows(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                        const int32_t* table, int32_t* y, const int32_t* narrow_table, int8_t* narrow,
                        const LnConstants& c) {
  const int32_t n = d->dim;
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  const int32_t* beta = table + 2 * n;
  const ofa_rq::FastRequant nf(narrow_table[1]);
  const int32_t n_mult = narrow_table[0], n_zp = narrow_table[2];
  const __m512i nm = _mm512_set1_epi64(n_mult), nadd = _mm512_set1_epi64(nf.add),
                nbase = _mm512_set1_epi64(nf.base), nneg = _mm512_set1_epi64(nf.neg),
                nsh = _mm512_set1_epi64(nf.sh), nleft = _mm512_set1_epi64(nf.left),
                nzp = _mm512_set1_epi64(n_zp);
  const __m512i i32min = _mm512_set1_epi64(INT32_MIN), i32max = _mm512_set1_epi64(INT32_MAX);
  const __m512i s8min = _mm512_set1_epi64(-128), s8max = _mm512_set1_epi64(127);
  const __m512i n64 = _mm512_set1_epi64(n), half = _mm512_set1_epi64((int64_t)1 << 29);
  const int32_t full16 = n / 16 * 16, full8 = n / 8 * 8;

  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* xr = x + (size_t)r * d->ld;
    int32_t* yr = y + (size_t)r * d->ld;
    int8_t* nr = narrow + (size_t)r * d->ld;
    // Sum, min and max in one pass: max |n x - sum| is at the smallest or largest x.
    __m512i acc = _mm512_setzero_si512();
    __m512i mn = _mm512_set1_epi32(INT32_MAX), mx = _mm512_set1_epi32(INT32_MIN);
    for (int32_t j = 0; j < full16; j += 16) {
      const __m512i v = _mm512_loadu_si512(xr + j);
      acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
      acc = _mm512_add_epi64(acc, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
      mn = _mm512_min_epi32(mn, v);
      mx = _mm512_max_epi32(mx, v);
    }
    int64_t sum = _mm512_reduce_add_epi64(acc);
    int32_t lo = _mm512_reduce_min_epi32(mn), hi = _mm512_reduce_max_epi32(mx);
    for (int32_t j = full16; j < n; ++j) {
      sum += xr[j];
      lo = xr[j] < lo ? xr[j] : lo;
      hi = xr[j] > hi ? xr[j] : hi;
    }
    const int64_t up = (int64_t)n * hi - sum, down = sum - (int64_t)n * lo;
    const int64_t max_abs = up > down ? up : down;
    int32_t sh = 0;
    while ((max_abs >> sh) >= ((int64_t)1 << 22)) ++sh;
    const __m128i shc = _mm_cvtsi32_si128(sh);
    const __m512i sum64 = _mm512_set1_epi64(sum);
    acc = _mm512_setzero_si512();
    for (int32_t j = 0; j < full8; j += 8) {
      const __m512i x64 = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(xr + j)));
      const __m512i t = _mm512_sra_epi64(_mm512_sub_epi64(_mm512_mul_epi32(x64, n64), sum64), shc);
      acc = _mm512_add_epi64(acc, _mm512_mul_epi32(t, t));  // |t| < 2^22
    }
    int64_t var = _mm512_reduce_add_epi64(acc);
    for (int32_t j = full8; j < n; ++j) {
      const int64_t t = ((int64_t)n * xr[j] - sum) >> sh;
      var += t * t;
    }
    var += eps >> (2 * sh);
    int64_t root = ofa_isqrt64_x86(var);
    if (root == 0) root = 1;
    const int64_t inv = ofa_rq::div_round((int64_t)1 << 46, root);
    const __m512i inv64 = _mm512_set1_epi64(inv);
    for (int32_t j = 0; j < full8; j += 8) {
      const __m512i x64 = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(xr + j)));
      const __m512i t = _mm512_sra_epi64(_mm512_sub_epi64(_mm512_mul_epi32(x64, n64), sum64), shc);
      const __m512i k = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mullo_epi64(t, inv64), half), 30);
      const __m512i m = _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(mult + j)));
      const __m512i v = requantize64<Left>(k, m, _mm512_load_si512(c.add + j), _mm512_load_si512(c.base + j),
                                           _mm512_load_si512(c.neg + j), _mm512_load_si512(c.sh + j),
                                           _mm512_load_si512(c.left + j));
      __m512i yv = _mm512_add_epi64(v, _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i*)(beta + j))));
      yv = _mm512_min_epi64(_mm512_max_epi64(yv, i32min), i32max);
      _mm256_storeu_si256((__m256i*)(yr + j), _mm512_cvtepi64_epi32(yv));
      __m512i q = _mm512_add_epi64(requantize64<Left>(yv, nm, nadd, nbase, nneg, nsh, nleft), nzp);
      q = _mm512_min_epi64(_mm512_max_epi64(q, s8min), s8max);
      _mm512_mask_cvtepi64_storeu_epi8(nr + j, (__mmask8)0xFF, q);
    }
    for (int32_t j = full8; j < n; ++j) {
      const int64_t t = ((int64_t)n * xr[j] - sum) >> sh;
      const int32_t k = (int32_t)((t * inv + ((int64_t)1 << 29)) >> 30);
      const int32_t v = ofa_rq::saturate32((int64_t)ofa_rq::requantize(k, mult[j], shift[j]) + beta[j]);
      yr[j] = v;
      const int32_t q = ofa_rq::saturate32((int64_t)ofa_rq::requantize(v, n_mult, narrow_table[1]) + n_zp);
      nr[j] = (int8_t)(q > 127 ? 127 : q < -128 ? -128 : q);
    }
  }
}

}  // namespace

namespace {
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void lut_vbmi(const int8_t* lut, int8_t* x,
                                                                     size_t n) {
  const __m512i t0 = _mm512_loadu_si512(lut), t1 = _mm512_loadu_si512(lut + 64);
  const __m512i t2 = _mm512_loadu_si512(lut + 128), t3 = _mm512_loadu_si512(lut + 192);
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  for (size_t i = 0; i < n; i += 64) {
    const __mmask64 m = n - i >= 64 ? ~(__mmask64)0 : (~(__mmask64)0 >> (64 - (n - i)));
    const __m512i idx = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, x + i), flip);  // x + 128
    const __m512i low = _mm512_permutex2var_epi8(t0, idx, t1);                     // entries 0..127
    const __m512i high = _mm512_permutex2var_epi8(t2, idx, t3);                    // 128..255
    _mm512_mask_storeu_epi8(x + i, m, _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), low, high));
  }
}
}  // namespace

void ofa_lut_s8_avx512(const int8_t* lut, int8_t* x, size_t n) {
  if (__builtin_cpu_supports("avx512vbmi")) {
    lut_vbmi(lut, x, n);
  } else {
    ofa_lut_s8(lut, x, n);
  }
}
