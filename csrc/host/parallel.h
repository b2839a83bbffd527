// Host layer: one window over several threads. A kernel table whose row-wise
// kernels (the GEMMs, layer norm, GELU / the GELU table) split their rows over
// a Pool, so the core's forward pass runs one tile on every core without
// knowing it. Each row, element and output is computed by the same inner
// kernel with the same operands as on one thread, so the bits are the same.
// Small calls (attention's per-head products) stay on the caller: below
// SplitThresholds.min_macs a split costs more than it saves.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine_host.h"
#include "pool.h"

namespace ofa_host {

// What the wrapped kernels of the calling thread split over: the pool, the
// inner table, and one GEMM scratch per extra part (part 0 uses the caller's).
// When a call is worth splitting: a GEMM of at least min_macs multiply-adds,
// at least min_rows rows per part; layer norm and GELU at least
// min_elements per part. (Tests lower them to split their small models.)
struct SplitThresholds {
  int64_t min_macs = 1 << 20;
  int64_t min_rows = 16;
  int64_t min_elements = 1 << 14;
};

template <class Kernels>
struct SplitContext {
  Pool* pool = nullptr;
  const Kernels* inner = nullptr;
  std::vector<AlignedBuffer>* scratch = nullptr;
  SplitThresholds when;
  bool busy = false;  // inside a parallel_for: the pool is taken, calls run whole
};

template <class Kernels>
SplitContext<Kernels>& split_context() {
  thread_local SplitContext<Kernels> context;
  return context;
}

// Rows [m * i / parts, m * (i + 1) / parts) of part i; how many parts `rows` units get at min_rows each.
inline int32_t part_begin(int32_t m, int i, int parts) { return (int32_t)((int64_t)m * i / parts); }
inline int parts_for(int pool_size, int64_t rows, int64_t min_rows) {
  int64_t p = rows / min_rows;
  return (int)(p < 1 ? 1 : p > pool_size ? pool_size : p);
}

template <class Kernels>
int elementwise_parts(const SplitContext<Kernels>& cx, int64_t elements) {
  return cx.busy ? 1 : parts_for(cx.pool->size(), elements, cx.when.min_elements);
}

// The table's parallel_for: work items (a series' attention each) spread
// over the pool. A worker runs them with the plain kernels (its Timed inner
// table), as the caller does while the pool is busy.
template <class Kernels>
void parallel_items(int32_t n, void (*fn)(void* arg, int32_t i), void* arg) {
  SplitContext<Kernels>& cx = split_context<Kernels>();
  if (cx.busy || n <= 1) {
    for (int32_t i = 0; i < n; ++i) fn(arg, i);
    return;
  }
  const int parts = n < cx.pool->size() ? (int)n : cx.pool->size();
  const Kernels* plain = cx.inner;
  cx.busy = true;
  auto part = [&](int p) {
    if (p != 0) Timed<Kernels>::inner() = plain;
    for (int32_t i = part_begin(n, p, parts); i < part_begin(n, p + 1, parts); ++i) fn(arg, i);
  };
  cx.pool->run(parts, part);
  cx.busy = false;
}

// Runs body(r0, r1, scratch) over the parts of m rows.
template <class Kernels, class Body>
void split_rows(int32_t m, int parts, void* caller_scratch, Body body) {
  SplitContext<Kernels>& cx = split_context<Kernels>();
  auto part = [&](int i) {
    void* scratch = i == 0 ? caller_scratch : (*cx.scratch)[i - 1].data;
    body(part_begin(m, i, parts), part_begin(m, i + 1, parts), scratch);
  };
  cx.pool->run(parts, part);
}

// Runs call(dims, a, out, scratch) on the whole GEMM, or on row parts of it
// (dims.m, a and out offset per part) when it is big enough to split.
template <class Kernels, class Dims, class A, class Out, class Call>
void split_gemm(const Dims* d, const A* a, Out* out, void* scratch, Call call) {
  const SplitContext<Kernels>& cx = split_context<Kernels>();
  const bool whole = cx.busy || (int64_t)d->m * d->n * d->k < cx.when.min_macs;
  const int parts = whole ? 1 : parts_for(cx.pool->size(), d->m, cx.when.min_rows);
  if (parts == 1) return call(*d, a, out, scratch);
  split_rows<Kernels>(d->m, parts, scratch, [&](int32_t r0, int32_t r1, void* s) {
    Dims part = *d;
    part.m = r1 - r0;
    call(part, a + (size_t)r0 * d->lda, out + (size_t)r0 * d->ldc, s);
  });
}

template <class S>
struct Split;

template <>
struct Split<Fp32> {
  using K = ofa_kernels;
  static const K& in() { return *split_context<K>().inner; }
  static void gemm(const ofa_gemm_dims* d, const float* a, const float* w, const float* bias, float* c,
                   float* scratch) {
    const K& k = in();  // the workers have no split context of their own
    split_gemm<K>(d, a, c, scratch, [&](const ofa_gemm_dims& p, const float* ap, float* cp, void* s) {
      k.gemm(&p, ap, w, bias, cp, static_cast<float*>(s));
    });
  }
  static void layer_norm(const ofa_layer_norm_dims* d, const float* x, const float* w, const float* b, float* y) {
    const K& k = in();  // the workers have no split context of their own
    const int parts = elementwise_parts(split_context<K>(), (int64_t)d->rows * d->dim);
    if (parts == 1) return k.layer_norm(d, x, w, b, y);
    split_rows<K>(d->rows, parts, nullptr, [&](int32_t r0, int32_t r1, void*) {
      ofa_layer_norm_dims part = *d;
      part.rows = r1 - r0;
      k.layer_norm(&part, x + (size_t)r0 * d->ld, w, b, y + (size_t)r0 * d->ld);
    });
  }
  static void gelu(float* x, size_t n, int32_t kind) {
    const K& k = in();  // the workers have no split context of their own
    const int parts = elementwise_parts(split_context<K>(), (int64_t)n);
    if (parts == 1) return k.gelu(x, n, kind);
    split_rows<K>((int32_t)(n / 16), parts, nullptr, [&](int32_t r0, int32_t r1, void*) {
      const size_t e0 = (size_t)r0 * 16, e1 = r1 == (int32_t)(n / 16) ? n : (size_t)r1 * 16;
      k.gelu(x + e0, e1 - e0, kind);
    });
  }
  // One extra part's GEMM scratch: the largest any of the model's GEMMs asks (monotone in k and n).
  static size_t scratch_bytes(const ofa_config& c) {
    const int32_t flat = (int32_t)ofa_head_depth(&c);
    int32_t k = c.d_ff > c.d_model ? c.d_ff : c.d_model, n = 3 * c.d_model > c.d_ff ? 3 * c.d_model : c.d_ff;
    for (int32_t v : {flat, c.seq_len, ofa_token_width(&c)}) k = v > k ? v : k;
    for (int32_t v : {ofa_head_outputs(&c), c.head_rank}) n = v > n ? v : n;
    return ofa_gemm_scratch_floats(k, n) * sizeof(float);
  }
  static K table(const K& inner) {
    K t = inner;
    t.gemm = gemm;
    t.layer_norm = layer_norm;
    t.gelu = gelu;
    t.parallel_for = parallel_items<K>;
    return t;
  }
};

template <>
struct Split<Int8> {
  using K = ofa_kernels_int8;
  static const K& in() { return *split_context<K>().inner; }
  static void gemm_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias, int32_t* c,
                      void* scratch) {
    const K& k = in();  // the workers have no split context of their own
    split_gemm<K>(d, a, c, scratch, [&](const ofa_gemm_s8_dims& p, const int8_t* ap, int32_t* cp, void* s) {
      k.gemm_s8(&p, ap, w, bias, cp, s);
    });
  }
  static void gemm_s8_requant_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                                 const int32_t* table, int32_t count, int8_t* out, void* scratch) {
    const K& k = in();
    split_gemm<K>(d, a, out, scratch, [&](const ofa_gemm_s8_dims& p, const int8_t* ap, int8_t* op, void* s) {
      k.gemm_s8_requant_s8(&p, ap, w, bias, table, count, op, s);
    });
  }
  static void gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                      const int32_t* bias, const int32_t* table, int32_t count, int32_t* out,
                                      void* scratch) {
    const K& k = in();
    split_gemm<K>(d, a, out, scratch, [&](const ofa_gemm_s8_dims& p, const int8_t* ap, int32_t* op, void* s) {
      k.gemm_s8_requant_add_s32(&p, ap, w, bias, table, count, op, s);
    });
  }
  static void layer_norm_s32_s8(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                const int32_t* table, int32_t* y, const int32_t* narrow_table, int8_t* narrow) {
    const K& k = in();  // the workers have no split context of their own
    const int parts = elementwise_parts(split_context<K>(), (int64_t)d->rows * d->dim);
    if (parts == 1) return k.layer_norm_s32_s8(d, x, eps, table, y, narrow_table, narrow);
    split_rows<K>(d->rows, parts, nullptr, [&](int32_t r0, int32_t r1, void*) {
      ofa_layer_norm_s32_dims part = *d;
      part.rows = r1 - r0;
      const size_t off = (size_t)r0 * d->ld;
      k.layer_norm_s32_s8(&part, x + off, eps, table, y + off, narrow_table, narrow + off);
    });
  }
  static void lut_s8(const int8_t* lut, int8_t* x, size_t n) {
    const K& k = in();  // the workers have no split context of their own
    const int parts = elementwise_parts(split_context<K>(), (int64_t)n);
    if (parts == 1) return k.lut_s8(lut, x, n);
    split_rows<K>((int32_t)(n / 64), parts, nullptr, [&](int32_t r0, int32_t r1, void*) {
      const size_t e0 = (size_t)r0 * 64, e1 = r1 == (int32_t)(n / 64) ? n : (size_t)r1 * 64;
      k.lut_s8(lut, x + e0, e1 - e0);
    });
  }
  static size_t scratch_bytes(const ofa_config& c) {
    const int32_t flat = (int32_t)ofa_head_depth(&c);
    int32_t k = c.d_ff > c.d_model ? c.d_ff : c.d_model;
    for (int32_t v : {flat, c.seq_len, ofa_token_width(&c)}) k = v > k ? v : k;
    return ofa_gemm_s8_scratch_bytes(k);
  }
  static K table(const K& inner) {
    K t = inner;
    t.gemm_s8 = gemm_s8;
    t.gemm_s8_requant_s8 = gemm_s8_requant_s8;
    t.gemm_s8_requant_add_s32 = gemm_s8_requant_add_s32;
    t.layer_norm_s32_s8 = layer_norm_s32_s8;
    t.lut_s8 = lut_s8;
    t.parallel_for = parallel_items<K>;
    return t;
  }
};

}  // namespace ofa_host
