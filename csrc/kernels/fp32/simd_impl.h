// ISA-generic SIMD kernels, written once over a `Vec` ops struct.
//
// Included by avx2.cpp and avx512.cpp *inside* their own namespace after
// `using V = Vec;` and `constexpr int kMR = ...;`, so each TU gets private
// copies compiled for its own ISA (no shared inline symbols across ISAs).
//
// GEMM: C[M,N] = A[M,K] W[N,K]^T. W stays in its (out, in) layout in memory;
// a kc x nc block is gathered into k-major panels of NR = 2 vectors so the
// micro-kernel streams it (or was, once, at load: pack_weights, w_packed).
// The micro-kernel broadcasts straight from kMR rows of A (kMR streams, each
// contiguous in k: packing A bought nothing once W was packed) into kMR x NR
// accumulators that live in registers for the whole kc loop.

static constexpr int W = V::W;
static constexpr int NR = 2 * V::W;
static_assert(NR <= OFA_GEMM_N_PAD, "panel wider than planned padding");
static_assert(kMR <= OFA_GEMM_MR_MAX && kMR <= V::W, "A panel gather width");

using reg = typename V::reg;
using mask = typename V::mask;

template <int MR>
static inline void micro_kernel(int kc, const float* ap, int lda, const float* bp,
                                float* c, int ldc, int ncols,
                                const float* bias, bool add_c) {
  reg acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc0[r] = V::zero();
    acc1[r] = V::zero();
  }
  for (int k = 0; k < kc; ++k) {
    const reg b0 = V::load(bp);
    const reg b1 = V::load(bp + W);
    bp += NR;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const reg av = V::set1(ap[(size_t)r * lda + k]);
      acc0[r] = V::fmadd(av, b0, acc0[r]);
      acc1[r] = V::fmadd(av, b1, acc1[r]);
    }
  }
  const mask m0 = V::tail(ncols);
  const mask m1 = V::tail(ncols > W ? ncols - W : 0);
  reg bias0 = V::zero(), bias1 = V::zero();
  if (bias) {
    bias0 = V::load_m(bias, m0);
    bias1 = V::load_m(bias + W, m1);
  }
  // Whole panels (every tile but the last column's) store plainly: AMD microcodes masked stores.
  const bool whole = ncols >= 2 * W;
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    float* cr = c + (size_t)r * ldc;
    reg v0 = V::add(acc0[r], bias0);
    reg v1 = V::add(acc1[r], bias1);
    if (add_c) {
      v0 = V::add(v0, whole ? V::load(cr) : V::load_m(cr, m0));
      v1 = V::add(v1, whole ? V::load(cr + W) : V::load_m(cr + W, m1));
    }
    if (whole) {
      V::store(cr, v0);
      V::store(cr + W, v1);
    } else {
      V::store_m(cr, m0, v0);
      V::store_m(cr + W, m1, v1);
    }
  }
}

using micro_kernel_fn = void (*)(int, const float*, int, const float*, float*, int,
                                 int, const float*, bool);

template <int... Rs>
struct MicroKernelTable {
  static constexpr micro_kernel_fn fns[sizeof...(Rs)] = {&micro_kernel<Rs + 1>...};
};

template <int N, int... Rs>
struct MakeTable : MakeTable<N - 1, N - 1, Rs...> {};
template <int... Rs>
struct MakeTable<0, Rs...> {
  using type = MicroKernelTable<Rs...>;
};

// W rows n0.. (nb of them), columns k0..k0+kb -> panels of NR columns,
// k-major, zero padded past nb.
static void pack_w(const float* w, int ldw, int nb, int kb, float* dst) {
  const typename V::idx offs = V::lane_offsets(ldw);
  for (int p = 0; p < nb; p += NR) {
    const int valid = nb - p;
    const mask m0 = V::tail(valid);
    const mask m1 = V::tail(valid > W ? valid - W : 0);
    const float* base0 = w + (size_t)p * ldw;
    const float* base1 = base0 + (size_t)W * ldw;
    for (int k = 0; k < kb; ++k) {
      V::store(dst, V::gather_m(base0 + k, offs, m0));
      // Lanes past nb are masked off, so base1 is never dereferenced out of
      // bounds even when it points past W's last row.
      V::store(dst + W, V::gather_m(base1 + k, offs, m1));
      dst += NR;
    }
  }
}

