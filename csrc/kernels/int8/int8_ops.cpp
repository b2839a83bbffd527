// Portable integer ops of the int8 path: requantisation, layer norm,
// softmax, table lookup. Pure integer arithmetic (int64 where a product
// could leave int32), so x86 and Cortex-M give the same bits. Signed right
// shifts are arithmetic (GCC/Clang guarantee it; C++20 requires it).
#include <stdint.h>

#include "ofa/ofa_kernels_int8.h"
#include "iexp_q10.h"
#include "requant_inline.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include "mve_s8.h"
#define OFA_OPS_MVE 1  // Helium: the layer norm and softmax loops four lanes at a time
#else
#define OFA_OPS_MVE 0
#endif

namespace {

using namespace ofa_iexp;  // the exp constants every ISA shares
}  // namespace

extern "C" int32_t ofa_srdhm(int32_t a, int32_t b) { return ofa_rq::srdhm(a, b); }

extern "C" int32_t ofa_rdbpot(int32_t x, int32_t exponent) { return ofa_rq::rdbpot(x, exponent); }

extern "C" int32_t ofa_requantize(int32_t x, int32_t mult, int32_t shift) {
  return ofa_rq::requantize(x, mult, shift);
}

extern "C" void ofa_requant_to_s8(const ofa_requant_dims* d, const int32_t* in,
                                  const int32_t* table, int8_t* out) {
  const int32_t* mult = table;
  const int32_t* shift = table + d->count;
  const int32_t* zp = table + 2 * d->count;
  const int32_t step = d->count > 1 ? 1 : 0;  // per channel or one set
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    int8_t* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0, c = 0; j < d->cols; ++j, c += step) {
      const int32_t v = ofa_rq::requantize_one_shift(ir[j], mult[c], shift[c]);
      orow[j] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(v, zp[c]));
    }
  }
}

extern "C" void ofa_requant_add_s32(const ofa_requant_dims* d, const int32_t* in,
                                    const int32_t* table, int32_t* out) {
  const int32_t* mult = table;
  const int32_t* shift = table + d->count;
  const int32_t* zp = table + 2 * d->count;
  const int32_t step = d->count > 1 ? 1 : 0;
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* ir = in + (size_t)r * d->ld_in;
    int32_t* orow = out + (size_t)r * d->ld_out;
    for (int32_t j = 0, c = 0; j < d->cols; ++j, c += step) {
      const int32_t v = ofa_rq::requantize_one_shift(ir[j], mult[c], shift[c]);
      orow[j] = ofa_rq::add_sat32(ofa_rq::add_sat32(orow[j], v), zp[c]);
    }
  }
}

extern "C" int64_t ofa_isqrt64(int64_t v) {
  if (v <= 0) return 0;
  // Bit-by-bit: exact floor sqrt without floating point.
  uint64_t x = (uint64_t)v, result = 0, bit = (uint64_t)1 << 62;
  while (bit > x) bit >>= 2;
  while (bit != 0) {
    if (x >= result + bit) {
      x -= result + bit;
      result = (result >> 1) + bit;
    } else {
      result >>= 1;
    }
    bit >>= 2;
  }
  return (int64_t)result;
}

