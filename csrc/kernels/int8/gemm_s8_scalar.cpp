// Portable int8 GEMM: the reference every SIMD variant must match bit for
// bit, and the only path on microcontrollers.
#include "ofa/ofa_kernels_int8.h"
#include "kernels/core_kernels.h"
#include "dot_s8.h"
#include "requant_inline.h"

#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#include "mve_s8.h"
#define OFA_GEMM_S8_MVE 1  // Helium: Cortex-M55, M85
#else
#define OFA_GEMM_S8_MVE 0
#endif

namespace {

// Epilogues: what happens to each finished int32 sum (bias included) at (i, j).
struct StoreS32 {
  int32_t* c;
  int32_t ldc;
  void operator()(int32_t i, int32_t j, int32_t v) const { c[(size_t)i * ldc + j] = v; }
  void block(int32_t i, int32_t j, const int32_t* s) const {
    int32_t* o = c + (size_t)i * ldc + j;
    o[0] = s[0], o[1] = s[1], o[ldc] = s[2], o[ldc + 1] = s[3];
  }
#if OFA_GEMM_S8_MVE
  bool vectorizable(int32_t) const { return true; }
  void vec4(int32_t i, int32_t j, int32x4_t v) const { vst1q_s32(c + (size_t)i * ldc + j, v); }
#endif
};

struct Requant {
  const int32_t* mult;
  const int32_t* shift;
  const int32_t* zp;
  int32_t step;  // 1: per channel, 0: one set
  bool right_only;  // no INT32_MIN multiplier and no left shift: Col's branch-free form applies
  int32_t at(int32_t j, int32_t v) const {
    return ofa_rq::requantize_one_shift(v, mult[j * step], shift[j * step]);
  }
  // One column's set, read once for the two rows of a 2x2 block (gemm_pairs).
  struct Col {
    int32_t mult, exponent, zp;
    int32_t apply(int32_t v) const { return ofa_rq::rdbpot32(ofa_rq::srdhm_floor(v, mult), exponent); }
  };
  Col col(int32_t j) const { return {mult[j * step], -shift[j * step], zp[j * step]}; }
};
Requant requant_of(const int32_t* table, int32_t count) {
  Requant q = {table, table + count, table + 2 * count, count > 1 ? 1 : 0, true};
  for (int32_t j = 0; j < count; ++j) q.right_only = q.right_only && table[j] != INT32_MIN && table[count + j] <= 0;
  return q;
}

#if defined(__GNUC__)
#define OFA_NOINLINE __attribute__((noinline))
#else
#define OFA_NOINLINE
#endif

// Same formulas as ofa_requant_to_s8 / ofa_requant_add_s32, inlined: one output costs about 20
// instructions on Cortex-M against the 4 to 16 multiply-adds per instruction pair of its sum.
struct ToS8 {
  Requant q;
  int8_t* out;
  int32_t ld;
  void operator()(int32_t i, int32_t j, int32_t v) const {
    out[(size_t)i * ld + j] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(q.at(j, v), q.zp[j * q.step]));
  }
  // Rows i, i+1 x columns j, j+1 of a 2x2 block: s = {(i,j), (i,j+1), (i+1,j), (i+1,j+1)}, bias added.
  void block(int32_t i, int32_t j, const int32_t* s) const {
    if (!q.right_only) {
      (*this)(i, j, s[0]), (*this)(i, j + 1, s[1]), (*this)(i + 1, j, s[2]), (*this)(i + 1, j + 1, s[3]);
      return;
    }
    const Requant::Col c0 = q.col(j), c1 = q.col(j + 1);
    int8_t* o = out + (size_t)i * ld + j;
    o[0] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(c0.apply(s[0]), c0.zp));
    o[1] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(c1.apply(s[1]), c1.zp));
    o[ld] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(c0.apply(s[2]), c0.zp));
    o[ld + 1] = (int8_t)ofa_rq::clamp_s8(ofa_rq::add_sat32(c1.apply(s[3]), c1.zp));
  }