static inline size_t round_up_nr(int n) { return ((size_t)n + NR - 1) / NR * NR; }

// The whole of W (n, k) in gemm's block order: for each OFA_GEMM_NC block of
// rows, for each OFA_GEMM_KC block of k, the pack_w panels. Block (n0, k0)
// starts at n0 * k + k0 * round_up_nr(nb): every block before the last row
// block is NC rows, a multiple of NR.
static size_t packed_floats(int32_t n, int32_t k) {
  if (n <= 0 || k <= 0) return 0;
  const int full = n / OFA_GEMM_NC * OFA_GEMM_NC;
  return (size_t)full * k + round_up_nr(n - full) * k;
}

static void pack_weights(const float* w, int32_t ldw, int32_t n, int32_t k, float* dst) {
  for (int n0 = 0; n0 < n; n0 += OFA_GEMM_NC) {
    const int nb = n - n0 < OFA_GEMM_NC ? n - n0 : OFA_GEMM_NC;
    for (int k0 = 0; k0 < k; k0 += OFA_GEMM_KC) {
      const int kb = k - k0 < OFA_GEMM_KC ? k - k0 : OFA_GEMM_KC;
      pack_w(w + (size_t)n0 * ldw + k0, ldw, nb, kb, dst + (size_t)n0 * k + (size_t)k0 * round_up_nr(nb));
    }
  }
}

// pack_weights from W^T (k rows of n): panel rows are contiguous in W^T, so
// each is one masked copy.
static void pack_weights_t(const float* wt, int32_t ldwt, int32_t n, int32_t k, float* dst) {
  for (int n0 = 0; n0 < n; n0 += OFA_GEMM_NC) {
    const int nb = n - n0 < OFA_GEMM_NC ? n - n0 : OFA_GEMM_NC;
    for (int k0 = 0; k0 < k; k0 += OFA_GEMM_KC) {
      const int kb = k - k0 < OFA_GEMM_KC ? k - k0 : OFA_GEMM_KC;
      float* out = dst + (size_t)n0 * k + (size_t)k0 * round_up_nr(nb);
      for (int p = 0; p < nb; p += NR) {
        const int valid = nb - p;
        const mask m0 = V::tail(valid);
        const mask m1 = V::tail(valid > W ? valid - W : 0);
        for (int kk = 0; kk < kb; ++kk) {
          const float* row = wt + (size_t)(k0 + kk) * ldwt + n0 + p;
          V::store(out, V::load_m(row, m0));
          V::store(out + W, V::load_m(row + W, m1));
          out += NR;
        }
      }
    }
  }
}

