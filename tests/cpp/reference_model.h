// A small random ofa model (owning std::vector storage) and a naive
// double-precision forward pass written straight from the spec.
#pragma once
#include <cmath>
#include <vector>

#include "test_util.h"

struct TestModel {
  ofa_config cfg{};
  std::vector<std::vector<float>> store;
  std::vector<ofa_layer_weights> layers;
  ofa_model model{};

  const float* make(size_t n, float lo, float hi) {
    store.push_back(random_vec(n, (uint32_t)(1000 + store.size()), lo, hi));
    return store.back().data();
  }

  explicit TestModel(const ofa_config& c) : cfg(c) {
    store.reserve(64 + 16 * (size_t)c.n_layers);
    const size_t d = c.d_model, f = c.d_ff;
    const size_t N = (size_t)ofa_n_patches(&c), H = c.horizon, r = c.head_rank;
    const float wd = 1.f / std::sqrt((float)d);
    model.config = c;
    model.in_w = make(d * ofa_token_width(&c), -0.5f, 0.5f);  // (d, P), or (d, P*C) joined
    model.in_b = make(d, -0.1f, 0.1f);
    model.pos = make(N * d, -0.2f, 0.2f);
    if (c.layout == OFA_LAYOUT_BERT) {
      model.emb_ln_w = make(d, 0.8f, 1.2f);
      model.emb_ln_b = make(d, -0.1f, 0.1f);
    } else {
      model.final_ln_w = make(d, 0.8f, 1.2f);
      model.final_ln_b = make(d, -0.1f, 0.1f);
    }
    for (int i = 0; i < c.n_layers; ++i) {
      ofa_layer_weights l{};
      l.attn_qkv_w = make(3 * d * d, -wd, wd);
      l.attn_qkv_b = make(3 * d, -0.1f, 0.1f);
      l.attn_out_w = make(d * d, -wd, wd);
      l.attn_out_b = make(d, -0.1f, 0.1f);
      l.ln1_w = make(d, 0.8f, 1.2f);
      l.ln1_b = make(d, -0.1f, 0.1f);
      l.ln2_w = make(d, 0.8f, 1.2f);
      l.ln2_b = make(d, -0.1f, 0.1f);
      l.ff_in_w = make(f * d, -wd, wd);
      l.ff_in_b = make(f, -0.1f, 0.1f);
      l.ff_out_w = make(d * f, -1.f / std::sqrt((float)f), 1.f / std::sqrt((float)f));
      l.ff_out_b = make(d, -0.1f, 0.1f);
      layers.push_back(l);
    }
    model.layers = layers.data();
    const float wh = 1.f / std::sqrt((float)(N * d));
    const size_t head_out = ofa_head_outputs(&c), head_depth = ofa_head_depth(&c);
    if (r == 0) {
      model.head_w = make(head_out * head_depth, -wh, wh);  // a classifier's (K, C*N*d)
    } else {
      model.head_a = make(r * N * d, -wh, wh);
      model.head_b_lr = make(H * r, -0.5f, 0.5f);
    }
    model.head_bias = make(head_out, -0.1f, 0.1f);
    model.scaler_mean = make(c.n_channels, -2.f, 2.f);
    model.scaler_std = make(c.n_channels, 0.5f, 3.f);
    if (c.linear_path) {
      model.linear_w = make(H * c.seq_len, -0.3f, 0.3f);
      model.linear_b = make(H, -0.2f, 0.2f);
    }
  }
};

