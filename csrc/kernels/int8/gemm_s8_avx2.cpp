// int8 GEMM with AVX2: bytes sign-extended to int16 and multiplied pairwise
// into int32 (vpmaddwd). Unlike vpmaddubsw this never saturates, so sums
// are exact and equal the scalar kernel's.
//
// W is always streamed packed: panels of kPR columns whose (column, 2 depths)
// byte pairs are interleaved, so one sign-extending load gives 8 columns x 2
// depths; A's rows are widened into int16 pairs (a stack buffer, by depth
// chunks) and broadcast, and each vpmaddwd adds 2 depths into 8 output
// columns: no horizontal sums. A W packed at load (pack_w / pack_wt, the
// host's case) is used as it is; any other W (the q.k scores, the Python
// gemm_s8 without prepack) is packed OFA_GEMM_S8_NR columns at a time into
// the call's scratch first, which is cheap against the GEMM even at the
// attention's depth of one head.
#include <immintrin.h>
#include <string.h>

#include "ofa/ofa_kernels_int8.h"
#include "int8_ops_avx2.h"

namespace {

inline __m256i load16(const int8_t* p) {  // 16 bytes sign-extended to int16
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// ---- packed W ----------------------------------------------------------------
constexpr int kPR = 16;  // columns per packed panel: two ymm of int32 sums
// Rows per micro-tile: 6 accumulators + 4 W + 2 A = 12 ymm. Measured on Zen 3 against 4 and 6 rows
// (which GCC spills): the fastest, and the model's 7 x 42 = 294 rows are whole tiles.
constexpr int kPM = 3;
// A is widened kWidenRows rows by kDepthChunk depths at a time into a 3 KB stack buffer, so the
// packed form needs no scratch: the engine runs the head's packed GEMM over its whole depth
// (tokens x d) with a scratch planned for depth d only.
constexpr int32_t kWidenRows = 2 * kPM, kDepthChunk = 256;  // even: chunks start on a depth pair

inline int32_t depth_pairs(int32_t k) { return (k + 1) / 2; }
// One panel: depth_pairs(k) groups of 32 bytes; a group holds columns 0..7 then 8..15, each as the
// bytes of depths 2t and 2t + 1 (0 past k or past the panel's columns).
inline size_t panel_bytes(int32_t k) { return (size_t)depth_pairs(k) * kPR * 2; }

size_t packed_bytes(int32_t n, int32_t k) {
  return n <= 0 || k <= 0 ? 0 : (size_t)(n + kPR - 1) / kPR * panel_bytes(k);
}

// W's element (column j, depth t) is w[j * col_stride + t * depth_stride]: pack_w's W (n, k) and
// pack_wt's transpose (k, n) are the same loop.
void pack_panels(const int8_t* w, size_t col_stride, size_t depth_stride, int32_t n, int32_t k, int8_t* dst) {
  const int32_t pairs = depth_pairs(k);
  for (int32_t j0 = 0; j0 < n; j0 += kPR) {
    int8_t* panel = dst + (size_t)j0 / kPR * panel_bytes(k);
    memset(panel, 0, panel_bytes(k));
    const int32_t nb = n - j0 < kPR ? n - j0 : kPR;
    for (int32_t c = 0; c < nb; ++c) {
      const int8_t* wc = w + (size_t)(j0 + c) * col_stride;
      for (int32_t t = 0; t < pairs; ++t) {
        int8_t* g = panel + (size_t)t * kPR * 2 + c * 2;
        g[0] = wc[(size_t)(2 * t) * depth_stride];
        if (2 * t + 1 < k) g[1] = wc[(size_t)(2 * t + 1) * depth_stride];
      }
    }
  }
}

void pack_weights(const int8_t* w, int32_t ldw, int32_t n, int32_t k, int8_t* dst) {
  pack_panels(w, (size_t)ldw, 1, n, k, dst);
}

void pack_weights_t(const int8_t* wt, int32_t ldwt, int32_t n, int32_t k, int8_t* dst) {
  pack_panels(wt, 1, (size_t)ldwt, n, k, dst);
}

// `rows` rows of k bytes of A sign-extended to int16, each padded to an even depth with 0
// (row stride 2 * depth_pairs(k)).
void widen_rows(const int8_t* a, int32_t lda, int32_t rows, int32_t k, int16_t* out) {
  const int32_t ld16 = 2 * depth_pairs(k), full = k / 16 * 16;
  for (int32_t i = 0; i < rows; ++i) {
    const int8_t* ar = a + (size_t)i * lda;
    int16_t* o = out + (size_t)i * ld16;
    for (int32_t kk = 0; kk < full; kk += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + kk), load16(ar + kk));
    for (int32_t kk = full; kk < ld16; ++kk) o[kk] = kk < k ? ar[kk] : 0;
  }
}

// c (MR, nb <= kPR) = [c +] a16 (MR rows of int16 pairs) x one packed panel's `pairs` groups
// [+ bias]: the first depth chunk stores (with the bias), later ones add to c.
template <int MR>
void packed_tile(const int16_t* a16, int32_t ld16, int32_t pairs, const int8_t* panel,
                 const int32_t* bias, int nb, bool first, int32_t* c, int32_t ldc) {
  alignas(32) int32_t lanes[kPR] = {};
  __m256i acc[MR][2];
  for (int i = 0; i < MR; ++i) {
    if (first) {
      acc[i][0] = acc[i][1] = _mm256_setzero_si256();
      continue;
    }
    memcpy(lanes, c + (size_t)i * ldc, (size_t)nb * sizeof(int32_t));
    acc[i][0] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    acc[i][1] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
  }
  // Two depth pairs per step, their products summed before the accumulator: half the loop-carried
  // adds, and GCC 12 keeps the loop free of spills (4 rows, one pair per step, spilled every step).
  const int8_t* wp = panel;
  int32_t t = 0;
  for (; t + 1 < pairs; t += 2, wp += kPR * 4) {
    const __m256i w0 = load16(wp), w1 = load16(wp + 16), w2 = load16(wp + 32), w3 = load16(wp + 48);
    for (int i = 0; i < MR; ++i) {
      int32_t pair[2];
      memcpy(pair, a16 + (size_t)i * ld16 + 2 * t, sizeof pair);
      const __m256i a0 = _mm256_set1_epi32(pair[0]), a1 = _mm256_set1_epi32(pair[1]);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_add_epi32(_mm256_madd_epi16(a0, w0), _mm256_madd_epi16(a1, w2)));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_add_epi32(_mm256_madd_epi16(a0, w1), _mm256_madd_epi16(a1, w3)));
    }
  }
  if (t < pairs) {
    const __m256i w0 = load16(wp), w1 = load16(wp + 16);
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      memcpy(&pair, a16 + (size_t)i * ld16 + 2 * t, sizeof pair);
      const __m256i av = _mm256_set1_epi32(pair);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(av, w0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(av, w1));
    }
  }
  __m256i b0 = _mm256_setzero_si256(), b1 = b0;
  if (bias) {
    for (int j = 0; j < kPR; ++j) lanes[j] = j < nb ? bias[j] : 0;
    b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes + 8));
  }
  for (int i = 0; i < MR; ++i) {
    int32_t* ci = c + (size_t)i * ldc;
    const __m256i r0 = _mm256_add_epi32(acc[i][0], b0), r1 = _mm256_add_epi32(acc[i][1], b1);
    if (nb == kPR) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci), r0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(ci + 8), r1);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), r0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), r1);
      memcpy(ci, lanes, (size_t)nb * sizeof(int32_t));
    }
  }
}

