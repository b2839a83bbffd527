// Each table kernel against a naive double-precision reference, for the
// scalar path and every SIMD variant this CPU supports; odd sizes throughout.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/core_kernels.h"
#include "kernels/int8/dot_s8.h"
#include "test_util.h"

class KernelTest : public ::testing::TestWithParam<std::string> {};

struct GemmCase {
  int m, n, k, pad_a, pad_w, pad_c;
  bool bias, accumulate;
};

TEST_P(KernelTest, GemmMatchesReference) {
  OFA_REQUIRE_VARIANT(kern, GetParam());
  const GemmCase cases[] = {
      {1, 1, 1, 0, 0, 0, false, false},   {5, 7, 3, 1, 2, 3, true, false},
      {13, 33, 17, 0, 0, 0, true, true},  {37, 65, 129, 3, 5, 7, true, false},
      {12, 32, 384, 0, 0, 0, false, true}, {25, 47, 800, 1, 0, 2, true, true},
      {30, 600, 70, 0, 1, 0, true, false}, {7, 1, 385, 0, 0, 0, true, false},
      {43, 1030, 5, 2, 0, 1, false, true},
  };
  uint32_t seed = 1;
  for (const GemmCase& gc : cases) {
    const int lda = gc.k + gc.pad_a, ldw = gc.k + gc.pad_w, ldc = gc.n + gc.pad_c;
    auto a = random_vec((size_t)gc.m * lda, seed++);
    auto w = random_vec((size_t)gc.n * ldw, seed++);
    auto bias = random_vec(gc.n, seed++);
    auto c0 = random_vec((size_t)gc.m * ldc, seed++);
    auto c = c0;
    const size_t scratch_n = ofa_gemm_scratch_floats(gc.k, gc.n);
    // Guard floats after the scratch catch writes past the promised size.
    std::vector<float> scratch(scratch_n + 64 + 16, 12345.f);
    float* sp = scratch.data();
    while ((uintptr_t)sp % 64) ++sp;
    for (size_t i = scratch_n; i < scratch_n + 16; ++i) sp[i] = 12345.f;
    const ofa_gemm_dims d = {gc.m, gc.n, gc.k, lda, ldw, ldc, gc.accumulate};
    kern->gemm(&d, a.data(), w.data(), gc.bias ? bias.data() : nullptr, c.data(), sp);
    for (size_t i = scratch_n; i < scratch_n + 16; ++i) ASSERT_EQ(sp[i], 12345.f);
    for (int i = 0; i < gc.m; ++i) {
      for (int j = 0; j < ldc; ++j) {
        const float got = c[(size_t)i * ldc + j];
        if (j >= gc.n) {  // padding columns of C must be untouched
          ASSERT_EQ(got, c0[(size_t)i * ldc + j]);
          continue;
        }
        double ref = 0, mag = 0;
        for (int k = 0; k < gc.k; ++k) {
          const double p = (double)a[(size_t)i * lda + k] * w[(size_t)j * ldw + k];
          ref += p;
          mag += std::fabs(p);
        }
        if (gc.bias) ref += bias[j], mag += std::fabs(bias[j]);
        if (gc.accumulate) ref += c0[(size_t)i * ldc + j], mag += std::fabs(c0[(size_t)i * ldc + j]);
        ASSERT_NEAR(got, ref, 2e-6 * (mag + 1.0))
            << "m=" << gc.m << " n=" << gc.n << " k=" << gc.k << " at " << i << "," << j;
      }
    }
  }
}

TEST_P(KernelTest, GeluMatchesReference) {
  OFA_REQUIRE_VARIANT(kern, GetParam());
  for (int kind : {OFA_GELU_ERF, OFA_GELU_TANH}) {
    for (size_t n : {1u, 7u, 16u, 37u, 1001u}) {
      auto x = random_vec(n, (uint32_t)(n + kind), -12.f, 12.f);
      if (n > 3) x[0] = 0.f, x[1] = -0.3f, x[2] = 95.f, x[3] = -95.f;
      auto y = x;
      kern->gelu(y.data(), n, kind);
      for (size_t i = 0; i < n; ++i) {
        const double v = x[i];
        const double ref = kind == OFA_GELU_ERF
                               ? 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)))
                               : 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) *
                                                            (v + 0.044715 * v * v * v)));
        ASSERT_NEAR(y[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "x=" << v << " kind=" << kind;
      }
    }
  }
}