namespace refimpl {
using Mat = std::vector<double>;  // row-major

inline Mat linear(const Mat& x, int rows, int in, const float* w, const float* b, int out) {
  Mat y((size_t)rows * out);
  for (int i = 0; i < rows; ++i)
    for (int o = 0; o < out; ++o) {
      double s = b ? b[o] : 0.0;
      for (int k = 0; k < in; ++k) s += x[(size_t)i * in + k] * w[(size_t)o * in + k];
      y[(size_t)i * out + o] = s;
    }
  return y;
}

inline Mat layer_norm(const Mat& x, int rows, int d, const float* w, const float* b, double eps) {
  Mat y(x.size());
  for (int i = 0; i < rows; ++i) {
    double m = 0, v = 0;
    for (int j = 0; j < d; ++j) m += x[(size_t)i * d + j];
    m /= d;
    for (int j = 0; j < d; ++j) v += std::pow(x[(size_t)i * d + j] - m, 2);
    v /= d;
    for (int j = 0; j < d; ++j)
      y[(size_t)i * d + j] = (x[(size_t)i * d + j] - m) / std::sqrt(v + eps) * w[j] + b[j];
  }
  return y;
}

inline Mat attention(const ofa_config& c, const ofa_layer_weights& l, const Mat& x, int n) {
  const int d = c.d_model, hd = d / c.n_heads;
  Mat qkv = linear(x, n, d, l.attn_qkv_w, l.attn_qkv_b, 3 * d);
  Mat o((size_t)n * d, 0.0);
  for (int h = 0; h < c.n_heads; ++h)
    for (int i = 0; i < n; ++i) {
      std::vector<double> s(n, -INFINITY);
      const int used = c.layout == OFA_LAYOUT_GPT2 ? i + 1 : n;
      double mx = -INFINITY, sum = 0;
      for (int j = 0; j < used; ++j) {
        double t = 0;
        for (int e = 0; e < hd; ++e)
          t += qkv[(size_t)i * 3 * d + h * hd + e] * qkv[(size_t)j * 3 * d + d + h * hd + e];
        s[j] = t / std::sqrt((double)hd);
        mx = std::max(mx, s[j]);
      }
      for (int j = 0; j < used; ++j) sum += (s[j] = std::exp(s[j] - mx));
      for (int e = 0; e < hd; ++e) {
        double t = 0;
        for (int j = 0; j < used; ++j) t += s[j] / sum * qkv[(size_t)j * 3 * d + 2 * d + h * hd + e];
        o[(size_t)i * d + h * hd + e] = t;
      }
    }
  return linear(o, n, d, l.attn_out_w, l.attn_out_b, d);
}

inline Mat ff(const ofa_config& c, const ofa_layer_weights& l, const Mat& x, int n) {
  Mat h = linear(x, n, c.d_model, l.ff_in_w, l.ff_in_b, c.d_ff);
  for (double& v : h)
    v = c.gelu == OFA_GELU_ERF
            ? 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))
            : 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  return linear(h, n, c.d_ff, l.ff_out_w, l.ff_out_b, c.d_model);
}

inline void add(Mat& a, const Mat& b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
}

// One series (every step t at series[t * stride]) scaled, and with `instance`
// normalised by its own mean / std (returned in *mu / *sd), replication padded by S.
inline std::vector<double> normalise(const ofa_model& m, const float* series, int stride, int ch, bool instance,
                                     double* mu_out, double* sd_out) {
  const ofa_config& c = m.config;
  const int L = c.seq_len, S = c.stride;
  std::vector<double> z(L + S);
  double mu = 0, var = 0;
  for (int t = 0; t < L; ++t) mu += (z[t] = (series[(size_t)t * stride] - (double)m.scaler_mean[ch]) / m.scaler_std[ch]);
  mu /= L;
  for (int t = 0; t < L; ++t) var += (z[t] - mu) * (z[t] - mu);
  var /= L;
  const double sd = std::sqrt(var + c.revin_eps);
  if (instance)
    for (int t = 0; t < L; ++t) z[t] = (z[t] - mu) / sd;
  for (int t = L; t < L + S; ++t) z[t] = z[L - 1];
  if (mu_out) *mu_out = mu;
  if (sd_out) *sd_out = sd;
  return z;
}

// The (N, W) tokens of one sequence -> its final states (N, d).
inline Mat encode_tokens(const ofa_model& m, const Mat& p) {
  const ofa_config& c = m.config;
  const int N = ofa_n_patches(&c), d = c.d_model;
  Mat h = linear(p, N, ofa_token_width(&c), m.in_w, m.in_b, d);
  for (size_t i = 0; i < h.size(); ++i) h[i] += m.pos[i];
  if (c.layout == OFA_LAYOUT_BERT) h = layer_norm(h, N, d, m.emb_ln_w, m.emb_ln_b, c.ln_eps);
  for (int li = 0; li < c.n_layers; ++li) {
    const ofa_layer_weights& l = m.layers[li];
    if (c.layout == OFA_LAYOUT_BERT) {
      add(h, attention(c, l, h, N));
      h = layer_norm(h, N, d, l.ln1_w, l.ln1_b, c.ln_eps);
      add(h, ff(c, l, h, N));
      h = layer_norm(h, N, d, l.ln2_w, l.ln2_b, c.ln_eps);
    } else {
      add(h, attention(c, l, layer_norm(h, N, d, l.ln1_w, l.ln1_b, c.ln_eps), N));
      add(h, ff(c, l, layer_norm(h, N, d, l.ln2_w, l.ln2_b, c.ln_eps), N));
    }
  }
  if (c.layout == OFA_LAYOUT_GPT2) h = layer_norm(h, N, d, m.final_ln_w, m.final_ln_b, c.ln_eps);
  return h;
}