#if OFA_GEMM_S8_MVE
  bool vectorizable(int32_t n) const { return !ofa_mve::any_int32_min(q.mult, q.step ? n : 1); }
  void vec4(int32_t i, int32_t j, int32x4_t v) const {  // columns j..j+3, as operator() each
    const ofa_mve::Requant4 p = ofa_mve::requant_params(q.mult, q.shift, q.zp, j, q.step);
    const int32x4_t r = ofa_mve::clamp_s8(vqaddq_s32(ofa_mve::requant4(v, p.mult, p.shift), p.zp));
    vstrbq_s32(out + (size_t)i * ld + j, r);
  }
#endif
};

struct AddS32 {
  Requant q;
  int32_t* out;
  int32_t ld;
  void operator()(int32_t i, int32_t j, int32_t v) const {
    int32_t* o = out + (size_t)i * ld + j;
    *o = ofa_rq::add_sat32(ofa_rq::add_sat32(*o, q.at(j, v)), q.zp[j * q.step]);
  }
  void block(int32_t i, int32_t j, const int32_t* s) const {  // as ToS8::block
    if (!q.right_only) {
      (*this)(i, j, s[0]), (*this)(i, j + 1, s[1]), (*this)(i + 1, j, s[2]), (*this)(i + 1, j + 1, s[3]);
      return;
    }
    const Requant::Col c0 = q.col(j), c1 = q.col(j + 1);
    int32_t* o = out + (size_t)i * ld + j;
    o[0] = ofa_rq::add_sat32(ofa_rq::add_sat32(o[0], c0.apply(s[0])), c0.zp);
    o[1] = ofa_rq::add_sat32(ofa_rq::add_sat32(o[1], c1.apply(s[1])), c1.zp);
    o[ld] = ofa_rq::add_sat32(ofa_rq::add_sat32(o[ld], c0.apply(s[2])), c0.zp);
    o[ld + 1] = ofa_rq::add_sat32(ofa_rq::add_sat32(o[ld + 1], c1.apply(s[3])), c1.zp);
  }
#if OFA_GEMM_S8_MVE
  bool vectorizable(int32_t n) const { return !ofa_mve::any_int32_min(q.mult, q.step ? n : 1); }
  void vec4(int32_t i, int32_t j, int32x4_t v) const {
    int32_t* o = out + (size_t)i * ld + j;
    const ofa_mve::Requant4 p = ofa_mve::requant_params(q.mult, q.shift, q.zp, j, q.step);
    vst1q_s32(o, vqaddq_s32(vqaddq_s32(vld1q_s32(o), ofa_mve::requant4(v, p.mult, p.shift)), p.zp));
  }
#endif
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

// One A row at a time, four output columns per pass so the row is reused from registers; the
// finished int32 sums (bias added) then go through the epilogue, outside the multiply-add loop.
template <class Epilogue>
void gemm_rows(const ofa_gemm_s8_dims* d, int32_t first_row, const int8_t* a, const int8_t* w,
               const int32_t* bias, const Epilogue& out) {
  int32_t s[4];
  for (int32_t i = first_row; i < d->m; ++i) {
    const int8_t* ar = a + (size_t)i * d->lda;
    int32_t j = 0;
    for (; j + 4 <= d->n; j += 4) {
      dot_1x4(ar, w + (size_t)j * d->ldw, d->ldw, d->k, s);
      for (int32_t c = 0; c < 4; ++c) out(i, j + c, s[c] + (bias ? bias[j + c] : 0));
    }
    for (; j < d->n; ++j) out(i, j, dot_1x1(ar, w + (size_t)j * d->ldw, d->k) + (bias ? bias[j] : 0));
  }
}

// Two A rows at a time, widened once into the scratch (ofa_dot::widen_pairs_2) and reused against
// every pair of W rows (ofa_dot::pairs_2x2); depths past the last multiple of 4, a last odd column
// and a last odd row take the plain steps. The scratch holds ofa_gemm_s8_scratch_bytes_mcu(k)
// bytes (4 per depth), inside ofa_gemm_s8_scratch_bytes(k) too. The same bits as gemm_rows: integer sums are exact in any order.
template <class Epilogue>
void gemm_pairs(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                const Epilogue& out, uint32_t* ax) {
  const int32_t k = d->k, k4 = k & ~3;
  int32_t i = 0;
  for (; i + 2 <= d->m; i += 2) {
    const int8_t* a0 = a + (size_t)i * d->lda;
    const int8_t* a1 = a0 + d->lda;
    ofa_dot::widen_pairs_2(a0, a1, k4, ax);
    for (int32_t j = 0; j < d->n; j += 2) {
      const int8_t* w0 = w + (size_t)j * d->ldw;
      if (j + 1 == d->n) {  // the last odd column
        const int32_t b = bias ? bias[j] : 0;
        out(i, j, dot_1x1(a0, w0, k) + b);
        out(i + 1, j, dot_1x1(a1, w0, k) + b);
        break;
      }
      const int8_t* w1 = w0 + d->ldw;
      int32_t s[4];
      ofa_dot::pairs_2x2(ax, w0, w1, k4, s);
      for (int32_t p = k4; p < k; ++p) {
        s[0] += (int32_t)a0[p] * w0[p];
        s[1] += (int32_t)a0[p] * w1[p];
        s[2] += (int32_t)a1[p] * w0[p];
        s[3] += (int32_t)a1[p] * w1[p];
      }
      if (bias) {
        s[0] += bias[j], s[1] += bias[j + 1], s[2] += bias[j], s[3] += bias[j + 1];
      }
      out.block(i, j, s);
    }
  }
  gemm_rows(d, i, a, w, bias, out);
}

#if OFA_GEMM_S8_MVE

// Helium (Cortex-M55, M85): 16 int8 products summed into a scalar per VMLADAVA, the depth's tail
// predicated (VCTP). A 2x2 block loads 4 vectors and issues 4 VMLADAVA per 16 depths: 64
// multiply-adds in 8 instructions. Integer sums, so the same bits as every other form.
inline void mve_2x2(const int8_t* a0, const int8_t* a1, const int8_t* w0, const int8_t* w1, int32_t k,
                    int32_t* sums) {
  int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0, p = 0;
  for (; p + 16 <= k; p += 16) {  // whole vectors: no predicate to carry through the loop
    const int8x16_t x0 = vld1q_s8(a0 + p), x1 = vld1q_s8(a1 + p);
    const int8x16_t y0 = vld1q_s8(w0 + p), y1 = vld1q_s8(w1 + p);
    s00 = vmladavaq_s8(s00, x0, y0);
    s01 = vmladavaq_s8(s01, x0, y1);
    s10 = vmladavaq_s8(s10, x1, y0);
    s11 = vmladavaq_s8(s11, x1, y1);
  }
  if (p < k) {  // the tail: lanes past k load as 0
    const mve_pred16_t live = vctp8q((uint32_t)(k - p));
    const int8x16_t x0 = vldrbq_z_s8(a0 + p, live), x1 = vldrbq_z_s8(a1 + p, live);
    const int8x16_t y0 = vldrbq_z_s8(w0 + p, live), y1 = vldrbq_z_s8(w1 + p, live);
    s00 = vmladavaq_s8(s00, x0, y0);
    s01 = vmladavaq_s8(s01, x0, y1);
    s10 = vmladavaq_s8(s10, x1, y0);
    s11 = vmladavaq_s8(s11, x1, y1);
  }
  sums[0] = s00;
  sums[1] = s01;
  sums[2] = s10;
  sums[3] = s11;
}

// Two A rows against four W rows: 6 vector registers, 8 sums. 128 multiply-adds per 6 loads and
// 8 VMLADAVA; the sums come out as the two rows' int32x4 of columns j..j+3.
inline void mve_2x4(const int8_t* a0, const int8_t* a1, const int8_t* w0, int32_t ldw, int32_t k, int32x4_t* row0,
                    int32x4_t* row1) {
  const int8_t* w1 = w0 + ldw;
  const int8_t* w2 = w1 + ldw;
  const int8_t* w3 = w2 + ldw;
  int32_t s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
  int32_t p = 0;
  for (; p + 16 <= k; p += 16) {
    const int8x16_t x0 = vld1q_s8(a0 + p), x1 = vld1q_s8(a1 + p);
    int8x16_t y = vld1q_s8(w0 + p);
    s00 = vmladavaq_s8(s00, x0, y);
    s10 = vmladavaq_s8(s10, x1, y);
    y = vld1q_s8(w1 + p);
    s01 = vmladavaq_s8(s01, x0, y);
    s11 = vmladavaq_s8(s11, x1, y);
    y = vld1q_s8(w2 + p);
    s02 = vmladavaq_s8(s02, x0, y);
    s12 = vmladavaq_s8(s12, x1, y);
    y = vld1q_s8(w3 + p);
    s03 = vmladavaq_s8(s03, x0, y);
    s13 = vmladavaq_s8(s13, x1, y);
  }
  if (p < k) {  // the tail: lanes past k load as 0
    const mve_pred16_t live = vctp8q((uint32_t)(k - p));
    const int8x16_t x0 = vldrbq_z_s8(a0 + p, live), x1 = vldrbq_z_s8(a1 + p, live);
    int8x16_t y = vldrbq_z_s8(w0 + p, live);
    s00 = vmladavaq_s8(s00, x0, y);
    s10 = vmladavaq_s8(s10, x1, y);
    y = vldrbq_z_s8(w1 + p, live);
    s01 = vmladavaq_s8(s01, x0, y);
    s11 = vmladavaq_s8(s11, x1, y);
    y = vldrbq_z_s8(w2 + p, live);
    s02 = vmladavaq_s8(s02, x0, y);
    s12 = vmladavaq_s8(s12, x1, y);
    y = vldrbq_z_s8(w3 + p, live);
    s03 = vmladavaq_s8(s03, x0, y);
    s13 = vmladavaq_s8(s13, x1, y);
  }
  const int32_t r0[4] = {s00, s01, s02, s03}, r1[4] = {s10, s11, s12, s13};
  *row0 = vld1q_s32(r0);
  *row1 = vld1q_s32(r1);
}

inline int32_t mve_1x1(const int8_t* a, const int8_t* w, int32_t k) {
  int32_t s = 0, p = 0;
  for (; p + 16 <= k; p += 16) s = vmladavaq_s8(s, vld1q_s8(a + p), vld1q_s8(w + p));
  if (p < k) {
    const mve_pred16_t live = vctp8q((uint32_t)(k - p));
    s = vmladavaq_s8(s, vldrbq_z_s8(a + p, live), vldrbq_z_s8(w + p, live));
  }
  return s;
}

// 2x2 blocks over the raw int8 rows (no widening, no scratch). Four columns at a time (two blocks)
// go through the epilogue as one vector; the rest of the columns, and a last odd row, by 2x2 / 1x1.
template <class Epilogue>
void gemm_mve(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
              const Epilogue& out) {
  const int32_t k = d->k;
  const bool vec = out.vectorizable(d->n);
  for (int32_t i = 0; i < d->m; i += 2) {
    const int8_t* a0 = a + (size_t)i * d->lda;
    const bool two_rows = i + 1 < d->m;
    const int8_t* a1 = two_rows ? a0 + d->lda : a0;
    int32_t j = 0;
    for (; vec && j + 4 <= d->n; j += 4) {
      int32x4_t r0, r1;
      mve_2x4(a0, a1, w + (size_t)j * d->ldw, d->ldw, k, &r0, &r1);
      const int32x4_t b = bias ? vld1q_s32(bias + j) : vdupq_n_s32(0);
      out.vec4(i, j, vaddq_s32(r0, b));
      if (two_rows) out.vec4(i + 1, j, vaddq_s32(r1, b));
    }
    for (; j < d->n; j += 2) {
      const int8_t* w0 = w + (size_t)j * d->ldw;
      const int32_t b0 = bias ? bias[j] : 0;
      if (j + 1 == d->n) {
        out(i, j, mve_1x1(a0, w0, k) + b0);
        if (two_rows) out(i + 1, j, mve_1x1(a1, w0, k) + b0);
        break;
      }
      const int32_t b1 = bias ? bias[j + 1] : 0;
      int32_t s[4];
      mve_2x2(a0, a1, w0, w0 + d->ldw, k, s);
      out(i, j, s[0] + b0);
      out(i, j + 1, s[1] + b1);
      if (two_rows) {
        out(i + 1, j, s[2] + b0);
        out(i + 1, j + 1, s[3] + b1);
      }
    }
  }
}
#endif

// The forms a table can run: Rows everywhere, Pairs (2x2 blocked, needs the scratch) on cores
// with the DSP extension (Cortex-M4/M7/M33+DSP/M55), where the scalar table uses it, and on any
// host through ofa_kernels_int8_pairs, so the kernel tests check its blocking and tails. The
// scratch is 4-byte aligned: the planner aligns every arena region to OFA_ARENA_ALIGN.
enum class Form { Rows, Pairs };
#if OFA_DOT_S8_DSP
constexpr Form kScalarForm = Form::Pairs;
#else
constexpr Form kScalarForm = Form::Rows;
#endif

template <Form F, class Epilogue>
void gemm(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
          const Epilogue& out, void* scratch) {
#if OFA_GEMM_S8_MVE
  if (F == kScalarForm) return gemm_mve(d, a, w, bias, out);  // Helium: the scalar table's GEMMs
#endif
  if (F == Form::Pairs && scratch) return gemm_pairs(d, a, w, bias, out, static_cast<uint32_t*>(scratch));
  gemm_rows(d, 0, a, w, bias, out);
}

template <Form F>
void gemm_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias, int32_t* c,
             void* scratch) {
  gemm<F>(d, a, w, bias, StoreS32{c, d->ldc}, scratch);
}

