// int8 path: GEMM and requantisation of every ISA against the portable
// reference, integer non-GEMM ops against double-precision math, and the
// planner / arena / validation rules of ofa_forward_int8.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "int8_model.h"
#include "kernels/core_kernels.h"
#include "core/planner_int8.h"
#include "kernels/int8/requant_inline.h"
#include "ofa/ofa_int8.h"
#include "test_util.h"

namespace {

// "pairs": the portable table with the Cortex-M DSP GEMM form (2x2 blocks over widened A rows),
// which the dispatch never offers but the firmware runs.
std::vector<std::string> int8_variants() { return {"scalar", "pairs", "avx2", "avx512vnni"}; }

const ofa_kernels_int8* int8_table(const std::string& name) {
  return name == "pairs" ? &ofa_kernels_int8_pairs : ofa_kernels_int8_by_name(name.c_str());
}

#define OFA_REQUIRE_INT8(kern, name)                                   \
  const ofa_kernels_int8* kern = int8_table(name);                     \
  if (!kern) GTEST_SKIP() << (name) << " not built or not supported here"

std::vector<int8_t> random_s8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-128, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = (int8_t)dist(rng);
  return v;
}

class GemmS8 : public ::testing::TestWithParam<std::string> {};

TEST_P(GemmS8, MatchesNaiveExactly) {
  OFA_REQUIRE_INT8(kern, GetParam());
  struct Shape { int m, n, k; };
  // Tails in every direction: k not a multiple of 4 / 16 / 64, n and m
  // not multiples of the register blocks; the head's long k; extremes.
  const Shape shapes[] = {{1, 1, 1},   {3, 5, 7},     {8, 32, 64},  {9, 33, 65},
                          {17, 40, 43}, {43, 43, 32}, {4, 96, 2000}, {2, 3, 16512}};
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    const int lda = s.k + 3, ldw = s.k + 5, ldc = s.n + 2;  // strided
    auto a = random_s8((size_t)s.m * lda, seed++);
    auto w = random_s8((size_t)s.n * ldw, seed++);
    for (int kk = 0; kk < s.k; ++kk) a[kk] = w[kk] = -128;  // row 0 / col 0 at the extreme
    std::vector<int32_t> bias(s.n);
    for (int j = 0; j < s.n; ++j) bias[j] = (j * 7919) % 20001 - 10000;
    std::vector<int32_t> c((size_t)s.m * ldc, 12345);
    std::vector<unsigned char> scratch(ofa_gemm_s8_scratch_bytes(s.k) + 64);
    void* sp = scratch.data() + (64 - (uintptr_t)scratch.data() % 64) % 64;
    const ofa_gemm_s8_dims d = {s.m, s.n, s.k, lda, ldw, ldc};
    kern->gemm_s8(&d, a.data(), w.data(), bias.data(), c.data(), sp);
    for (int i = 0; i < s.m; ++i) {
      for (int j = 0; j < s.n; ++j) {
        int64_t want = bias[j];
        for (int kk = 0; kk < s.k; ++kk) want += (int64_t)a[(size_t)i * lda + kk] * w[(size_t)j * ldw + kk];
        ASSERT_EQ(c[(size_t)i * ldc + j], want) << s.m << "x" << s.n << "x" << s.k << " at " << i << "," << j;
      }
      for (int j = s.n; j < ldc; ++j) ASSERT_EQ(c[(size_t)i * ldc + j], 12345) << "wrote past n";
    }
  }
}

TEST_P(GemmS8, RequantMatchesPortableOnEdgeCases) {
  OFA_REQUIRE_INT8(kern, GetParam());
  const int32_t extremes[] = {INT32_MIN, INT32_MIN + 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, INT32_MAX};
  std::mt19937 rng(5);
  const int cols = 37;  // not a multiple of 16: masked tails
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<int32_t> in((size_t)2 * cols), table((size_t)3 * cols), out_a((size_t)2 * cols),
        out_b((size_t)2 * cols);
    for (auto& v : in) v = rep % 2 ? extremes[rng() % 12] : (int32_t)rng();
    for (int j = 0; j < cols; ++j) {
      int32_t m = (int32_t)((1u << 30) + rng() % (1u << 30));
      if (rng() % 2) m = -m;
      if (rng() % 7 == 0) m = INT32_MIN;  // the srdhm saturation case
      table[j] = m;
      table[cols + j] = OFA_SHIFT_MIN + (int32_t)(rng() % (OFA_SHIFT_MAX - OFA_SHIFT_MIN + 1));
      table[2 * cols + j] = (int32_t)(rng() % 300) - 150;
    }
    const std::vector<int32_t> one = {table[0], table[cols], table[2 * cols]};
    for (int count : {cols, 1}) {
      const int32_t* t = count == 1 ? one.data() : table.data();
      const ofa_requant_dims d = {2, cols, cols, cols, count};
      std::vector<int8_t> s8_a((size_t)2 * cols), s8_b((size_t)2 * cols);
      ofa_requant_to_s8(&d, in.data(), t, s8_a.data());
      kern->requant_to_s8(&d, in.data(), t, s8_b.data());
      ASSERT_EQ(s8_a, s8_b) << "requant_to_s8, count " << count;
      for (size_t i = 0; i < out_a.size(); ++i) out_a[i] = out_b[i] = extremes[(i + rep) % 12];
      ofa_requant_add_s32(&d, in.data(), t, out_a.data());
      kern->requant_add_s32(&d, in.data(), t, out_b.data());
      ASSERT_EQ(out_a, out_b) << "requant_add_s32, count " << count;
    }
  }
}

