/* profile.c - where a forecast's instructions go, per int8 kernel (built with -DOFA_PROFILE=ON).
 *
 * A kernel table whose entries call the portable kernels between two counter reads. The engine
 * takes its kernels as a table, so nothing in csrc knows it is measured; what no kernel covers
 * (patching, the head's partial sums, the output scaling, the V transpose) is the total minus the
 * sum. Each read costs a few dozen instructions and the counter ticks every 40 (MPS2), so the
 * figures are estimates to within ~100 instructions per call. */
#include "profile.h"

#include "board.h"

uint64_t ofa_profile_instructions[OFA_PROFILE_KERNELS];
uint32_t ofa_profile_calls[OFA_PROFILE_KERNELS];
const char* const ofa_profile_names[OFA_PROFILE_KERNELS] = {
    "gemm_s8", "requant_to_s8", "requant_add_s32", "layer_norm_s32", "softmax_s8",
    "gemm_s8_requant_s8", "gemm_s8_requant_add_s32", "layer_norm_s32_s8", "lut_s8"};

#define BEGIN const uint64_t t0 = counter_ticks()
#define END(i)                                                                 \
  ofa_profile_instructions[i] += ticks_to_instructions(counter_ticks() - t0); \
  ++ofa_profile_calls[i]

static void gemm_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias, int32_t* c,
                    void* scratch) {
  BEGIN;
  ofa_kernels_int8_scalar.gemm_s8(d, a, w, bias, c, scratch);
  END(0);
}
static void requant_to_s8(const ofa_requant_dims* d, const int32_t* in, const int32_t* table, int8_t* out) {
  BEGIN;
  ofa_kernels_int8_scalar.requant_to_s8(d, in, table, out);
  END(1);
}
static void requant_add_s32(const ofa_requant_dims* d, const int32_t* in, const int32_t* table, int32_t* out) {
  BEGIN;
  ofa_kernels_int8_scalar.requant_add_s32(d, in, table, out);
  END(2);
}
static void layer_norm_s32(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps, const int32_t* table,
                           int32_t* y) {
  BEGIN;
  ofa_kernels_int8_scalar.layer_norm_s32(d, x, eps, table, y);
  END(3);
}
static void softmax_s8(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table, int8_t* probs) {
  BEGIN;
  ofa_kernels_int8_scalar.softmax_s8(d, scores, table, probs);
  END(4);
}
static void gemm_s8_requant_s8(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                               const int32_t* table, int32_t count, int8_t* out, void* scratch) {
  BEGIN;
  ofa_kernels_int8_scalar.gemm_s8_requant_s8(d, a, w, bias, table, count, out, scratch);
  END(5);
}
static void gemm_s8_requant_add_s32(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                    const int32_t* bias, const int32_t* table, int32_t count, int32_t* out,
                                    void* scratch) {
  BEGIN;
  ofa_kernels_int8_scalar.gemm_s8_requant_add_s32(d, a, w, bias, table, count, out, scratch);
  END(6);
}
static void layer_norm_s32_s8(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps, const int32_t* table,
                              int32_t* y, const int32_t* narrow_table, int8_t* narrow) {
  BEGIN;
  ofa_kernels_int8_scalar.layer_norm_s32_s8(d, x, eps, table, y, narrow_table, narrow);
  END(7);
}
static void lut_s8(const int8_t* lut, int8_t* x, size_t n) {
  BEGIN;
  ofa_kernels_int8_scalar.lut_s8(lut, x, n);
  END(8);
}

const ofa_kernels_int8 ofa_kernels_int8_profiled = {
    "scalar (profiled)", gemm_s8,   requant_to_s8,           requant_add_s32,   layer_norm_s32,
    softmax_s8,          gemm_s8_requant_s8, gemm_s8_requant_add_s32, layer_norm_s32_s8, lut_s8, NULL, NULL, NULL, NULL};

void ofa_profile_reset(void) {
  for (int i = 0; i < OFA_PROFILE_KERNELS; ++i) {
    ofa_profile_instructions[i] = 0;
    ofa_profile_calls[i] = 0;
  }
}
