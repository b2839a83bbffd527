/* ofa_kernels.h - the ISA-specific kernel set the engine calls through.
 *
 * Each ISA (scalar, AVX2+FMA, AVX-512) provides one const table; the engine
 * never names an ISA. Kernels are pure functions over small dims structs.
 */
#ifndef OFA_OFA_KERNELS_H
#define OFA_OFA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ofa_gelu {
  OFA_GELU_ERF = 0, /* 0.5x(1+erf(x/sqrt2)) */
  OFA_GELU_TANH = 1 /* 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))) */
} ofa_gelu;

/* C[M,N] = A[M,K] * W[N,K]^T (+ bias[N]) (+ C if accumulate).
 * W is read in its (out, in) row-major layout; leading dims in floats. */
typedef struct ofa_gemm_dims {
  int32_t m, n, k;
  int32_t lda, ldw, ldc;
  int32_t accumulate; /* nonzero: add the product into existing C */
  /* nonzero: W is already in this table's pack_w layout (made once, at load;
   * ldw unused). Only a table with pack_w may be given it. */
  int32_t w_packed;
} ofa_gemm_dims;

/* Packing scratch (floats) every gemm variant may use, identical for all
 * ISAs so the planner is ISA independent: a W block of kc x nc (nc padded
 * to OFA_GEMM_N_PAD columns, at most OFA_GEMM_NC) followed by an A
 * micro-panel of OFA_GEMM_MR_MAX x kc; kc = min(K, OFA_GEMM_KC). */
/* Overridable for tuning experiments; must be identical in every TU. */
#ifndef OFA_GEMM_KC
#define OFA_GEMM_KC 384
#endif
#ifndef OFA_GEMM_NC
#define OFA_GEMM_NC 256
#endif
#define OFA_GEMM_N_PAD 32
#define OFA_GEMM_MR_MAX 16 /* rows of A packed per micro-panel */

typedef struct ofa_layer_norm_dims {
  int32_t rows, dim;
  int32_t ld; /* row stride of x and y (floats) */
  float eps;
} ofa_layer_norm_dims;

typedef struct ofa_softmax_dims {
  int32_t rows, cols;
  int32_t ld;
  float scale; /* softmax(scale * x) */
  int32_t causal; /* row i only uses columns 0..i; the rest become 0 */
} ofa_softmax_dims;

typedef struct ofa_kernels {
  const char* name;
  /* scratch: at least ofa_gemm_scratch_floats(k, n) floats, 64B aligned */
  void (*gemm)(const ofa_gemm_dims* dims, const float* a, const float* w,
               const float* bias, float* c, float* scratch);
  void (*gelu)(float* x, size_t n, int32_t kind);
  /* in place allowed (x == y); w/b: (dim) affine */
  void (*layer_norm)(const ofa_layer_norm_dims* dims, const float* x,
                     const float* w, const float* b, float* y);
  void (*softmax)(const ofa_softmax_dims* dims, float* x);
  /* Optional (NULL: the table packs W inside every gemm call): W (n, k) in the
   * panel layout its gemm streams, written once at load into packed_floats(n,
   * k) floats (64B aligned), then passed with dims.w_packed = 1. */
  size_t (*packed_floats)(int32_t n, int32_t k);
  void (*pack_w)(const float* w, int32_t ldw, int32_t n, int32_t k, float* dst);
  /* pack_w from W's transpose: wt (k, n), row stride ldwt (attention's V is
   * P V's W^T: packing it this way needs no transposed copy). */
  void (*pack_wt)(const float* wt, int32_t ldwt, int32_t n, int32_t k, float* dst);
  /* Optional (a host's): run fn(arg, i) for i in [0, n), in any order or at
   * once, and return when all are done. The engine gives it work items that
   * touch disjoint memory (one series' attention each). NULL: in order. */
  void (*parallel_for)(int32_t n, void (*fn)(void* arg, int32_t i), void* arg);
} ofa_kernels;

size_t ofa_gemm_scratch_floats(int32_t k, int32_t n);

extern const ofa_kernels ofa_kernels_scalar;

/* Host-side runtime dispatch (csrc/host/dispatch.cpp). Without
 * OFA_HOST_SIMD these return the scalar table / NULL. */
const ofa_kernels* ofa_kernels_best(void);
/* "scalar", "avx2", "avx512"; NULL if not built or not supported by CPU. */
const ofa_kernels* ofa_kernels_by_name(const char* name);

#ifdef __cplusplus
}
#endif

#endif /* OFA_OFA_KERNELS_H */