TEST_P(GemmS8, FusedRequantMatchesGemmThenRequant) {
  OFA_REQUIRE_INT8(kern, GetParam());
  struct Shape { int m, n, k; };
  const Shape shapes[] = {{1, 1, 1}, {3, 5, 7}, {8, 32, 64}, {9, 33, 65}, {17, 70, 43}, {43, 32, 42}, {20, 96, 1536}};
  std::mt19937 rng(23);
  uint32_t seed = 100;
  for (const Shape& s : shapes) {
    const int lda = s.k + 3, ldw = s.k + 5, ldc = s.n + 2;  // strided
    auto a = random_s8((size_t)s.m * lda, seed++);
    auto w = random_s8((size_t)s.n * ldw, seed++);
    for (int kk = 0; kk < s.k; ++kk) a[kk] = w[kk] = -128;
    std::vector<int32_t> bias(s.n);
    for (int j = 0; j < s.n; ++j) bias[j] = (int32_t)(rng() % 2000001) - 1000000;
    std::vector<unsigned char> scratch(ofa_gemm_s8_scratch_bytes(s.k) + 64);
    void* sp = scratch.data() + (64 - (uintptr_t)scratch.data() % 64) % 64;
    const ofa_gemm_s8_dims d = {s.m, s.n, s.k, lda, ldw, ldc};
    std::vector<int32_t> c((size_t)s.m * ldc);
    ofa_kernels_int8_scalar.gemm_s8(&d, a.data(), w.data(), bias.data(), c.data(), sp);
    // Tables: typical right shifts; with left shifts and the INT32_MIN
    // multiplier (the portable fallback); extreme zero points.
    for (int kind = 0; kind < 5; ++kind) {
      std::vector<int32_t> table((size_t)3 * s.n);
      for (int j = 0; j < s.n; ++j) {
        int32_t m = (int32_t)((1u << 30) + rng() % (1u << 30));
        if (rng() % 2) m = -m;
        int32_t sh = -(int32_t)(rng() % 32);
        int32_t zp = (int32_t)(rng() % 300) - 150;
        if (kind == 1 && rng() % 5 == 0) sh = (int32_t)(rng() % 31);
        if (kind == 1 && rng() % 7 == 0) m = INT32_MIN;
        if (kind == 2) zp = rng() % 2 ? INT32_MAX - (int32_t)(rng() % 100) : INT32_MIN + (int32_t)(rng() % 100);
        if (kind == 3) { sh = j % 2 ? 0 : -31; m = j % 3 ? m : 0; }
        if (kind == 4 && j % 3 == 0) sh = (int32_t)(rng() % 31);  // left shifts alone
        table[j] = m;
        table[s.n + j] = sh;
        table[2 * s.n + j] = zp;
      }
      const std::vector<int32_t> one = {table[0], table[s.n], table[2 * s.n]};
      for (int count : {s.n, 1}) {
        const int32_t* t = count == 1 ? one.data() : table.data();
        const ofa_requant_dims rd = {s.m, s.n, ldc, ldc, count};
        std::vector<int8_t> want8((size_t)s.m * ldc, 7), got8((size_t)s.m * ldc, 7);
        ofa_requant_to_s8(&rd, c.data(), t, want8.data());
        kern->gemm_s8_requant_s8(&d, a.data(), w.data(), bias.data(), t, count, got8.data(), sp);
        ASSERT_EQ(want8, got8) << "to_s8 " << s.m << "x" << s.n << "x" << s.k << " kind " << kind << " count " << count;
        std::vector<int32_t> want32((size_t)s.m * ldc), got32;
        for (size_t i = 0; i < want32.size(); ++i) {
          const int32_t ext[] = {INT32_MIN, INT32_MAX, -5, 0, 123456};
          want32[i] = i % 3 ? (int32_t)rng() : ext[rng() % 5];
        }
        got32 = want32;
        ofa_requant_add_s32(&rd, c.data(), t, want32.data());
        kern->gemm_s8_requant_add_s32(&d, a.data(), w.data(), bias.data(), t, count, got32.data(), sp);
        ASSERT_EQ(want32, got32) << "add_s32 " << s.m << "x" << s.n << "x" << s.k << " kind " << kind << " count " << count;
      }
    }
  }
}

