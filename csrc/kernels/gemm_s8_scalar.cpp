// Portable int8 GEMM: the reference every SIMD variant must match bit for
// bit, and the only path on microcontrollers.
#include "ofa/ofa_kernels_int8.h"

namespace {

// Four output columns at a time so each A row is reused from registers.
void gemm_s8_scalar(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                    const int32_t* bias, int32_t* c, void* /*scratch*/) {
  for (int32_t i = 0; i < d->m; ++i) {
    const int8_t* ar = a + (size_t)i * d->lda;
    int32_t* cr = c + (size_t)i * d->ldc;
    int32_t j = 0;
    for (; j + 4 <= d->n; j += 4) {
      const int8_t* w0 = w + (size_t)j * d->ldw;
      const int8_t* w1 = w0 + d->ldw;
      const int8_t* w2 = w1 + d->ldw;
      const int8_t* w3 = w2 + d->ldw;
      int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int32_t k = 0; k < d->k; ++k) {
        const int32_t av = ar[k];
        s0 += av * w0[k];
        s1 += av * w1[k];
        s2 += av * w2[k];
        s3 += av * w3[k];
      }
      if (bias) {
        s0 += bias[j]; s1 += bias[j + 1]; s2 += bias[j + 2]; s3 += bias[j + 3];
      }
      cr[j] = s0; cr[j + 1] = s1; cr[j + 2] = s2; cr[j + 3] = s3;
    }
    for (; j < d->n; ++j) {
      const int8_t* wr = w + (size_t)j * d->ldw;
      int32_t s = 0;
      for (int32_t k = 0; k < d->k; ++k) s += (int32_t)ar[k] * wr[k];
      cr[j] = s + (bias ? bias[j] : 0);
    }
  }
}

}  // namespace

extern "C" size_t ofa_gemm_s8_scratch_bytes(int32_t k) {
  if (k <= 0) return 0;
  return ((size_t)k + 3) / 4 * 4 * OFA_GEMM_S8_NR;
}

extern "C" const ofa_kernels_int8 ofa_kernels_int8_scalar = {
    "scalar", gemm_s8_scalar, ofa_requant_to_s8, ofa_requant_add_s32,
    ofa_layer_norm_s32, ofa_softmax_s8};
