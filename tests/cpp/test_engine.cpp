// Engine-level tests: end-to-end vs the naive reference, arena exactness and
// containment (guard bytes), and config/argument validation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

#include "ofa/ofa_int8.h"
#include "reference_model.h"
#include "test_util.h"

namespace {

ofa_config small_config(int layout, int head_rank, int linear_path = 0) {
  ofa_config c = test_config(kSmallShape, layout, 7, layout == OFA_LAYOUT_BERT ? 1e-12f : 1e-5f);
  c.head_rank = head_rank;
  c.linear_path = linear_path;
  return c;
}

using EndToEndParam = std::tuple<std::string, int, int, int>;  // variant, layout, rank, linear path
class EndToEnd : public ::testing::TestWithParam<EndToEndParam> {};

TEST_P(EndToEnd, MatchesReferenceAndStaysInArena) {
  const std::string variant = std::get<0>(GetParam());
  OFA_REQUIRE_VARIANT(kern, variant);
  const ofa_config cfg =
      small_config(std::get<1>(GetParam()), std::get<2>(GetParam()), std::get<3>(GetParam()));
  TestModel tm(cfg);
  const int batch = 3;
  auto x = random_vec((size_t)batch * cfg.seq_len * cfg.n_channels, 42u, -4.f, 6.f);
  const auto ref = refimpl::forward(tm.model, x.data(), batch);
  double scale = 0;
  for (double v : ref) scale = std::max(scale, std::fabs(v));
  // 9 series: tiles of 1, 4 (partial last tile) and all at once.
  for (int tile : {1, 4, 9, 16}) {
    size_t bytes = 0;
    ASSERT_EQ(ofa_arena_bytes(&cfg, tile, &bytes), OFA_OK);
    GuardedArena ga(bytes);
    std::vector<float> y((size_t)batch * cfg.horizon * cfg.n_channels, NAN);
    ASSERT_EQ(ofa_forward(&tm.model, kern, tile, x.data(), batch, y.data(), ga.arena, bytes),
              OFA_OK);
    EXPECT_TRUE(ga.guards_intact()) << "wrote outside the arena, tile=" << tile;
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], ref[i], 2e-5 * scale) << "tile=" << tile << " i=" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllVariants, EndToEnd,
    ::testing::Combine(::testing::ValuesIn(all_variant_names()),
                       ::testing::Values((int)OFA_LAYOUT_BERT, (int)OFA_LAYOUT_GPT2),
                       ::testing::Values(0, 3), ::testing::Values(0, 1)),
    [](const auto& info) {
      return std::get<0>(info.param) +
             (std::get<1>(info.param) == OFA_LAYOUT_BERT ? "_bert" : "_gpt2") +
             (std::get<2>(info.param) == 0 ? "_dense" : "_factored") +
             (std::get<3>(info.param) ? "_linear" : "");
    });

TEST(Planner, SizeIsExact) {
  const ofa_config cfg = small_config(OFA_LAYOUT_GPT2, 3);
  TestModel tm(cfg);
  auto x = random_vec((size_t)2 * cfg.seq_len * cfg.n_channels, 3u);
  const ofa_kernels* kern = ofa_kernels_best();
  for (int tile : {1, 5}) {
    size_t bytes = 0;
    ASSERT_EQ(ofa_arena_bytes(&cfg, tile, &bytes), OFA_OK);
    ASSERT_GT(bytes, 0u);
    {
      GuardedArena ga(bytes - 1);
      std::vector<float> y((size_t)2 * cfg.horizon * cfg.n_channels, 3.5f);
      EXPECT_EQ(ofa_forward(&tm.model, kern, tile, x.data(), 2, y.data(), ga.arena, bytes - 1),
                OFA_ERR_ARENA_TOO_SMALL);
      EXPECT_TRUE(ga.arena_untouched());
      EXPECT_TRUE(ga.guards_intact());
      for (float v : y) EXPECT_EQ(v, 3.5f);
    }
    {
      GuardedArena ga(bytes);
      std::vector<float> y((size_t)2 * cfg.horizon * cfg.n_channels, 3.5f);
      EXPECT_EQ(ofa_forward(&tm.model, kern, tile, x.data(), 2, y.data(), ga.arena, bytes),
                OFA_OK);
      EXPECT_TRUE(ga.guards_intact());
    }
  }
}

