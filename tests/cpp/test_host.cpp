// The host layer's speed paths give the core's bits: weights packed once at
// load (pack_w / pack_wt, dims.w_packed), and one batch, even one window,
// split over threads by series ranges.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "host/runner.h"
#include "host/prepack.h"
#include "int8_model.h"
#include "reference_model.h"
#include "test_util.h"

namespace {

ofa_config host_config(int layout, int head_rank, int linear_path) {
  ofa_config c = test_config(kHostShape, layout, 9, 1e-5f);
  c.head_rank = head_rank;
  c.linear_path = linear_path;
  return c;
}

std::vector<int8_t> random_s8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-128, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = (int8_t)dist(rng);
  return v;
}

template <class T>
T* aligned(std::vector<unsigned char>& buf, size_t bytes) {
  buf.assign(bytes + 64, 0xA5);
  unsigned char* p = buf.data();
  while ((uintptr_t)p % 64) ++p;
  return reinterpret_cast<T*>(p);
}

struct Shape {
  int m, n, k;
};
// Tails everywhere: n past one NC block and not a multiple of the panel, k
// past one KC block and not a multiple of 4, m not a multiple of the row block.
const Shape kShapes[] = {{1, 1, 1}, {5, 7, 3}, {13, 33, 17}, {37, 300, 401}, {7, 96, 1000}, {42, 42, 32}};

TEST(Prepack, Fp32PackedGemmGivesTheUnpackedBits) {
  int tested = 0;
  for (const char* name : {"avx2", "avx512"}) {
    const ofa_kernels* k = ofa_kernels_by_name(name);
    if (!k || !k->pack_w) continue;
    ++tested;
    uint32_t seed = 3;
    for (const Shape& s : kShapes) {
      for (int acc : {0, 1}) {
        const int ldw = s.k + 3;
        auto a = random_vec((size_t)s.m * s.k, seed++);
        auto w = random_vec((size_t)s.n * ldw, seed++);
        auto bias = random_vec(s.n, seed++);
        auto c0 = random_vec((size_t)s.m * s.n, seed++);
        std::vector<unsigned char> sbuf, pbuf, tbuf;
        float* scratch = aligned<float>(sbuf, ofa_gemm_scratch_floats(s.k, s.n) * sizeof(float));
        const size_t packed_n = k->packed_floats(s.n, s.k);
        float* packed = aligned<float>(pbuf, packed_n * sizeof(float));
        k->pack_w(w.data(), ldw, s.n, s.k, packed);
        // pack_wt from W's transpose writes the same panels.
        std::vector<float> wt((size_t)s.k * (s.n + 1));
        for (int j = 0; j < s.n; ++j)
          for (int kk = 0; kk < s.k; ++kk) wt[(size_t)kk * (s.n + 1) + j] = w[(size_t)j * ldw + kk];
        float* packed_t = aligned<float>(tbuf, packed_n * sizeof(float));
        k->pack_wt(wt.data(), s.n + 1, s.n, s.k, packed_t);
        ASSERT_EQ(0, std::memcmp(packed, packed_t, packed_n * sizeof(float))) << name << " " << s.n << "x" << s.k;

        auto want = c0, got = c0;
        ofa_gemm_dims d = {s.m, s.n, s.k, s.k, ldw, s.n, acc, 0};
        k->gemm(&d, a.data(), w.data(), bias.data(), want.data(), scratch);
        d.w_packed = 1;
        k->gemm(&d, a.data(), packed, bias.data(), got.data(), scratch);
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
            << name << " " << s.m << "x" << s.n << "x" << s.k << " acc " << acc;
      }
    }
  }
  if (!tested) GTEST_SKIP() << "no fp32 table with pack_w on this CPU";
}

// The int8 tables built here and supported by this CPU that have a packed form (pack_w).
std::vector<const ofa_kernels_int8*> packed_int8_tables() {
  std::vector<const ofa_kernels_int8*> tables;
  for (const char* name : {"avx2", "avx512vnni"}) {
    const ofa_kernels_int8* k = ofa_kernels_int8_by_name(name);
    if (k && k->pack_w) tables.push_back(k);
  }
  return tables;
}

