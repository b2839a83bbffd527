// The classify head (config.task == OFA_TASK_CLASSIFY): fp32 against the naive
// spec loop, int8 against a naive integer loop over the states it reads, the
// same bits over ISAs, tiles, arena rules and threads, and every inconsistent
// config or call refused without a write.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "core/planner_int8.h"
#include "host/prepack.h"
#include "host/runner.h"
#include "int8_model.h"
#include "kernels/core_kernels.h"
#include "reference_model.h"
#include "test_util.h"

namespace {

// 3 channels, 6 patches of d 20: a window's head reads 360 states.
// Joined tokens: one sequence a window, tokens of P*C = 12 values.
ofa_config classify_config(int layout, int norm, int classes = 4, int tokens = OFA_TOKENS_CHANNEL) {
  ofa_config c = test_config(kSmallShape, layout, 0, layout == OFA_LAYOUT_BERT ? 1e-12f : 1e-5f);
  c.task = OFA_TASK_CLASSIFY;
  c.n_classes = classes;
  c.norm = norm;
  c.tokens = tokens;
  return c;
}

const int kBatch = 5;
const int kTiles[] = {1, 3, 4, 7, 16};  // 1, 1, 1, 2 and 5 windows a tile (the last tile partial)

std::vector<float> windows(const ofa_config& c, uint32_t seed) {
  return random_vec((size_t)kBatch * c.n_channels * c.seq_len, seed, -4.f, 6.f);
}

using Param = std::tuple<std::string, int, int, int>;  // variant, layout, norm, tokens
class ClassifyFp32 : public ::testing::TestWithParam<Param> {};

TEST_P(ClassifyFp32, MatchesTheNaiveLoopAndStaysInArena) {
  OFA_REQUIRE_VARIANT(kern, std::get<0>(GetParam()));
  const ofa_config cfg = classify_config(std::get<1>(GetParam()), std::get<2>(GetParam()), 4, std::get<3>(GetParam()));
  TestModel tm(cfg);
  const auto x = windows(cfg, 42u);
  const auto want = refimpl::classify(tm.model, x.data(), kBatch);
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (int tile : kTiles) {
    size_t bytes = 0;
    ASSERT_EQ(ofa_arena_bytes(&cfg, tile, &bytes), OFA_OK);
    GuardedArena ga(bytes);
    std::vector<float> logits(want.size(), NAN);
    ASSERT_EQ(ofa_classify(&tm.model, kern, tile, x.data(), kBatch, logits.data(), ga.arena, bytes), OFA_OK);
    EXPECT_TRUE(ga.guards_intact()) << "wrote outside the arena, tile " << tile;
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(logits[i], want[i], 2e-5 * scale) << "tile " << tile << " i " << i;
    EXPECT_EQ(ofa_classify(&tm.model, kern, tile, x.data(), kBatch, logits.data(), ga.arena, bytes - 1),
              OFA_ERR_ARENA_TOO_SMALL);
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, ClassifyFp32,
                         ::testing::Combine(::testing::ValuesIn(all_variant_names()),
                                            ::testing::Values((int)OFA_LAYOUT_BERT, (int)OFA_LAYOUT_GPT2),
                                            ::testing::Values((int)OFA_NORM_GLOBAL, (int)OFA_NORM_INSTANCE),
                                            ::testing::Values((int)OFA_TOKENS_CHANNEL, (int)OFA_TOKENS_JOINED)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == OFA_LAYOUT_BERT ? "_bert" : "_gpt2") +
                                  (std::get<2>(info.param) == OFA_NORM_GLOBAL ? "_global" : "_instance") +
                                  (std::get<3>(info.param) == OFA_TOKENS_JOINED ? "_joined" : "");
                         });

TEST(ClassifyFp32, AWindowRangeWritesOnlyItsLogits) {
  const ofa_config cfg = classify_config(OFA_LAYOUT_BERT, OFA_NORM_GLOBAL);
  TestModel tm(cfg);
  ASSERT_EQ(ofa_validate_model(&tm.model), OFA_OK);
  const auto x = windows(cfg, 3u);
  const auto want = refimpl::classify(tm.model, x.data(), kBatch);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 7, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  const int K = cfg.n_classes;
  std::vector<float> logits((size_t)kBatch * K, 7.f);
  ASSERT_EQ(ofa_classify_windows_validated(&tm.model, nullptr, 7, x.data(), kBatch, 2, 2, logits.data(), ga.arena,
                                           bytes),
            OFA_OK);
  for (int w = 0; w < kBatch; ++w)
    for (int k = 0; k < K; ++k) {
      const float v = logits[(size_t)w * K + k];
      if (w == 2 || w == 3) {
        EXPECT_NEAR(v, want[(size_t)w * K + k], 1e-4);
      } else {
        EXPECT_EQ(v, 7.f) << "window " << w << " is outside the range";
      }
    }
}

std::vector<float> classify_int8(const Int8TestModel& tm, const ofa_kernels_int8* k, int tile, const std::vector<float>& x,
                                 int batch, ofa_arena_rules rules = OFA_BUILD_ARENA_RULES) {
  const ofa_config& c = tm.model.config;
  size_t bytes = 0;
  EXPECT_EQ(ofa_arena_bytes_int8_for(&c, tile, rules, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  std::vector<float> logits((size_t)batch * c.n_classes, NAN);
  EXPECT_EQ(ofa_detail::classify_int8_validated(&tm.model, k, tile, x.data(), batch, 0, batch, logits.data(), ga.arena,
                                                bytes, rules),
            OFA_OK);
  EXPECT_TRUE(ga.guards_intact()) << "wrote outside the arena, tile " << tile;
  return logits;
}

TEST(ClassifyInt8, EveryIsaTileArenaRuleAndBatchGivesTheSameBits) {
  for (int layout : {OFA_LAYOUT_BERT, OFA_LAYOUT_GPT2}) {
    for (int norm : {OFA_NORM_GLOBAL, OFA_NORM_INSTANCE}) {
      for (int tokens : {OFA_TOKENS_CHANNEL, OFA_TOKENS_JOINED}) {
        const ofa_config c = classify_config(layout, norm, 4, tokens);
        Int8TestModel tm(c, 3 + layout * 2 + norm + 4 * tokens);
        ASSERT_EQ(ofa_validate_model_int8(&tm.model), OFA_OK);
        const auto x = windows(c, 11u);
        const auto want = classify_int8(tm, &ofa_kernels_int8_scalar, 1, x, kBatch);
        for (float v : want) ASSERT_TRUE(std::isfinite(v));
        for (const char* name : {"scalar", "avx2", "avx512vnni"}) {
          const ofa_kernels_int8* k = ofa_kernels_int8_by_name(name);
          if (!k) continue;
          for (int tile : kTiles) {
            const auto got = classify_int8(tm, k, tile, x, kBatch);
            ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float))) << name << " tile " << tile;
          }
        }
        for (int tile : {1, 7}) {  // the microcontroller's layout
          const auto got = classify_int8(tm, &ofa_kernels_int8_pairs, tile, x, kBatch, OFA_ARENA_MCU);
          ASSERT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * sizeof(float))) << "mcu tile " << tile;
        }
        // A window's logits do not depend on the windows beside it.
        const std::vector<float> last(x.end() - c.n_channels * c.seq_len, x.end());
        const auto alone = classify_int8(tm, &ofa_kernels_int8_scalar, 16, last, 1);
        ASSERT_EQ(0, std::memcmp(alone.data(), want.data() + (kBatch - 1) * c.n_classes, alone.size() * sizeof(float)));
      }
    }
  }
}

