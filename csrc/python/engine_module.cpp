// ofa._engine: thin nanobind binding over the host layer (host/runner.h)
// and the C core. Its own job: Python dicts and arrays in, checked names,
// dtypes and shapes, ValueError out. One Engine template serves both schemes;
// only the tensor binding differs (bind_model below).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "host/runner.h"
#include "host/prepack.h"
#include "python/anomaly_binding.h"

namespace nb = nanobind;
using ofa_host::AlignedBuffer;
using ofa_host::Fp32;
using ofa_host::Int8;
using ofa_host::Scheme;
using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;
using OutArray = nb::ndarray<nb::numpy, float>;

namespace {

[[noreturn]] void value_error(const std::string& msg) { throw nb::value_error(msg.c_str()); }

template <class S>
const typename Scheme<S>::Kernels* kernels_for(const nb::object& isa) {
  if (isa.is_none()) return Scheme<S>::best();
  const std::string name = nb::cast<std::string>(isa);
  const typename Scheme<S>::Kernels* k = Scheme<S>::by_name(name.c_str());
  if (!k) value_error(std::string(Scheme<S>::kName) + " isa '" + name + "' is not built or not supported by this CPU");
  return k;
}

// ---- Config dict <-> ofa_config. ------------------------------------------
nb::object config_get(const nb::dict& cfg, const char* key, bool required) {
  if (!cfg.contains(key)) {
    if (required) value_error(std::string("config is missing key '") + key + "'");
    return nb::none();
  }
  return cfg[key];
}

int32_t config_int(const nb::dict& cfg, const char* key, bool required = true,
                   int32_t fallback = 0) {
  nb::object v = config_get(cfg, key, required);
  if (v.is_none()) return fallback;
  if (!nb::isinstance<nb::int_>(v) || nb::isinstance<nb::bool_>(v))
    value_error(std::string("config['") + key + "'] must be an int");
  long long x = 0;
  if (!nb::try_cast<long long>(v, x)) value_error(std::string("config['") + key + "'] out of range");
  if (x < INT32_MIN || x > INT32_MAX) value_error(std::string("config['") + key + "'] out of range");
  return (int32_t)x;
}

float config_float(const nb::dict& cfg, const char* key, float fallback) {
  nb::object v = config_get(cfg, key, false);
  if (v.is_none()) return fallback;
  if (!nb::isinstance<nb::float_>(v) && !nb::isinstance<nb::int_>(v))
    value_error(std::string("config['") + key + "'] must be a float");
  return (float)nb::cast<double>(v);
}

int32_t config_enum(const nb::dict& cfg, const char* key, const char* a, int32_t va,
                    const char* b, int32_t vb, bool required, int32_t fallback) {
  nb::object v = config_get(cfg, key, required);
  if (v.is_none()) return fallback;
  if (nb::isinstance<nb::str>(v)) {
    const std::string s = nb::cast<std::string>(v);
    if (s == a) return va;
    if (s == b) return vb;
    value_error(std::string("config['") + key + "'] must be '" + a + "' or '" + b + "', got '" + s + "'");
  }
  return config_int(cfg, key);
}

ofa_config parse_config(const nb::dict& d) {
  ofa_config c{};
  c.layout = config_enum(d, "layout", "bert", OFA_LAYOUT_BERT, "gpt2", OFA_LAYOUT_GPT2, true, 0);
  c.d_model = config_int(d, "d_model");
  c.n_heads = config_int(d, "n_heads");
  c.d_ff = config_int(d, "d_ff");
  c.n_layers = config_int(d, "n_layers");
  c.seq_len = config_int(d, "seq_len");
  c.patch_len = config_int(d, "patch_len");
  c.stride = config_int(d, "stride");
  c.task = config_enum(d, "task", "forecast", OFA_TASK_FORECAST, "classify", OFA_TASK_CLASSIFY, false,
                       OFA_TASK_FORECAST);
  const bool classify = c.task == OFA_TASK_CLASSIFY;
  c.horizon = config_int(d, "horizon", !classify, 0);
  c.n_classes = config_int(d, "n_classes", classify, 0);
  c.norm = config_enum(d, "norm", "instance", OFA_NORM_INSTANCE, "global", OFA_NORM_GLOBAL, false, OFA_NORM_INSTANCE);
  c.tokens = config_enum(d, "tokens", "channel", OFA_TOKENS_CHANNEL, "joined", OFA_TOKENS_JOINED, false,
                         OFA_TOKENS_CHANNEL);
  c.n_channels = config_int(d, "n_channels");
  c.head_rank = config_int(d, "head_rank", false, 0);
  c.gelu = config_enum(d, "gelu", "erf", OFA_GELU_ERF, "tanh", OFA_GELU_TANH, false,
                       c.layout == OFA_LAYOUT_GPT2 ? OFA_GELU_TANH : OFA_GELU_ERF);
  c.ln_eps = config_float(d, "ln_eps", c.layout == OFA_LAYOUT_GPT2 ? 1e-5f : 1e-12f);
  c.revin_eps = config_float(d, "revin_eps", 1e-5f);
  c.linear_path = config_int(d, "linear_path", false, 0);
  const ofa_status st = ofa_validate_config(&c);
  if (st != OFA_OK) value_error(std::string("invalid config: ") + ofa_status_name(st));
  // n_patches is derived; when present it must agree with the other lengths.
  const int32_t n_patches = config_int(d, "n_patches", false, ofa_n_patches(&c));
  if (n_patches != ofa_n_patches(&c))
    value_error("config['n_patches'] = " + std::to_string(n_patches) + " but (seq_len - patch_len) / stride + 2 = " +
                std::to_string(ofa_n_patches(&c)));
  return c;
}

nb::dict config_to_dict(const ofa_config& c) {
  nb::dict d;
  d["layout"] = c.layout == OFA_LAYOUT_GPT2 ? "gpt2" : "bert";
  d["d_model"] = c.d_model;
  d["n_heads"] = c.n_heads;
  d["d_ff"] = c.d_ff;
  d["n_layers"] = c.n_layers;
  d["seq_len"] = c.seq_len;
  d["patch_len"] = c.patch_len;
  d["stride"] = c.stride;
  if (c.task == OFA_TASK_CLASSIFY) {
    d["task"] = "classify";
    d["n_classes"] = c.n_classes;
    d["norm"] = c.norm == OFA_NORM_GLOBAL ? "global" : "instance";
    d["tokens"] = c.tokens == OFA_TOKENS_JOINED ? "joined" : "channel";
  } else {
    d["horizon"] = c.horizon;
  }
  d["n_channels"] = c.n_channels;
  d["head_rank"] = c.head_rank;
  d["gelu"] = c.gelu == OFA_GELU_TANH ? "tanh" : "erf";
  d["ln_eps"] = (double)c.ln_eps;
  d["revin_eps"] = (double)c.revin_eps;
  d["linear_path"] = c.linear_path;
  d["n_patches"] = ofa_n_patches(&c);
  return d;
}

std::string shape_str(const std::vector<size_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// Checks dtype, shape and C-contiguity; returns the data pointer.
template <class T>
const T* check_typed(const std::string& name, const AnyArray& a, const std::vector<size_t>& shape,
                     const char* dtype_name) {
  if (a.dtype() != nb::dtype<T>()) value_error(name + ": dtype must be " + dtype_name);
  std::vector<size_t> got(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) got[i] = a.shape(i);
  if (got != shape) value_error(name + ": expected shape " + shape_str(shape) + ", got " + shape_str(got));
  int64_t expect = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expect) value_error(name + ": must be C-contiguous");
    expect *= (int64_t)a.shape(i);
  }
  return static_cast<const T*>(a.data());
}

