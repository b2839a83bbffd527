// AVX-512F kernels. Built only with OFA_HOST_SIMD, with per-file target
// flags; only reached after dispatch.cpp has checked the CPU supports it.
#include <math.h>
#include <stddef.h>

#include "ofa/ofa_kernels.h"
#include "vec_avx512.h"

namespace ofa_avx512 {
namespace {
using V = Vec;
// 12 rows x 2 zmm columns = 24 accumulators of the 32 zmm registers.
constexpr int kMR = 12;
#include "simd_impl.h"
}  // namespace
}  // namespace ofa_avx512

extern "C" const ofa_kernels ofa_kernels_avx512 = {
    "avx512", ofa_avx512::gemm, ofa_avx512::gelu, ofa_avx512::layer_norm,
    ofa_avx512::softmax, ofa_avx512::packed_floats, ofa_avx512::pack_weights,
    ofa_avx512::pack_weights_t, nullptr};