TEST(Prepack, Int8PackedGemmsGiveTheUnpackedBits) {
  const auto tables = packed_int8_tables();
  if (tables.empty()) GTEST_SKIP() << "no int8 table with pack_w on this CPU";
  for (const ofa_kernels_int8* k : tables) {
    const char* name = k->name;
    uint32_t seed = 5;
    for (const Shape& s : kShapes) {
      const int ldw = s.k + 5;
      auto a = random_s8((size_t)s.m * s.k, seed++);
      auto w = random_s8((size_t)s.n * ldw, seed++);
      std::vector<int32_t> bias(s.n), table(3 * s.n);
      for (int j = 0; j < s.n; ++j) {
        bias[j] = (j * 7919) % 20001 - 10000;
        table[j] = 1518500250 - j * 12345;  // multiplier
        table[s.n + j] = -(8 + j % 5);      // right shift
        table[2 * s.n + j] = j % 7 - 3;     // zero point
      }
      std::vector<unsigned char> sbuf, pbuf, tbuf;
      void* scratch = aligned<unsigned char>(sbuf, ofa_gemm_s8_scratch_bytes(s.k));
      const size_t bytes = k->packed_bytes(s.n, s.k);
      int8_t* packed = aligned<int8_t>(pbuf, bytes);
      k->pack_w(w.data(), ldw, s.n, s.k, packed);
      std::vector<int8_t> wt((size_t)s.k * (s.n + 2));
      for (int j = 0; j < s.n; ++j)
        for (int kk = 0; kk < s.k; ++kk) wt[(size_t)kk * (s.n + 2) + j] = w[(size_t)j * ldw + kk];
      // pack_wt (optional) from W's transpose: the same panels.
      int8_t* packed_t = k->pack_wt ? aligned<int8_t>(tbuf, bytes) : packed;
      if (k->pack_wt) k->pack_wt(wt.data(), s.n + 2, s.n, s.k, packed_t);
      // Padding bytes (past n, past k) may differ; the GEMMs below prove they are never read into a result.
      ofa_gemm_s8_dims d = {s.m, s.n, s.k, s.k, ldw, s.n, 0};
      ofa_gemm_s8_dims dp = d;
      dp.w_packed = 1;
      for (const int8_t* form : {packed, packed_t}) {
        std::vector<int32_t> want((size_t)s.m * s.n), got(want.size());
        k->gemm_s8(&d, a.data(), w.data(), bias.data(), want.data(), scratch);
        k->gemm_s8(&dp, a.data(), form, bias.data(), got.data(), scratch);
        ASSERT_EQ(want, got) << name << " gemm_s8 " << s.m << "x" << s.n << "x" << s.k;
        std::vector<int8_t> want8((size_t)s.m * s.n), got8(want8.size());
        k->gemm_s8_requant_s8(&d, a.data(), w.data(), bias.data(), table.data(), s.n, want8.data(), scratch);
        k->gemm_s8_requant_s8(&dp, a.data(), form, bias.data(), table.data(), s.n, got8.data(), scratch);
        ASSERT_EQ(want8, got8) << name << " requant_s8 " << s.m << "x" << s.n << "x" << s.k;
        std::vector<int32_t> want32((size_t)s.m * s.n, 77), got32(want32.size(), 77);
        k->gemm_s8_requant_add_s32(&d, a.data(), w.data(), bias.data(), table.data(), s.n, want32.data(), scratch);
        k->gemm_s8_requant_add_s32(&dp, a.data(), form, bias.data(), table.data(), s.n, got32.data(), scratch);
        ASSERT_EQ(want32, got32) << name << " requant_add " << s.m << "x" << s.n << "x" << s.k;
      }
    }
  }
}

// The engine runs the head's packed GEMM over its whole depth (tokens x d) with the scratch planned
// for depth d: a packed GEMM must not need a scratch sized for its own depth.
TEST(Prepack, Int8PackedGemmNeedsNoDepthSizedScratch) {
  const auto tables = packed_int8_tables();
  if (tables.empty()) GTEST_SKIP() << "no int8 table with pack_w on this CPU";
  for (const ofa_kernels_int8* k : tables) {
    const char* name = k->name;
    const int m = 7, n = 24, depth = 16 * 42, small = 16;  // 42 tokens of d = 16
    auto a = random_s8((size_t)m * depth, 91);
    auto w = random_s8((size_t)n * depth, 92);
    std::vector<int32_t> bias(n, 3), want((size_t)m * n), got(want.size());
    std::vector<unsigned char> big, pbuf;
    std::vector<unsigned char> tight(ofa_gemm_s8_scratch_bytes(small) + 64, 0xA5);
    void* wide = aligned<unsigned char>(big, ofa_gemm_s8_scratch_bytes(depth));
    int8_t* packed = aligned<int8_t>(pbuf, k->packed_bytes(n, depth));
    k->pack_w(w.data(), depth, n, depth, packed);
    const ofa_gemm_s8_dims d = {m, n, depth, depth, depth, n, 0};
    ofa_gemm_s8_dims dp = d;
    dp.w_packed = 1;
    k->gemm_s8(&d, a.data(), w.data(), bias.data(), want.data(), wide);
    const size_t used = ofa_gemm_s8_scratch_bytes(small);
    k->gemm_s8(&dp, a.data(), packed, bias.data(), got.data(), tight.data());
    ASSERT_EQ(want, got) << name;
    for (size_t i = used; i < tight.size(); ++i) ASSERT_EQ(tight[i], 0xA5) << name << ": wrote past the scratch";
  }
}