// Row of int32 x: t = d*x - sum(x) (d times the centred value, exact), scaled
// down by 2^sh until |t| < 2^22 so sum(t^2) fits int64 for d <= 2^16; then
// k = t * 2^16 / sqrt(sum t^2 + eps) (|k| <~ 2^16) and
// y = requant(k, gamma * sqrt(d) / (2^16 * s_out)) + beta.
namespace {

struct LnRow {
  int64_t sum;
  int32_t sh;
  int64_t inv;  // round(2^46 / root)
  bool narrow_t;  // every d*x - sum fits int32 and inv < 2^31: the 32-bit element steps apply
};

// The row's statistics. max |t| comes from the row's extremes (t is increasing in x), so the
// elements are read twice, not three times.
LnRow ln_row(const int32_t* xr, int32_t n, int64_t eps) {
  int64_t sum = 0;
  int32_t lo = xr[0], hi = xr[0];
#if OFA_OPS_MVE
  for (int32_t j = 0; j < n; j += 4) {  // the tail's lanes are off: not summed, not compared
    const mve_pred16_t live = vctp32q((uint32_t)(n - j));
    const int32x4_t v = vldrwq_z_s32(xr + j, live);
    sum = vaddlvaq_p_s32(sum, v, live);
    lo = vminvq_p_s32(lo, v, live);
    hi = vmaxvq_p_s32(hi, v, live);
  }
#else
  for (int32_t j = 0; j < n; ++j) {
    const int32_t v = xr[j];
    sum += v;
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
#endif
  const int64_t t_hi = (int64_t)n * hi - sum, t_lo = sum - (int64_t)n * lo;  // both >= 0
  const int64_t max_abs = t_hi > t_lo ? t_hi : t_lo;
  LnRow r;
  r.sum = sum;
  r.sh = 0;
  while ((max_abs >> r.sh) >= ((int64_t)1 << 22)) ++r.sh;
  const bool t32 = max_abs < ((int64_t)1 << 31);
  int64_t var = 0;
  if (t32) {
    // |d*x - sum| < 2^31: the wrapped 32-bit difference is exact.
    const uint32_t sum_lo = (uint32_t)sum, un = (uint32_t)n;
#if OFA_OPS_MVE
    for (int32_t j = 0; j < n; j += 4) {  // VMUL/VSUB wrap as the uint32 steps do; VSHL by -sh is >> sh
      const mve_pred16_t live = vctp32q((uint32_t)(n - j));
      const int32x4_t x = vldrwq_z_s32(xr + j, live);
      const int32x4_t t = vshlq_s32(vsubq_s32(vmulq_n_s32(x, (int32_t)un), vdupq_n_s32((int32_t)sum_lo)),
                                    vdupq_n_s32(-r.sh));
      var = vmlaldavaq_p_s32(var, t, t, live);
    }
#else
    for (int32_t j = 0; j < n; ++j) {
      const int32_t t = (int32_t)(un * (uint32_t)xr[j] - sum_lo) >> r.sh;
      var += (int64_t)t * t;
    }
#endif
  } else {
    for (int32_t j = 0; j < n; ++j) {
      const int64_t t = ((int64_t)n * xr[j] - sum) >> r.sh;
      var += t * t;
    }
  }
  var += eps >> (2 * r.sh);
  int64_t root = ofa_isqrt64(var);
  if (root == 0) root = 1;  // a constant row: every t is 0, output = beta
  // One division per row: inv = 2^46 / root; |t| <= root + 1 keeps t * inv
  // below 2^48.
  r.inv = ofa_rq::div_round((int64_t)1 << 46, root);
  r.narrow_t = t32 && r.inv < ((int64_t)1 << 31);
  return r;
}

// k of element j (see above): in 32-bit steps where the row allows them (kT32), else in int64.
template <bool kT32>
inline int32_t ln_k(const LnRow& r, int32_t n, int32_t x) {
  if (kT32) {
    const int32_t t = (int32_t)((uint32_t)n * (uint32_t)x - (uint32_t)r.sum) >> r.sh;
    return (int32_t)(((int64_t)t * (int32_t)r.inv + ((int64_t)1 << 29)) >> 30);
  }
  const int64_t t = ((int64_t)n * x - r.sum) >> r.sh;
  return (int32_t)((t * r.inv + ((int64_t)1 << 29)) >> 30);
}

// y_j = requant(k_j, gamma_j) + beta_j for one row, handed to store(j, y_j); the choice of steps is
// made once per row, outside the element loop.
template <bool kT32, class Store>
void ln_apply_row(const LnRow& r, int32_t n, const int32_t* xr, const int32_t* table, const Store& store) {
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  const int32_t* beta = table + 2 * n;
  for (int32_t j = 0; j < n; ++j) {
    const int32_t v = ofa_rq::requantize_one_shift(ln_k<kT32>(r, n, xr[j]), mult[j], shift[j]);
    store(j, ofa_rq::add_sat32(v, beta[j]));
  }
}

template <class Store>
void ln_row_out(const int32_t* xr, int32_t n, int64_t eps, const int32_t* table, const Store& store) {
  const LnRow r = ln_row(xr, n, eps);  // before store overwrites x (in place allowed)
  if (r.narrow_t)
    ln_apply_row<true>(r, n, xr, table, store);
  else
    ln_apply_row<false>(r, n, xr, table, store);
}

struct StoreY {
  int32_t* y;
  void operator()(int32_t j, int32_t v) const { y[j] = v; }
};

// y and its int8 copy (one requantisation set), written while y is in a register.
struct StoreYAndNarrow {
  int32_t* y;
  int8_t* narrow;
  int32_t mult, shift, zp;
  void operator()(int32_t j, int32_t v) const {
    y[j] = v;
    narrow[j] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(ofa_rq::requantize_one_shift(v, mult, shift), zp));
  }
};

}  // namespace

