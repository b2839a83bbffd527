// scorer.cpp - the per-sample anomaly score (ofa_anomaly.h; detector.py's steps 1-8, in its order).
#include "anomaly/dmath.h"
#include "ofa/ofa_anomaly.h"

namespace {

// Numenta's anomaly-likelihood constants (detector.py: MU_MIN, SD_MIN, RED, YELLOW, LOG_EPS).
constexpr double kMuMin = 0.03;
constexpr double kSdMin = 1.7320508075688773e-02;  // sqrt(3e-4)
constexpr double kRed = 1e-5, kYellow = 1e-3, kLogEps = 1e-10;
constexpr double kZBig = 1e6;
// Errors are capped where float32 rings still hold them and their squares stay finite in double.
constexpr double kErrorMax = 1e30;
constexpr double kSqrt2 = 1.4142135623730951;  // math.sqrt(2.0)

double sqrt_d(double v) { return __builtin_sqrt(v); }  // IEEE sqrt is correctly rounded everywhere

void ring_init(ofa_ring* r, float* buf, int32_t size) {
  r->buf = buf;
  r->size = size;
  r->index = r->count = 0;
  r->s1 = r->s2 = 0.0;
  for (int32_t i = 0; i < size; ++i) buf[i] = 0.f;
}

void ring_push(ofa_ring* r, double value) {
  const float v = (float)value;  // the sums hold what the ring holds
  if (r->count == r->size) {
    const double old = r->buf[r->index];
    r->s1 -= old;
    r->s2 -= old * old;
  } else {
    ++r->count;
  }
  r->buf[r->index] = v;
  r->s1 += (double)v;
  r->s2 += (double)v * (double)v;
  if (++r->index == r->size) {  // wrapped: recompute the sums, so rounding cannot drift
    r->index = 0;
    double s1 = 0.0, s2 = 0.0;
    for (int32_t i = 0; i < r->size; ++i) {
      s1 += (double)r->buf[i];
      s2 += (double)r->buf[i] * (double)r->buf[i];
    }
    r->s1 = s1;
    r->s2 = s2;
  }
}

double ring_mean(const ofa_ring* r) { return r->s1 / r->count; }

double ring_std(const ofa_ring* r) {
  const double m = r->s1 / r->count;
  const double v = r->s2 / r->count - m * m;
  return sqrt_d(v > 0.0 ? v : 0.0);
}

bool finite(double v) { return v == v && v - v == 0.0; }

}  // namespace

extern "C" {

ofa_status ofa_validate_scorer_config(const ofa_scorer_config* c) {
  if (!c) return OFA_ERR_NULL_ARG;
  const int32_t max_window = 1 << 24;  // float ring indices and sums stay exact far past this
  if (c->error_window < 1 || c->short_window < 1 || c->long_window < 1 || c->error_window > max_window ||
      c->short_window > max_window || c->long_window > max_window || c->suppress_rows < 0 ||
      (c->red_yellow != 0 && c->red_yellow != 1))
    return OFA_ERR_BAD_CONFIG;
  if (!(c->z_offset >= 0 && finite(c->z_offset)) || !(c->spatial_tolerance >= 0 && finite(c->spatial_tolerance)) ||
      !(c->suppress_threshold > 0 && c->suppress_threshold <= 1) ||
      !(c->suppress_factor >= 0 && c->suppress_factor <= 1))
    return OFA_ERR_BAD_CONFIG;
  return OFA_OK;
}

size_t ofa_scorer_bytes(const ofa_scorer_config* c) {
  if (ofa_validate_scorer_config(c) != OFA_OK) return 0;
  return sizeof(float) * ((size_t)c->error_window + (size_t)c->short_window + (size_t)c->long_window);
}

ofa_status ofa_scorer_init(ofa_scorer* s, const ofa_scorer_config* c, void* mem, size_t bytes) {
  if (!s || !c || !mem) return OFA_ERR_NULL_ARG;
  const ofa_status st = ofa_validate_scorer_config(c);
  if (st != OFA_OK) return st;
  if (bytes < ofa_scorer_bytes(c)) return OFA_ERR_ARENA_TOO_SMALL;
  if ((uintptr_t)mem % alignof(float) != 0) return OFA_ERR_ARENA_MISALIGNED;
  float* p = static_cast<float*>(mem);
  s->config = *c;
  ring_init(&s->errors, p, c->error_window);
  ring_init(&s->raw, p + c->error_window, c->short_window);
  ring_init(&s->averages, p + c->error_window + c->short_window, c->long_window);
  s->low = s->high = 0.0;
  s->seen_value = 0;
  s->suppress_left = 0;
  s->previous_red = 0;
  return OFA_OK;
}

void ofa_scorer_observe(ofa_scorer* s, double x) {
  if (!s->seen_value) {
    s->low = s->high = x;
    s->seen_value = 1;
    return;
  }
  if (x < s->low) s->low = x;
  if (x > s->high) s->high = x;
}

double ofa_scorer_step(ofa_scorer* s, double x, double f) {
  const ofa_scorer_config& c = s->config;
  if (f != f) {  // no forecast: the value range learns x, the score is 0
    ofa_scorer_observe(s, x);
    return 0.0;
  }
  double a = x > f ? x - f : f - x;  // 1. error
  if (!(a <= kErrorMax)) a = kErrorMax;
  double z = 0.0;  // 2. normalise
  if (s->errors.count >= 2) {
    const double mu = ring_mean(&s->errors), sd = ring_std(&s->errors);
    z = sd > 0 ? (a - mu) / sd : (a <= mu ? 0.0 : kZBig);
  }
  ring_push(&s->errors, a);
  const double excess = z - c.z_offset > 0.0 ? z - c.z_offset : 0.0;  // 3. raw score
  const double r = 1.0 - ofa_dmath::exp(-0.5 * excess * excess);
  ring_push(&s->raw, r);  // 4. average
  const double m = ring_mean(&s->raw);
  double q = 1.0;  // 5. likelihood
  if (s->averages.count >= 1) {
    double mu = ring_mean(&s->averages), sd = ring_std(&s->averages);
    if (mu < kMuMin) mu = kMuMin;
    if (sd < kSdMin) sd = kSdMin;
    q = 0.5 * ofa_dmath::erfc((m - mu) / (sd * kSqrt2));
  }
  ring_push(&s->averages, m);
  const int32_t red = q <= kRed;
  if (c.red_yellow && red && s->previous_red) q = kYellow;
  s->previous_red = red;
  double score = ofa_dmath::log(q + kLogEps) / ofa_dmath::log(kLogEps);  // 6. squash
  if (score > 1.0) score = 1.0;
  if (!(score > 0.0)) score = 0.0;
  if (s->seen_value && s->high > s->low && c.spatial_tolerance > 0) {  // 7. spatial
    const double tol = c.spatial_tolerance * (s->high - s->low);
    if (x > s->high + tol || x < s->low - tol) score = 1.0;
  }
  ofa_scorer_observe(s, x);
  if (s->suppress_left > 0) {  // 8. suppress
    score *= c.suppress_factor;
    --s->suppress_left;
  } else if (c.suppress_rows && score >= c.suppress_threshold) {
    s->suppress_left = c.suppress_rows;
  }
  return score;
}

}  // extern "C"
