// Portable int8 GEMM: the reference every SIMD variant must match bit for
// bit, and the only path on microcontrollers.
#include "ofa/ofa_kernels_int8.h"
#include "dot_s8.h"
#include "requant_inline.h"

namespace {

// Epilogues: what happens to each finished int32 sum (bias included) at (i, j).
struct StoreS32 {
  int32_t* c;
  int32_t ldc;
  void operator()(int32_t i, int32_t j, int32_t v) const { c[(size_t)i * ldc + j] = v; }
};

struct Requant {
  const int32_t* mult;
  const int32_t* shift;
  const int32_t* zp;
  int32_t step;  // 1: per channel, 0: one set
  int32_t at(int32_t j, int32_t v) const {
    return ofa_rq::requantize(v, mult[j * step], shift[j * step]);
  }
};
Requant requant_of(const int32_t* table, int32_t count) {
  return {table, table + count, table + 2 * count, count > 1 ? 1 : 0};
}

// Same formulas as ofa_requant_to_s8 / ofa_requant_add_s32. Not inlined: one
// call per output against k multiply-adds, and the flash of a microcontroller
// holds one copy of the requantisation instead of one per unrolled column.
#if defined(__GNUC__)
#define OFA_NOINLINE __attribute__((noinline))
#else
#define OFA_NOINLINE
#endif

struct ToS8 {
  Requant q;
  int8_t* out;
  int32_t ld;
  OFA_NOINLINE void operator()(int32_t i, int32_t j, int32_t v) const {
    const int32_t r = ofa_rq::saturate32((int64_t)q.at(j, v) + q.zp[j * q.step]);
    out[(size_t)i * ld + j] = (int8_t)(r > 127 ? 127 : r < -128 ? -128 : r);
  }
};

struct AddS32 {
  Requant q;
  int32_t* out;
  int32_t ld;
  OFA_NOINLINE void operator()(int32_t i, int32_t j, int32_t v) const {
    int32_t* o = out + (size_t)i * ld + j;
    *o = ofa_rq::saturate32((int64_t)ofa_rq::saturate32((int64_t)*o + q.at(j, v)) + q.zp[j * q.step]);
  }
};

// The multiply-add loops (dot_s8.h) in functions of their own, so that their registers are all they
// hold: inlined into gemm() they shared the registers with the epilogue's state and spilled to the
// stack on Cortex-M (19 instructions per 4 MACs). One call per 4 outputs against 4k multiply-adds.
// With the DSP extension, the SXTB16/SMLAD form; otherwise one multiply-add per byte.
OFA_NOINLINE void dot_1x4(const int8_t* ar, const int8_t* w0, int32_t ldw, int32_t k, int32_t* sums) {
#if OFA_DOT_S8_DSP
  ofa_dot::pairs_1x4(ar, w0, ldw, k, sums);
#else
  ofa_dot::plain_1x4(ar, w0, ldw, k, sums);
#endif
}

OFA_NOINLINE int32_t dot_1x1(const int8_t* ar, const int8_t* wr, int32_t k) {
#if OFA_DOT_S8_DSP
  return ofa_dot::pairs_1x1(ar, wr, k);
#else
  return ofa_dot::plain_1x1(ar, wr, k);
#endif
}

// Four output columns at a time so each A row is reused from registers; the finished int32 sums
// (bias added) then go through the epilogue, outside the multiply-add loop.
template <class Epilogue>
void gemm(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
          const Epilogue& out) {
  int32_t s[4];
  for (int32_t i = 0; i < d->m; ++i) {
    const int8_t* ar = a + (size_t)i * d->lda;
    int32_t j = 0;
    for (; j + 4 <= d->n; j += 4) {
      dot_1x4(ar, w + (size_t)j * d->ldw, d->ldw, d->k, s);
      for (int32_t c = 0; c < 4; ++c) out(i, j + c, s[c] + (bias ? bias[j + c] : 0));
    }
    for (; j < d->n; ++j) out(i, j, dot_1x1(ar, w + (size_t)j * d->ldw, d->k) + (bias ? bias[j] : 0));
  }
}

void gemm_s8_scalar(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                    const int32_t* bias, int32_t* c, void* /*scratch*/) {
  gemm(d, a, w, bias, StoreS32{c, d->ldc});
}

}  // namespace

extern "C" void ofa_gemm_s8_requant_s8(const ofa_gemm_s8_dims* d, const int8_t* a,
                                       const int8_t* w, const int32_t* bias,
                                       const int32_t* table, int32_t count, int8_t* out,
                                       void* /*scratch*/) {
  gemm(d, a, w, bias, ToS8{requant_of(table, count), out, d->ldc});
}

extern "C" void ofa_gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* d, const int8_t* a,
                                            const int8_t* w, const int32_t* bias,
                                            const int32_t* table, int32_t count, int32_t* out,
                                            void* /*scratch*/) {
  gemm(d, a, w, bias, AddS32{requant_of(table, count), out, d->ldc});
}

extern "C" size_t ofa_gemm_s8_scratch_bytes(int32_t k) {
  if (k <= 0) return 0;
  return ((size_t)k + 3) / 4 * 4 * OFA_GEMM_S8_NR;
}

extern "C" const ofa_kernels_int8 ofa_kernels_int8_scalar = {
    "scalar", gemm_s8_scalar, ofa_requant_to_s8, ofa_requant_add_s32,
    ofa_layer_norm_s32, ofa_softmax_s8, ofa_gemm_s8_requant_s8, ofa_gemm_s8_requant_add_s32,
    ofa_layer_norm_s32_s8, ofa_lut_s8};