using packed_tile_fn = void (*)(const int16_t*, int32_t, int32_t, const int8_t*, const int32_t*, int, bool,
                                int32_t*, int32_t);
constexpr packed_tile_fn kPackedTiles[kPM + 1] = {nullptr, &packed_tile<1>, &packed_tile<2>, &packed_tile<3>};
static_assert(kPM == 3, "kPackedTiles lists a tile for every row count 1..kPM");

// C = A W^T (+ bias) with W in pack_weights' layout. Integer sums: chunking the depth does not
// change a bit.
void gemm_packed(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                 int32_t* c) {
  alignas(32) int16_t a16[kWidenRows * kDepthChunk];
  const size_t pb = panel_bytes(d->k);
  for (int32_t i0 = 0; i0 < d->m; i0 += kWidenRows) {
    const int32_t mb = d->m - i0 < kWidenRows ? d->m - i0 : kWidenRows;
    for (int32_t k0 = 0; k0 < d->k; k0 += kDepthChunk) {
      const int32_t kc = d->k - k0 < kDepthChunk ? d->k - k0 : kDepthChunk;
      const int32_t pairs = depth_pairs(kc), ld16 = 2 * pairs;
      const bool first = k0 == 0;
      widen_rows(a + (size_t)i0 * d->lda + k0, d->lda, mb, kc, a16);
      for (int32_t j0 = 0; j0 < d->n; j0 += kPR) {
        const int nb = d->n - j0 < kPR ? d->n - j0 : kPR;
        const int8_t* panel = w + (size_t)j0 / kPR * pb + (size_t)(k0 / 2) * kPR * 2;
        for (int32_t i = 0; i < mb; i += kPM) {
          const int mr = mb - i < kPM ? mb - i : kPM;
          kPackedTiles[mr](a16 + (size_t)i * ld16, ld16, pairs, panel, first && bias ? bias + j0 : nullptr, nb,
                           first, c + (size_t)(i0 + i) * d->ldc + j0, d->ldc);
        }
      }
    }
  }
}

