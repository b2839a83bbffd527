// Host-side kernel selection for both schemes: the widest ISA the running CPU
// supports, probed once per table. The SIMD tables exist only when built with
// OFA_HOST_SIMD (x86); elsewhere every name but "scalar" resolves to NULL.
#include <string.h>

#include "ofa/ofa_kernels.h"
#include "ofa/ofa_kernels_int8.h"

#if defined(OFA_HOST_SIMD)
extern "C" const ofa_kernels ofa_kernels_avx2;
extern "C" const ofa_kernels ofa_kernels_avx512;
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx2;
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx512vnni;
#endif

namespace {

bool always() { return true; }
#if defined(OFA_HOST_SIMD)
bool cpu_has_avx2_s8() { return __builtin_cpu_supports("avx2"); }  // the int8 kernels use no FMA
bool cpu_has_avx2() { return cpu_has_avx2_s8() && __builtin_cpu_supports("fma"); }
bool cpu_has_avx512() { return __builtin_cpu_supports("avx512f") && cpu_has_avx2(); }
bool cpu_has_avx512vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
}
#endif

template <class Table>
struct Isa {
  const char* name;
  const Table* table;
  bool (*supported)();
};

// Narrowest first: `best` takes the last one the CPU supports.
const Isa<ofa_kernels> kFp32[] = {
    {"scalar", &ofa_kernels_scalar, always},
#if defined(OFA_HOST_SIMD)
    {"avx2", &ofa_kernels_avx2, cpu_has_avx2},
    {"avx512", &ofa_kernels_avx512, cpu_has_avx512},
#endif
};
const Isa<ofa_kernels_int8> kInt8[] = {
    {"scalar", &ofa_kernels_int8_scalar, always},
#if defined(OFA_HOST_SIMD)
    {"avx2", &ofa_kernels_int8_avx2, cpu_has_avx2_s8},
    {"avx512vnni", &ofa_kernels_int8_avx512vnni, cpu_has_avx512vnni},
#endif
};

template <class Table, size_t N>
const Table* by_name(const Isa<Table> (&isas)[N], const char* name) {
  if (!name) return nullptr;
  for (const Isa<Table>& isa : isas)
    if (strcmp(isa.name, name) == 0) return isa.supported() ? isa.table : nullptr;
  return nullptr;
}

template <class Table, size_t N>
const Table* widest(const Isa<Table> (&isas)[N]) {
  const Table* best = isas[0].table;
  for (const Isa<Table>& isa : isas)
    if (isa.supported()) best = isa.table;
  return best;
}

}  // namespace

extern "C" const ofa_kernels* ofa_kernels_by_name(const char* name) { return by_name(kFp32, name); }
extern "C" const ofa_kernels_int8* ofa_kernels_int8_by_name(const char* name) { return by_name(kInt8, name); }

// Probed once: the CPU does not change under a running process.
extern "C" const ofa_kernels* ofa_kernels_best(void) {
  static const ofa_kernels* best = widest(kFp32);
  return best;
}
extern "C" const ofa_kernels_int8* ofa_kernels_int8_best(void) {
  static const ofa_kernels_int8* best = widest(kInt8);
  return best;
}