extern "C" void ofa_layer_norm_s32(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                                   int64_t eps, const int32_t* table, int32_t* y) {
  for (int32_t r = 0; r < d->rows; ++r)
    ln_row_out(x + (size_t)r * d->ld, d->dim, eps, table, StoreY{y + (size_t)r * d->ld});
}

#if OFA_OPS_MVE
namespace {
// ln_apply_row<true> with StoreYAndNarrow, four lanes at a time: k = (4t * inv + 2^31) >> 32 by
// VRMULH, which is (t * inv + 2^29) >> 30 (|4t| < 2^24, inv < 2^31), then requant4 twice.
void ln_apply_row_mve(const LnRow& r, int32_t n, const int32_t* xr, const int32_t* table, int32_t* yr,
                      int8_t* nr, const int32_t* narrow_table) {
  const int32x4_t nm = vdupq_n_s32(narrow_table[0]), ns = vdupq_n_s32(narrow_table[1]);
  const int32x4_t nz = vdupq_n_s32(narrow_table[2]), inv = vdupq_n_s32((int32_t)r.inv);
  const int32x4_t sum_lo = vdupq_n_s32((int32_t)(uint32_t)r.sum), sh = vdupq_n_s32(-r.sh);
  for (int32_t j = 0; j < n; j += 4) {
    const mve_pred16_t live = vctp32q((uint32_t)(n - j));
    const int32x4_t x = vldrwq_z_s32(xr + j, live);
    const int32x4_t t = vshlq_s32(vsubq_s32(vmulq_n_s32(x, n), sum_lo), sh);
    const int32x4_t k = vrmulhq_s32(vshlq_n_s32(t, 2), inv);
    const int32x4_t mult = vldrwq_z_s32(table + j, live), shift = vldrwq_z_s32(table + n + j, live);
    const int32x4_t y = vqaddq_s32(ofa_mve::requant4(k, mult, shift), vldrwq_z_s32(table + 2 * n + j, live));
    vstrwq_p_s32(yr + j, y, live);
    vstrbq_p_s32(nr + j, ofa_mve::clamp_s8(vqaddq_s32(ofa_mve::requant4(y, nm, ns), nz)), live);
  }
}
}  // namespace
#endif

extern "C" void ofa_layer_norm_s32_s8(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                                      int64_t eps, const int32_t* table, int32_t* y,
                                      const int32_t* narrow_table, int8_t* narrow) {
#if OFA_OPS_MVE
  const bool vec = !ofa_mve::any_int32_min(table, d->dim) && narrow_table[0] != INT32_MIN;
  for (int32_t r = 0; vec && r < d->rows; ++r) {
    const size_t at = (size_t)r * d->ld;
    const LnRow row = ln_row(x + at, d->dim, eps);
    if (row.narrow_t) {
      ln_apply_row_mve(row, d->dim, x + at, table, y + at, narrow + at, narrow_table);
      continue;
    }
    const StoreYAndNarrow store{y + at, narrow + at, narrow_table[0], narrow_table[1], narrow_table[2]};
    ln_apply_row<false>(row, d->dim, x + at, table, store);
  }
  if (vec) return;
#endif
  for (int32_t r = 0; r < d->rows; ++r) {
    const size_t at = (size_t)r * d->ld;
    ln_row_out(x + at, d->dim, eps, table,
               StoreYAndNarrow{y + at, narrow + at, narrow_table[0], narrow_table[1], narrow_table[2]});
  }
}

namespace {
int32_t iexp_q10(int32_t x) {
  if (x > 0) x = 0;
  if (x <= -kExpCutoff) return 0;
  const int32_t n = -x;
  // n < 709 * 31, so n * 1479 < 2^25: a 32-bit product.
  const int32_t z = (n * kInvLn2Mul) >> kInvLn2Shift;
  const int32_t p = x + z * kLn2Q10;  // in (-ln2, 0]
  const int32_t q = p + kBQ10;
  return (q * q + kCScaled) >> z;
}
}  // namespace

extern "C" int32_t ofa_iexp_q10(int32_t x) { return iexp_q10(x); }

