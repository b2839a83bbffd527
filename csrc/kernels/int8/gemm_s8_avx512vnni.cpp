// int8 GEMM with AVX-512 VNNI. Built with per-file target flags; reached only
// after dispatch has checked the CPU.
//
// A panel of 32 W rows (output columns) is packed per call into the VNNI
// layout: for each group of 4 k, the 4 bytes of column 0, then column 1, ...
// so one zmm holds 16 columns x 4 k and vpdpbusd (u8 x s8 -> int32) adds a
// broadcast quad of A into 16 column sums at once: no horizontal reductions.
// vpdpbusd wants one operand unsigned: the packed W is flipped to w + 128
// (once per panel) and 128 * sum(a) of each A row is taken off again, so A
// quads go straight from memory into the instruction (embedded broadcast).
// Exact mod 2^32, and the true result fits int32, so the bits equal the
// scalar kernel's.
//
// The epilogue either stores the int32 tile or requantises it in registers
// (to int8, or added into an int32 residual row): the same integers as the
// portable requant_to_s8 / requant_add_s32, which handle the panels this fast
// path does not (the INT32_MIN multiplier, which validation refuses anyway).
#include <immintrin.h>
#include <string.h>

#include "ofa/ofa_kernels_int8.h"
#include "int8_ops_avx512.h"
#include "requant_inline.h"

namespace {

constexpr int kNR = OFA_GEMM_S8_NR;  // 32 columns: two zmm
constexpr int kMR = 8;               // 8 x 2 accumulators + 2 W: 18 zmm

inline __mmask16 half_mask(int nb, int h) {
  const int left = nb - 16 * h;
  return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

// Packs rows j0..j0+nb of w (k bytes each) into dst (kq x 32 x 4 bytes), each
// byte flipped to w + 128 as unsigned. Padding lanes meet zero A bytes (short
// last quad) or are never stored (columns past nb).
void pack_panel(const int8_t* w, int32_t ldw, int32_t k, int nb, int8_t* dst) {
  const int32_t full = k / 4;
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(ldw));
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  const __mmask16 m0 = half_mask(nb, 0), m1 = half_mask(nb, 1);
  const int8_t* w1 = nb > 16 ? w + (size_t)16 * ldw : w;  // second half panel, if any
  for (int32_t q = 0; q < full; ++q) {
    const __m512i idx = _mm512_add_epi32(rows, _mm512_set1_epi32(4 * q));
    const __m512i g0 = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m0, idx, w, 1);
    const __m512i g1 = m1 ? _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m1, idx, w1, 1)
                          : _mm512_setzero_si512();
    _mm512_store_si512(dst + (size_t)q * kNR * 4, _mm512_xor_si512(g0, flip));
    _mm512_store_si512(dst + (size_t)q * kNR * 4 + 64, _mm512_xor_si512(g1, flip));
  }
  if (full * 4 < k) {  // short last quad, byte by byte (no read past a row)
    int8_t* tail = dst + (size_t)full * kNR * 4;
    memset(tail, 0, (size_t)kNR * 4);
    for (int c = 0; c < nb; ++c)
      for (int32_t kk = 4 * full; kk < k; ++kk)
        tail[c * 4 + (kk - 4 * full)] = (int8_t)(w[(size_t)c * ldw + kk] ^ (int8_t)0x80);
  }
}

// 128 * sum of row r of a (k bytes).
inline int32_t row_sum_x128(const int8_t* a, int32_t k) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i s = _mm512_setzero_si512();
  int32_t k0 = 0;
  for (; k0 + 64 <= k; k0 += 64) s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(a + k0));
  if (k0 < k) {
    const __mmask64 m = (__mmask64)(~0ULL >> (64 - (k - k0)));
    s = _mm512_dpbusd_epi32(s, ones, _mm512_maskz_loadu_epi8(m, a + k0));
  }
  return _mm512_reduce_add_epi32(s) * 128;
}

// ---- epilogues: take row i's 32 finished int32 sums (bias included) -----

struct StoreS32 {
  int32_t* c;
  int32_t ldc;
  int32_t j0;
  bool begin_panel(int32_t j, int) { j0 = j; return true; }
  void row(int32_t i, __m512i v0, __m512i v1, __mmask16 m0, __mmask16 m1) const {
    int32_t* cr = c + (size_t)i * ldc + j0;
    _mm512_mask_storeu_epi32(cr, m0, v0);
    _mm512_mask_storeu_epi32(cr + 16, m1, v1);
  }
};

