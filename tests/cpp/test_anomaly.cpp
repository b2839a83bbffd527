// The anomaly core (csrc/ofa/ofa_anomaly.h, csrc/anomaly/): its own exp/log/erfc against the host libm,
// the scorer's refusals and fixed memory, and the stream's schedule and error handling.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "anomaly/dmath.h"
#include "ofa/ofa_anomaly.h"

namespace {

double ulps(double got, double want) {
  if (got == want) return 0;
  return std::fabs(got - want) / (std::fabs(want) * std::numeric_limits<double>::epsilon());
}

ofa_scorer_config default_scorer() {
  // detector.py's ScorerConfig defaults.
  return {1000, 30, 3000, 200, 1, 1.5, 0.02, 0.5, 0.5};
}

TEST(AnomalyMath, ExpLogErfcAgreeWithLibm) {
  std::mt19937_64 g(7);
  double worst_exp = 0, worst_log = 0, worst_erfc = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = std::uniform_real_distribution<double>(-700, 700)(g);
    const double y = std::uniform_real_distribution<double>(-6, 6)(g);
    worst_exp = std::max({worst_exp, ulps(ofa_dmath::exp(x), std::exp(x)), ulps(ofa_dmath::exp(y), std::exp(y))});
    const double v = std::exp(x), w = std::uniform_real_distribution<double>(0.01, 4)(g);
    worst_log = std::max({worst_log, ulps(ofa_dmath::log(v), std::log(v)), ulps(ofa_dmath::log(w), std::log(w))});
    const double z = std::uniform_real_distribution<double>(-6, 26)(g);
    worst_erfc = std::max(worst_erfc, std::fabs(ofa_dmath::erfc(z) / std::erfc(z) - 1));
  }
  EXPECT_LE(worst_exp, 2.0);
  EXPECT_LE(worst_log, 4.0);
  EXPECT_LE(worst_erfc, 1e-13);
  EXPECT_EQ(ofa_dmath::exp(-800), 0.0);
  EXPECT_TRUE(std::isinf(ofa_dmath::exp(710)));
  EXPECT_TRUE(std::isinf(ofa_dmath::log(0.0)) && ofa_dmath::log(0.0) < 0);
  EXPECT_TRUE(std::isnan(ofa_dmath::log(-1.0)));
  EXPECT_NEAR(ofa_dmath::log(4.9e-324), std::log(4.9e-324), 1e-12);  // subnormal input
  EXPECT_EQ(ofa_dmath::erfc(30.0), 0.0);
  EXPECT_EQ(ofa_dmath::erfc(-30.0), 2.0);
}

TEST(AnomalyScorer, RefusesBadSettingsAndShortMemory) {
  ofa_scorer_config c = default_scorer();
  EXPECT_EQ(ofa_validate_scorer_config(&c), OFA_OK);
  EXPECT_EQ(ofa_scorer_bytes(&c), 4u * (1000 + 30 + 3000));
  const ofa_scorer_config bad[] = {
      {0, 30, 3000, 200, 1, 1.5, 0.02, 0.5, 0.5},  {1000, 30, 3000, -1, 1, 1.5, 0.02, 0.5, 0.5},
      {1000, 30, 3000, 200, 2, 1.5, 0.02, 0.5, 0.5}, {1000, 30, 3000, 200, 1, -1, 0.02, 0.5, 0.5},
      {1000, 30, 3000, 200, 1, NAN, 0.02, 0.5, 0.5}, {1000, 30, 3000, 200, 1, 1.5, 0.02, 0.0, 0.5},
      {1000, 30, 3000, 200, 1, 1.5, 0.02, 0.5, 1.5}};
  for (const auto& b : bad) {
    EXPECT_EQ(ofa_validate_scorer_config(&b), OFA_ERR_BAD_CONFIG);
    EXPECT_EQ(ofa_scorer_bytes(&b), 0u);
  }
  std::vector<float> mem(ofa_scorer_bytes(&c) / 4);
  ofa_scorer s;
  EXPECT_EQ(ofa_scorer_init(&s, &c, mem.data(), mem.size() * 4 - 4), OFA_ERR_ARENA_TOO_SMALL);
  EXPECT_EQ(ofa_scorer_init(&s, &c, nullptr, mem.size() * 4), OFA_ERR_NULL_ARG);
  ASSERT_EQ(ofa_scorer_init(&s, &c, mem.data(), mem.size() * 4), OFA_OK);
}

TEST(AnomalyScorer, ScoresStayInRangeAndTheRingSumsDoNotDrift) {
  ofa_scorer_config c = default_scorer();
  c.error_window = 50;  // many wraps
  std::vector<float> mem(ofa_scorer_bytes(&c) / 4);
  ofa_scorer s;
  ASSERT_EQ(ofa_scorer_init(&s, &c, mem.data(), mem.size() * 4), OFA_OK);
  std::mt19937 g(3);
  std::uniform_real_distribution<double> noise(-1, 1);  // bounded: the range is learnt early
  double peak = 0;
  int peak_at = -1;
  for (int t = 0; t < 20000; ++t) {
    const double x = noise(g) + (t == 15000 ? 40.0 : 0.0);
    const double v = ofa_scorer_step(&s, x, 0.0);
    ASSERT_TRUE(v >= 0.0 && v <= 1.0) << t;
    if (t >= 1000 && v > peak) peak = v, peak_at = t;  // after the range and the rings have settled
    if (t % 50 == 49 || t % 50 == 17) {  // the running sums equal a fresh sum of what the ring holds
      double s1 = 0;
      for (int i = 0; i < s.errors.count; ++i) s1 += s.errors.buf[i];
      EXPECT_NEAR(s.errors.s1, s1, 1e-9 * std::max(1.0, s1));
    }
  }
  EXPECT_EQ(peak_at, 15000);
  EXPECT_EQ(peak, 1.0);  // far outside the range seen: the spatial rule
  EXPECT_EQ(ofa_scorer_step(&s, 1.0, std::nan("")), 0.0);  // no forecast
}