// The normalised, padded series -> its final states (N, d): patch n is steps n*S .. n*S + P - 1.
inline Mat encode(const ofa_model& m, const std::vector<double>& z) {
  const ofa_config& c = m.config;
  const int P = c.patch_len, S = c.stride, N = ofa_n_patches(&c);
  Mat p((size_t)N * P);
  for (int n = 0; n < N; ++n)
    for (int i = 0; i < P; ++i) p[(size_t)n * P + i] = z[n * S + i];
  return encode_tokens(m, p);
}

// A classifier, written as the spec says and nothing more: x (B, C, L) -> logits (B, K), logit k =
// bias[k] + sum over channel c, patch n, width j of W[k, c*N*d + n*d + j] * h_c[n, j]. Joined tokens:
// one sequence whose token n holds z_c[n*S + p] at p*C + c, logit k = bias[k] + sum W[k, n*d + j] h[n, j].
inline std::vector<double> classify(const ofa_model& m, const float* x, int batch) {
  const ofa_config& c = m.config;
  const int L = c.seq_len, C = c.n_channels, K = c.n_classes, N = ofa_n_patches(&c), F = N * c.d_model;
  const int P = c.patch_len, S = c.stride;
  std::vector<double> logits((size_t)batch * K);
  for (int b = 0; b < batch; ++b) {
    for (int k = 0; k < K; ++k) logits[(size_t)b * K + k] = m.head_bias[k];
    if (c.tokens == OFA_TOKENS_JOINED) {
      Mat tokens((size_t)N * P * C);
      for (int ch = 0; ch < C; ++ch) {
        const auto z = normalise(m, x + ((size_t)b * C + ch) * L, 1, ch, c.norm == OFA_NORM_INSTANCE, nullptr, nullptr);
        for (int n = 0; n < N; ++n)
          for (int p = 0; p < P; ++p) tokens[((size_t)n * P + p) * C + ch] = z[n * S + p];
      }
      const Mat h = encode_tokens(m, tokens);
      for (int k = 0; k < K; ++k)
        for (int i = 0; i < F; ++i) logits[(size_t)b * K + k] += (double)m.head_w[(size_t)k * F + i] * h[i];
      continue;
    }
    for (int ch = 0; ch < C; ++ch) {
      const float* series = x + ((size_t)b * C + ch) * L;
      const Mat h = encode(m, normalise(m, series, 1, ch, c.norm == OFA_NORM_INSTANCE, nullptr, nullptr));
      for (int k = 0; k < K; ++k)
        for (int i = 0; i < F; ++i)
          logits[(size_t)b * K + k] += (double)m.head_w[(size_t)k * C * F + (size_t)ch * F + i] * h[i];
    }
  }
  return logits;
}

// x: (B, L, C) -> (B, H, C)
inline std::vector<double> forward(const ofa_model& m, const float* x, int batch) {
  const ofa_config& c = m.config;
  const int L = c.seq_len, C = c.n_channels;
  const int N = ofa_n_patches(&c), d = c.d_model, H = c.horizon;
  std::vector<double> y((size_t)batch * H * C);
  for (int b = 0; b < batch; ++b)
    for (int ch = 0; ch < C; ++ch) {
      double mu = 0, sd = 1;
      const std::vector<double> z = normalise(m, x + (size_t)b * L * C + ch, C, ch, true, &mu, &sd);
      const Mat h = encode(m, z);
      Mat out;
      if (c.head_rank == 0) {
        out = linear(h, 1, N * d, m.head_w, m.head_bias, H);
      } else {
        Mat low = linear(h, 1, N * d, m.head_a, nullptr, c.head_rank);
        out = linear(low, 1, c.head_rank, m.head_b_lr, m.head_bias, H);
      }
      double lin_b = 0;
      for (int k = 0; k < H; ++k) {
        if (c.linear_path) {  // W u on the normalised window, its bias after the instance scaling
          double acc = 0;
          for (int t = 0; t < L; ++t) acc += (double)m.linear_w[(size_t)k * L + t] * z[t];
          out[k] += acc;
          lin_b = m.linear_b[k];
        }
        y[((size_t)b * H + k) * C + ch] = (out[k] * sd + mu + lin_b) * m.scaler_std[ch] + m.scaler_mean[ch];
      }
    }
  return y;
}
}  // namespace refimpl
