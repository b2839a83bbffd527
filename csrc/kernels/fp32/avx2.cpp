// AVX2+FMA kernels. Built only with OFA_HOST_SIMD, with per-file target
// flags; only reached after dispatch.cpp has checked the CPU supports it.
#include <math.h>
#include <stddef.h>

#include "ofa/ofa_kernels.h"
#include "vec_avx2.h"

namespace ofa_avx2 {
namespace {
using V = Vec;
// 6 rows x 2 ymm columns = 12 accumulators of the 16 ymm registers.
constexpr int kMR = 6;
#include "simd_impl.h"
}  // namespace
}  // namespace ofa_avx2

extern "C" const ofa_kernels ofa_kernels_avx2 = {
    "avx2", ofa_avx2::gemm, ofa_avx2::gelu, ofa_avx2::layer_norm,
    ofa_avx2::softmax, ofa_avx2::packed_floats, ofa_avx2::pack_weights,
    ofa_avx2::pack_weights_t, nullptr};