// A model prepacked for the table and run by a Runner over 1-3 threads gives
// the bits of the plain core entry point with that table: one window (one
// tile, its row-wise kernels split over the threads) and three (the series
// split over the threads).
template <class S, class TM, class Kernels, class Forward>
void expect_runner_matches(TM& tm, std::vector<typename ofa_host::Scheme<S>::Layer>& layers, const Kernels* k,
                           Forward plain_forward) {
  const ofa_config& c = tm.model.config;
  for (int batch : {1, 3}) {
    auto x = random_vec((size_t)batch * c.seq_len * c.n_channels, 17u + batch, -3.f, 5.f);
    const size_t out = (size_t)batch * c.horizon * c.n_channels;
    std::vector<float> want(out, NAN);
    size_t bytes = 0;
    ASSERT_EQ(ofa_host::Scheme<S>::arena_bytes(&c, 4, &bytes), OFA_OK);
    GuardedArena ga(bytes);
    ASSERT_EQ(plain_forward(&tm.model, k, 4, x.data(), batch, want.data(), ga.arena, bytes), OFA_OK);
    auto model = tm.model;  // the packed copy; tm.model stays plain
    ofa_host::Prepacked<S> packed;
    packed.pack(&model, layers, k);
    for (int threads : {1, 2, 3}) {
      ofa_host::Runner<S> runner;
      ASSERT_EQ(runner.plan(c, k, 4, threads), OFA_OK);
      runner.split_thresholds() = {1, 2, 16};  // split even this small model's calls
      std::vector<float> got(out, NAN);
      ASSERT_EQ(runner.forward(&model, x.data(), batch, got.data()), OFA_OK);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data(), out * sizeof(float)))
          << k->name << " batch " << batch << " threads " << threads;
    }
  }
}

TEST(Runner, PrepackedAndSplitOverThreadsGivesTheSameBitsFp32) {
  for (int layout : {OFA_LAYOUT_BERT, OFA_LAYOUT_GPT2}) {
    for (int rank : {0, 2}) {
      TestModel tm(host_config(layout, rank, rank == 0));
      ASSERT_EQ(ofa_validate_model(&tm.model), OFA_OK);
      for (const char* name : {"scalar", "avx2", "avx512"}) {
        const ofa_kernels* k = ofa_kernels_by_name(name);
        if (!k) continue;
        auto layers = tm.layers;
        auto model = tm.model;
        model.layers = layers.data();
        struct View {
          ofa_model model;
        } view{model};
        expect_runner_matches<ofa_host::Fp32>(view, layers, k, ofa_forward);
      }
    }
  }
}

TEST(Runner, PrepackedAndSplitOverThreadsGivesTheSameBitsInt8) {
  for (int layout : {OFA_LAYOUT_BERT, OFA_LAYOUT_GPT2}) {
    for (int rank : {0, 3}) {
      const ofa_config c = host_config(layout, rank, 0);
      Int8TestModel tm(c, 7 + layout * 2 + rank);
      ASSERT_EQ(ofa_validate_model_int8(&tm.model), OFA_OK);
      for (const char* name : {"scalar", "avx2", "avx512vnni"}) {
        const ofa_kernels_int8* k = ofa_kernels_int8_by_name(name);
        if (!k) continue;
        auto layers = tm.layers;
        struct View {
          ofa_model_int8 model;
        } view{tm.model};
        view.model.layers = layers.data();
        expect_runner_matches<ofa_host::Int8>(view, layers, k, ofa_forward_int8);
      }
    }
  }
}

TEST(Forward, SeriesRangeOutsideTheBatchIsRefused) {
  const ofa_config cfg = host_config(OFA_LAYOUT_BERT, 0, 0);
  TestModel tm(cfg);
  size_t bytes = 0;
  ASSERT_EQ(ofa_arena_bytes(&cfg, 2, &bytes), OFA_OK);
  GuardedArena ga(bytes);
  auto x = random_vec((size_t)cfg.seq_len * cfg.n_channels, 3u);
  std::vector<float> y((size_t)cfg.horizon * cfg.n_channels, 7.f);
  const int total = cfg.n_channels;
  const ofa_kernels* k = ofa_kernels_best();
  for (auto range : {std::pair<int, int>{-1, 1}, {0, 0}, {0, total + 1}, {total, 1}}) {
    EXPECT_EQ(ofa_forward_series_validated(&tm.model, k, 2, x.data(), 1, range.first, range.second, y.data(),
                                           ga.arena, bytes),
              OFA_ERR_BAD_BATCH)
        << range.first << "+" << range.second;
  }
  for (float v : y) ASSERT_EQ(v, 7.f) << "a refused call wrote y";
  // One series of the window: only its channel is written.
  ASSERT_EQ(ofa_forward_series_validated(&tm.model, k, 2, x.data(), 1, 1, 1, y.data(), ga.arena, bytes), OFA_OK);
  for (int h = 0; h < cfg.horizon; ++h)
    for (int ch = 0; ch < cfg.n_channels; ++ch)
      if (ch != 1) ASSERT_EQ(y[(size_t)h * cfg.n_channels + ch], 7.f);
}

}  // namespace