// kPR-column panels of OFA_GEMM_S8_NR columns fit the scratch every unpacked call gets:
// panel_bytes(k) * (NR / kPR) <= ofa_gemm_s8_scratch_bytes(k).
static_assert(OFA_GEMM_S8_NR % kPR == 0, "whole panels per scratch load");

// body(j0, nb, panels) for each group of W's columns, as packed panels: a W packed at load in groups
// of `packed_cols`, any other packed into the scratch OFA_GEMM_S8_NR columns at a time first.
template <class Body>
void for_packed_columns(const ofa_gemm_s8_dims* d, const int8_t* w, void* scratch, int32_t packed_cols,
                        const Body& body) {
  const int32_t cols = d->w_packed ? packed_cols : OFA_GEMM_S8_NR;
  for (int32_t j0 = 0; j0 < d->n; j0 += cols) {
    const int32_t nb = d->n - j0 < cols ? d->n - j0 : cols;
    const int8_t* panels = w + (size_t)j0 / kPR * panel_bytes(d->k);
    if (!d->w_packed) {
      pack_weights(w + (size_t)j0 * d->ldw, d->ldw, nb, d->k, static_cast<int8_t*>(scratch));
      panels = static_cast<const int8_t*>(scratch);
    }
    body(j0, nb, panels);
  }
}

void gemm_s8_avx2_any(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                      const int32_t* bias, int32_t* c, void* scratch) {
  for_packed_columns(d, w, scratch, d->n, [&](int32_t j0, int32_t nb, const int8_t* panels) {
    const ofa_gemm_s8_dims g = {d->m, nb, d->k, d->lda, 0, d->ldc, 1};
    gemm_packed(&g, a, panels, bias ? bias + j0 : nullptr, c + j0);
  });
}

// Fused requantisation: the GEMM runs on tiles of kTileM rows into a stack buffer (L1) that the
// table's requantisation then reads, so the int32 result never goes through the arena. Same bits:
// the same two functions. Each column group (for_packed_columns) is packed at most once, for all
// rows. (Each tile widens its rows of A again: a few per cent of the tile's work.)
constexpr int32_t kTileM = 2 * kPM, kTileN = 64;
static_assert(OFA_GEMM_S8_NR <= kTileN, "a packed column group fits a tile");

template <class Requant>
void gemm_tiled(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                const int32_t* table, int32_t count, void* scratch, const Requant& requant) {
  alignas(32) int32_t tile[kTileM * kTileN];
  for_packed_columns(d, w, scratch, kTileN, [&](int32_t j0, int32_t nb, const int8_t* panels) {
    const int32_t* tj = count > 1 ? table + j0 : table;  // rows stay `count` apart
    for (int32_t i0 = 0; i0 < d->m; i0 += kTileM) {
      const int32_t mb = d->m - i0 < kTileM ? d->m - i0 : kTileM;
      const ofa_gemm_s8_dims g = {mb, nb, d->k, d->lda, 0, kTileN, 1};
      gemm_packed(&g, a + (size_t)i0 * d->lda, panels, bias ? bias + j0 : nullptr, tile);
      const ofa_requant_dims rd = {mb, nb, kTileN, d->ldc, count};
      requant(&rd, tile, tj, (size_t)i0 * d->ldc + j0);
    }
  });
}

void gemm_s8_requant_s8_avx2(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                             const int32_t* bias, const int32_t* table, int32_t count, int8_t* out,
                             void* scratch) {
  gemm_tiled(d, a, w, bias, table, count, scratch,
             [out](const ofa_requant_dims* rd, const int32_t* tile, const int32_t* t, size_t at) {
               ofa_requant_to_s8_avx2(rd, tile, t, out + at);
             });
}

void gemm_s8_requant_add_s32_avx2(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                  const int32_t* bias, const int32_t* table, int32_t count,
                                  int32_t* out, void* scratch) {
  gemm_tiled(d, a, w, bias, table, count, scratch,
             [out](const ofa_requant_dims* rd, const int32_t* tile, const int32_t* t, size_t at) {
               ofa_requant_add_s32_avx2(rd, tile, t, out + at);
             });
}

}  // namespace

// The lookup table stays portable here.
extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx2 = {
    "avx2", gemm_s8_avx2_any, ofa_requant_to_s8_avx2, ofa_requant_add_s32_avx2,
    ofa_layer_norm_s32_avx2, ofa_softmax_s8_avx2, gemm_s8_requant_s8_avx2, gemm_s8_requant_add_s32_avx2,
    ofa_layer_norm_s32_s8_avx2, ofa_lut_s8, packed_bytes, pack_weights, pack_weights_t, nullptr};