// Requantisation of a 32-column panel as 64-bit lane constants
// (ofa_rq::FastRequant: one rounding shift of x * mult). Lanes are split
// even / odd (vpmuldq reads the low dword of each qword).
struct PanelRequant {
  alignas(64) int64_t m[2][2][8];     // [half][parity][lane]: mult (low dword)
  alignas(64) int64_t add[2][2][8];   // FastRequant's add, base, neg, sh
  alignas(64) int64_t base[2][2][8];
  alignas(64) int64_t neg[2][2][8];
  alignas(64) int64_t sh[2][2][8];
  alignas(64) int64_t left[2][2][8];
  alignas(64) int32_t zp[2][16];
  alignas(64) int32_t lo[2][16], hi[2][16];  // sat(-128 - zp), sat(127 - zp)
  bool clamp_again;                          // some lo / hi saturated
  bool any_zp;
  bool any_left;                             // some left shift

  // false: this panel needs the portable path (the INT32_MIN multiplier).
  bool load(const int32_t* table, int32_t count, int32_t j0, int nb) {
    clamp_again = any_zp = any_left = false;
    for (int c = 0; c < kNR; ++c) {
      const int32_t col = count > 1 ? (c < nb ? j0 + c : j0) : 0;
      const int32_t mult = table[col], shift = table[count + col], z = table[2 * count + col];
      if (c < nb && !ofa_rq::FastRequant::applies(mult)) return false;
      const ofa_rq::FastRequant f(shift);
      const int h = c / 16, lane = c % 16, par = lane % 2, q = lane / 2;
      m[h][par][q] = mult;
      add[h][par][q] = f.add;
      base[h][par][q] = f.base;
      neg[h][par][q] = f.neg;
      sh[h][par][q] = f.sh;
      left[h][par][q] = f.left;
      zp[h][lane] = z;
      const int64_t l = -128 - (int64_t)z, u = 127 - (int64_t)z;
      lo[h][lane] = l < INT32_MIN ? INT32_MIN : (int32_t)l;
      hi[h][lane] = u > INT32_MAX ? INT32_MAX : (int32_t)u;
      if (c < nb) {
        any_left |= f.left > 0;
        clamp_again |= l < INT32_MIN || u > INT32_MAX;
        any_zp |= z != 0;
      }
    }
    return true;
  }

  inline __m512i parity(__m512i x, int h, int par) const {
    const __m512i p = _mm512_add_epi64(_mm512_mul_epi32(x, _mm512_load_si512(m[h][par])),
                                       _mm512_load_si512(add[h][par]));
    const __mmask8 negative = _mm512_cmplt_epi64_mask(p, _mm512_load_si512(base[h][par]));
    return _mm512_srav_epi64(_mm512_mask_add_epi64(p, negative, p, _mm512_load_si512(neg[h][par])),
                             _mm512_load_si512(sh[h][par]));
  }
  // x: sign-extended int32 per qword -> sat32(x << left)
  inline __m512i shift_left(__m512i x, int h, int par) const {
    const __m512i s = _mm512_sllv_epi64(x, _mm512_load_si512(left[h][par]));  // |x << 30| < 2^62
    return _mm512_min_epi64(_mm512_max_epi64(s, _mm512_set1_epi64(INT32_MIN)), _mm512_set1_epi64(INT32_MAX));
  }
  inline __m512i requantize(__m512i x, int h) const {
    __m512i xe, xo;
    if (any_left) {
      xe = shift_left(_mm512_srai_epi64(_mm512_slli_epi64(x, 32), 32), h, 0);
      xo = shift_left(_mm512_srai_epi64(x, 32), h, 1);
    } else {
      xe = x;                           // vpmuldq reads the low dword only
      xo = _mm512_srli_epi64(x, 32);
    }
    const __m512i even = parity(xe, h, 0);
    const __m512i odd = parity(xo, h, 1);
    return _mm512_mask_shuffle_epi32(even, (__mmask16)0xAAAA, odd, _MM_PERM_CCAA);
  }
};

