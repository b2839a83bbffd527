// int8 GEMM with AVX2: bytes sign-extended to int16 and multiplied pairwise
// into int32 (vpmaddwd). Unlike vpmaddubsw this never saturates, so sums
// are exact and equal the scalar kernel's. K tails go through scalar code.
#include <immintrin.h>

#include "ofa/ofa_kernels_int8.h"

namespace {

constexpr int kMR = 4;  // 4 x 2 accumulators + 2 W rows + A: 11 ymm
constexpr int kNR = 2;

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline __m256i load16(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <int MR, int NR>
void block(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
           const int32_t* bias, int32_t* c) {
  __m256i acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm256_setzero_si256();
  const int32_t k_vec = d->k / 16 * 16;
  for (int32_t kk = 0; kk < k_vec; kk += 16) {
    __m256i wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = load16(w + (size_t)j * d->ldw + kk);
    for (int i = 0; i < MR; ++i) {
      const __m256i av = load16(a + (size_t)i * d->lda + kk);
      for (int j = 0; j < NR; ++j)
        acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(av, wv[j]));
    }
  }
  for (int i = 0; i < MR; ++i) {
    const int8_t* ar = a + (size_t)i * d->lda;
    for (int j = 0; j < NR; ++j) {
      const int8_t* wr = w + (size_t)j * d->ldw;
      int32_t s = hsum(acc[i][j]);
      for (int32_t kk = k_vec; kk < d->k; ++kk) s += (int32_t)ar[kk] * wr[kk];
      c[(size_t)i * d->ldc + j] = s + (bias ? bias[j] : 0);
    }
  }
}

using block_fn = void (*)(const ofa_gemm_s8_dims*, const int8_t*, const int8_t*,
                          const int32_t*, int32_t*);
template <int MR>
constexpr block_fn row_of(int nr) {
  return nr == 1 ? &block<MR, 1> : &block<MR, 2>;
}
block_fn pick(int mr, int nr) {
  switch (mr) {
    case 1: return row_of<1>(nr);
    case 2: return row_of<2>(nr);
    case 3: return row_of<3>(nr);
    default: return row_of<4>(nr);
  }
}

void gemm_s8_avx2(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                  const int32_t* bias, int32_t* c, void* /*scratch*/) {
  for (int32_t j0 = 0; j0 < d->n; j0 += kNR) {
    const int nr = d->n - j0 < kNR ? d->n - j0 : kNR;
    const int8_t* wj = w + (size_t)j0 * d->ldw;
    const int32_t* bj = bias ? bias + j0 : nullptr;
    for (int32_t i0 = 0; i0 < d->m; i0 += kMR) {
      const int mr = d->m - i0 < kMR ? d->m - i0 : kMR;
      pick(mr, nr)(d, a + (size_t)i0 * d->lda, wj, bj, c + (size_t)i0 * d->ldc + j0);
    }
  }
}

// Fused requantisation: the GEMM runs on tiles of kTileM x kTileN into a
// stack buffer (L1) that the portable requantisation then reads, so the int32
// result never goes through the arena. Same bits: the same two functions.
constexpr int32_t kTileM = kMR * 2, kTileN = 64;

template <class Requant>
void gemm_tiled(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                const int32_t* table, int32_t count, const Requant& requant) {
  alignas(32) int32_t tile[kTileM * kTileN];
  for (int32_t j0 = 0; j0 < d->n; j0 += kTileN) {
    const int32_t nb = d->n - j0 < kTileN ? d->n - j0 : kTileN;
    const int32_t* tj = count > 1 ? table + j0 : table;  // rows stay `count` apart
    for (int32_t i0 = 0; i0 < d->m; i0 += kTileM) {
      const int32_t mb = d->m - i0 < kTileM ? d->m - i0 : kTileM;
      const ofa_gemm_s8_dims g = {mb, nb, d->k, d->lda, d->ldw, kTileN, 0};
      gemm_s8_avx2(&g, a + (size_t)i0 * d->lda, w + (size_t)j0 * d->ldw, bias ? bias + j0 : nullptr,
                   tile, nullptr);
      const ofa_requant_dims rd = {mb, nb, kTileN, d->ldc, count};
      requant(&rd, tile, tj, (size_t)i0 * d->ldc + j0);
    }
  }
}

void gemm_s8_requant_s8_avx2(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                             const int32_t* bias, const int32_t* table, int32_t count, int8_t* out,
                             void* /*scratch*/) {
  gemm_tiled(d, a, w, bias, table, count,
             [out](const ofa_requant_dims* rd, const int32_t* tile, const int32_t* t, size_t at) {
               ofa_requant_to_s8(rd, tile, t, out + at);
             });
}

void gemm_s8_requant_add_s32_avx2(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                  const int32_t* bias, const int32_t* table, int32_t count,
                                  int32_t* out, void* /*scratch*/) {
  gemm_tiled(d, a, w, bias, table, count,
             [out](const ofa_requant_dims* rd, const int32_t* tile, const int32_t* t, size_t at) {
               ofa_requant_add_s32(rd, tile, t, out + at);
             });
}

}  // namespace

// The elementwise ops stay portable here (AVX2 lacks 64-bit multiplies).
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx2 = {
    "avx2", gemm_s8_avx2, ofa_requant_to_s8, ofa_requant_add_s32,
    ofa_layer_norm_s32, ofa_softmax_s8, gemm_s8_requant_s8_avx2, gemm_s8_requant_add_s32_avx2,
    ofa_layer_norm_s32_s8, ofa_lut_s8, nullptr, nullptr, nullptr, nullptr};