// A float32 array, checked as check_typed does and also for NaN / inf.
const float* check_array(const std::string& name, const AnyArray& a, const std::vector<size_t>& shape,
                         bool check_finite = true) {
  const float* p = check_typed<float>(name, a, shape, "float32");
  if (check_finite) {
    for (size_t i = 0; i < a.size(); ++i)
      if (!std::isfinite(p[i])) value_error(name + ": contains non-finite values (NaN/inf)");
  }
  return p;
}

AnyArray to_array(const std::string& name, nb::handle h) {
  AnyArray a;
  if (!nb::try_cast(h, a, false)) value_error(name + ": expected a float32 CPU ndarray");
  return a;
}

// Takes named tensors out of the caller's dict, checking each, holding each
// alive (zero-copy), and refusing any that the config does not use.
class TensorDict {
 public:
  explicit TensorDict(nb::dict& t) : t_(t) {}
  AnyArray fetch(const std::string& name) {
    if (!t_.contains(name.c_str())) value_error("missing tensor '" + name + "'");
    AnyArray a = to_array(name, t_[name.c_str()]);
    keep_.push_back(a);
    used_[name] = true;
    return a;
  }
  const float* f32(const std::string& name, const std::vector<size_t>& shape) {
    return check_array(name, fetch(name), shape);
  }
  template <class T>
  const T* typed(const std::string& name, const std::vector<size_t>& shape, const char* dtype) {
    return check_typed<T>(name, fetch(name), shape, dtype);
  }
  // Call last: every tensor of the dict must have been taken.
  std::vector<AnyArray> finish() {
    for (auto item : t_) {
      const std::string name = nb::cast<std::string>(nb::str(item.first));
      if (!used_.count(name)) value_error("unexpected tensor '" + name + "' for this config");
    }
    return std::move(keep_);
  }