TEST_P(GemmS8, LayerNormAndSoftmaxMatchPortable) {
  OFA_REQUIRE_INT8(kern, GetParam());
  std::mt19937 rng(17);
  for (int d : {5, 16, 37, 384}) {  // tails and whole vectors
    std::vector<int32_t> table((size_t)3 * d);
    for (int j = 0; j < d; ++j) {
      table[j] = (int32_t)((1u << 30) + rng() % (1u << 30)) * (j % 3 ? 1 : -1);
      table[d + j] = d == 37 ? (int32_t)(rng() % 17) - 14 : -(int32_t)(rng() % 14);  // d 37: some left shifts
      table[2 * d + j] = (int32_t)(rng() % 20001) - 10000;
    }
    const int rows = 6;
    std::vector<int32_t> x((size_t)rows * d);
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < d; ++j) {
        const int64_t span = r == 0 ? 0 : r == 1 ? 3 : r == 2 ? 100000 : r == 3 ? (1LL << 31) - 1 : 5000;
        int64_t v = span ? (int64_t)(rng() % (2 * span + 1)) - span : 42;  // row 0 constant
        if (r == 5 && j == 0) v = INT32_MIN;
        x[(size_t)r * d + j] = (int32_t)v;
      }
    for (int64_t eps : {0LL, 1000LL, 1LL << 50}) {
      std::vector<int32_t> ya(x.size()), yb(x.size());
      const ofa_layer_norm_s32_dims dims = {rows, d, d};
      ofa_layer_norm_s32(&dims, x.data(), eps, table.data(), ya.data());
      kern->layer_norm_s32(&dims, x.data(), eps, table.data(), yb.data());
      ASSERT_EQ(ya, yb) << "layer norm d=" << d << " eps=" << eps;
      // Fused int8 copy: layer norm then requant_to_s8 of y, in place too.
      const int32_t narrow_tables[][3] = {{(int32_t)((1u << 30) + rng() % (1u << 30)), -(int32_t)(rng() % 20), 3},
                                          {-(int32_t)((1u << 30) + rng() % (1u << 30)), 0, -128},
                                          {(1 << 30) + 5, 4, 0},       // left shift: portable path
                                          {INT32_MIN, -2, 0},          // the srdhm saturation case
                                          {(1 << 30) + 7, -31, INT32_MAX}};
      for (const auto& nt : narrow_tables) {
        std::vector<int8_t> na((size_t)rows * d), nb((size_t)rows * d, 1);
        const ofa_requant_dims rq = {rows, d, d, d, 1};
        ofa_requant_to_s8(&rq, ya.data(), nt, na.data());
        std::vector<int32_t> yc = x;
        kern->layer_norm_s32_s8(&dims, yc.data(), eps, table.data(), yc.data(), nt, nb.data());
        ASSERT_EQ(ya, yc) << "fused layer norm d=" << d << " eps=" << eps;
        ASSERT_EQ(na, nb) << "fused layer norm int8 copy d=" << d << " eps=" << eps << " shift " << nt[1];
      }
    }
  }
  for (int n : {1, 7, 16, 43}) {
    std::vector<int32_t> scores((size_t)n * n);
    for (auto& v : scores) v = (int32_t)rng();
    for (int i = 0; i < n; ++i) scores[(size_t)i * n] = INT32_MIN;  // extreme logits
    for (const int32_t shift : {-20, -3, 0, 1, 5, -31}) {
      int32_t table[3] = {(int32_t)((1u << 30) + rng() % (1u << 30)), shift, (int32_t)(rng() % 100) - 50};
      if (shift == 0) table[0] = INT32_MIN;  // the srdhm saturation case
      for (int causal : {0, 1}) {
        std::vector<int32_t> wa = scores, wb = scores;
        std::vector<int8_t> pa((size_t)n * n, 9), pb((size_t)n * n, 9);
        const ofa_softmax_s8_dims dims = {n, n, n, n, causal};
        ofa_softmax_s8(&dims, wa.data(), table, pa.data());
        kern->softmax_s8(&dims, wb.data(), table, pb.data());
        ASSERT_EQ(pa, pb) << "softmax n=" << n << " shift=" << shift << " causal=" << causal;
      }
    }
  }
}

// Many rows whose spreads run from 1 to 2^31 (log-uniform), offsets anywhere in int32: the SIMD
// layer norms switch between their 32-bit steps and the portable row by row, and the softmax rows
// run from one live score to all of them.
TEST_P(GemmS8, LayerNormAndSoftmaxMatchPortableOverSpreads) {
  OFA_REQUIRE_INT8(kern, GetParam());
  std::mt19937 rng(23);
  std::uniform_real_distribution<double> log_span(0.0, 31.0);
  for (int d : {3, 8, 45, 384}) {
    const int rows = 64;
    std::vector<int32_t> table((size_t)3 * d), x((size_t)rows * d);
    for (int j = 0; j < d; ++j) {
      table[j] = (int32_t)((1u << 30) + rng() % (1u << 30)) * (j % 2 ? 1 : -1);
      table[d + j] = -(int32_t)(rng() % 20);
      table[2 * d + j] = (int32_t)(rng() % 2001) - 1000;
    }
    for (int r = 0; r < rows; ++r) {
      const int64_t span = (int64_t)std::exp2(log_span(rng));
      const int64_t centre = (int64_t)(int32_t)rng() / 2;
      for (int j = 0; j < d; ++j) {
        const int64_t v = centre + (int64_t)(rng() % (2 * span + 1)) - span;
        x[(size_t)r * d + j] = (int32_t)std::min<int64_t>(INT32_MAX, std::max<int64_t>(INT32_MIN, v));
      }
    }
    const ofa_layer_norm_s32_dims dims = {rows, d, d};
    const int32_t nt[3] = {(int32_t)((1u << 30) + 12345), -9, 7};
    std::vector<int32_t> ya(x.size()), yb = x;
    std::vector<int8_t> na(x.size()), nb(x.size());
    ofa_layer_norm_s32_s8(&dims, x.data(), 1 << 20, table.data(), ya.data(), nt, na.data());
    kern->layer_norm_s32_s8(&dims, yb.data(), 1 << 20, table.data(), yb.data(), nt, nb.data());
    ASSERT_EQ(ya, yb) << "fused layer norm d=" << d;
    ASSERT_EQ(na, nb) << "fused layer norm int8 copy d=" << d;
    std::vector<int32_t> yc(x.size());
    kern->layer_norm_s32(&dims, x.data(), 1 << 20, table.data(), yc.data());
    ASSERT_EQ(ya, yc) << "layer norm d=" << d;

    // the same rows as attention scores: d columns, causal from row 0
    for (int causal : {0, 1}) {
      const int32_t st[3] = {(int32_t)((1u << 30) + 999), -(int32_t)(rng() % 12), (int32_t)(rng() % 64) - 32};
      std::vector<int32_t> wa = x, wb = x;
      std::vector<int8_t> pa(x.size(), 9), pb(x.size(), 9);
      const ofa_softmax_s8_dims sd = {rows, d, d, d, causal, 0};
      ofa_softmax_s8(&sd, wa.data(), st, pa.data());
      kern->softmax_s8(&sd, wb.data(), st, pb.data());
      ASSERT_EQ(pa, pb) << "softmax d=" << d << " causal=" << causal;
    }
  }
}

