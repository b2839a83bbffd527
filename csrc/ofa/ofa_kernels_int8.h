/* ofa_kernels_int8.h - the int8 kernels: one ISA-specific GEMM table plus
 * portable integer ops (CMSIS-NN style pure functions over dims structs).
 *
 * Every op is exact integer arithmetic, so all ISAs give the same bits.
 */
#ifndef OFA_OFA_KERNELS_INT8_H
#define OFA_OFA_KERNELS_INT8_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* C[M,N] = A[M,K] * W[N,K]^T (+ bias[N]), int8 x int8 -> exact int32.
 * Leading dims in elements. K <= OFA_GEMM_S8_MAX_K and |bias| < 2^30 keep
 * every sum inside int32 (the engine validates both). */
typedef struct ofa_gemm_s8_dims {
  int32_t m, n, k;
  int32_t lda, ldw, ldc;
  /* nonzero: W is already in this table's pack_w layout (made once, at load;
   * ldw unused). Only a table with pack_w may be given it. */
  int32_t w_packed;
} ofa_gemm_s8_dims;
#define OFA_GEMM_S8_MAX_K (1 << 16)
/* Packing scratch every gemm_s8 variant may use, the same for all ISAs so
 * the planner is ISA independent: a panel of OFA_GEMM_S8_NR columns of W with
 * k rounded up to 4. 64-byte aligned. */
#define OFA_GEMM_S8_NR 32
size_t ofa_gemm_s8_scratch_bytes(int32_t k);
/* What the portable table needs (OFA_ARENA_MCU): two A rows widened to int16
 * pairs, 4 bytes per depth rounded up to 4 depths. */
size_t ofa_gemm_s8_scratch_bytes_mcu(int32_t k);

/* Row-major (rows, cols) int32 -> requant table (3, count) applied per
 * column (count == cols) or to all (count == 1). */
typedef struct ofa_requant_dims {
  int32_t rows, cols;
  int32_t ld_in, ld_out;
  int32_t count;
} ofa_requant_dims;

typedef struct ofa_layer_norm_s32_dims {
  int32_t rows, dim;
  int32_t ld; /* row stride of x and y */
} ofa_layer_norm_s32_dims;

typedef struct ofa_softmax_s8_dims {
  int32_t rows, cols;
  int32_t ld_in, ld_out;
  int32_t causal;    /* row i uses columns 0..first_row + i; the rest become 0 */
  int32_t first_row; /* causal: the query index of row 0 (a block of rows) */
} ofa_softmax_s8_dims;

/* The ISA-specific part of the int8 path: the GEMM and the elementwise ops,
 * each with exactly the semantics (and bits) of the portable function of the
 * same name below. */
typedef struct ofa_kernels_int8 {
  const char* name;
  void (*gemm_s8)(const ofa_gemm_s8_dims* dims, const int8_t* a,
                  const int8_t* w, const int32_t* bias, int32_t* c,
                  void* scratch);
  void (*requant_to_s8)(const ofa_requant_dims* d, const int32_t* in,
                        const int32_t* table, int8_t* out);
  void (*requant_add_s32)(const ofa_requant_dims* d, const int32_t* in,
                          const int32_t* table, int32_t* out);
  void (*layer_norm_s32)(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                         int64_t eps, const int32_t* table, int32_t* y);
  void (*softmax_s8)(const ofa_softmax_s8_dims* d, int32_t* scores,
                     const int32_t* table, int8_t* probs);
  /* GEMM with the requantisation fused into its epilogue: the same bits as
   * gemm_s8 into an int32 (m, n) tile followed by requant_to_s8 /
   * requant_add_s32 of that tile with `table` of `count` channels (n or 1),
   * but the tile is requantised while still in registers. out's leading
   * dimension is dims->ldc (elements); scratch as for gemm_s8. */
  void (*gemm_s8_requant_s8)(const ofa_gemm_s8_dims* dims, const int8_t* a,
                             const int8_t* w, const int32_t* bias,
                             const int32_t* table, int32_t count, int8_t* out,
                             void* scratch);
  void (*gemm_s8_requant_add_s32)(const ofa_gemm_s8_dims* dims,
                                  const int8_t* a, const int8_t* w,
                                  const int32_t* bias, const int32_t* table,
                                  int32_t count, int32_t* out, void* scratch);
  /* layer_norm_s32, then requant_to_s8 of y with the (3, 1) `narrow_table`
   * into narrow (row stride d->ld), row by row while y is hot. */
  void (*layer_norm_s32_s8)(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                            int64_t eps, const int32_t* table, int32_t* y,
                            const int32_t* narrow_table, int8_t* narrow);
  /* ofa_lut_s8 */
  void (*lut_s8)(const int8_t* lut, int8_t* x, size_t n);
  /* Optional (NULL: each GEMM packs its W panels itself): W (n, k) in the
   * layout the GEMMs stream, written once at load into packed_bytes(n, k)
   * bytes (64B aligned), then passed with dims.w_packed = 1. */
  size_t (*packed_bytes)(int32_t n, int32_t k);
  void (*pack_w)(const int8_t* w, int32_t ldw, int32_t n, int32_t k, int8_t* dst);
  /* pack_w from W's transpose: wt (k, n), row stride ldwt (attention's V). */
  void (*pack_wt)(const int8_t* wt, int32_t ldwt, int32_t n, int32_t k, int8_t* dst);
  /* Optional (a host's): run fn(arg, i) for i in [0, n), in any order or at
   * once (disjoint work items: one series' attention each). NULL: in order. */
  void (*parallel_for)(int32_t n, void (*fn)(void* arg, int32_t i), void* arg);
} ofa_kernels_int8;