TEST_P(KernelTest, LayerNormMatchesReference) {
  OFA_REQUIRE_VARIANT(kern, GetParam());
  for (int dim : {1, 5, 16, 17, 33, 384}) {
    const int rows = 3, ld = dim + 3;
    auto x = random_vec((size_t)rows * ld, (uint32_t)dim, -3.f, 5.f);
    auto w = random_vec(dim, 7u + dim, 0.5f, 1.5f);
    auto b = random_vec(dim, 9u + dim);
    for (bool in_place : {false, true}) {
      std::vector<float> y(x.size(), -7.f);
      auto xin = x;
      float* out = in_place ? xin.data() : y.data();
      const ofa_layer_norm_dims d = {rows, dim, ld, 1e-5f};
      kern->layer_norm(&d, xin.data(), w.data(), b.data(), out);
      for (int r = 0; r < rows; ++r) {
        double mean = 0, var = 0;
        for (int j = 0; j < dim; ++j) mean += x[(size_t)r * ld + j];
        mean /= dim;
        for (int j = 0; j < dim; ++j) var += std::pow(x[(size_t)r * ld + j] - mean, 2);
        var /= dim;
        for (int j = 0; j < ld; ++j) {
          if (j >= dim) {
            ASSERT_EQ(out[(size_t)r * ld + j], in_place ? x[(size_t)r * ld + j] : -7.f);
            continue;
          }
          const double ref = (x[(size_t)r * ld + j] - mean) / std::sqrt(var + 1e-5) * w[j] + b[j];
          ASSERT_NEAR(out[(size_t)r * ld + j], ref, 2e-5 * (1 + std::fabs(ref))) << dim;
        }
      }
    }
  }
}

TEST_P(KernelTest, SoftmaxMatchesReference) {
  OFA_REQUIRE_VARIANT(kern, GetParam());
  for (int cols : {1, 5, 16, 17, 42, 45}) {
    for (int causal : {0, 1}) {
      const int rows = cols, ld = cols + 2;
      auto x0 = random_vec((size_t)rows * ld, (uint32_t)(cols * 3 + causal), -20.f, 20.f);
      auto x = x0;
      const ofa_softmax_dims d = {rows, cols, ld, 0.37f, causal};
      kern->softmax(&d, x.data());
      for (int r = 0; r < rows; ++r) {
        const int used = causal ? std::min(r + 1, cols) : cols;
        double mx = -1e300, sum = 0;
        for (int j = 0; j < used; ++j) mx = std::max(mx, 0.37 * x0[(size_t)r * ld + j]);
        for (int j = 0; j < used; ++j) sum += std::exp(0.37 * x0[(size_t)r * ld + j] - mx);
        for (int j = 0; j < ld; ++j) {
          const float got = x[(size_t)r * ld + j];
          if (j >= cols) ASSERT_EQ(got, x0[(size_t)r * ld + j]);
          else if (j >= used) ASSERT_EQ(got, 0.f);
          else {
            const double ref = std::exp(0.37 * x0[(size_t)r * ld + j] - mx) / sum;
            ASSERT_NEAR(got, ref, 1e-6 + 2e-6 * ref);
          }
        }
      }
    }
  }
}