TEST_P(GemmS8, LutMatchesPortable) {
  OFA_REQUIRE_INT8(kern, GetParam());
  auto lut = random_s8(256, 77);
  for (size_t n : {(size_t)0, (size_t)1, (size_t)63, (size_t)64, (size_t)65, (size_t)1000}) {
    auto xa = random_s8(n + 8, (uint32_t)n + 3), xb = xa;
    ofa_lut_s8(lut.data(), xa.data(), n);
    kern->lut_s8(lut.data(), xb.data(), n);
    ASSERT_EQ(xa, xb) << "n=" << n;  // and nothing past n touched
  }
}

INSTANTIATE_TEST_SUITE_P(Isa, GemmS8, ::testing::ValuesIn(int8_variants()));

TEST(Requant, GemmlowpEdgeCases) {
  EXPECT_EQ(ofa_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);  // the only overflow
  EXPECT_EQ(ofa_srdhm(INT32_MAX, INT32_MAX), INT32_MAX - 1);
  EXPECT_EQ(ofa_srdhm(1 << 30, 1 << 30), 1 << 29);
  // gemmlowp's nudge rounds ties up: 1.5 -> 2 but -1.5 -> -1, -2.5 -> -2.
  EXPECT_EQ(ofa_srdhm(3, 1 << 30), 2);
  EXPECT_EQ(ofa_srdhm(-3, 1 << 30), -1);
  EXPECT_EQ(ofa_srdhm(-5, 1 << 30), -2);
  EXPECT_EQ(ofa_srdhm(-7, 1 << 29), -2);  // -1.75
  // RoundingDivideByPOT: half away from zero, negatives included.
  EXPECT_EQ(ofa_rdbpot(5, 1), 3);
  EXPECT_EQ(ofa_rdbpot(-5, 1), -3);
  EXPECT_EQ(ofa_rdbpot(-4, 1), -2);
  EXPECT_EQ(ofa_rdbpot(-6, 2), -2);  // -1.5
  EXPECT_EQ(ofa_rdbpot(-7, 2), -2);  // -1.75
  EXPECT_EQ(ofa_rdbpot(-5, 2), -1);  // -1.25
  EXPECT_EQ(ofa_rdbpot(7, 0), 7);
  EXPECT_EQ(ofa_rdbpot(INT32_MAX, 31), 1);
  EXPECT_EQ(ofa_rdbpot(INT32_MIN, 31), -1);
  EXPECT_EQ(ofa_rdbpot(-(1 << 30), 31), -1);  // -0.5 -> -1
  EXPECT_EQ(ofa_rdbpot((1 << 30) - 1, 31), 0);
  // Multiplier 0.5 (2^30 / 2^31) at shift 0; saturating left shifts.
  EXPECT_EQ(ofa_requantize(100, 1 << 30, 0), 50);
  EXPECT_EQ(ofa_requantize(-101, 1 << 30, 0), -50);  // -50.5: srdhm tie
  EXPECT_EQ(ofa_requantize(-101, 1 << 30, -1), -25);  // -25.25
  EXPECT_EQ(ofa_requantize(-102, 1 << 30, -1), -26);  // -25.5: RoundingDivideByPOT tie, away from 0
  EXPECT_EQ(ofa_requantize(1 << 20, 1 << 30, OFA_SHIFT_MAX), (1 << 30));  // saturates, then * 0.5
  EXPECT_EQ(ofa_requantize(-(1 << 20), 1 << 30, OFA_SHIFT_MAX), -(1 << 30));
  EXPECT_EQ(ofa_requantize(INT32_MAX, INT32_MAX, OFA_SHIFT_MIN), 1);
  EXPECT_EQ(ofa_requantize(123456, -(1 << 30), -4), -3858);  // -123456 / 32 = -3858.0
}