// What both requantising epilogues share: the output, the panel's lane
// constants, and the portable fallback for a panel the fast form cannot take.
template <class Out>
struct RequantEpilogue {
  RequantEpilogue(const int32_t* t, int32_t c, Out* o, int32_t ld) : table(t), count(c), out(o), ldc(ld) {}
  const int32_t* table;
  int32_t count;
  Out* out;
  int32_t ldc;
  int32_t j0 = 0;
  int nb = 0;
  bool fast = false;
  PanelRequant p;
  bool begin_panel(int32_t j, int n) {
    j0 = j;
    nb = n;
    fast = p.load(table, count, j, n);
    return fast;
  }
  Out* row_out(int32_t i) const { return out + (size_t)i * ldc + j0; }
  // Rare (the INT32_MIN multiplier): the portable formulas on this row.
  template <class Portable>
  void portable_row(Out* o, __m512i v0, __m512i v1, Portable portable) const {
    alignas(64) int32_t buf[kNR];
    _mm512_store_si512(buf, v0);
    _mm512_store_si512(buf + 16, v1);
    const ofa_requant_dims d = {1, nb, kNR, kNR, count};
    portable(&d, buf, count > 1 ? table + j0 : table, o);
  }
};

struct ToS8 : RequantEpilogue<int8_t> {
  using RequantEpilogue::RequantEpilogue;
  void row(int32_t i, __m512i v0, __m512i v1, __mmask16 m0, __mmask16 m1) const {
    int8_t* o = row_out(i);
    if (!fast) return portable_row(o, v0, v1, ofa_requant_to_s8_avx512);
    const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
    __m512i r[2] = {v0, v1};
    for (int h = 0; h < 2; ++h) {
      __m512i v = p.requantize(r[h], h);
      v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_load_si512(p.lo[h])), _mm512_load_si512(p.hi[h]));
      v = _mm512_add_epi32(v, _mm512_load_si512(p.zp[h]));
      if (p.clamp_again) v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
      r[h] = v;
    }
    _mm512_mask_cvtepi32_storeu_epi8(o, m0, r[0]);
    _mm512_mask_cvtepi32_storeu_epi8(o + 16, m1, r[1]);
  }
};

struct AddS32 : RequantEpilogue<int32_t> {
  using RequantEpilogue::RequantEpilogue;
  void row(int32_t i, __m512i v0, __m512i v1, __mmask16 m0, __mmask16 m1) const {
    int32_t* o = row_out(i);
    if (!fast) return portable_row(o, v0, v1, ofa_requant_add_s32_avx512);
    const __m512i r[2] = {v0, v1};
    const __mmask16 m[2] = {m0, m1};
    for (int h = 0; h < 2; ++h) {
      // Same order as the portable code: saturate(saturate(out + v) + zp).
      __m512i v = add_saturating_epi32(_mm512_maskz_loadu_epi32(m[h], o + 16 * h), p.requantize(r[h], h));
      if (p.any_zp) v = add_saturating_epi32(v, _mm512_load_si512(p.zp[h]));
      _mm512_mask_storeu_epi32(o + 16 * h, m[h], v);
    }
  }
};

inline __m512i broadcast_quad(const int8_t* p) {
  int32_t quad;
  memcpy(&quad, p, 4);
  return _mm512_set1_epi32(quad);
}

// acc += dpbusd(u, s), in place. GCC's intrinsic copies every accumulator
// once per iteration of the k loop (a register-allocation weakness with this
// destructive instruction); the asm form keeps them in place.
#if defined(__GNUC__) && !defined(__clang__)
#define OFA_DPBUSD(acc, u, s) __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s))
#else
#define OFA_DPBUSD(acc, u, s) acc = _mm512_dpbusd_epi32(acc, u, s)
#endif