// The int8 head by hand: a head of K = C*N*d classes, W the identity, bias 0 and scale 1 reads out the
// window's int8 states (logit i = state i, exact in float); then a random head's logits must be
// (bias + sum_i W[k, i] * state_i) * scale[k], one sum over all channels, the bias once.
TEST(ClassifyInt8, TheHeadIsOneIntegerSumOverEveryChannel) {
  const ofa_config states_cfg = classify_config(OFA_LAYOUT_BERT, OFA_NORM_GLOBAL, 3 * 6 * 20);
  const int depth = (int)ofa_head_depth(&states_cfg);
  const int K = 4;
  ofa_config cfg = states_cfg;
  cfg.n_classes = K;
  Int8TestModel tm(cfg, 5);
  const auto x = windows(cfg, 17u);

  Int8TestModel readout(states_cfg, 5);  // the same seed: the same encoder tensors
  std::vector<int8_t> eye((size_t)depth * depth, 0);
  for (int i = 0; i < depth; ++i) eye[(size_t)i * depth + i] = 1;
  std::vector<int32_t> zero(depth, 0);
  std::vector<float> one(depth, 1.f);
  readout.model = tm.model;
  readout.model.config = states_cfg;
  readout.model.head = ofa_linear_int8{eye.data(), zero.data(), ofa_requant{}, nullptr};
  readout.model.head_out_scale = one.data();
  ASSERT_EQ(ofa_validate_model_int8(&readout.model), OFA_OK);
  const auto states = classify_int8(readout, &ofa_kernels_int8_scalar, 4, x, kBatch);

  const auto got = classify_int8(tm, &ofa_kernels_int8_scalar, 4, x, kBatch);
  bool some_state_nonzero = false;
  for (int b = 0; b < kBatch; ++b)
    for (int k = 0; k < K; ++k) {
      int64_t acc = tm.model.head.b[k];
      for (int i = 0; i < depth; ++i) {
        const float s = states[(size_t)b * depth + i];
        ASSERT_TRUE(s >= -128.f && s <= 127.f && s == (float)(int)s) << "state " << i << " = " << s;
        some_state_nonzero |= s != 0.f;
        acc += (int64_t)tm.model.head.w[(size_t)k * depth + i] * (int64_t)s;
      }
      ASSERT_EQ(got[(size_t)b * K + k], (float)acc * tm.model.head_out_scale[k]) << "window " << b << " class " << k;
    }
  EXPECT_TRUE(some_state_nonzero);
}