 private:
  nb::dict& t_;
  std::vector<AnyArray> keep_;
  std::map<std::string, bool> used_;
};

// The scaler, shared by both schemes (the C core checks it again).
template <class Model>
void bind_scaler(TensorDict& t, Model& m, size_t channels) {
  m.scaler_mean = t.f32("scaler.mean", {channels});
  m.scaler_std = t.f32("scaler.std", {channels});
  for (size_t c = 0; c < channels; ++c)
    if (!(m.scaler_std[c] > 0.f)) value_error("scaler.std: must be > 0");
}

// fp32: the tensor names of export.py, every weight (out, in).
void bind_model(TensorDict& t, const ofa_config& cfg, ofa_model& m, std::vector<ofa_layer_weights>& layers) {
  const size_t d = cfg.d_model, f = cfg.d_ff, W = ofa_token_width(&cfg), H = cfg.horizon;
  const size_t N = ofa_n_patches(&cfg), r = cfg.head_rank;
  const size_t head_out = ofa_head_outputs(&cfg), head_depth = ofa_head_depth(&cfg);
  m.config = cfg;
  m.in_w = t.f32("in_layer.weight", {d, W});
  m.in_b = t.f32("in_layer.bias", {d});
  m.pos = t.f32("pos", {N, d});
  if (cfg.layout == OFA_LAYOUT_BERT) {
    m.emb_ln_w = t.f32("emb_ln.weight", {d});
    m.emb_ln_b = t.f32("emb_ln.bias", {d});
  } else {
    m.final_ln_w = t.f32("final_ln.weight", {d});
    m.final_ln_b = t.f32("final_ln.bias", {d});
  }
  layers.resize(cfg.n_layers);
  for (int i = 0; i < cfg.n_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    ofa_layer_weights& l = layers[i];
    l.attn_qkv_w = t.f32(p + "attn_qkv.weight", {3 * d, d});
    l.attn_qkv_b = t.f32(p + "attn_qkv.bias", {3 * d});
    l.attn_out_w = t.f32(p + "attn_out.weight", {d, d});
    l.attn_out_b = t.f32(p + "attn_out.bias", {d});
    l.ln1_w = t.f32(p + "ln1.weight", {d});
    l.ln1_b = t.f32(p + "ln1.bias", {d});
    l.ln2_w = t.f32(p + "ln2.weight", {d});
    l.ln2_b = t.f32(p + "ln2.bias", {d});
    l.ff_in_w = t.f32(p + "ff_in.weight", {f, d});
    l.ff_in_b = t.f32(p + "ff_in.bias", {f});
    l.ff_out_w = t.f32(p + "ff_out.weight", {d, f});
    l.ff_out_b = t.f32(p + "ff_out.bias", {d});
  }
  m.layers = layers.data();
  if (r == 0) {
    m.head_w = t.f32("head.weight", {head_out, head_depth});
  } else {
    m.head_a = t.f32("head.a", {r, N * d});
    m.head_b_lr = t.f32("head.b", {H, r});
  }
  m.head_bias = t.f32("head.bias", {head_out});
  if (cfg.linear_path) {
    m.linear_w = t.f32("linear.weight", {H, (size_t)cfg.seq_len});
    m.linear_b = t.f32("linear.bias", {H});
  }
  bind_scaler(t, m, cfg.n_channels);
}

