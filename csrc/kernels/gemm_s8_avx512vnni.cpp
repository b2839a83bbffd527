// int8 GEMM with AVX-512 VNNI. Built with per-file target flags; reached only
// after dispatch has checked the CPU.
//
// A panel of 32 W rows (output columns) is packed per call into the VNNI
// layout: for each group of 4 k, the 4 bytes of column 0, then column 1, ...
// so one zmm holds 16 columns x 4 k and vpdpbusd (u8 x s8 -> int32) adds a
// broadcast quad of A into 16 column sums at once: no horizontal reductions.
// vpdpbusd wants unsigned A, so A is flipped to a + 128 and 128 * sum(w) is
// taken off again: exact mod 2^32, and the true result fits int32, so the
// bits equal the scalar kernel's.
#include <immintrin.h>
#include <string.h>

#include "ofa/ofa_kernels_int8.h"
#include "int8_ops_avx512.h"

namespace {

constexpr int kNR = OFA_GEMM_S8_NR;  // 32 columns: two zmm
constexpr int kMR = 8;               // 8 x 2 accumulators + 2 W + A: 19 zmm

// Packs rows j0..j0+nb of w (k bytes each) into dst (kq x 32 x 4 bytes, zero
// padded) and returns 128 * each column's sum in sums[0..32).
void pack_panel(const int8_t* w, int32_t ldw, int32_t k, int nb, int8_t* dst, int32_t* sums) {
  const int32_t kq = (k + 3) / 4, full = k / 4;
  // Whole quads: one gather of 16 rows' 4 bytes per half panel (columns past nb masked to 0).
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(ldw));
  const __mmask16 m0 = nb >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nb) - 1);
  const __mmask16 m1 = nb >= 32 ? (__mmask16)0xFFFF : nb <= 16 ? 0 : (__mmask16)((1u << (nb - 16)) - 1);
  const int8_t* w1 = nb > 16 ? w + (size_t)16 * ldw : w;  // second half panel, if any
  for (int32_t q = 0; q < full; ++q) {
    const __m512i idx = _mm512_add_epi32(rows, _mm512_set1_epi32(4 * q));
    _mm512_store_si512(dst + (size_t)q * kNR * 4,
                       _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m0, idx, w, 1));
    _mm512_store_si512(dst + (size_t)q * kNR * 4 + 64,
                       m1 ? _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m1, idx, w1, 1)
                          : _mm512_setzero_si512());
  }
  if (full < kq) {  // short last quad, zero padded, byte by byte (no read past a row)
    int8_t* tail = dst + (size_t)full * kNR * 4;
    memset(tail, 0, (size_t)kNR * 4);
    for (int c = 0; c < nb; ++c)
      for (int32_t kk = 4 * full; kk < k; ++kk) tail[c * 4 + (kk - 4 * full)] = w[(size_t)c * ldw + kk];
  }
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
  for (int32_t q = 0; q < kq; ++q) {
    s0 = _mm512_dpbusd_epi32(s0, ones, _mm512_load_si512(dst + (size_t)q * kNR * 4));
    s1 = _mm512_dpbusd_epi32(s1, ones, _mm512_load_si512(dst + (size_t)q * kNR * 4 + 64));
  }
  _mm512_storeu_si512(sums, _mm512_slli_epi32(s0, 7));
  _mm512_storeu_si512(sums + 16, _mm512_slli_epi32(s1, 7));
}

inline __m512i flipped_broadcast(int32_t quad) {
  return _mm512_xor_si512(_mm512_set1_epi32(quad), _mm512_set1_epi8((char)0x80));
}

template <int MR>
void micro(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* packed, const int32_t* sums,
           const int32_t* bias, int32_t* c, int nb) {
  __m512i acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  const int32_t full = d->k / 4;
  const int8_t* bp = packed;
  for (int32_t q = 0; q < full; ++q, bp += kNR * 4) {
    const __m512i b0 = _mm512_load_si512(bp);
    const __m512i b1 = _mm512_load_si512(bp + 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t quad;
      memcpy(&quad, a + (size_t)r * d->lda + 4 * q, 4);
      const __m512i av = flipped_broadcast(quad);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
    }
  }
  if (d->k % 4) {  // short last quad, zero filled: those lanes meet zero weights
    const __m512i b0 = _mm512_load_si512(bp);
    const __m512i b1 = _mm512_load_si512(bp + 64);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t quad = 0;
      memcpy(&quad, a + (size_t)r * d->lda + 4 * full, (size_t)(d->k % 4));
      const __m512i av = flipped_broadcast(quad);
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
    }
  }
  const __mmask16 m0 = nb >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nb) - 1);
  const __mmask16 m1 = nb >= 32 ? (__mmask16)0xFFFF : nb <= 16 ? 0 : (__mmask16)((1u << (nb - 16)) - 1);
  __m512i off0 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(sums));
  __m512i off1 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_loadu_si512(sums + 16));
  if (bias) {
    off0 = _mm512_add_epi32(off0, _mm512_maskz_loadu_epi32(m0, bias));
    off1 = _mm512_add_epi32(off1, _mm512_maskz_loadu_epi32(m1, bias + 16));
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    int32_t* cr = c + (size_t)r * d->ldc;
    _mm512_mask_storeu_epi32(cr, m0, _mm512_add_epi32(acc0[r], off0));
    _mm512_mask_storeu_epi32(cr + 16, m1, _mm512_add_epi32(acc1[r], off1));
  }
}

using micro_fn = void (*)(const ofa_gemm_s8_dims*, const int8_t*, const int8_t*, const int32_t*,
                          const int32_t*, int32_t*, int);
constexpr micro_fn kMicro[kMR] = {&micro<1>, &micro<2>, &micro<3>, &micro<4>,
                                  &micro<5>, &micro<6>, &micro<7>, &micro<8>};

void gemm_s8_avx512vnni(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                        const int32_t* bias, int32_t* c, void* scratch) {
  int8_t* packed = static_cast<int8_t*>(scratch);
  alignas(64) int32_t sums[kNR];
  for (int32_t j0 = 0; j0 < d->n; j0 += kNR) {
    const int nb = d->n - j0 < kNR ? d->n - j0 : kNR;
    pack_panel(w + (size_t)j0 * d->ldw, d->ldw, d->k, nb, packed, sums);
    const int32_t* bj = bias ? bias + j0 : nullptr;
    for (int32_t i0 = 0; i0 < d->m; i0 += kMR) {
      const int mr = d->m - i0 < kMR ? d->m - i0 : kMR;
      kMicro[mr - 1](d, a + (size_t)i0 * d->lda, packed, sums, bj, c + (size_t)i0 * d->ldc + j0, nb);
    }
  }
}

}  // namespace

extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx512vnni = {
    "avx512vnni", gemm_s8_avx512vnni, ofa_requant_to_s8_avx512, ofa_requant_add_s32_avx512,
    ofa_layer_norm_s32_avx512, ofa_softmax_s8_avx512};
