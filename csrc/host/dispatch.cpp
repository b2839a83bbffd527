// Host-side kernel selection: picks the widest ISA the running CPU supports,
// once. The SIMD tables exist only when built with OFA_HOST_SIMD (x86); on
// other targets everything resolves to the scalar table.
#include <string.h>

#include "ofa/ofa_kernels.h"

#if defined(OFA_HOST_SIMD)
extern "C" const ofa_kernels ofa_kernels_avx2;
extern "C" const ofa_kernels ofa_kernels_avx512;

static bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static bool cpu_has_avx512() {
  return __builtin_cpu_supports("avx512f") && cpu_has_avx2();
}
#endif

extern "C" const ofa_kernels* ofa_kernels_by_name(const char* name) {
  if (!name) return nullptr;
  if (strcmp(name, "scalar") == 0) return &ofa_kernels_scalar;
#if defined(OFA_HOST_SIMD)
  if (strcmp(name, "avx2") == 0) return cpu_has_avx2() ? &ofa_kernels_avx2 : nullptr;
  if (strcmp(name, "avx512") == 0)
    return cpu_has_avx512() ? &ofa_kernels_avx512 : nullptr;
#endif
  return nullptr;
}

extern "C" const ofa_kernels* ofa_kernels_best(void) {
  static const ofa_kernels* best = [] {
#if defined(OFA_HOST_SIMD)
    if (cpu_has_avx512()) return &ofa_kernels_avx512;
    if (cpu_has_avx2()) return &ofa_kernels_avx2;
#endif
    return &ofa_kernels_scalar;
  }();
  return best;
}