// One A row's step: 4 k of row r into its two accumulators. Named variables
// rather than arrays: the 16 accumulators stay in registers.
#define OFA_ROW(r, ptr)                                     \
  if constexpr (MR > r) {                                   \
    const __m512i av = broadcast_quad(ptr);                 \
    OFA_DPBUSD(c##r##0, b0, av);                            \
    OFA_DPBUSD(c##r##1, b1, av);                            \
  }
#define OFA_ROWS(p0, p1)                                                             \
  OFA_ROW(0, p0) OFA_ROW(1, p0 + lda) OFA_ROW(2, p0 + 2 * lda) OFA_ROW(3, p0 + lda3) \
  OFA_ROW(4, p1) OFA_ROW(5, p1 + lda) OFA_ROW(6, p1 + 2 * lda) OFA_ROW(7, p1 + lda3)

// row_sums: 128 * sum of each of these MR rows, or NULL (then taken here).
template <int MR, class Sink>
void micro(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* packed, const int32_t* bias,
           const int32_t* row_sums, int32_t i0, int nb, const Sink& sink) {
  static_assert(MR >= 1 && MR <= kMR, "row block");
  const __m512i z = _mm512_setzero_si512();
  __m512i c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
  __m512i c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
  const size_t lda = (size_t)d->lda, lda3 = 3 * lda;
  const int32_t full = d->k / 4;
  const int8_t* bp = packed;
  const int8_t* p0 = a;
  const int8_t* p1 = MR > 4 ? a + 4 * lda : a;
  for (int32_t q = 0; q < full; ++q, bp += kNR * 4, p0 += 4, p1 += 4) {
    const __m512i b0 = _mm512_load_si512(bp);
    const __m512i b1 = _mm512_load_si512(bp + 64);
    OFA_ROWS(p0, p1)
  }
  if (d->k % 4) {  // short last quad, zero filled: those lanes add nothing
    const __m512i b0 = _mm512_load_si512(bp);
    const __m512i b1 = _mm512_load_si512(bp + 64);
    alignas(4) int8_t tail[kMR][4] = {};
    for (int r = 0; r < MR; ++r) memcpy(tail[r], a + (size_t)r * lda + 4 * full, (size_t)(d->k % 4));
    const int8_t* t0 = tail[0];
    const int8_t* t1 = tail[4 % MR];
    {
      const size_t lda = 4, lda3 = 12;  // OFA_ROWS over the rows of `tail`
      OFA_ROWS(t0, t1)
    }
  }
  const __m512i acc[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                               {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
  const __mmask16 m0 = half_mask(nb, 0), m1 = half_mask(nb, 1);
  const __m512i bias0 = bias ? _mm512_maskz_loadu_epi32(m0, bias) : _mm512_setzero_si512();
  const __m512i bias1 = bias ? _mm512_maskz_loadu_epi32(m1, bias + 16) : _mm512_setzero_si512();
  for (int r = 0; r < MR; ++r) {
    const __m512i off = _mm512_set1_epi32(row_sums ? row_sums[r] : row_sum_x128(a + (size_t)r * lda, d->k));
    sink.row(i0 + r, _mm512_add_epi32(acc[r][0], _mm512_sub_epi32(bias0, off)),
             _mm512_add_epi32(acc[r][1], _mm512_sub_epi32(bias1, off)), m0, m1);
  }
}
#undef OFA_ROWS
#undef OFA_ROW
#undef OFA_DPBUSD

// One packed panel: kNR columns x k rounded up to 4, in pack_panel's layout.
inline size_t panel_bytes(int32_t k) { return (size_t)(k + 3) / 4 * kNR * 4; }

size_t packed_bytes(int32_t n, int32_t k) {
  return n <= 0 || k <= 0 ? 0 : (size_t)(n + kNR - 1) / kNR * panel_bytes(k);
}

// The whole of W, panel after panel, as gemm_panels would pack them.
void pack_weights(const int8_t* w, int32_t ldw, int32_t n, int32_t k, int8_t* dst) {
  for (int32_t j0 = 0; j0 < n; j0 += kNR)
    pack_panel(w + (size_t)j0 * ldw, ldw, k, n - j0 < kNR ? n - j0 : kNR, dst + (size_t)j0 / kNR * panel_bytes(k));
}

// pack_weights from W^T (k rows of n bytes, stride ldwt): each quad of W^T
// rows is interleaved byte by byte into the panel's (column, 4 k) groups with
// two rounds of unpack, then flipped. Rows past k and columns past n read as 0.
void pack_weights_t(const int8_t* wt, int32_t ldwt, int32_t n, int32_t k, int8_t* dst) {
  const __m256i flip = _mm256_set1_epi8((char)0x80);
  for (int32_t j0 = 0; j0 < n; j0 += kNR) {
    const int nb = n - j0 < kNR ? n - j0 : kNR;
    int8_t* out = dst + (size_t)j0 / kNR * panel_bytes(k);
    for (int32_t k0 = 0; k0 < k; k0 += 4, out += kNR * 4) {
      __m256i r[4];
      for (int i = 0; i < 4; ++i) {
        alignas(32) int8_t row[kNR] = {};
        if (k0 + i < k) memcpy(row, wt + (size_t)(k0 + i) * ldwt + j0, (size_t)nb);
        r[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(row));
      }
      const __m256i t0 = _mm256_unpacklo_epi8(r[0], r[1]), t1 = _mm256_unpackhi_epi8(r[0], r[1]);
      const __m256i t2 = _mm256_unpacklo_epi8(r[2], r[3]), t3 = _mm256_unpackhi_epi8(r[2], r[3]);
      // u_i lane 0 holds columns 4i..4i+3, lane 1 columns 16+4i..: (column, k0..k0+3) groups
      const __m256i u0 = _mm256_unpacklo_epi16(t0, t2), u1 = _mm256_unpackhi_epi16(t0, t2);
      const __m256i u2 = _mm256_unpacklo_epi16(t1, t3), u3 = _mm256_unpackhi_epi16(t1, t3);
      __m256i* o = reinterpret_cast<__m256i*>(out);
      _mm256_store_si256(o + 0, _mm256_xor_si256(_mm256_permute2x128_si256(u0, u1, 0x20), flip));
      _mm256_store_si256(o + 1, _mm256_xor_si256(_mm256_permute2x128_si256(u2, u3, 0x20), flip));
      _mm256_store_si256(o + 2, _mm256_xor_si256(_mm256_permute2x128_si256(u0, u1, 0x31), flip));
      _mm256_store_si256(o + 3, _mm256_xor_si256(_mm256_permute2x128_si256(u2, u3, 0x31), flip));
    }
  }
}

template <class Sink>
void gemm_panels(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w, const int32_t* bias,
                 void* scratch, Sink& sink) {
  int8_t* scratch_panel = static_cast<int8_t*>(scratch);
  // Each row's 128 * sum, once per call rather than once per panel, when
  // there are few enough rows for the stack (a tile's are).
  constexpr int32_t kMaxSummedRows = 1024;
  alignas(64) int32_t sums[kMaxSummedRows];
  const bool summed = d->m <= kMaxSummedRows && d->n > kNR;
  if (summed)
    for (int32_t i = 0; i < d->m; ++i) sums[i] = row_sum_x128(a + (size_t)i * d->lda, d->k);
  for (int32_t j0 = 0; j0 < d->n; j0 += kNR) {
    const int nb = d->n - j0 < kNR ? d->n - j0 : kNR;
    const int8_t* packed = scratch_panel;
    if (d->w_packed) {
      packed = w + (size_t)j0 / kNR * panel_bytes(d->k);
    } else {
      pack_panel(w + (size_t)j0 * d->ldw, d->ldw, d->k, nb, scratch_panel);
    }
    sink.begin_panel(j0, nb);
    const int32_t* bj = bias ? bias + j0 : nullptr;
    int32_t i0 = 0;
    for (; i0 + kMR <= d->m; i0 += kMR)
      micro<kMR>(d, a + (size_t)i0 * d->lda, packed, bj, summed ? sums + i0 : nullptr, i0, nb, sink);
    const int32_t* si = summed ? sums + i0 : nullptr;
    const int8_t* ai = a + (size_t)i0 * d->lda;
    switch (d->m - i0) {
      case 1: micro<1>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 2: micro<2>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 3: micro<3>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 4: micro<4>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 5: micro<5>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 6: micro<6>(d, ai, packed, bj, si, i0, nb, sink); break;
      case 7: micro<7>(d, ai, packed, bj, si, i0, nb, sink); break;
      default: break;
    }
  }
}

void gemm_s8_avx512vnni(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                        const int32_t* bias, int32_t* c, void* scratch) {
  StoreS32 sink{c, d->ldc, 0};
  gemm_panels(d, a, w, bias, scratch, sink);
}

void gemm_s8_requant_s8_avx512vnni(const ofa_gemm_s8_dims* d, const int8_t* a, const int8_t* w,
                                   const int32_t* bias, const int32_t* table, int32_t count,
                                   int8_t* out, void* scratch) {
  ToS8 sink(table, count, out, d->ldc);
  gemm_panels(d, a, w, bias, scratch, sink);
}

void gemm_s8_requant_add_s32_avx512vnni(const ofa_gemm_s8_dims* d, const int8_t* a,
                                        const int8_t* w, const int32_t* bias, const int32_t* table,
                                        int32_t count, int32_t* out, void* scratch) {
  AddS32 sink(table, count, out, d->ldc);
  gemm_panels(d, a, w, bias, scratch, sink);
}

}  // namespace

extern "C" const ofa_kernels_int8 ofa_kernels_int8_avx512vnni = {
    "avx512vnni", gemm_s8_avx512vnni, ofa_requant_to_s8_avx512, ofa_requant_add_s32_avx512,
    ofa_layer_norm_s32_avx512, ofa_softmax_s8_avx512, gemm_s8_requant_s8_avx512vnni,
    gemm_s8_requant_add_s32_avx512vnni, ofa_layer_norm_s32_s8_avx512, ofa_lut_s8_avx512, packed_bytes, pack_weights,
    pack_weights_t, nullptr};
