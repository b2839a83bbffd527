// Host layer: what a host program needs to run the C core on many windows at
// once, for either scheme. Python-free (the nanobind module, a C++ service or a
// benchmark can use it); unlike the core it may allocate and start threads.
//
//   ofa_host::Scheme<Fp32> / Scheme<Int8>  the core's entry points per scheme
//   ofa_host::Runner<S>                    one arena per thread, batch split
//                                          over threads, GEMM instrumentation
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "workers.h"
#include "ofa/ofa.h"
#include "ofa/ofa_int8.h"

namespace ofa_host {

// ---- Aligned host buffer for arenas and GEMM scratch. ----------------------
struct AlignedBuffer {
  std::unique_ptr<unsigned char[]> raw;
  unsigned char* data = nullptr;
  size_t bytes = 0;
  explicit AlignedBuffer(size_t n = 0) : raw(new unsigned char[n + OFA_ARENA_ALIGN]), bytes(n) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw.get());
    data = raw.get() + (OFA_ARENA_ALIGN - p % OFA_ARENA_ALIGN) % OFA_ARENA_ALIGN;
  }
};

// ---- GEMM instrumentation: a kernel table whose GEMMs are timed. -----------
struct GemmCounters {
  double ops = 0, seconds = 0;  // multiply-adds count 2 ops
  int64_t calls = 0;
  void add(const GemmCounters& o) {
    ops += o.ops;
    seconds += o.seconds;
    calls += o.calls;
  }
};

// The counters of the calling thread; each worker resets and reads its own.
inline GemmCounters& thread_counters() {
  thread_local GemmCounters counters;
  return counters;
}

// Times one GEMM call of the table `inner`, given m, n, k.
template <class Table>
struct Timed {
  static const Table*& inner() {
    thread_local const Table* table = nullptr;
    return table;
  }
  template <class Fn>
  static void count(int64_t m, int64_t n, int64_t k, Fn&& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn(*inner());
    GemmCounters& c = thread_counters();
    c.ops += 2.0 * m * n * k;
    c.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    c.calls += 1;
  }
};

// ---- The two schemes: the core's entry points and tables, by one name. -----
struct Fp32 {};
struct Int8 {};
template <class S>
struct Scheme;

// The entry points of one scheme, by one set of names.
template <class M, class L, class K, const K* (*Best)(), const K* (*ByName)(const char*),
          ofa_status (*Validate)(const M*), ofa_status (*Arena)(const ofa_config*, int32_t, size_t*),
          ofa_status (*Forward)(const M*, const K*, int32_t, const float*, int32_t, int32_t, int32_t, float*, void*,
                                size_t)>
struct SchemeOf {
  using Model = M;
  using Layer = L;
  using Kernels = K;
  static const K* best() { return Best(); }
  static const K* by_name(const char* name) { return ByName(name); }
  static ofa_status validate(const M* m) { return Validate(m); }
  static ofa_status arena_bytes(const ofa_config* c, int32_t tile, size_t* out) { return Arena(c, tile, out); }
  // Series [first, first + count) of the batch; the model passed validate() at load (Runner's contract).
  static ofa_status forward(const M* m, const K* k, int32_t tile, const float* x, int32_t batch, int32_t first,
                            int32_t count, float* y, void* arena, size_t bytes) {
    return Forward(m, k, tile, x, batch, first, count, y, arena, bytes);
  }
};

template <>
struct Scheme<Fp32> : SchemeOf<ofa_model, ofa_layer_weights, ofa_kernels, ofa_kernels_best, ofa_kernels_by_name,
                               ofa_validate_model, ofa_arena_bytes, ofa_forward_series_validated> {
  static constexpr const char* kName = "fp32";
  static constexpr const char* kIsas[] = {"scalar", "avx2", "avx512"};
  // The same table with its GEMM timed (into thread_counters()).
  static Kernels timed(const Kernels& k) {
    Kernels t = k;
    t.gemm = [](const ofa_gemm_dims* d, const float* a, const float* w, const float* bias, float* c,
                float* scratch) {
      Timed<Kernels>::count(d->m, d->n, d->k, [&](const Kernels& in) { in.gemm(d, a, w, bias, c, scratch); });
    };
    return t;
  }
};