TEST(Requant, SaturatesToInt8AndInt32) {
  const int32_t table[3] = {INT32_MAX, 0, 10};  // ~x * 1 + 10
  const int32_t in[4] = {1000, -1000, 117, 118};
  int8_t out[4];
  const ofa_requant_dims d = {1, 4, 4, 4, 1};
  ofa_requant_to_s8(&d, in, table, out);
  EXPECT_EQ(out[0], 127);
  EXPECT_EQ(out[1], -128);
  EXPECT_EQ(out[2], 127);
  EXPECT_EQ(out[3], 127);
  int32_t h[2] = {INT32_MAX - 5, INT32_MIN + 5};
  const int32_t add_in[2] = {100, -100};
  const int32_t add_table[3] = {INT32_MAX, 0, 0};
  const ofa_requant_dims d2 = {1, 2, 2, 2, 1};
  ofa_requant_add_s32(&d2, add_in, add_table, h);
  EXPECT_EQ(h[0], INT32_MAX);
  EXPECT_EQ(h[1], INT32_MIN);
}

TEST(IntegerOps, IsqrtIsExactFloor) {
  const int64_t cases[] = {0, 1, 2, 3, 4, 15, 16, 17, (1LL << 40) - 1, 1LL << 40,
                           (1LL << 62) - 1, INT64_MAX, 999999999999LL};
  for (int64_t v : cases) {
    const int64_t r = ofa_isqrt64(v);
    EXPECT_LE((__int128)r * r, (__int128)v) << v;
    EXPECT_GT((__int128)(r + 1) * (r + 1), (__int128)v) << v;
  }
}

TEST(IntegerOps, ExpFollowsExpWithinOneAndAHalfPercent) {
  // Every logit down to the cutoff: also proves the multiply-shift division
  // by 709 exact (a wrong z would be off by a factor of 2).
  const double e0 = ofa_iexp_q10(0);
  for (int32_t x = 0; x >= -709 * 31; --x) {
    const double got = ofa_iexp_q10(x) / e0, want = std::exp(x / 1024.0);
    ASSERT_NEAR(got, want, 0.015 * want + 2.0 / e0) << x;  // I-BERT's polynomial: ~1.1% worst
  }
  EXPECT_EQ(ofa_iexp_q10(-709 * 31), 0);
  EXPECT_EQ(ofa_iexp_q10(INT32_MIN), 0);
}

TEST(IntegerOps, SoftmaxMatchesFloatSoftmax) {
  const int n = 13;
  std::mt19937 rng(3);
  std::vector<int32_t> scores((size_t)n * n), work;
  for (auto& v : scores) v = (int32_t)(rng() % 40001) - 20000;
  const int32_t table[3] = {1 << 30, -3, 0};  // logits = score / 16 (Q10)
  for (int causal : {0, 1}) {
    work = scores;
    std::vector<int8_t> p((size_t)n * n, 99);
    const ofa_softmax_s8_dims d = {n, n, n, n, causal};
    ofa_softmax_s8(&d, work.data(), table, p.data());
    for (int r = 0; r < n; ++r) {
      const int used = causal ? r + 1 : n;
      double mx = -1e300, total = 0;
      for (int j = 0; j < used; ++j) mx = std::max(mx, scores[r * n + j] / 16.0 / 1024.0);
      for (int j = 0; j < used; ++j) total += std::exp(scores[r * n + j] / 16.0 / 1024.0 - mx);
      for (int j = 0; j < n; ++j) {
        if (j >= used) {
          EXPECT_EQ(p[r * n + j], 0);
          continue;
        }
        const double want = 127.0 * std::exp(scores[r * n + j] / 16.0 / 1024.0 - mx) / total;
        EXPECT_NEAR(p[r * n + j], want, 1.5) << r << "," << j;
      }
    }
  }
}

TEST(IntegerOps, LayerNormMatchesDouble) {
  const int d = 24;
  std::mt19937 rng(9);
  std::vector<int32_t> table((size_t)3 * d);
  std::vector<double> gamma(d), beta(d);
  // gamma_j * sqrt(d) / 2^16 per unit of k -> multiplier gamma * sqrt(d) / 2^16 * 2^10 output units
  for (int j = 0; j < d; ++j) {
    gamma[j] = (j % 3 == 0 ? -1 : 1) * (0.5 + 0.04 * j);
    const double real = gamma[j] * std::sqrt((double)d) / 65536.0 * 1024.0;
    int e;
    const double m = std::frexp(std::fabs(real), &e);
    table[j] = (int32_t)std::llround(m * 2147483648.0) * (real < 0 ? -1 : 1);
    table[d + j] = e;
    beta[j] = j * 10 - 100;
    table[2 * d + j] = (int32_t)beta[j];
  }
  for (int32_t scale : {1, 1000, 1000000}) {  // the large one needs the >> sh path
    std::vector<int32_t> x(d), y(d);
    for (auto& v : x) v = ((int32_t)(rng() % 2001) - 1000) * scale;
    const ofa_layer_norm_s32_dims dims = {1, d, d};
    ofa_layer_norm_s32(&dims, x.data(), 0, table.data(), y.data());
    double mean = 0, var = 0;
    for (int v : x) mean += v;
    mean /= d;
    for (int v : x) var += (v - mean) * (v - mean);
    var /= d;
    for (int j = 0; j < d; ++j) {
      const double want = (x[j] - mean) / std::sqrt(var) * gamma[j] * 1024.0 + beta[j];
      EXPECT_NEAR(y[j], want, 2.0 + 1e-3 * std::fabs(want)) << "scale " << scale << " j " << j;
    }
  }
  // A constant row (variance 0): output is beta, no division by zero.
  std::vector<int32_t> x(d, 777), y(d);
  const ofa_layer_norm_s32_dims dims = {1, d, d};
  ofa_layer_norm_s32(&dims, x.data(), 0, table.data(), y.data());
  for (int j = 0; j < d; ++j) EXPECT_EQ(y[j], (int32_t)beta[j]);
}

