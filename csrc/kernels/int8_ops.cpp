// Portable integer ops of the int8 path: requantisation, layer norm,
// softmax, table lookup. Pure integer arithmetic (int64 where a product
// could leave int32), so x86 and Cortex-M give the same bits. Signed right
// shifts are arithmetic (GCC/Clang guarantee it; C++20 requires it).
#include <stdint.h>

#include "ofa/ofa_kernels_int8.h"
#include "requant_inline.h"

namespace {
using ofa_rq::requantize;
using ofa_rq::saturate32;
int32_t clamp_s8(int32_t v) { return v > 127 ? 127 : v < -128 ? -128 : v; }

// n >= 0, d > 0 at every call: round half up.
int64_t div_round(int64_t n, int64_t d) { return (n + d / 2) / d; }

// I-BERT constants on a Q10 logit grid: ln2 = 709 / 1024; exp(p) on
// (-ln2, 0] ~ 0.3585 (p + 1.353)^2 + 0.344, scaled by 2^20 / 0.3585.
constexpr int32_t kLn2Q10 = 709;
constexpr int32_t kBQ10 = 1385;      // floor(1.353 * 1024)
constexpr int32_t kCScaled = 1006164;  // floor(0.344 / 0.3585 * 2^20)
constexpr int32_t kExpCutoff = kLn2Q10 * 31;  // beyond: exp below 2^-31, 0
// floor(n / 709) == (n * 1479) >> 20 for every 0 <= n < 709 * 32 (checked
// exhaustively by the unit tests); avoids a division per score.
constexpr int64_t kInvLn2Mul = 1479;
constexpr int kInvLn2Shift = 20;
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
      const int32_t v = requantize(ir[j], mult[c], shift[c]);
      orow[j] = (int8_t)clamp_s8(saturate32((int64_t)v + zp[c]));
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
      const int32_t v = requantize(ir[j], mult[c], shift[c]);
      orow[j] = saturate32((int64_t)saturate32((int64_t)orow[j] + v) + zp[c]);
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
extern "C" void ofa_layer_norm_s32(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                                   int64_t eps, const int32_t* table, int32_t* y) {
  const int32_t n = d->dim;
  const int32_t* mult = table;
  const int32_t* shift = table + n;
  const int32_t* beta = table + 2 * n;
  for (int32_t r = 0; r < d->rows; ++r) {
    const int32_t* xr = x + (size_t)r * d->ld;
    int32_t* yr = y + (size_t)r * d->ld;
    int64_t sum = 0;
    for (int32_t j = 0; j < n; ++j) sum += xr[j];
    int64_t max_abs = 0;
    for (int32_t j = 0; j < n; ++j) {
      const int64_t t = (int64_t)n * xr[j] - sum;
      const int64_t a = t < 0 ? -t : t;
      max_abs = a > max_abs ? a : max_abs;
    }
    int32_t sh = 0;
    while ((max_abs >> sh) >= ((int64_t)1 << 22)) ++sh;
    int64_t var = 0;
    for (int32_t j = 0; j < n; ++j) {
      const int64_t t = ((int64_t)n * xr[j] - sum) >> sh;
      var += t * t;
    }
    var += eps >> (2 * sh);
    int64_t root = ofa_isqrt64(var);
    if (root == 0) root = 1;  // a constant row: every t is 0, output = beta
    // One division per row: inv = 2^46 / root; |t| <= root + 1 keeps t * inv
    // below 2^48.
    const int64_t inv = div_round((int64_t)1 << 46, root);
    for (int32_t j = 0; j < n; ++j) {
      const int64_t t = ((int64_t)n * xr[j] - sum) >> sh;
      const int32_t k = (int32_t)((t * inv + ((int64_t)1 << 29)) >> 30);
      const int32_t v = requantize(k, mult[j], shift[j]);
      yr[j] = saturate32((int64_t)v + beta[j]);
    }
  }
}

extern "C" void ofa_layer_norm_s32_s8(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                                      int64_t eps, const int32_t* table, int32_t* y,
                                      const int32_t* narrow_table, int8_t* narrow) {
  const ofa_layer_norm_s32_dims row = {1, d->dim, d->ld};
  const ofa_requant_dims rq = {1, d->dim, d->ld, d->ld, 1};
  for (int32_t r = 0; r < d->rows; ++r) {
    int32_t* yr = y + (size_t)r * d->ld;
    ofa_layer_norm_s32(&row, x + (size_t)r * d->ld, eps, table, yr);
    ofa_requant_to_s8(&rq, yr, narrow_table, narrow + (size_t)r * d->ld);
  }
}

namespace {
int32_t iexp_q10(int32_t x) {
  if (x > 0) x = 0;
  if (x <= -kExpCutoff) return 0;
  const int32_t n = -x;
  const int32_t z = (int32_t)(((int64_t)n * kInvLn2Mul) >> kInvLn2Shift);
  const int32_t p = x + z * kLn2Q10;  // in (-ln2, 0]
  const int32_t q = p + kBQ10;
  return (q * q + kCScaled) >> z;
}
}  // namespace

extern "C" int32_t ofa_iexp_q10(int32_t x) { return iexp_q10(x); }

extern "C" void ofa_softmax_s8(const ofa_softmax_s8_dims* d, int32_t* scores,
                               const int32_t* table, int8_t* probs) {
  const int32_t mult = table[0], shift = table[1], zp = table[2];
  for (int32_t r = 0; r < d->rows; ++r) {
    int32_t* sr = scores + (size_t)r * d->ld_in;
    int8_t* pr = probs + (size_t)r * d->ld_out;
    const int32_t used = d->causal ? (r + 1 < d->cols ? r + 1 : d->cols) : d->cols;
    int32_t mx = INT32_MIN;
    for (int32_t j = 0; j < used; ++j) {
      const int32_t v = saturate32((int64_t)requantize(sr[j], mult, shift) + zp);
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
    const int64_t inv = div_round((int64_t)127 << 32, total);
    for (int32_t j = 0; j < used; ++j) {
      const int64_t p = ((int64_t)sr[j] * inv + ((int64_t)1 << 31)) >> 32;
      pr[j] = (int8_t)(p > 127 ? 127 : p);
    }
    for (int32_t j = used; j < d->cols; ++j) pr[j] = 0;
  }
}

extern "C" void ofa_lut_s8(const int8_t* lut, int8_t* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = lut[(int32_t)x[i] + 128];
}