static void gemm(const ofa_gemm_dims* d, const float* a, const float* w,
                 const float* bias, float* c, float* scratch) {
  const int M = d->m, N = d->n, K = d->k;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        float* cij = c + (size_t)i * d->ldc + j;
        const float b = bias ? bias[j] : 0.f;
        *cij = d->accumulate ? *cij + b : b;
      }
    return;
  }
  float* wpack = scratch;  // a kc x nc W block, when W was not packed at load
  static constexpr auto& kernels = MakeTable<kMR>::type::fns;

  for (int n0 = 0; n0 < N; n0 += OFA_GEMM_NC) {
    const int nb = N - n0 < OFA_GEMM_NC ? N - n0 : OFA_GEMM_NC;
    for (int k0 = 0; k0 < K; k0 += OFA_GEMM_KC) {
      const int kb = K - k0 < OFA_GEMM_KC ? K - k0 : OFA_GEMM_KC;
      const bool first = k0 == 0;
      const float* wblock = wpack;
      if (d->w_packed) {
        wblock = w + (size_t)n0 * K + (size_t)k0 * round_up_nr(nb);
      } else {
        pack_w(w + (size_t)n0 * d->ldw + k0, d->ldw, nb, kb, wpack);
      }
      for (int m0 = 0; m0 < M; m0 += kMR) {
        const int mr = M - m0 < kMR ? M - m0 : kMR;
        const micro_kernel_fn kern = kernels[mr - 1];
        for (int p = 0; p < nb; p += NR) {
          const int ncols = nb - p < NR ? nb - p : NR;
          kern(kb, a + (size_t)m0 * d->lda + k0, d->lda, wblock + (size_t)p * kb,
               c + (size_t)m0 * d->ldc + n0 + p, d->ldc, ncols,
               (first && bias) ? bias + n0 + p : nullptr,
               first ? d->accumulate != 0 : true);
        }
      }
    }
  }
}

// Cephes-style expf: n = round(x log2e), r = x - n ln2 (split constant),
// degree-6 polynomial, scale by 2^n. Inputs clamped so 2^n stays normal.
static inline reg vexp(reg x) {
  x = V::min(x, V::set1(88.3762626647949f));
  x = V::max(x, V::set1(-87.3365447504f));
  const reg n = V::round(V::mul(x, V::set1(1.44269504088896341f)));
  reg r = V::fmadd(n, V::set1(-0.693359375f), x);
  r = V::fmadd(n, V::set1(2.12194440e-4f), r);
  reg p = V::set1(1.9875691500E-4f);
  p = V::fmadd(p, r, V::set1(1.3981999507E-3f));
  p = V::fmadd(p, r, V::set1(8.3334519073E-3f));
  p = V::fmadd(p, r, V::set1(4.1665795894E-2f));
  p = V::fmadd(p, r, V::set1(1.6666665459E-1f));
  p = V::fmadd(p, r, V::set1(5.0000001201E-1f));
  p = V::fmadd(p, V::mul(r, r), V::add(r, V::set1(1.f)));
  return V::mul(p, V::pow2n(n));
}

// erf GELU via erfc (Numerical Recipes erfcc, fractional error < 1.2e-7):
// x >= 0: x (1 - erfc(z)/2), x < 0: x erfc(z)/2, z = |x|/sqrt2. Working with
// erfc avoids the cancellation in 1 + erf for negative x.
static inline reg gelu_erf_v(reg x) {
  const reg z = V::mul(V::abs(x), V::set1(0.7071067811865476f));
  const reg t = V::div(V::set1(1.f), V::fmadd(z, V::set1(0.5f), V::set1(1.f)));
  reg p = V::set1(0.17087277f);
  p = V::fmadd(p, t, V::set1(-0.82215223f));
  p = V::fmadd(p, t, V::set1(1.48851587f));
  p = V::fmadd(p, t, V::set1(-1.13520398f));
  p = V::fmadd(p, t, V::set1(0.27886807f));
  p = V::fmadd(p, t, V::set1(-0.18628806f));
  p = V::fmadd(p, t, V::set1(0.09678418f));
  p = V::fmadd(p, t, V::set1(0.37409196f));
  p = V::fmadd(p, t, V::set1(1.00002368f));
  p = V::fmadd(p, t, V::set1(-1.26551223f));
  const reg e = V::sub(p, V::mul(z, z));
  const reg half_erfc = V::mul(V::mul(t, vexp(e)), V::set1(0.5f));
  return V::mul(x, V::select_nonneg(x, V::sub(V::set1(1.f), half_erfc), half_erfc));
}

