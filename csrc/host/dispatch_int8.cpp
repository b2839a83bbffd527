// Host-side choice of the int8 GEMM: the widest ISA the running CPU has.
// Without OFA_HOST_SIMD (non-x86 builds) only the scalar table exists.
#include <string.h>

#include "ofa/ofa_kernels_int8.h"

#if defined(OFA_HOST_SIMD)
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx2;
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx512vnni;

static bool cpu_has_avx2() { return __builtin_cpu_supports("avx2"); }
static bool cpu_has_avx512vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
}
#endif

extern "C" const ofa_kernels_int8* ofa_kernels_int8_by_name(const char* name) {
  if (!name) return nullptr;
  if (strcmp(name, "scalar") == 0) return &ofa_kernels_int8_scalar;
#if defined(OFA_HOST_SIMD)
  if (strcmp(name, "avx2") == 0) return cpu_has_avx2() ? &ofa_kernels_int8_avx2 : nullptr;
  if (strcmp(name, "avx512vnni") == 0)
    return cpu_has_avx512vnni() ? &ofa_kernels_int8_avx512vnni : nullptr;
#endif
  return nullptr;
}

extern "C" const ofa_kernels_int8* ofa_kernels_int8_best(void) {
#if defined(OFA_HOST_SIMD)
  if (cpu_has_avx512vnni()) return &ofa_kernels_int8_avx512vnni;
  if (cpu_has_avx2()) return &ofa_kernels_int8_avx2;
#endif
  return &ofa_kernels_int8_scalar;
}
