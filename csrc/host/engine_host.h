// Host layer: what a host program needs to run the C core on many windows at
// once, for either scheme. Python-free (the nanobind module, a C++ service or a
// benchmark can use it); unlike the core it may allocate and start threads.
//
//   ofa_host::Scheme<Fp32> / Scheme<Int8>  the core's entry points per scheme
//   ofa_host::Timed                        GEMM instrumentation
// (runner.h: the Runner that plans arenas and splits work over threads.)
#pragma once
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

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
                                size_t),
          ofa_status (*Classify)(const M*, const K*, int32_t, const float*, int32_t, int32_t, int32_t, float*, void*,
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
  // A classifier's windows [first, first + count) of the batch, logits (batch, K).
  static ofa_status classify(const M* m, const K* k, int32_t tile, const float* x, int32_t batch, int32_t first,
                             int32_t count, float* logits, void* arena, size_t bytes) {
    return Classify(m, k, tile, x, batch, first, count, logits, arena, bytes);
  }
};

template <>
struct Scheme<Fp32> : SchemeOf<ofa_model, ofa_layer_weights, ofa_kernels, ofa_kernels_best, ofa_kernels_by_name,
                               ofa_validate_model, ofa_arena_bytes, ofa_forward_series_validated,
                               ofa_classify_windows_validated> {
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
                               ofa_forward_int8_series_validated, ofa_classify_int8_windows_validated> {
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

}  // namespace ofa_host
