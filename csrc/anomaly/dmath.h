// dmath.h - exp, log and erfc in plain IEEE double arithmetic, for the anomaly scorer.
//
// Why not libm: the scorer must give the same bits on the host (glibc) and on Cortex-M (newlib, soft
// double), and the two libms round their transcendental functions differently in the last place.
// These use only +, -, *, / and comparisons, in a fixed order, so any IEEE-754 double implementation
// gives the same result (build with -ffp-contract=off: no FMA contraction). Accuracy, checked against
// the host libm in tests/test_anomaly_device.py: a few ulp for exp and log; erfc within
// 1e-13 relative (e^(-x^2) inherits the rounding of x^2 at large x), far below what the scorer's
// decisions can see.
#ifndef OFA_ANOMALY_DMATH_H
#define OFA_ANOMALY_DMATH_H

#include <stdint.h>
#include <string.h>

namespace ofa_dmath {

// ln 2 split so that k * kLn2Hi is exact for |k| < 2^11 (Cody-Waite).
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kInvLn2 = 1.44269504088896338700e+00;
constexpr double kInvSqrtPi = 5.64189583547756286948e-01;   // 1 / sqrt(pi)
constexpr double kTwoOverSqrtPi = 1.12837916709551257390e+00;

inline double from_bits(uint64_t u) { double d; memcpy(&d, &u, sizeof d); return d; }
inline uint64_t to_bits(double d) { uint64_t u; memcpy(&u, &d, sizeof u); return u; }

// 2^k for -1022 <= k <= 1023, built from its exponent field.
inline double pow2(int k) { return from_bits((uint64_t)(k + 1023) << 52); }

// e^x. Below -745 it is 0, above 709.78 +inf; NaN stays NaN.
inline double exp(double x) {
  if (x != x) return x;
  if (x > 709.78) return from_bits(0x7ff0000000000000ull);
  if (x < -745.2) return 0.0;
  // x = k ln2 + r, |r| <= ln2 / 2; e^r by its Taylor series to r^13 / 13! (error below 1e-17 there).
  const double kd = x * kInvLn2;
  const int k = (int)(kd < 0 ? kd - 0.5 : kd + 0.5);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;
  double p = 1.0 / 6227020800.0;  // 1/13!
  static const double inv_fact[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
                                      1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                      1.0 / 6.0, 0.5, 1.0, 1.0};
  for (int i = 0; i < 13; ++i) p = p * r + inv_fact[i];
  // Scale by 2^k in two steps so that subnormal results and k = 1024 stay exact.
  if (k < -1021) return p * pow2(k + 1000) * pow2(-1000);
  if (k > 1023) return p * pow2(k - 1) * 2.0;
  return p * pow2(k);
}

// ln x for x > 0 (0 -> -inf, x < 0 or NaN -> NaN, +inf -> +inf).
inline double log(double x) {
  if (!(x > 0)) return x == 0 ? -from_bits(0x7ff0000000000000ull) : from_bits(0x7ff8000000000000ull);
  if (x == from_bits(0x7ff0000000000000ull)) return x;
  int k = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range first
    x *= 18014398509481984.0;          // 2^54
    k = -54;
  }
  // x = 2^e m with m in [sqrt(1/2), sqrt(2)): ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716.
  const uint64_t u = to_bits(x);
  int e = (int)((u >> 52) & 0x7ff) - 1023;
  double m = from_bits((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    ++e;
  }
  k += e;
  const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
  // 2 atanh(s) = 2 (s + s^3/3 + ... + s^23/23); the next term is below 1e-19.
  double p = 1.0 / 23.0;
  for (int n = 21; n >= 1; n -= 2) p = p * s2 + 1.0 / n;
  const double ln_m = 2.0 * s * p;
  return (k * kLn2Hi + ln_m) + k * kLn2Lo;
}

// erfc x = 1 - erf x.
inline double erfc(double x) {
  if (x != x) return x;
  if (x < 0) return 2.0 - erfc(-x);
  if (x > 27.3) return 0.0;  // below the smallest double
  if (x < 0.5) {
    // erf x = 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)), n <= 14 (next term below 1e-19 here).
    const double x2 = x * x;
    double term = x, sum = x;
    for (int n = 1; n <= 14; ++n) {
      term = -term * x2 / n;
      sum += term / (2 * n + 1);
    }
    return 1.0 - kTwoOverSqrtPi * sum;
  }
  const double x2 = x * x;
  if (x < 1.0) {
    // erf x = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (1 3 5 ... (2n+1)): every term positive.
    double term = x, sum = x;
    for (int n = 1; n <= 60; ++n) {
      term = term * 2.0 * x2 / (2 * n + 1);
      sum += term;
    }
    return 1.0 - kTwoOverSqrtPi * exp(-x2) * sum;
  }
  // erfc x = e^(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))), evaluated back to
  // front from a fixed depth: 200 terms reach 1e-16 at x = 1, 60 at x = 2.
  double t = x;
  for (int n = x < 2.0 ? 200 : 60; n >= 1; --n) t = x + (0.5 * n) / t;
  return exp(-x2) * kInvSqrtPi / t;
}

}  // namespace ofa_dmath

#endif