// The portable layer norm as it was written first, all in int64: the oracle for the 32-bit steps
// the portable kernel now takes where a row allows them.
void layer_norm_int64_form(int rows, int n, const int32_t* x, int64_t eps, const int32_t* table, int32_t* y) {
  for (int r = 0; r < rows; ++r) {
    const int32_t* xr = x + (size_t)r * n;
    int64_t sum = 0;
    for (int j = 0; j < n; ++j) sum += xr[j];
    int64_t max_abs = 0;
    for (int j = 0; j < n; ++j) {
      const int64_t t = (int64_t)n * xr[j] - sum;
      max_abs = std::max(max_abs, t < 0 ? -t : t);
    }
    int sh = 0;
    while ((max_abs >> sh) >= ((int64_t)1 << 22)) ++sh;
    std::vector<int64_t> ts(n);
    for (int j = 0; j < n; ++j) ts[j] = ((int64_t)n * xr[j] - sum) >> sh;
    int64_t var = eps >> (2 * sh);
    for (int64_t t : ts) var += t * t;
    const int64_t root = std::max<int64_t>(1, ofa_isqrt64(var));  // 1: a constant row
    const int64_t inv = (((int64_t)1 << 46) + root / 2) / root;
    for (int j = 0; j < n; ++j) {
      const int64_t t = ts[j];
      const int32_t k = (int32_t)((t * inv + ((int64_t)1 << 29)) >> 30);
      const int64_t v = (int64_t)ofa_requantize(k, table[j], table[n + j]) + table[2 * n + j];
      y[(size_t)r * n + j] = (int32_t)std::min<int64_t>(INT32_MAX, std::max<int64_t>(INT32_MIN, v));
    }
  }
}

TEST(IntegerOps, LayerNormMatchesItsInt64Form) {
  std::mt19937 rng(23);
  for (int d : {1, 2, 7, 128, 384}) {
    std::vector<int32_t> table((size_t)3 * d);
    for (int j = 0; j < d; ++j) {
      table[j] = j % 11 == 5 ? INT32_MIN : (int32_t)((1u << 30) + rng() % (1u << 30)) * (j % 3 ? 1 : -1);
      table[d + j] = j % 7 == 3 ? (int32_t)(rng() % 5) : -(int32_t)(rng() % 32);  // left shifts, -31..0
      table[2 * d + j] = j % 13 == 0 ? INT32_MAX : (int32_t)(rng() % 20001) - 10000;
    }
    // Spans that take each path: tiny variance (inv >= 2^31), d*x - sum beyond int32, the extremes.
    for (int64_t span : {0LL, 1LL, 3LL, 1000LL, 1LL << 20, 1LL << 24, (1LL << 31) - 1}) {
      const int rows = 4;
      std::vector<int32_t> x((size_t)rows * d);
      for (auto& v : x) v = span ? (int32_t)((int64_t)(rng() % (uint64_t)(2 * span + 1)) - span) : 42;
      if (span == (1LL << 31) - 1) x[0] = INT32_MIN;
      for (int64_t eps : {0LL, 1LL, 1000LL, 1LL << 40}) {
        std::vector<int32_t> want(x.size()), got(x.size(), 7), fused = x;
        std::vector<int8_t> narrow(x.size());
        layer_norm_int64_form(rows, d, x.data(), eps, table.data(), want.data());
        const ofa_layer_norm_s32_dims dims = {rows, d, d};
        ofa_layer_norm_s32(&dims, x.data(), eps, table.data(), got.data());
        ASSERT_EQ(want, got) << "d " << d << " span " << span << " eps " << eps;
        const int32_t nt[3] = {(1 << 30) + 12345, -9, 4};
        ofa_layer_norm_s32_s8(&dims, fused.data(), eps, table.data(), fused.data(), nt, narrow.data());
        ASSERT_EQ(want, fused) << "fused, in place: d " << d << " span " << span << " eps " << eps;
        for (size_t i = 0; i < want.size(); ++i) {
          const int64_t v = (int64_t)ofa_requantize(want[i], nt[0], nt[1]) + nt[2];
          ASSERT_EQ(narrow[i], (int8_t)std::min<int64_t>(127, std::max<int64_t>(-128, v))) << i;
        }
      }
    }
  }
}

TEST(Requant, ThirtyTwoBitFormMatchesNested) {
  std::mt19937 rng(5);
  const int32_t xs[] = {0, 1, -1, 2, -2, 127, -128, 1 << 20, -(1 << 20), INT32_MAX, INT32_MIN, INT32_MAX - 1,
                        INT32_MIN + 1, 1 << 30, -(1 << 30)};
  const int32_t mults[] = {INT32_MIN, INT32_MIN + 1, INT32_MAX, 1 << 30, -(1 << 30), (1 << 30) + 1, 1, -1, 0};
  for (int32_t shift = OFA_SHIFT_MIN; shift <= OFA_SHIFT_MAX; ++shift) {
    for (int32_t x : xs)
      for (int32_t m : mults)
        ASSERT_EQ(ofa_rq::requantize_one_shift(x, m, shift), ofa_requantize(x, m, shift))
            << x << " " << m << " " << shift;
    for (int i = 0; i < 20000; ++i) {
      const int32_t x = (int32_t)rng() >> (rng() % 31), m = (int32_t)rng();
      ASSERT_EQ(ofa_rq::requantize_one_shift(x, m, shift), ofa_requantize(x, m, shift))
          << x << " " << m << " " << shift;
    }
  }
  for (int32_t a : {0, 1, -1, INT32_MAX, INT32_MIN})
    for (int32_t b : {0, 1, -1, INT32_MAX, INT32_MIN}) {
      ASSERT_EQ(ofa_rq::add_sat32(a, b), (int32_t)std::min<int64_t>(INT32_MAX, std::max<int64_t>(INT32_MIN, (int64_t)a + b)));
      ASSERT_EQ(ofa_rq::clamp_s8(a), std::min(127, std::max(-128, a)));
    }
}

