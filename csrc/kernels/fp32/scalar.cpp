// Portable scalar kernels: the reference path and the only path on MCUs.
#include <math.h>

#include "ofa/ofa_kernels.h"

namespace {

// Four output columns at a time so each A row is reused from registers; the
// W rows are read in their native (out, in) layout, no packing needed.
void gemm_scalar(const ofa_gemm_dims* d, const float* a, const float* w,
                 const float* bias, float* c, float* /*scratch*/) {
  for (int32_t i = 0; i < d->m; ++i) {
    const float* ar = a + (size_t)i * d->lda;
    float* cr = c + (size_t)i * d->ldc;
    int32_t j = 0;
    for (; j + 4 <= d->n; j += 4) {
      const float* w0 = w + (size_t)j * d->ldw;
      const float* w1 = w0 + d->ldw;
      const float* w2 = w1 + d->ldw;
      const float* w3 = w2 + d->ldw;
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
      for (int32_t k = 0; k < d->k; ++k) {
        const float av = ar[k];
        s0 += av * w0[k];
        s1 += av * w1[k];
        s2 += av * w2[k];
        s3 += av * w3[k];
      }
      if (bias) {
        s0 += bias[j]; s1 += bias[j + 1]; s2 += bias[j + 2]; s3 += bias[j + 3];
      }
      if (d->accumulate) {
        s0 += cr[j]; s1 += cr[j + 1]; s2 += cr[j + 2]; s3 += cr[j + 3];
      }
      cr[j] = s0; cr[j + 1] = s1; cr[j + 2] = s2; cr[j + 3] = s3;
    }
    for (; j < d->n; ++j) {
      const float* wr = w + (size_t)j * d->ldw;
      float s = 0.f;
      for (int32_t k = 0; k < d->k; ++k) s += ar[k] * wr[k];
      if (bias) s += bias[j];
      if (d->accumulate) s += cr[j];
      cr[j] = s;
    }
  }
}

void gelu_scalar(float* x, size_t n, int32_t kind) {
  if (kind == OFA_GELU_TANH) {
    const float k0 = 0.7978845608028654f;  // sqrt(2/pi)
    for (size_t i = 0; i < n; ++i) {
      const float v = x[i];
      x[i] = 0.5f * v * (1.f + tanhf(k0 * (v + 0.044715f * v * v * v)));
    }
  } else {
    const float inv_sqrt2 = 0.7071067811865476f;
    for (size_t i = 0; i < n; ++i) {
      const float v = x[i];
      x[i] = 0.5f * v * (1.f + erff(v * inv_sqrt2));
    }
  }
}

void layer_norm_scalar(const ofa_layer_norm_dims* d, const float* x,
                       const float* w, const float* b, float* y) {
  for (int32_t r = 0; r < d->rows; ++r) {
    const float* xr = x + (size_t)r * d->ld;
    float* yr = y + (size_t)r * d->ld;
    float mean = 0.f;
    for (int32_t j = 0; j < d->dim; ++j) mean += xr[j];
    mean /= (float)d->dim;
    float var = 0.f;
    for (int32_t j = 0; j < d->dim; ++j) {
      const float t = xr[j] - mean;
      var += t * t;
    }
    var /= (float)d->dim;
    const float inv = 1.f / sqrtf(var + d->eps);
    for (int32_t j = 0; j < d->dim; ++j)
      yr[j] = (xr[j] - mean) * inv * w[j] + b[j];
  }
}

void softmax_scalar(const ofa_softmax_dims* d, float* x) {
  for (int32_t r = 0; r < d->rows; ++r) {
    float* xr = x + (size_t)r * d->ld;
    const int32_t used = d->causal ? (r + 1 < d->cols ? r + 1 : d->cols) : d->cols;
    float mx = xr[0] * d->scale;
    for (int32_t j = 1; j < used; ++j) {
      const float v = xr[j] * d->scale;
      mx = v > mx ? v : mx;
    }
    float sum = 0.f;
    for (int32_t j = 0; j < used; ++j) {
      const float e = expf(xr[j] * d->scale - mx);
      xr[j] = e;
      sum += e;
    }
    const float inv = 1.f / sum;
    for (int32_t j = 0; j < used; ++j) xr[j] *= inv;
    for (int32_t j = used; j < d->cols; ++j) xr[j] = 0.f;
  }
}

}  // namespace

extern "C" const ofa_kernels ofa_kernels_scalar = {
    "scalar", gemm_scalar, gelu_scalar, layer_norm_scalar, softmax_scalar, nullptr, nullptr, nullptr, nullptr};

extern "C" size_t ofa_gemm_scratch_floats(int32_t k, int32_t n) {
  if (k <= 0 || n <= 0) return 0;
  const size_t kc = (size_t)(k < OFA_GEMM_KC ? k : OFA_GEMM_KC);
  size_t np = ((size_t)n + OFA_GEMM_N_PAD - 1) / OFA_GEMM_N_PAD * OFA_GEMM_N_PAD;
  if (np > OFA_GEMM_NC) np = OFA_GEMM_NC;
  return kc * np + kc * OFA_GEMM_MR_MAX;
}