TEST_P(KernelTest, AttentionMatchesReference) {
  OFA_REQUIRE_VARIANT(kern, GetParam());
  for (int causal : {0, 1}) {
    const int n = 11, heads = 3, hd = 5, dm = heads * hd;
    auto qkv = random_vec((size_t)n * 3 * dm, 77u + causal, -2.f, 2.f);
    const ofa_attention_dims ad = {n, heads, hd, causal};
    std::vector<float> out((size_t)n * dm, 0.f), scores((size_t)n * n), vt(ofa_attention_v_floats(&ad));
    std::vector<float> scratch(ofa_attention_gemm_scratch_floats(&ad) + 16);
    ofa_attention(kern, &ad, qkv.data(), out.data(), scores.data(), vt.data(), scratch.data());
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < n; ++i) {
        std::vector<double> s(n, 0.0);
        double mx = -1e300, sum = 0;
        const int used = causal ? i + 1 : n;
        for (int j = 0; j < used; ++j) {
          for (int c = 0; c < hd; ++c)
            s[j] += (double)qkv[(size_t)i * 3 * dm + h * hd + c] *
                    qkv[(size_t)j * 3 * dm + dm + h * hd + c];
          s[j] /= std::sqrt((double)hd);
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j < used; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int c = 0; c < hd; ++c) {
          double ref = 0;
          for (int j = 0; j < used; ++j)
            ref += s[j] / sum * qkv[(size_t)j * 3 * dm + 2 * dm + h * hd + c];
          ASSERT_NEAR(out[(size_t)i * dm + h * hd + c], ref, 1e-5);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, KernelTest, ::testing::ValuesIn(all_variant_names()),
                         [](const auto& info) { return info.param; });

TEST(SeriesKernel, PatchesMatchReference) {
  const int L = 23, C = 3, P = 6, S = 4, N = (L - P) / S + 2;
  auto x = random_vec((size_t)L * C, 5u, -3.f, 9.f);
  const int ch = 1;
  const float smean = 2.5f, sstd = 1.7f;
  std::vector<float> patches((size_t)N * P);
  float mu = 0, sd = 0;
  const ofa_series_dims d = {L, C, P, S, N, 1e-5f};
  ofa_series_to_patches(&d, x.data() + ch, smean, sstd, patches.data(), &mu, &sd);
  std::vector<double> z(L + S);
  double m = 0, v = 0;
  for (int t = 0; t < L; ++t) m += (z[t] = (x[(size_t)t * C + ch] - smean) / sstd);
  m /= L;
  for (int t = 0; t < L; ++t) v += (z[t] - m) * (z[t] - m);
  v /= L;
  const double s = std::sqrt(v + 1e-5);
  for (int t = L; t < L + S; ++t) z[t] = z[L - 1];
  EXPECT_NEAR(mu, m, 1e-5);
  EXPECT_NEAR(sd, s, 1e-5);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < P; ++i)
      ASSERT_NEAR(patches[(size_t)n * P + i], (z[n * S + i] - m) / s, 1e-5);
}

TEST(Dispatch, BestIsUsable) {
  const ofa_kernels* best = ofa_kernels_best();
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(ofa_kernels_by_name(best->name), best);
  EXPECT_EQ(ofa_kernels_by_name("scalar"), &ofa_kernels_scalar);
  EXPECT_EQ(ofa_kernels_by_name("no-such-isa"), nullptr);
}

// The SXTB16/SMLAD formulation the Cortex-M DSP GEMM runs, spelled in C on the host, against the
// plain one: bit-identical for every length (tails included) and for the extreme values -128/127.
TEST(DotS8, PairsMatchPlain) {
  uint32_t seed = 7;
  auto next = [&]() { seed = seed * 1664525u + 1013904223u; return seed >> 24; };
  for (int32_t k : {1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 63, 64, 385}) {
    for (int fill = 0; fill < 3; ++fill) {
      const int32_t ldw = k + 3;
      std::vector<int8_t> a(k), w((size_t)4 * ldw);
      for (auto& v : a) v = fill == 0 ? (int8_t)next() : fill == 1 ? (int8_t)-128 : (int8_t)127;
      for (auto& v : w) v = fill == 0 ? (int8_t)next() : (int8_t)-128;
      int32_t plain[4], pairs[4];
      ofa_dot::plain_1x4(a.data(), w.data(), ldw, k, plain);
      ofa_dot::pairs_1x4(a.data(), w.data(), ldw, k, pairs);
      for (int c = 0; c < 4; ++c) EXPECT_EQ(plain[c], pairs[c]) << "k " << k << " column " << c;
      EXPECT_EQ(ofa_dot::plain_1x1(a.data(), w.data() + ldw, k), ofa_dot::pairs_1x1(a.data(), w.data() + ldw, k));
    }
  }
  EXPECT_EQ(ofa_dot::mla_pairs(ofa_dot::even_pairs(0x80FF7F01u), ofa_dot::odd_pairs(0x80FF7F01u), 5),
            5 + 1 * 127 + (-1) * (-128));  // bytes 01 7F FF 80: (1, -1) . (127, -128)
}