ofa_config int8_config(int layout, int head_rank) {
  ofa_config c = test_config(kSmallShape, layout, 7, 1e-5f);
  c.head_rank = head_rank;
  return c;
}

std::vector<float> run_int8(const Int8TestModel& tm, const ofa_kernels_int8* k, int tile, const std::vector<float>& x,
                            int batch) {
  const ofa_config& c = tm.model.config;
  size_t bytes = 0;
  EXPECT_EQ(ofa_arena_bytes_int8(&c, tile, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  std::vector<float> y((size_t)batch * c.horizon * c.n_channels, NAN);
  EXPECT_EQ(ofa_forward_int8(&tm.model, k, tile, x.data(), batch, y.data(), ga.arena, bytes), OFA_OK);
  EXPECT_TRUE(ga.guards_intact()) << "wrote outside the arena, tile " << tile;
  return y;
}

TEST(ForwardInt8, EveryIsaAndTileGivesTheSameBits) {
  for (int layout : {OFA_LAYOUT_BERT, OFA_LAYOUT_GPT2}) {
    for (int rank : {0, 3}) {
      const ofa_config c = int8_config(layout, rank);
      Int8TestModel tm(c, 7 + layout * 2 + rank);
      const int batch = 3;
      auto x = random_vec((size_t)batch * c.seq_len * c.n_channels, 11u, -3.f, 5.f);
      const auto want = run_int8(tm, &ofa_kernels_int8_scalar, 1, x, batch);
      for (float v : want) ASSERT_TRUE(std::isfinite(v));
      for (const std::string& name : int8_variants()) {
        const ofa_kernels_int8* k = int8_table(name);
        if (!k) continue;
        for (int tile : {1, 4, 9}) {
          const auto got = run_int8(tm, k, tile, x, batch);
          ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)))
              << name << " tile " << tile << " layout " << layout << " rank " << rank;
        }
        // The entry for a model validated at load (the firmware's and the host layer's) gives the same bits.
        size_t bytes = 0;
        ASSERT_EQ(ofa_arena_bytes_int8(&c, 4, &bytes), OFA_OK);
        GuardedArena ga(bytes);
        std::vector<float> y(want.size());
        ASSERT_EQ(ofa_forward_int8_validated(&tm.model, k, 4, x.data(), batch, y.data(), ga.arena, bytes), OFA_OK);
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), want.size() * sizeof(float))) << name << " validated";
      }
    }
  }
}

// The microcontroller's arena layout (OFA_ARENA_MCU: scores of OFA_MCU_SCORE_ROWS queries at a
// time, the small GEMM scratch) run on the host gives the host layout's bits, causal or not, and
// needs a smaller arena.
TEST(ForwardInt8, MicrocontrollerArenaRulesGiveTheSameBits) {
  for (int layout : {OFA_LAYOUT_BERT, OFA_LAYOUT_GPT2}) {
    ofa_config c = int8_config(layout, 0);
    c.seq_len = 60;  // 15 patches: score blocks of 8 and 7
    Int8TestModel tm(c, 31 + layout);
    const int batch = 2;
    auto x = random_vec((size_t)batch * c.seq_len * c.n_channels, 5u, -2.f, 3.f);
    const auto want = run_int8(tm, &ofa_kernels_int8_scalar, 1, x, batch);
    for (const ofa_kernels_int8* k : {&ofa_kernels_int8_scalar, &ofa_kernels_int8_pairs}) {
      for (int tile : {1, 3}) {
        size_t host = 0, mcu = 0;
        ASSERT_EQ(ofa_arena_bytes_int8_for(&c, tile, OFA_ARENA_HOST, &host), OFA_OK);
        ASSERT_EQ(ofa_arena_bytes_int8_for(&c, tile, OFA_ARENA_MCU, &mcu), OFA_OK);
        EXPECT_LT(mcu, host);
        GuardedArena ga(mcu);
        std::vector<float> y(want.size(), NAN);
        ASSERT_EQ(ofa_detail::forward_int8_validated(&tm.model, k, tile, x.data(), batch, y.data(), ga.arena, mcu,
                                                     OFA_ARENA_MCU),
                  OFA_OK);
        EXPECT_TRUE(ga.guards_intact());
        ASSERT_EQ(0, std::memcmp(y.data(), want.data(), want.size() * sizeof(float)))
            << k->name << " tile " << tile << " layout " << layout;
        EXPECT_EQ(ofa_detail::forward_int8_validated(&tm.model, k, tile, x.data(), batch, y.data(), ga.arena, mcu - 1,
                                                     OFA_ARENA_MCU),
                  OFA_ERR_ARENA_TOO_SMALL);
      }
    }
  }
  size_t bytes = 0;
  const ofa_config c = int8_config(OFA_LAYOUT_BERT, 0);
  EXPECT_EQ(ofa_arena_bytes_int8_for(&c, 1, (ofa_arena_rules)7, &bytes), OFA_ERR_BAD_CONFIG);
}