// tanh GELU: 0.5x(1 + tanh(u)) == x / (1 + exp(-2u)).
static inline reg gelu_tanh_v(reg x) {
  const reg x3 = V::mul(V::mul(x, x), x);
  const reg u = V::mul(V::fmadd(x3, V::set1(0.044715f), x),
                       V::set1(0.7978845608028654f));
  const reg e = vexp(V::mul(u, V::set1(-2.f)));
  return V::div(x, V::add(V::set1(1.f), e));
}

// Lanes [0, live) of v into p: the masked store only for a row's tail (AMD microcodes masked stores).
static inline void store_first(float* p, mask m, reg v, int live) {
  if (live >= W)
    V::store(p, v);
  else
    V::store_m(p, m, v);
}

static void gelu(float* x, size_t n, int32_t kind) {
  size_t i = 0;
  if (kind == OFA_GELU_TANH) {
    for (; i + W <= n; i += W) V::store(x + i, gelu_tanh_v(V::load(x + i)));
  } else {
    for (; i + W <= n; i += W) V::store(x + i, gelu_erf_v(V::load(x + i)));
  }
  if (i < n) {
    const mask m = V::tail((int)(n - i));
    const reg v = V::load_m(x + i, m);
    V::store_m(x + i, m, kind == OFA_GELU_TANH ? gelu_tanh_v(v) : gelu_erf_v(v));
  }
}

static void layer_norm(const ofa_layer_norm_dims* d, const float* x,
                       const float* w, const float* b, float* y) {
  const int dim = d->dim;
  for (int r = 0; r < d->rows; ++r) {
    const float* xr = x + (size_t)r * d->ld;
    float* yr = y + (size_t)r * d->ld;
    reg s = V::zero();
    for (int j = 0; j < dim; j += W) {
      s = V::add(s, V::load_m(xr + j, V::tail(dim - j)));
    }
    const float mean = V::reduce_add(s) / (float)dim;
    const reg vmean = V::set1(mean);
    reg q = V::zero();
    for (int j = 0; j < dim; j += W) {
      const mask m = V::tail(dim - j);
      const reg t = V::select_m(m, V::sub(V::load_m(xr + j, m), vmean), V::zero());
      q = V::fmadd(t, t, q);
    }
    const float var = V::reduce_add(q) / (float)dim;
    const reg inv = V::set1(1.f / sqrtf(var + d->eps));
    for (int j = 0; j < dim; j += W) {
      const mask m = V::tail(dim - j);
      const reg t = V::mul(V::sub(V::load_m(xr + j, m), vmean), inv);
      store_first(yr + j, m, V::fmadd(t, V::load_m(w + j, m), V::load_m(b + j, m)), dim - j);
    }
  }
}

static void softmax(const ofa_softmax_dims* d, float* x) {
  const reg scale = V::set1(d->scale);
  const reg neg_inf = V::set1(-INFINITY);
  for (int r = 0; r < d->rows; ++r) {
    float* xr = x + (size_t)r * d->ld;
    const int used = d->causal ? (r + 1 < d->cols ? r + 1 : d->cols) : d->cols;
    reg vm = neg_inf;
    for (int j = 0; j < used; j += W) {
      const mask m = V::tail(used - j);
      vm = V::max(vm, V::select_m(m, V::mul(V::load_m(xr + j, m), scale), neg_inf));
    }
    const reg mx = V::set1(V::reduce_max(vm));
    reg vs = V::zero();
    for (int j = 0; j < used; j += W) {
      const mask m = V::tail(used - j);
      const reg e = V::select_m(
          m, vexp(V::sub(V::mul(V::load_m(xr + j, m), scale), mx)), V::zero());
      store_first(xr + j, m, e, used - j);
      vs = V::add(vs, e);
    }
    const reg inv = V::set1(1.f / V::reduce_add(vs));
    for (int j = 0; j < used; j += W) {
      const mask m = V::tail(used - j);
      store_first(xr + j, m, V::mul(V::load_m(xr + j, m), inv), used - j);
    }
    for (int j = used; j < d->cols; ++j) xr[j] = 0.f;
  }
}