// int8: the names quantize.py writes; requantisation tables are int32 (3, count).
ofa_requant bind_requant(TensorDict& t, const std::string& name, size_t channels) {
  AnyArray a = t.fetch(name);
  const size_t count = a.ndim() == 2 ? a.shape(1) : 0;
  if (count != 1 && count != channels)
    value_error(name + ": expected shape (3, 1) or (3, " + std::to_string(channels) + ")");
  ofa_requant q;
  q.table = check_typed<int32_t>(name, a, {3, count}, "int32");
  q.count = (int32_t)count;
  return q;
}

ofa_linear_int8 bind_linear(TensorDict& t, const std::string& p, size_t n_out, size_t k, size_t rq_channels) {
  ofa_linear_int8 l{};
  l.w = t.typed<int8_t>(p + ".weight", {n_out, k}, "int8");
  l.b = t.typed<int32_t>(p + ".bias", {n_out}, "int32");
  if (rq_channels) l.out = bind_requant(t, p + ".requant", rq_channels);
  return l;
}

ofa_layer_norm_int8 bind_layer_norm(TensorDict& t, const std::string& p, size_t d) {
  ofa_layer_norm_int8 ln{};
  ln.eps = t.typed<int64_t>(p + ".eps", {1}, "int64");
  ln.out = bind_requant(t, p + ".requant", d);
  ln.narrow = bind_requant(t, p + ".narrow", 1);
  return ln;
}

void bind_model(TensorDict& t, const ofa_config& cfg, ofa_model_int8& m, std::vector<ofa_layer_int8>& layers) {
  const size_t d = cfg.d_model, f = cfg.d_ff, W = ofa_token_width(&cfg), H = cfg.horizon;
  const size_t N = ofa_n_patches(&cfg), r = cfg.head_rank;
  const size_t head_out = ofa_head_outputs(&cfg), head_depth = ofa_head_depth(&cfg);
  m.config = cfg;
  m.patch_inv_scale = t.typed<float>("patch.inv_scale", {1}, "float32");
  m.in_layer = bind_linear(t, "in_layer", d, W, d);
  m.pos = t.typed<int32_t>("pos", {N, d}, "int32");
  if (cfg.layout == OFA_LAYOUT_BERT) m.emb_ln = bind_layer_norm(t, "emb_ln", d);
  else m.final_ln = bind_layer_norm(t, "final_ln", d);
  layers.resize(cfg.n_layers);
  for (int i = 0; i < cfg.n_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    ofa_layer_int8& l = layers[i];
    l.qkv = bind_linear(t, p + "attn_qkv", 3 * d, d, 3 * d);
    l.scores = bind_requant(t, p + "scores.requant", 1);
    l.context = bind_requant(t, p + "context.requant", 1);
    l.attn_out = bind_linear(t, p + "attn_out", d, d, d);
    l.ln1 = bind_layer_norm(t, p + "ln1", d);
    l.ln2 = bind_layer_norm(t, p + "ln2", d);
    l.ff_in = bind_linear(t, p + "ff_in", f, d, f);
    l.gelu_lut = t.typed<int8_t>(p + "gelu.lut", {256}, "int8");
    l.ff_out = bind_linear(t, p + "ff_out", d, f, d);
  }
  m.layers = layers.data();
  if (r == 0) {
    m.head = bind_linear(t, "head", head_out, head_depth, 0);
  } else {
    m.head_a = bind_linear(t, "head.a", r, N * d, r);
    m.head_b = bind_linear(t, "head.b", H, r, 0);
  }
  m.head_out_scale = t.typed<float>("head.out_scale", {head_out}, "float32");
  if (cfg.linear_path) {
    m.linear.w = t.typed<int8_t>("linear.weight", {H, (size_t)cfg.seq_len}, "int8");
    m.linear_out_scale = t.typed<float>("linear.out_scale", {H}, "float32");
    m.linear_bias = t.typed<float>("linear.bias", {H}, "float32");
  }
  bind_scaler(t, m, cfg.n_channels);
}