// A forecaster that predicts the window's last value; it can be told to fail once.
struct Persist {
  int32_t seq_len, horizon, calls = 0, fail_at = -1;
};
ofa_status persist(void* ctx, const float* window, float* out) {
  Persist* p = static_cast<Persist*>(ctx);
  if (p->calls++ == p->fail_at) {
    out[0] = 12345.f;  // a half-written forecast
    return OFA_ERR_BAD_TENSOR;
  }
  for (int32_t i = 0; i < p->horizon; ++i) out[i] = window[p->seq_len - 1];
  return OFA_OK;
}

TEST(AnomalyStream, ForecastsOnScheduleAndScoresZeroBeforeTrainRows) {
  ofa_stream_config c = {16, 4, 3, 40, default_scorer()};
  std::vector<float> mem(ofa_stream_bytes(&c) / 4);
  ASSERT_EQ(ofa_stream_bytes(&c), ofa_scorer_bytes(&c.scorer) + 4u * (2 * 16 + 4));
  ofa_stream s;
  ASSERT_EQ(ofa_stream_init(&s, &c, mem.data(), mem.size() * 4), OFA_OK);
  Persist p{16, 4};
  std::vector<int64_t> origins;
  for (int t = 0; t < 100; ++t) {
    double score = -1;
    const int64_t before = s.forecasts;
    ASSERT_EQ(ofa_stream_push(&s, (float)std::sin(t * 0.3) + (t == 70 ? 9.f : 0.f), persist, &p, &score), OFA_OK);
    if (s.forecasts != before) origins.push_back(t);
    if (t < 40) EXPECT_EQ(score, 0.0) << t;
    if (t == 70) EXPECT_GE(score, 0.5);
  }
  // From seq_len every stride rows, then afresh at train_rows (40), then every stride rows again.
  std::vector<int64_t> want;
  for (int64_t t = 16; t < 40; t += 3) want.push_back(t);
  for (int64_t t = 40; t < 100; t += 3) want.push_back(t);
  EXPECT_EQ(origins, want);
}

TEST(AnomalyStream, AFailedForecastConsumesNothing) {
  ofa_stream_config c = {8, 4, 2, 8, default_scorer()};
  std::vector<float> mem_a(ofa_stream_bytes(&c) / 4), mem_b(mem_a.size());
  ofa_stream a, b;
  ASSERT_EQ(ofa_stream_init(&a, &c, mem_a.data(), mem_a.size() * 4), OFA_OK);
  ASSERT_EQ(ofa_stream_init(&b, &c, mem_b.data(), mem_b.size() * 4), OFA_OK);
  Persist pa{8, 4}, pb{8, 4};
  pb.fail_at = 3;
  for (int t = 0; t < 60; ++t) {
    const float x = (float)std::cos(t * 0.5);
    double sa = -1, sb = -1;
    ASSERT_EQ(ofa_stream_push(&a, x, persist, &pa, &sa), OFA_OK);
    ofa_status st = ofa_stream_push(&b, x, persist, &pb, &sb);
    if (st != OFA_OK) {
      EXPECT_EQ(st, OFA_ERR_BAD_TENSOR);
      EXPECT_EQ(sb, -1.0);  // not written
      st = ofa_stream_push(&b, x, persist, &pb, &sb);  // the same sample again
    }
    ASSERT_EQ(st, OFA_OK);
    EXPECT_EQ(std::memcmp(&sa, &sb, sizeof sa), 0) << t;
  }
  double score = -1;
  EXPECT_EQ(ofa_stream_push(&a, NAN, persist, &pa, &score), OFA_ERR_BAD_TENSOR);
  EXPECT_EQ(ofa_stream_push(&a, INFINITY, persist, &pa, &score), OFA_ERR_BAD_TENSOR);
  EXPECT_EQ(score, -1.0);
  EXPECT_EQ(ofa_stream_push(&a, 1.f, nullptr, &pa, &score), OFA_ERR_NULL_ARG);
}

TEST(AnomalyStream, RefusesBadConfigs) {
  const ofa_stream_config bad[] = {{16, 4, 5, 40, default_scorer()},   // stride > horizon
                                   {16, 4, 0, 40, default_scorer()},   // stride 0
                                   {16, 4, 1, 15, default_scorer()},   // train_rows < seq_len
                                   {0, 4, 1, 40, default_scorer()}};
  for (const auto& c : bad) {
    EXPECT_EQ(ofa_validate_stream_config(&c), OFA_ERR_BAD_CONFIG);
    EXPECT_EQ(ofa_stream_bytes(&c), 0u);
  }
  ofa_stream_config c = {16, 4, 1, 40, default_scorer()};
  std::vector<float> mem(ofa_stream_bytes(&c) / 4);
  ofa_stream s;
  EXPECT_EQ(ofa_stream_init(&s, &c, mem.data(), mem.size() * 4 - 1), OFA_ERR_ARENA_TOO_SMALL);
}

}  // namespace