template <>
struct Scheme<Int8> : SchemeOf<ofa_model_int8, ofa_layer_int8, ofa_kernels_int8, ofa_kernels_int8_best,
                               ofa_kernels_int8_by_name, ofa_validate_model_int8, ofa_arena_bytes_int8,
                               ofa_forward_int8_series_validated> {
  static constexpr const char* kName = "int8";
  static constexpr const char* kIsas[] = {"scalar", "avx2", "avx512vnni"};
  // The same table with its three GEMM entry points timed.
  static Kernels timed(const Kernels& k) {
    using T = Timed<Kernels>;
    Kernels t = k;
    t.gemm_s8 = [](const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias, int32_t* c,
                   void* scratch) {
      T::count(d->m, d->n, d->k, [&](const Kernels& in) { in.gemm_s8(d, a, w, bias, c, scratch); });
    };
    t.gemm_s8_requant_s8 = [](const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                              const int32_t* table, int32_t count, int8_t* out, void* scratch) {
      T::count(d->m, d->n, d->k,
               [&](const Kernels& in) { in.gemm_s8_requant_s8(d, a, w, bias, table, count, out, scratch); });
    };
    t.gemm_s8_requant_add_s32 = [](const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                   const int32_t* bias, const int32_t* table, int32_t count, int32_t* out,
                                   void* scratch) {
      T::count(d->m, d->n, d->k,
               [&](const Kernels& in) { in.gemm_s8_requant_add_s32(d, a, w, bias, table, count, out, scratch); });
    };
    return t;
  }
};

// ---- Runner: a validated model, one arena per thread, the batch split. -----
template <class S>
class Runner {
 public:
  using Sch = Scheme<S>;

  // Plans `threads` arenas for `tile_series` series per tile. The model must
  // already pass Sch::validate (done once, at load, never per call).
  ofa_status plan(const ofa_config& cfg, const typename Sch::Kernels* kernels, int32_t tile_series, int threads) {
    if (tile_series <= 0 || threads <= 0) return OFA_ERR_BAD_BATCH;
    const ofa_status st = Sch::arena_bytes(&cfg, tile_series, &arena_bytes_);
    if (st != OFA_OK) return st;
    cfg_ = cfg;
    inner_ = kernels;
    timed_ = Sch::timed(*kernels);
    tile_series_ = tile_series;
    arenas_.clear();
    for (int i = 0; i < threads; ++i) arenas_.emplace_back(arena_bytes_);
    return OFA_OK;
  }

  // x (batch, L, C) -> y (batch, H, C) over up to threads() workers, each
  // taking an equal run of the batch's series (so one window's channels
  // split over threads too; channels are independent). Calls take turns (the
  // arenas are the runner's); the last call's GEMM counters are kept for
  // gemm_stats().
  ofa_status forward(const typename Sch::Model* model, const float* x, int32_t batch, float* y) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (batch <= 0 || (int64_t)batch * cfg_.n_channels > INT32_MAX) return OFA_ERR_BAD_BATCH;
    const int32_t total = batch * cfg_.n_channels;
    const int n_workers = std::min<int>(threads(), total);
    std::vector<GemmCounters> counters(n_workers);
    std::vector<ofa_status> statuses(n_workers, OFA_OK);
    auto work = [&](int w) {
      const int32_t g0 = (int32_t)((int64_t)total * w / n_workers);
      const int32_t g1 = (int32_t)((int64_t)total * (w + 1) / n_workers);
      Timed<typename Sch::Kernels>::inner() = inner_;
      thread_counters() = GemmCounters{};
      statuses[w] = Sch::forward(model, &timed_, tile_series_, x, batch, g0, g1 - g0, y, arenas_[w].data,
                                 arenas_[w].bytes);
      counters[w] = thread_counters();
    };
    run_workers(n_workers, work);
    last_ = GemmCounters{};
    ofa_status status = OFA_OK;
    for (int w = 0; w < n_workers; ++w) {
      last_.add(counters[w]);
      if (statuses[w] != OFA_OK) status = statuses[w];
    }
    return status;
  }

  GemmCounters last_counters() {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_;
  }
  size_t arena_bytes() const { return arena_bytes_; }
  int threads() const { return (int)arenas_.size(); }
  int32_t tile_series() const { return tile_series_; }
  const typename Sch::Kernels* kernels() const { return inner_; }

 private:
  ofa_config cfg_{};
  const typename Sch::Kernels* inner_ = nullptr;
  typename Sch::Kernels timed_{};
  int32_t tile_series_ = 1;
  size_t arena_bytes_ = 0;
  std::vector<AlignedBuffer> arenas_;
  std::mutex mutex_;
  GemmCounters last_;
};

}  // namespace ofa_host