TEST(Planner, GrowsWithTileSeries) {
  const ofa_config cfg = small_config(OFA_LAYOUT_BERT, 0);
  size_t a = 0, b = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 1, &a), OFA_OK);
  ASSERT_EQ(ofa_arena_bytes(&cfg, 8, &b), OFA_OK);
  EXPECT_LT(a, b);
  EXPECT_EQ(ofa_arena_bytes(&cfg, 0, &a), OFA_ERR_BAD_BATCH);
  EXPECT_EQ(ofa_arena_bytes(nullptr, 1, &a), OFA_ERR_NULL_ARG);
}

TEST(Config, RejectsBadDims) {
  const ofa_config good = small_config(OFA_LAYOUT_BERT, 0);
  EXPECT_EQ(ofa_validate_config(&good), OFA_OK);
  EXPECT_EQ(ofa_n_patches(&good), 6);
  auto bad = [&](auto mutate) {
    ofa_config c = good;
    mutate(c);
    size_t bytes = 0;
    EXPECT_EQ(ofa_arena_bytes(&c, 1, &bytes), OFA_ERR_BAD_CONFIG);
    EXPECT_EQ(ofa_n_patches(&c), 0);
    return ofa_validate_config(&c);
  };
  EXPECT_EQ(bad([](ofa_config& c) { c.n_heads = 3; }), OFA_ERR_BAD_CONFIG);  // 20 % 3
  EXPECT_EQ(bad([](ofa_config& c) { c.patch_len = 24; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.stride = 0; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.d_model = 0; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.horizon = -1; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.n_channels = 0; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.head_rank = -2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.layout = 7; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.gelu = 2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.ln_eps = 0.f; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.revin_eps = NAN; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.d_model = 1 << 20; c.n_heads = 1; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(bad([](ofa_config& c) { c.linear_path = 2; }), OFA_ERR_BAD_CONFIG);
  // The linear path reads the window from the patches: a stride past the patch leaves gaps.
  EXPECT_EQ(bad([](ofa_config& c) { c.linear_path = 1; c.stride = 7; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(ofa_validate_config(nullptr), OFA_ERR_NULL_ARG);
}

TEST(Config, LinearPathNeedsItsTensors) {
  const ofa_config cfg = small_config(OFA_LAYOUT_BERT, 0, 1);
  TestModel tm(cfg);
  EXPECT_EQ(ofa_validate_model(&tm.model), OFA_OK);
  ofa_model m = tm.model;
  m.linear_w = nullptr;
  EXPECT_EQ(ofa_validate_model(&m), OFA_ERR_MISSING_TENSOR);
  m = tm.model;
  m.linear_b = nullptr;
  EXPECT_EQ(ofa_validate_model(&m), OFA_ERR_MISSING_TENSOR);
}

TEST(Config, ScalerMustBeFiniteWithPositiveStd) {
  const ofa_config cfg = small_config(OFA_LAYOUT_BERT, 0);
  TestModel tm(cfg);
  for (float bad : {0.f, -1.f, (float)NAN, (float)INFINITY}) {
    std::vector<float> std_(cfg.n_channels, 1.f), mean(cfg.n_channels, 0.f);
    ofa_model m = tm.model;
    std_[1] = bad;
    m.scaler_std = std_.data();
    EXPECT_EQ(ofa_validate_model(&m), OFA_ERR_BAD_TENSOR) << bad;
    m = tm.model;
    mean[0] = bad;
    m.scaler_mean = mean.data();
    EXPECT_EQ(ofa_validate_model(&m), bad == 0.f || bad == -1.f ? OFA_OK : OFA_ERR_BAD_TENSOR) << bad;
  }
}

TEST(Planner, RefusesAnArenaOverTheBuildTimeCap) {
  // Every field is valid, yet 1-wide patches at stride 1 make a 65,000^2 attention area (16 GiB).
  ofa_config cfg = small_config(OFA_LAYOUT_BERT, 0);
  cfg.d_model = cfg.n_heads = 1;
  cfg.patch_len = cfg.stride = 1;
  cfg.seq_len = 65000;
  ASSERT_EQ(ofa_validate_config(&cfg), OFA_OK);
  size_t bytes = 0;
  EXPECT_EQ(ofa_arena_bytes(&cfg, 1, &bytes), OFA_ERR_ARENA_TOO_LARGE);
  EXPECT_EQ(ofa_arena_bytes_int8(&cfg, 1, &bytes), OFA_ERR_ARENA_TOO_LARGE);
  EXPECT_NE(std::string(ofa_status_name(OFA_ERR_ARENA_TOO_LARGE)).find("OFA_MAX_ARENA_BYTES"), std::string::npos);
}

TEST(Forward, RejectsBadArgumentsWithoutWriting) {
  const ofa_config cfg = small_config(OFA_LAYOUT_BERT, 0);
  TestModel tm(cfg);
  auto x = random_vec((size_t)cfg.seq_len * cfg.n_channels, 9u);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 2, &bytes), OFA_OK);
  GuardedArena ga(bytes + OFA_ARENA_ALIGN);
  std::vector<float> y((size_t)cfg.horizon * cfg.n_channels, 1.25f);
  const ofa_kernels* k = ofa_kernels_best();

  EXPECT_EQ(ofa_forward(&tm.model, k, 2, x.data(), 0, y.data(), ga.arena, bytes), OFA_ERR_BAD_BATCH);
  EXPECT_EQ(ofa_forward(&tm.model, k, 0, x.data(), 1, y.data(), ga.arena, bytes), OFA_ERR_BAD_BATCH);
  EXPECT_EQ(ofa_forward(&tm.model, k, 2, nullptr, 1, y.data(), ga.arena, bytes), OFA_ERR_NULL_ARG);
  EXPECT_EQ(ofa_forward(&tm.model, k, 2, x.data(), 1, y.data(), ga.arena + 4, bytes),
            OFA_ERR_ARENA_MISALIGNED);
  ofa_model missing = tm.model;
  missing.emb_ln_w = nullptr;
  EXPECT_EQ(ofa_forward(&missing, k, 2, x.data(), 1, y.data(), ga.arena, bytes),
            OFA_ERR_MISSING_TENSOR);
  std::vector<ofa_layer_weights> layers = tm.layers;
  layers[1].ff_out_b = nullptr;
  missing = tm.model;
  missing.layers = layers.data();
  EXPECT_EQ(ofa_validate_model(&missing), OFA_ERR_MISSING_TENSOR);
  missing = tm.model;
  missing.config.n_heads = 3;
  EXPECT_EQ(ofa_forward(&missing, k, 2, x.data(), 1, y.data(), ga.arena, bytes), OFA_ERR_BAD_CONFIG);
  EXPECT_TRUE(ga.arena_untouched());
  EXPECT_TRUE(ga.guards_intact());
  for (float v : y) EXPECT_EQ(v, 1.25f);
}

TEST(Forward, ValidatedEntryGivesTheSameBitsAndStillChecksArguments) {
  const ofa_config cfg = small_config(OFA_LAYOUT_GPT2, 2);
  TestModel tm(cfg);
  ASSERT_EQ(ofa_validate_model(&tm.model), OFA_OK);
  auto x = random_vec((size_t)2 * cfg.seq_len * cfg.n_channels, 5u);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 3, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  const ofa_kernels* k = ofa_kernels_best();
  std::vector<float> want((size_t)2 * cfg.horizon * cfg.n_channels), got(want.size());
  ASSERT_EQ(ofa_forward(&tm.model, k, 3, x.data(), 2, want.data(), ga.arena, bytes), OFA_OK);
  ASSERT_EQ(ofa_forward_validated(&tm.model, k, 3, x.data(), 2, got.data(), ga.arena, bytes), OFA_OK);
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float)));
  EXPECT_EQ(ofa_forward_validated(nullptr, k, 3, x.data(), 2, got.data(), ga.arena, bytes), OFA_ERR_NULL_ARG);
  EXPECT_EQ(ofa_forward_validated(&tm.model, k, 3, x.data(), 0, got.data(), ga.arena, bytes), OFA_ERR_BAD_BATCH);
  EXPECT_EQ(ofa_forward_validated(&tm.model, k, 3, x.data(), 2, got.data(), ga.arena, bytes - 1),
            OFA_ERR_ARENA_TOO_SMALL);
  EXPECT_TRUE(ga.guards_intact());
}

TEST(Forward, ScalarAndBestAgree) {
  ofa_config cfg = small_config(OFA_LAYOUT_GPT2, 0);
  cfg.d_model = 64;
  cfg.n_heads = 4;
  cfg.d_ff = 256;
  TestModel tm(cfg);
  const int batch = 2;
  auto x = random_vec((size_t)batch * cfg.seq_len * cfg.n_channels, 11u, -3.f, 3.f);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 3, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  std::vector<float> a((size_t)batch * cfg.horizon * cfg.n_channels), b(a.size());
  ASSERT_EQ(ofa_forward(&tm.model, nullptr, 3, x.data(), batch, a.data(), ga.arena, bytes), OFA_OK);
  ASSERT_EQ(ofa_forward(&tm.model, ofa_kernels_best(), 3, x.data(), batch, b.data(), ga.arena, bytes),
            OFA_OK);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * (1 + std::fabs(a[i])));
}

}  // namespace