// An exported model in the engine: its arrays borrowed, validated once here,
// then run on any number of windows.
template <class S>
class Engine {
 public:
  Engine(nb::dict config, nb::dict tensors, int tile_series, int threads, nb::object isa)
      : cfg_(parse_config(config)) {
    if (tile_series <= 0) value_error("tile_series must be >= 1");
    if (threads <= 0) value_error("threads must be >= 1");
    const auto* kernels = kernels_for<S>(isa);
    TensorDict t(tensors);
    bind_model(t, cfg_, model_, layers_);
    keep_ = t.finish();
    const ofa_status vs = Scheme<S>::validate(&model_);
    if (vs != OFA_OK) value_error(std::string(Scheme<S>::kName) + " model: " + ofa_status_name(vs));
    prepacked_.pack(&model_, layers_, kernels);
    const ofa_status ps = runner_.plan(cfg_, kernels, tile_series, threads);
    if (ps != OFA_OK) value_error(std::string("cannot plan the arena: ") + ofa_status_name(ps));
  }

  // A forecaster: x (B, seq_len, C) -> (B, horizon, C). A classifier: x (B, C, seq_len) -> logits (B, K).
  OutArray run(const AnyArray& x) {
    const size_t L = cfg_.seq_len, C = cfg_.n_channels;
    const bool classify = cfg_.task == OFA_TASK_CLASSIFY;
    const char* dims = classify ? "(batch, n_channels, seq_len)" : "(batch, seq_len, n_channels)";
    if (x.ndim() != 3) value_error(std::string("x: expected 3 dims ") + dims + ", got " + std::to_string(x.ndim()));
    const size_t batch = x.shape(0);
    if (batch == 0 || batch > (size_t)INT32_MAX / C) value_error("x: batch must be >= 1");
    const float* xp = check_array("x", x, classify ? std::vector<size_t>{batch, C, L} : std::vector<size_t>{batch, L, C});
    const std::vector<size_t> out_shape = classify ? std::vector<size_t>{batch, (size_t)cfg_.n_classes}
                                                   : std::vector<size_t>{batch, (size_t)cfg_.horizon, C};
    float* yp = new float[classify ? batch * cfg_.n_classes : batch * cfg_.horizon * C];
    nb::capsule owner(yp, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    ofa_status st;
    {
      nb::gil_scoped_release release;
      st = classify ? runner_.classify(&model_, xp, (int32_t)batch, yp) : runner_.forward(&model_, xp, (int32_t)batch, yp);
    }
    if (st != OFA_OK) value_error(std::string(classify ? "classify" : "forward") + " failed: " + ofa_status_name(st));
    return OutArray(yp, out_shape.size(), out_shape.data(), owner);
  }

  nb::dict gemm_stats() {
    const ofa_host::GemmCounters last = runner_.last_counters();
    nb::dict d;
    d["ops"] = last.ops;
    d["flops"] = last.ops;  // fp32's name for the same count
    d["seconds"] = last.seconds;  // summed over worker threads
    d["calls"] = last.calls;
    d["gops_per_s"] = last.seconds > 0 ? last.ops / last.seconds * 1e-9 : 0.0;
    d["gflops_per_s"] = d["gops_per_s"];
    return d;
  }

  // Anomaly scores of a one-channel stream, this model forecasting (ofa_anomaly.h's ofa_stream).
  ofa_py::Scores stream_scores(const AnyArray& values, nb::dict config) {
    if (cfg_.task == OFA_TASK_CLASSIFY) value_error("stream_scores: a classifier does not forecast");
    if (cfg_.n_channels != 1)
      value_error("stream_scores: the model must have one channel, it has " + std::to_string(cfg_.n_channels));
    const ofa_stream_config c = ofa_py::stream_config(config, cfg_.seq_len, cfg_.horizon);
    // (1, seq_len, 1) in, (1, horizon, 1) out: the window and the forecast as the stream holds them.
    auto forecast = [](void* self, const float* window, float* out) -> ofa_status {
      Engine* e = static_cast<Engine*>(self);
      return e->runner_.forward(&e->model_, window, 1, out);
    };
    return ofa_py::run_stream(c, values, forecast, this);
  }

  nb::dict config() const { return config_to_dict(cfg_); }
  size_t arena_bytes() const { return runner_.arena_bytes(); }
  std::string isa() const { return runner_.kernels()->name; }
  int tile_series() const { return runner_.tile_series(); }
  int threads() const { return runner_.threads(); }

 private:
  ofa_config cfg_;
  typename Scheme<S>::Model model_{};
  std::vector<typename Scheme<S>::Layer> layers_;
  std::vector<AnyArray> keep_;  // the caller's arrays the model points into
  ofa_host::Prepacked<S> prepacked_;  // the weights in the kernels' panel layout, packed at load
  ofa_host::Runner<S> runner_;
};

// C = A W^T + bias with the selected ISA; returns (C, seconds per call).
// prepack: W packed once first (the table's pack_w, as an engine does at load)
// and the GEMM given the packed form; the packing is not timed.
std::tuple<OutArray, double> gemm_timed(const AnyArray& a, const AnyArray& w,
                                        nb::object bias, nb::object isa, int repeat, bool prepack) {
  if (a.ndim() != 2 || w.ndim() != 2) value_error("gemm: a and w must be 2-D");
  const size_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
  if (M == 0 || N == 0 || K == 0 || M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
    value_error("gemm: empty or too large");
  if (repeat < 1) value_error("gemm: repeat must be >= 1");
  const float* ap = check_array("a", a, {M, K}, false);
  const float* wp = check_array("w", w, {N, K}, false);
  const float* bp = nullptr;
  AnyArray b;
  if (!bias.is_none()) {
    b = to_array("bias", bias);
    bp = check_array("bias", b, {N}, false);
  }
  const ofa_kernels* k = kernels_for<Fp32>(isa);
  if (prepack && !k->pack_w) value_error(std::string("gemm: the ") + k->name + " kernels have no prepacked form");
  AlignedBuffer packed(prepack ? k->packed_floats((int32_t)N, (int32_t)K) * sizeof(float) : 0);
  if (prepack) k->pack_w(wp, (int32_t)K, (int32_t)N, (int32_t)K, reinterpret_cast<float*>(packed.data));
  AlignedBuffer scratch(ofa_gemm_scratch_floats((int32_t)K, (int32_t)N) * sizeof(float));
  float* cp = new float[M * N];
  nb::capsule owner(cp, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  const ofa_gemm_dims d = {(int32_t)M, (int32_t)N, (int32_t)K, (int32_t)K, (int32_t)K, (int32_t)N, 0, prepack};
  const float* w_used = prepack ? reinterpret_cast<const float*>(packed.data) : wp;
  double secs;
  {
    nb::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i)
      k->gemm(&d, ap, w_used, bp, cp, reinterpret_cast<float*>(scratch.data));
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeat;
  }
  return {OutArray(cp, {M, N}, owner), secs};
}

// C = A W^T in exact int32 with the int8 GEMM; returns (C, seconds per call). prepack as for gemm_timed.
std::tuple<nb::ndarray<nb::numpy, int32_t>, double> gemm_s8_timed(const AnyArray& a, const AnyArray& w,
                                                                   nb::object isa, int repeat, bool prepack) {
  if (a.ndim() != 2 || w.ndim() != 2) value_error("gemm_s8: a and w must be 2-D");
  const size_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
  if (M == 0 || N == 0 || K == 0 || K > OFA_GEMM_S8_MAX_K || M > INT32_MAX || N > INT32_MAX)
    value_error("gemm_s8: empty or too large");
  if (repeat < 1) value_error("gemm_s8: repeat must be >= 1");
  const int8_t* ap = check_typed<int8_t>("a", a, {M, K}, "int8");
  const int8_t* wp = check_typed<int8_t>("w", w, {N, K}, "int8");
  const ofa_kernels_int8* k = kernels_for<Int8>(isa);
  if (prepack && !k->pack_w) value_error(std::string("gemm_s8: the ") + k->name + " kernels have no prepacked form");
  AlignedBuffer packed(prepack ? k->packed_bytes((int32_t)N, (int32_t)K) : 0);
  if (prepack) k->pack_w(wp, (int32_t)K, (int32_t)N, (int32_t)K, reinterpret_cast<int8_t*>(packed.data));
  int32_t* cp = new int32_t[M * N];
  nb::capsule owner(cp, [](void* p) noexcept { delete[] static_cast<int32_t*>(p); });
  const ofa_gemm_s8_dims d = {(int32_t)M, (int32_t)N, (int32_t)K, (int32_t)K, (int32_t)K, (int32_t)N, prepack};
  const int8_t* w_used = prepack ? reinterpret_cast<const int8_t*>(packed.data) : wp;
  AlignedBuffer scratch(ofa_gemm_s8_scratch_bytes((int32_t)K));
  double secs;
  {
    nb::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i) k->gemm_s8(&d, ap, w_used, nullptr, cp, scratch.data);
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeat;
  }
  return {nb::ndarray<nb::numpy, int32_t>(cp, {M, N}, owner), secs};
}

template <class S>
std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (const char* n : Scheme<S>::kIsas)
    if (Scheme<S>::by_name(n)) out.push_back(n);
  return out;
}