#if OFA_OPS_MVE
namespace {
// One row of ofa_softmax_s8 (below) four lanes at a time. delta = score - max saturates at INT32_MIN
// (VQSUB) where the scalar form widens: both are past the cutoff, exp 0. The lanes' exponents z
// differ, so the shift is per lane (VSHL by -z). p = (e * inv + 2^31) >> 32 is VRMULH.
void softmax_row_mve(int32_t* sr, int8_t* pr, int32_t used, int32_t mult, int32_t shift, int32_t zp) {
  const int32x4_t m = vdupq_n_s32(mult), sh = vdupq_n_s32(shift), z0 = vdupq_n_s32(zp);
  int32_t mx = INT32_MIN;
  for (int32_t j = 0; j < used; j += 4) {
    const mve_pred16_t live = vctp32q((uint32_t)(used - j));
    const int32x4_t v = vqaddq_s32(ofa_mve::requant4(vldrwq_z_s32(sr + j, live), m, sh), z0);
    vstrwq_p_s32(sr + j, v, live);
    mx = vmaxvq_p_s32(mx, v, live);
  }
  int64_t total = 0;
  for (int32_t j = 0; j < used; j += 4) {
    const mve_pred16_t live = vctp32q((uint32_t)(used - j));
    const int32x4_t x = vqsubq_s32(vldrwq_z_s32(sr + j, live), vdupq_n_s32(mx));  // <= 0
    const mve_pred16_t inside = vcmpgtq_n_s32(x, -kExpCutoff);
    const int32x4_t z = vshrq_n_s32(vmulq_n_s32(vnegq_s32(x), kInvLn2Mul), kInvLn2Shift);
    const int32x4_t q = vaddq_n_s32(vmlaq_n_s32(x, z, kLn2Q10), kBQ10);
    const int32x4_t e = vpselq_s32(vshlq_s32(vaddq_n_s32(vmulq_s32(q, q), kCScaled), vnegq_s32(z)),
                                   vdupq_n_s32(0), inside);
    vstrwq_p_s32(sr + j, e, live);
    total = vaddlvaq_p_s32(total, e, live);
  }
  const int32x4_t inv = vdupq_n_s32((int32_t)ofa_rq::div_round((int64_t)127 << 32, total));
  for (int32_t j = 0; j < used; j += 4) {
    const mve_pred16_t live = vctp32q((uint32_t)(used - j));
    const int32x4_t p = vminq_s32(vrmulhq_s32(vldrwq_z_s32(sr + j, live), inv), vdupq_n_s32(127));
    vstrbq_p_s32(pr + j, p, live);
  }
}
}  // namespace
#endif

extern "C" void ofa_softmax_s8(const ofa_softmax_s8_dims* d, int32_t* scores,
                               const int32_t* table, int8_t* probs) {
  const int32_t mult = table[0], shift = table[1], zp = table[2];
  for (int32_t r = 0; r < d->rows; ++r) {
    int32_t* sr = scores + (size_t)r * d->ld_in;
    int8_t* pr = probs + (size_t)r * d->ld_out;
    const int32_t last = d->first_row + r + 1;
    const int32_t used = d->causal ? (last < d->cols ? last : d->cols) : d->cols;
#if OFA_OPS_MVE
    if (mult != INT32_MIN) {
      softmax_row_mve(sr, pr, used, mult, shift, zp);
      for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
      continue;
    }
#endif
    int32_t mx = INT32_MIN;
    for (int32_t j = 0; j < used; ++j) {
      const int32_t v = ofa_rq::add_sat32(ofa_rq::requantize_one_shift(sr[j], mult, shift), zp);
      sr[j] = v;
      mx = v > mx ? v : mx;
    }
    int64_t total = 0;
    for (int32_t j = 0; j < used; ++j) {
      const int64_t delta = (int64_t)sr[j] - mx;
      const int32_t e = delta <= -kExpCutoff ? 0 : iexp_q10((int32_t)delta);
      sr[j] = e;
      total += e;
    }
    // total >= iexp(0) > 2^21, so inv < 2^29 and e * inv < 2^51.
    const int32_t inv = (int32_t)ofa_rq::div_round((int64_t)127 << 32, total);
    for (int32_t j = 0; j < used; ++j) {
      const int64_t p = ((int64_t)sr[j] * inv + ((int64_t)1 << 31)) >> 32;  // one 32x32->64 multiply
      pr[j] = (int8_t)(p > 127 ? 127 : p);
    }
    for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
  }
}

extern "C" void ofa_lut_s8(const int8_t* lut, int8_t* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = lut[(int32_t)x[i] + 128];
}