TEST(ClassifyConfig, InconsistentConfigsAreRefused) {
  const ofa_config good = classify_config(OFA_LAYOUT_BERT, OFA_NORM_GLOBAL);
  ASSERT_EQ(ofa_validate_config(&good), OFA_OK);
  EXPECT_EQ(ofa_head_outputs(&good), 4);
  EXPECT_EQ(ofa_head_depth(&good), 3 * 6 * 20);
  EXPECT_EQ(ofa_tile_series(&good, 7), 6);   // whole windows
  EXPECT_EQ(ofa_tile_series(&good, 2), 3);   // at least one
  auto refused = [&](auto mutate) {
    ofa_config c = good;
    mutate(c);
    size_t bytes = 0;
    EXPECT_EQ(ofa_arena_bytes(&c, 4, &bytes), OFA_ERR_BAD_CONFIG);
    EXPECT_EQ(ofa_arena_bytes_int8(&c, 4, &bytes), OFA_ERR_BAD_CONFIG);
    return ofa_validate_config(&c);
  };
  EXPECT_EQ(refused([](ofa_config& c) { c.n_classes = 1; }), OFA_ERR_BAD_CONFIG);  // K < 2
  EXPECT_EQ(refused([](ofa_config& c) { c.n_classes = 0; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.n_classes = -3; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.horizon = 5; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.head_rank = 2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.linear_path = 1; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.norm = 2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.task = 2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.n_channels = 1 << 16; c.seq_len = 1 << 16; c.stride = 1; }),
            OFA_ERR_BAD_CONFIG);  // a head deeper than 2^26
  EXPECT_EQ(refused([](ofa_config& c) { c.tokens = 2; }), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(refused([](ofa_config& c) { c.tokens = OFA_TOKENS_JOINED; c.n_channels = 1 << 15; }),
            OFA_ERR_BAD_CONFIG);  // a joined token wider than 2^16
  // Joined tokens: one sequence a window, so a head of N*d and tiles of whole windows, one series each.
  ofa_config joined = good;
  joined.tokens = OFA_TOKENS_JOINED;
  ASSERT_EQ(ofa_validate_config(&joined), OFA_OK);
  EXPECT_EQ(ofa_token_width(&joined), 3 * good.patch_len);
  EXPECT_EQ(ofa_window_sequences(&joined), 1);
  EXPECT_EQ(ofa_head_depth(&joined), 6 * 20);
  EXPECT_EQ(ofa_tile_series(&joined, 7), 7);
  // A forecaster has no classes and is always instance-normalised (its forecast is de-normalised).
  ofa_config forecast = good;
  forecast.task = OFA_TASK_FORECAST;
  forecast.horizon = 5;
  EXPECT_EQ(ofa_validate_config(&forecast), OFA_ERR_BAD_CONFIG);  // n_classes 4, norm global
  forecast.n_classes = 0;
  EXPECT_EQ(ofa_validate_config(&forecast), OFA_ERR_BAD_CONFIG);  // norm global
  forecast.norm = OFA_NORM_INSTANCE;
  EXPECT_EQ(ofa_validate_config(&forecast), OFA_OK);
  forecast.tokens = OFA_TOKENS_JOINED;  // a forecaster's series are its channels
  EXPECT_EQ(ofa_validate_config(&forecast), OFA_ERR_BAD_CONFIG);
}

TEST(ClassifyConfig, TheInt8HeadMayNotOutgrowItsInt32Sums) {
  ofa_config c = classify_config(OFA_LAYOUT_BERT, OFA_NORM_GLOBAL);
  c.n_channels = 600;  // 600 * 6 * 20 = 72,000 > OFA_GEMM_S8_MAX_K
  ASSERT_EQ(ofa_validate_config(&c), OFA_OK);
  Int8TestModel tm(c, 2);
  EXPECT_EQ(ofa_validate_model_int8(&tm.model), OFA_ERR_BAD_CONFIG);
}

TEST(ClassifyConfig, WrongEntryRangeOrTensorIsRefusedWithoutWriting) {
  const ofa_config cfg = classify_config(OFA_LAYOUT_GPT2, OFA_NORM_INSTANCE);
  TestModel tm(cfg);
  const auto x = windows(cfg, 9u);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 4, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  std::vector<float> out((size_t)kBatch * 16, 1.25f);
  const ofa_kernels* k = ofa_kernels_best();
  // A classifier through the forecast entries, and a forecaster through the classify entry.
  EXPECT_EQ(ofa_forward(&tm.model, k, 4, x.data(), kBatch, out.data(), ga.arena, bytes), OFA_ERR_BAD_CONFIG);
  EXPECT_EQ(ofa_forward_validated(&tm.model, k, 4, x.data(), kBatch, out.data(), ga.arena, bytes), OFA_ERR_BAD_CONFIG);
  ofa_config fc = cfg;
  fc.task = OFA_TASK_FORECAST;
  fc.n_classes = 0;
  fc.horizon = 2;
  TestModel forecaster(fc);
  size_t fbytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&fc, 4, &fbytes), OFA_OK);
  GuardedArena fa(fbytes);
  EXPECT_EQ(ofa_classify(&forecaster.model, k, 4, x.data(), 1, out.data(), fa.arena, fbytes), OFA_ERR_BAD_CONFIG);
  // Window ranges outside the batch, a missing head, a bad batch, a null pointer.
  for (auto range : {std::pair<int, int>{-1, 1}, {0, 0}, {0, kBatch + 1}, {kBatch, 1}})
    EXPECT_EQ(ofa_classify_windows_validated(&tm.model, k, 4, x.data(), kBatch, range.first, range.second, out.data(),
                                             ga.arena, bytes),
              OFA_ERR_BAD_BATCH);
  ofa_model missing = tm.model;
  missing.head_w = nullptr;
  EXPECT_EQ(ofa_classify(&missing, k, 4, x.data(), kBatch, out.data(), ga.arena, bytes), OFA_ERR_MISSING_TENSOR);
  EXPECT_EQ(ofa_classify(&tm.model, k, 4, x.data(), 0, out.data(), ga.arena, bytes), OFA_ERR_BAD_BATCH);
  EXPECT_EQ(ofa_classify(&tm.model, k, 4, nullptr, kBatch, out.data(), ga.arena, bytes), OFA_ERR_NULL_ARG);
  Int8TestModel tm8(cfg, 4);
  size_t bytes8 = 0;
  ASSERT_EQ(ofa_arena_bytes_int8(&cfg, 4, &bytes8), OFA_OK);
  GuardedArena ga8(bytes8);
  EXPECT_EQ(ofa_forward_int8(&tm8.model, nullptr, 4, x.data(), kBatch, out.data(), ga8.arena, bytes8),
            OFA_ERR_BAD_CONFIG);
  tm8.model.head_out_scale = nullptr;
  EXPECT_EQ(ofa_classify_int8(&tm8.model, nullptr, 4, x.data(), kBatch, out.data(), ga8.arena, bytes8),
            OFA_ERR_MISSING_TENSOR);
  EXPECT_TRUE(ga.arena_untouched() && fa.arena_untouched() && ga8.arena_untouched());
  for (float v : out) ASSERT_EQ(v, 1.25f) << "a refused call wrote its output";
}