template <Form F>
void gemm_s8_requant_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                        const int32_t* table, int32_t count, int8_t* out, void* scratch) {
  gemm<F>(d, a, w, bias, ToS8{requant_of(table, count), out, d->ldc}, scratch);
}

template <Form F>
void gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                             const int32_t* bias, const int32_t* table, int32_t count, int32_t* out,
                             void* scratch) {
  gemm<F>(d, a, w, bias, AddS32{requant_of(table, count), out, d->ldc}, scratch);
}

}  // namespace

extern "C" void ofa_gemm_s8_requant_s8(const ofa_gemm_s8_dims* d, const int8_t* a,
                                       const int8_t* w, const int32_t* bias,
                                       const int32_t* table, int32_t count, int8_t* out,
                                       void* scratch) {
  gemm_s8_requant_s8<kScalarForm>(d, a, w, bias, table, count, out, scratch);
}

extern "C" void ofa_gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* d, const int8_t* a,
                                            const int8_t* w, const int32_t* bias,
                                            const int32_t* table, int32_t count, int32_t* out,
                                            void* scratch) {
  gemm_s8_requant_add_s32<kScalarForm>(d, a, w, bias, table, count, out, scratch);
}

extern "C" size_t ofa_gemm_s8_scratch_bytes(int32_t k) {
  if (k <= 0) return 0;
  return ((size_t)k + 3) / 4 * 4 * OFA_GEMM_S8_NR;
}

extern "C" size_t ofa_gemm_s8_scratch_bytes_mcu(int32_t k) {
  if (k <= 0) return 0;
  return ((size_t)k + 3) / 4 * 4 * 4;  // gemm_pairs: 2 rows x 2 int16 per depth
}

extern "C" const ofa_kernels_int8 ofa_kernels_int8_scalar = {
    "scalar", gemm_s8<kScalarForm>, ofa_requant_to_s8, ofa_requant_add_s32,
    ofa_layer_norm_s32, ofa_softmax_s8, ofa_gemm_s8_requant_s8, ofa_gemm_s8_requant_add_s32,
    ofa_layer_norm_s32_s8, ofa_lut_s8, nullptr, nullptr, nullptr, nullptr};

extern "C" const ofa_kernels_int8 ofa_kernels_int8_pairs = {
    "pairs", gemm_s8<Form::Pairs>, ofa_requant_to_s8, ofa_requant_add_s32,
    ofa_layer_norm_s32, ofa_softmax_s8, gemm_s8_requant_s8<Form::Pairs>, gemm_s8_requant_add_s32<Form::Pairs>,
    ofa_layer_norm_s32_s8, ofa_lut_s8, nullptr, nullptr, nullptr, nullptr};
