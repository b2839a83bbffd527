// AVX-512 versions of the elementwise int8-path ops (same bits as the
// portable ones); built with per-file target flags, used by the avx512vnni
// int8 table only.
#pragma once
#include "ofa/ofa_kernels_int8.h"

void ofa_requant_to_s8_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                              int8_t* out);
void ofa_requant_add_s32_avx512(const ofa_requant_dims* d, const int32_t* in, const int32_t* table,
                                int32_t* out);
void ofa_layer_norm_s32_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                               const int32_t* table, int32_t* y);
void ofa_softmax_s8_avx512(const ofa_softmax_s8_dims* d, int32_t* scores, const int32_t* table,
                           int8_t* probs);
void ofa_layer_norm_s32_s8_avx512(const ofa_layer_norm_s32_dims* d, const int32_t* x, int64_t eps,
                                  const int32_t* table, int32_t* y, const int32_t* narrow_table,
                                  int8_t* narrow);
void ofa_lut_s8_avx512(const int8_t* lut, int8_t* x, size_t n);