TEST(PlannerInt8, SizeIsExactAndArenaContained) {
  const ofa_config c = int8_config(OFA_LAYOUT_GPT2, 3);
  Int8TestModel tm(c);
  auto x = random_vec((size_t)2 * c.seq_len * c.n_channels, 3u);
  const ofa_kernels_int8* k = ofa_kernels_int8_best();
  for (int tile : {1, 5}) {
    size_t bytes = 0;
    ASSERT_EQ(ofa_arena_bytes_int8(&c, tile, &bytes), OFA_OK);
    {
      GuardedArena ga(bytes - 1);
      std::vector<float> y((size_t)2 * c.horizon * c.n_channels, 3.5f);
      EXPECT_EQ(ofa_forward_int8(&tm.model, k, tile, x.data(), 2, y.data(), ga.arena, bytes - 1),
                OFA_ERR_ARENA_TOO_SMALL);
      EXPECT_TRUE(ga.arena_untouched());
      for (float v : y) EXPECT_EQ(v, 3.5f);
    }
    {
      GuardedArena ga(bytes);
      std::vector<float> y((size_t)2 * c.horizon * c.n_channels, 3.5f);
      EXPECT_EQ(ofa_forward_int8(&tm.model, k, tile, x.data(), 2, y.data(), ga.arena, bytes), OFA_OK);
      EXPECT_TRUE(ga.guards_intact());
    }
  }
  size_t one = 0, many = 0;
  ASSERT_EQ(ofa_arena_bytes_int8(&c, 1, &one), OFA_OK);
  ASSERT_EQ(ofa_arena_bytes_int8(&c, 8, &many), OFA_OK);
  EXPECT_GT(many, one);
  EXPECT_EQ(ofa_arena_bytes_int8(&c, 0, &one), OFA_ERR_BAD_BATCH);
}

TEST(ValidateInt8, RejectsOutOfRangeQuantisation) {
  const ofa_config c = int8_config(OFA_LAYOUT_BERT, 0);
  Int8TestModel tm(c);
  ASSERT_EQ(ofa_validate_model_int8(&tm.model), OFA_OK);
  const float bad_scales[] = {0.f, -1.f, NAN, INFINITY};
  for (float s : bad_scales) {
    Int8TestModel m(c);
    m.f32[0][0] = s;  // patch_inv_scale
    EXPECT_EQ(ofa_validate_model_int8(&m.model), OFA_ERR_BAD_QUANT) << s;
  }
  auto with_table_entry = [&](int row, int32_t value) {
    Int8TestModel m(c);
    int32_t* t = const_cast<int32_t*>(m.layers[0].ff_in.out.table);
    t[row * m.layers[0].ff_in.out.count] = value;
    return ofa_validate_model_int8(&m.model);
  };
  EXPECT_EQ(with_table_entry(0, 5), OFA_ERR_BAD_QUANT);                    // unnormalised multiplier
  EXPECT_EQ(with_table_entry(0, INT32_MIN), OFA_ERR_BAD_QUANT);
  EXPECT_EQ(with_table_entry(0, 0), OFA_OK);                               // zero is allowed
  EXPECT_EQ(with_table_entry(1, OFA_SHIFT_MAX + 1), OFA_ERR_BAD_QUANT);    // shift bounds
  EXPECT_EQ(with_table_entry(1, OFA_SHIFT_MIN - 1), OFA_ERR_BAD_QUANT);
  EXPECT_EQ(with_table_entry(1, OFA_SHIFT_MIN), OFA_OK);
  EXPECT_EQ(with_table_entry(2, 128), OFA_ERR_BAD_QUANT);                  // int8 zero point
  {
    Int8TestModel m(c);
    m.f32[1][2] = NAN;  // head_out_scale
    EXPECT_EQ(ofa_validate_model_int8(&m.model), OFA_ERR_BAD_QUANT);
  }
  {
    Int8TestModel m(c);
    const_cast<int32_t*>(m.layers[1].qkv.b)[0] = 1 << 30;  // bias beyond the exact range
    EXPECT_EQ(ofa_validate_model_int8(&m.model), OFA_ERR_BAD_QUANT);
  }
  {
    Int8TestModel m(c);
    m.layers[0].gelu_lut = nullptr;
    EXPECT_EQ(ofa_validate_model_int8(&m.model), OFA_ERR_MISSING_TENSOR);
  }
  // Forward refuses before writing anything.
  Int8TestModel m(c);
  m.f32[0][0] = 0.f;
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes_int8(&c, 2, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  auto x = random_vec((size_t)c.seq_len * c.n_channels, 2u);
  std::vector<float> y((size_t)c.horizon * c.n_channels, 3.5f);
  EXPECT_EQ(ofa_forward_int8(&m.model, nullptr, 2, x.data(), 1, y.data(), ga.arena, bytes), OFA_ERR_BAD_QUANT);
  EXPECT_TRUE(ga.arena_untouched());
  for (float v : y) EXPECT_EQ(v, 3.5f);
}

}  // namespace