extern const ofa_kernels_int8 ofa_kernels_int8_scalar;

/* Host dispatch: "scalar", "avx2", "avx512vnni"; NULL if not built or the
 * CPU lacks it. _best picks the widest available. */
const ofa_kernels_int8* ofa_kernels_int8_best(void);
const ofa_kernels_int8* ofa_kernels_int8_by_name(const char* name);

/* ---- requantisation (gemmlowp / TFLite reference semantics) ------------ */
int32_t ofa_srdhm(int32_t a, int32_t b);          /* SaturatingRoundingDoublingHighMul */
int32_t ofa_rdbpot(int32_t x, int32_t exponent);  /* RoundingDivideByPOT, 0..31 */
/* x * mult * 2^shift, rounded; a left shift saturates. shift in
 * [OFA_SHIFT_MIN, OFA_SHIFT_MAX]. */
int32_t ofa_requantize(int32_t x, int32_t mult, int32_t shift);
#define OFA_SHIFT_MIN (-31)
#define OFA_SHIFT_MAX 30

/* out = clamp(requant + zp, -128, 127) */
void ofa_requant_to_s8(const ofa_requant_dims* d, const int32_t* in,
                       const int32_t* table, int8_t* out);
/* out = sat(sat(out + requant(in)) + zp), int32 saturating: a residual add */
void ofa_requant_add_s32(const ofa_requant_dims* d, const int32_t* in,
                         const int32_t* table, int32_t* out);

/* Portable fused GEMM + requantisation (the scalar table's entries). */
void ofa_gemm_s8_requant_s8(const ofa_gemm_s8_dims* dims, const int8_t* a,
                            const int8_t* w, const int32_t* bias,
                            const int32_t* table, int32_t count, int8_t* out,
                            void* scratch);
void ofa_gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* dims, const int8_t* a,
                                 const int8_t* w, const int32_t* bias,
                                 const int32_t* table, int32_t count,
                                 int32_t* out, void* scratch);

/* floor(sqrt(v)), v >= 0 */
int64_t ofa_isqrt64(int64_t v);

/* In place allowed. table: (3, dim) gamma multipliers, shifts, beta. */
void ofa_layer_norm_s32(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                        int64_t eps, const int32_t* table, int32_t* y);

void ofa_layer_norm_s32_s8(const ofa_layer_norm_s32_dims* d, const int32_t* x,
                           int64_t eps, const int32_t* table, int32_t* y,
                           const int32_t* narrow_table, int8_t* narrow);

/* Scores int32 -> probabilities int8 in [0, 127] (scale 1/127). table (3, 1)
 * maps a score to Q10 logits (value * 1024). scores is used as scratch
 * (overwritten). */
void ofa_softmax_s8(const ofa_softmax_s8_dims* d, int32_t* scores,
                    const int32_t* table, int8_t* probs);
/* The I-BERT polynomial exp of a Q10 logit x <= 0, on a scale 2^20 / 0.3585
 * (only ratios matter). */
int32_t ofa_iexp_q10(int32_t x);

void ofa_lut_s8(const int8_t* lut, int8_t* x, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* OFA_OFA_KERNELS_INT8_H */