// The host runner splits a classifier's batch over threads by windows, or runs one tile split over the
// pool: the bits of one plain call either way.
template <class S, class Model, class Layers, class Kernels>
void expect_runner_classifies_alike(Model model, Layers layers, const Kernels* k, const std::vector<float>& x,
                                    const std::vector<float>& want) {
  ofa_host::Prepacked<S> packed;
  model.layers = layers.data();
  packed.pack(&model, layers, k);
  for (int threads : {1, 2, 3}) {
    for (int batch : {1, kBatch}) {
      ofa_host::Runner<S> runner;
      ASSERT_EQ(runner.plan(model.config, k, 4, threads), OFA_OK);
      runner.split_thresholds() = {1, 2, 16};  // split even this small model's calls
      std::vector<float> got((size_t)batch * model.config.n_classes, NAN);
      ASSERT_EQ(runner.classify(&model, x.data(), batch, got.data()), OFA_OK);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
          << k->name << " batch " << batch << " threads " << threads;
    }
  }
}

class ClassifyRunner : public ::testing::TestWithParam<int> {};  // tokens

TEST_P(ClassifyRunner, ThreadsAndPackedWeightsGiveTheSameBits) {
  const ofa_config cfg = classify_config(OFA_LAYOUT_BERT, OFA_NORM_GLOBAL, 4, GetParam());
  const auto x = windows(cfg, 21u);
  TestModel tm(cfg);
  Int8TestModel tm8(cfg, 8);
  for (const char* name : {"scalar", "avx2", "avx512"}) {
    const ofa_kernels* k = ofa_kernels_by_name(name);
    if (!k) continue;
    size_t bytes = 0;
    ASSERT_EQ(ofa_arena_bytes(&cfg, 4, &bytes), OFA_OK);
    GuardedArena ga(bytes);
    std::vector<float> want((size_t)kBatch * cfg.n_classes);
    ASSERT_EQ(ofa_classify(&tm.model, k, 4, x.data(), kBatch, want.data(), ga.arena, bytes), OFA_OK);
    expect_runner_classifies_alike<ofa_host::Fp32>(tm.model, tm.layers, k, x, want);
  }
  const auto want8 = classify_int8(tm8, &ofa_kernels_int8_scalar, 4, x, kBatch);
  for (const char* name : {"scalar", "avx2", "avx512vnni"}) {
    const ofa_kernels_int8* k = ofa_kernels_int8_by_name(name);
    if (k) expect_runner_classifies_alike<ofa_host::Int8>(tm8.model, tm8.layers, k, x, want8);
  }
}

INSTANTIATE_TEST_SUITE_P(Tokens, ClassifyRunner, ::testing::Values((int)OFA_TOKENS_CHANNEL, (int)OFA_TOKENS_JOINED),
                         [](const auto& info) {
                           return std::string(info.param == OFA_TOKENS_JOINED ? "joined" : "channel");
                         });

}  // namespace
