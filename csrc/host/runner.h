// Host layer: Runner<S> runs a validated model on many windows, or one, over
// a fixed set of threads. It plans one arena per thread at load; a call splits
// the batch's series over the threads (channels are independent, so one
// window's channels split too; a classifier's head reads all of a window's
// channels, so its calls split windows), or, when all the series fit one tile, runs
// that tile once with its row-wise kernels split over the threads
// (parallel.h). Either way each output has the bits of a one-thread run.
#pragma once
#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "engine_host.h"
#include "parallel.h"
#include "pool.h"

namespace ofa_host {

template <class S>
class Runner {
 public:
  using Sch = Scheme<S>;
  using Kernels = typename Sch::Kernels;

  // Plans `threads` arenas for `tile_series` series per tile. The model must
  // already pass Sch::validate (done once, at load, never per call).
  ofa_status plan(const ofa_config& cfg, const Kernels* kernels, int32_t tile_series, int threads) {
    if (tile_series <= 0 || threads <= 0) return OFA_ERR_BAD_BATCH;
    const ofa_status st = Sch::arena_bytes(&cfg, tile_series, &arena_bytes_);
    if (st != OFA_OK) return st;
    cfg_ = cfg;
    inner_ = kernels;
    timed_ = Sch::timed(*kernels);
    split_ = Split<S>::table(*kernels);
    timed_split_ = Sch::timed(split_);
    tile_series_ = tile_series;
    arenas_.clear();
    for (int i = 0; i < threads; ++i) arenas_.emplace_back(arena_bytes_);
    part_scratch_.clear();
    for (int i = 1; i < threads; ++i) part_scratch_.emplace_back(Split<S>::scratch_bytes(cfg));
    pool_.reset(threads > 1 ? new Pool(threads - 1) : nullptr);
    return OFA_OK;
  }

  // x (batch, L, C) -> y (batch, H, C). Calls take turns (the arenas are the
  // runner's); the last call's GEMM counters are kept for gemm_stats().
  ofa_status forward(const typename Sch::Model* model, const float* x, int32_t batch, float* y) {
    if (batch <= 0 || (int64_t)batch * cfg_.n_channels > INT32_MAX) return OFA_ERR_BAD_BATCH;
    return run(Sch::forward, model, x, batch, batch * cfg_.n_channels, batch * cfg_.n_channels, y);
  }

  // A classifier: x (batch, C, L) -> logits (batch, K), split over windows
  // (a window's head reads all its channels).
  ofa_status classify(const typename Sch::Model* model, const float* x, int32_t batch, float* logits) {
    if (batch <= 0 || (int64_t)batch * cfg_.n_channels > INT32_MAX) return OFA_ERR_BAD_BATCH;
    return run(Sch::classify, model, x, batch, batch, batch * ofa_window_sequences(&cfg_), logits);
  }

  GemmCounters last_counters() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }
  size_t arena_bytes() const { return arena_bytes_; }
  int threads() const { return (int)arenas_.size(); }
  int32_t tile_series() const { return tile_series_; }
  const Kernels* kernels() const { return inner_; }
  SplitThresholds& split_thresholds() { return split_when_; }

 private:
  using Entry = ofa_status (*)(const typename Sch::Model*, const Kernels*, int32_t, const float*, int32_t, int32_t,
                               int32_t, float*, void*, size_t);

  // `entry` over its `units` (series, or a classifier's windows) [0, units):
  // split over the threads, or, when all `series` fit one tile, that tile
  // once with its kernels split over the pool.
  ofa_status run(Entry entry, const typename Sch::Model* model, const float* x, int32_t batch, int32_t units,
                 int32_t series, float* y) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (pool_ && series <= ofa_tile_series(&cfg_, tile_series_)) return one_tile(entry, model, x, batch, units, y);
    const int n_workers = std::min<int>(threads(), units);
    std::vector<GemmCounters> counters(n_workers);
    std::vector<ofa_status> statuses(n_workers, OFA_OK);
    auto work = [&](int w) {
      const int32_t u0 = (int32_t)((int64_t)units * w / n_workers);
      const int32_t u1 = (int32_t)((int64_t)units * (w + 1) / n_workers);
      Timed<Kernels>::inner() = inner_;
      thread_counters() = GemmCounters{};
      statuses[w] = entry(model, &timed_, tile_series_, x, batch, u0, u1 - u0, y, arenas_[w].data, arenas_[w].bytes);
      counters[w] = thread_counters();
    };
    if (pool_) {
      pool_->run(n_workers, work);
    } else {
      work(0);
    }
    last_ = GemmCounters{};
    ofa_status status = OFA_OK;
    for (int w = 0; w < n_workers; ++w) {
      last_.add(counters[w]);
      if (statuses[w] != OFA_OK) status = statuses[w];
    }
    return status;
  }

  // All units in one tile, on the caller's arena; the split table spreads
  // its GEMMs, layer norms and GELUs over the pool. GEMM time is the caller's
  // wall time inside them.
  ofa_status one_tile(Entry entry, const typename Sch::Model* model, const float* x, int32_t batch, int32_t units,
                      float* y) {
    SplitContext<Kernels>& cx = split_context<Kernels>();
    cx = SplitContext<Kernels>{pool_.get(), inner_, &part_scratch_, split_when_};
    Timed<Kernels>::inner() = &split_;
    thread_counters() = GemmCounters{};
    const ofa_status st = entry(model, &timed_split_, tile_series_, x, batch, 0, units, y, arenas_[0].data,
                                arenas_[0].bytes);
    last_ = thread_counters();
    cx = SplitContext<Kernels>{};
    return st;
  }

  ofa_config cfg_{};
  const Kernels* inner_ = nullptr;
  Kernels timed_{};
  Kernels split_{};
  Kernels timed_split_{};
  int32_t tile_series_ = 1;
  size_t arena_bytes_ = 0;
  std::vector<AlignedBuffer> arenas_;
  std::vector<AlignedBuffer> part_scratch_;
  std::unique_ptr<Pool> pool_;
  SplitThresholds split_when_;
  std::mutex mutex_;
  GemmCounters last_;
};

}  // namespace ofa_host