template <class S>
size_t arena_bytes(nb::dict config, int tile_series) {
  const ofa_config c = parse_config(config);
  size_t bytes = 0;
  const ofa_status st = Scheme<S>::arena_bytes(&c, tile_series, &bytes);
  if (st != OFA_OK) value_error(std::string("arena_bytes: ") + ofa_status_name(st));
  return bytes;
}

// The arena a Cortex-M build of the int8 kernels plans (OFA_ARENA_MCU): what a firmware header holds.
size_t arena_bytes_int8_mcu(nb::dict config, int tile_series) {
  const ofa_config c = parse_config(config);
  size_t bytes = 0;
  const ofa_status st = ofa_arena_bytes_int8_for(&c, tile_series, OFA_ARENA_MCU, &bytes);
  if (st != OFA_OK) value_error(std::string("arena_bytes_int8_mcu: ") + ofa_status_name(st));
  return bytes;
}

template <class S>
void bind_engine(nb::module_& m, const char* name, const char* doc) {
  using E = Engine<S>;
  nb::class_<E>(m, name)
      .def(nb::init<nb::dict, nb::dict, int, int, nb::object>(), nb::arg("config"), nb::arg("tensors"),
           nb::arg("tile_series") = 16, nb::arg("threads") = 1, nb::arg("isa") = nb::none(), doc)
      .def("run", &E::run, nb::arg("x"),
           "a forecaster: x float32 (B, seq_len, n_channels) -> float32 (B, horizon, n_channels); a classifier: "
           "x float32 (B, n_channels, seq_len) -> logits float32 (B, n_classes)")
      .def("stream_scores", &E::stream_scores, nb::arg("values"), nb::arg("config"),
           "float32 (n,) samples of a one-channel stream -> float64 (n,) anomaly scores, this model forecasting "
           "(config: stride, train_rows, scorer; python/ofa/anomaly/device.py)")
      .def("gemm_stats", &E::gemm_stats,
           "GEMM ops (2 per multiply-add) / seconds / calls of the last run (seconds summed over threads)")
      .def_prop_ro("config", &E::config)
      .def_prop_ro("arena_bytes", &E::arena_bytes)
      .def_prop_ro("isa", &E::isa)
      .def_prop_ro("simd", &E::isa)  // the older name of isa
      .def_prop_ro("tile_series", &E::tile_series)
      .def_prop_ro("threads", &E::threads);
}

}  // namespace

