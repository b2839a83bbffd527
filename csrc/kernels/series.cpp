// Per-series preprocessing: scaler, instance norm (RevIN without affine) and
// patching, fused so no padded copy of the series is ever materialised; or
// the scaler alone (a classifier's global norm).
#include <math.h>

#include "core_kernels.h"

void ofa_series_to_patches(const ofa_series_dims* d, const float* x,
                           float scaler_mean, float scaler_std, float* patches,
                           float* mu, float* sd) {
  const int32_t L = d->seq_len;
  const float inv_std = 1.f / scaler_std;
  float mean = 0.f;
  for (int32_t t = 0; t < L; ++t)
    mean += (x[(size_t)t * d->x_stride] - scaler_mean) * inv_std;
  mean /= (float)L;
  float var = 0.f;
  for (int32_t t = 0; t < L; ++t) {
    const float z = (x[(size_t)t * d->x_stride] - scaler_mean) * inv_std - mean;
    var += z * z;
  }
  var /= (float)L;
  const float s = sqrtf(var + d->revin_eps);
  const float inv_s = 1.f / s;
  for (int32_t n = 0; n < d->n_patches; ++n) {
    float* row = patches + (size_t)n * d->patch_len;
    for (int32_t i = 0; i < d->patch_len; ++i) {
      int32_t t = n * d->stride + i;
      if (t > L - 1) t = L - 1;  // replication pad of the last S steps
      row[i] = ((x[(size_t)t * d->x_stride] - scaler_mean) * inv_std - mean) * inv_s;
    }
  }
  *mu = mean;
  *sd = s;
}

void ofa_series_to_scaled_patches(const ofa_series_dims* d, const float* x, float scaler_mean,
                                  float scaler_std, float* patches) {
  const int32_t L = d->seq_len;
  const float inv_std = 1.f / scaler_std;
  for (int32_t n = 0; n < d->n_patches; ++n) {
    float* row = patches + (size_t)n * d->patch_len;
    for (int32_t i = 0; i < d->patch_len; ++i) {
      int32_t t = n * d->stride + i;
      if (t > L - 1) t = L - 1;  // replication pad of the last S steps
      row[i] = (x[(size_t)t * d->x_stride] - scaler_mean) * inv_std;
    }
  }
}