NB_MODULE(_engine, m) {
  m.doc() = "ofa C++ inference engine (fp32 and int8)";

  bind_engine<Fp32>(m, "Engine", "Borrow float32 C-contiguous tensors (zero-copy), validate them and plan the arena.");
  bind_engine<Int8>(m, "EngineInt8",
                    "Borrow an int8 model's tensors (zero-copy), validate its quantisation and plan the arena.");

  ofa_py::bind_anomaly(m);
  m.def("available_int8_isas", &available_isas<Int8>);
  m.def("gemm_s8",
        [](const AnyArray& a, const AnyArray& w, nb::object isa, bool prepack) {
          return std::get<0>(gemm_s8_timed(a, w, isa, 1, prepack));
        },
        nb::arg("a"), nb::arg("w"), nb::arg("isa") = nb::none(), nb::arg("prepack") = false,
        "C = a @ w.T in exact int32 with the int8 GEMM (a: (M,K) int8, w: (N,K) int8); prepack: W packed "
        "first, as an engine does at load.");
  m.def("gemm_s8_timed", &gemm_s8_timed, nb::arg("a"), nb::arg("w"), nb::arg("isa") = nb::none(),
        nb::arg("repeat") = 10, nb::arg("prepack") = false, "Like gemm_s8, plus mean seconds per call.");

  m.def("arena_bytes", &arena_bytes<Fp32>, nb::arg("config"), nb::arg("tile_series") = 16);
  m.def("arena_bytes_int8", &arena_bytes<Int8>, nb::arg("config"), nb::arg("tile_series") = 16);
  m.def("arena_bytes_int8_mcu", &arena_bytes_int8_mcu, nb::arg("config"), nb::arg("tile_series") = 1);

  m.def("gemm",
        [](const AnyArray& a, const AnyArray& w, nb::object bias, nb::object isa, bool prepack) {
          return std::get<0>(gemm_timed(a, w, bias, isa, 1, prepack));
        },
        nb::arg("a"), nb::arg("w"), nb::arg("bias") = nb::none(), nb::arg("isa") = nb::none(),
        nb::arg("prepack") = false,
        "C = a @ w.T + bias with the engine's GEMM (a: (M,K), w: (N,K)); prepack: W packed first, as an "
        "engine does at load.");
  m.def("gemm_timed", &gemm_timed, nb::arg("a"), nb::arg("w"), nb::arg("bias") = nb::none(),
        nb::arg("isa") = nb::none(), nb::arg("repeat") = 10, nb::arg("prepack") = false,
        "Like gemm, plus mean seconds per call over `repeat` runs.");
  m.def("best_isa", [] { return std::string(ofa_kernels_best()->name); });
  m.def("available_isas", &available_isas<Fp32>);
}
