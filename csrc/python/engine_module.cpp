// ofa._engine: thin nanobind binding over the C core. Host-side only, so it
// may allocate (the arenas), throw (ValueError) and spawn threads.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/workers.h"
#include "ofa/ofa.h"
#include "ofa/ofa_int8.h"

namespace nb = nanobind;
using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;
using OutArray = nb::ndarray<nb::numpy, float>;

namespace {

// ---- GEMM instrumentation: the engine's table with a timing shim. --------
struct GemmCounters {
  double flops = 0, seconds = 0;
  int64_t calls = 0;
};
thread_local const ofa_kernels* tl_inner = nullptr;
thread_local GemmCounters tl_counters;

void timed_gemm(const ofa_gemm_dims* d, const float* a, const float* w,
                const float* bias, float* c, float* scratch) {
  const auto t0 = std::chrono::steady_clock::now();
  tl_inner->gemm(d, a, w, bias, c, scratch);
  const auto t1 = std::chrono::steady_clock::now();
  tl_counters.flops += 2.0 * d->m * d->n * d->k;
  tl_counters.seconds += std::chrono::duration<double>(t1 - t0).count();
  tl_counters.calls += 1;
}

// ---- Aligned host buffer for arenas / gemm scratch. ----------------------
struct AlignedBuffer {
  std::unique_ptr<unsigned char[]> raw;
  unsigned char* data = nullptr;
  size_t bytes = 0;
  explicit AlignedBuffer(size_t n = 0) : raw(new unsigned char[n + OFA_ARENA_ALIGN]), bytes(n) {
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw.get());
    data = raw.get() + (OFA_ARENA_ALIGN - p % OFA_ARENA_ALIGN) % OFA_ARENA_ALIGN;
  }
};

[[noreturn]] void value_error(const std::string& msg) { throw nb::value_error(msg.c_str()); }

const ofa_kernels* kernels_for(const nb::object& isa) {
  if (isa.is_none()) return ofa_kernels_best();
  const std::string name = nb::cast<std::string>(isa);
  const ofa_kernels* k = ofa_kernels_by_name(name.c_str());
  if (!k) value_error("isa '" + name + "' is not built or not supported by this CPU");
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
  c.horizon = config_int(d, "horizon");
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
  d["horizon"] = c.horizon;
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

// Validates dtype/shape/layout/finiteness; returns the data pointer.
const float* check_array(const std::string& name, const AnyArray& a,
                         const std::vector<size_t>& shape, bool check_finite = true) {
  if (a.dtype() != nb::dtype<float>()) value_error(name + ": dtype must be float32");
  std::vector<size_t> got(a.ndim());
  for (size_t i = 0; i < a.ndim(); ++i) got[i] = a.shape(i);
  if (got != shape) value_error(name + ": expected shape " + shape_str(shape) + ", got " + shape_str(got));
  int64_t expect = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expect) value_error(name + ": must be C-contiguous");
    expect *= (int64_t)a.shape(i);
  }
  const float* p = static_cast<const float*>(a.data());
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

class Engine {
 public:
  Engine(nb::dict config, nb::dict tensors, int tile_series, int threads, nb::object isa)
      : cfg_(parse_config(config)), inner_(kernels_for(isa)) {
    if (tile_series <= 0) value_error("tile_series must be >= 1");
    if (threads <= 0) value_error("threads must be >= 1");
    tile_series_ = tile_series;
    threads_ = threads;
    bind_tensors(tensors);
    const ofa_status vs = ofa_validate_model(&model_);
    if (vs != OFA_OK) value_error(std::string("model: ") + ofa_status_name(vs));
    if (ofa_arena_bytes(&cfg_, tile_series_, &arena_bytes_) != OFA_OK)
      value_error("tile_series too large for this config");
    for (int i = 0; i < threads_; ++i) arenas_.emplace_back(arena_bytes_);
    timed_ = *inner_;
    timed_.gemm = timed_gemm;
  }

  OutArray run(const AnyArray& x) {
    const int64_t L = cfg_.seq_len, C = cfg_.n_channels, H = cfg_.horizon;
    if (x.ndim() != 3) value_error("x: expected 3 dims (batch, seq_len, n_channels), got " + std::to_string(x.ndim()));
    const size_t batch = x.shape(0);
    if (batch == 0 || batch > (size_t)INT32_MAX / (size_t)C) value_error("x: batch must be >= 1");
    const float* xp = check_array("x", x, {batch, (size_t)L, (size_t)C});
    float* yp = new float[batch * H * C];
    nb::capsule owner(yp, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    ofa_status st;
    {
      nb::gil_scoped_release release;
      // The arenas are per engine: concurrent run() calls take turns.
      std::lock_guard<std::mutex> lock(mutex_);
      st = forward_all(xp, (int32_t)batch, yp);
    }
    if (st != OFA_OK) value_error(std::string("forward failed: ") + ofa_status_name(st));
    return OutArray(yp, {batch, (size_t)H, (size_t)C}, owner);
  }

  nb::dict gemm_stats() {
    GemmCounters last;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last = last_;
    }
    nb::dict d;
    d["flops"] = last.flops;
    d["seconds"] = last.seconds;  // summed over worker threads
    d["calls"] = last.calls;
    d["gflops_per_s"] = last.seconds > 0 ? last.flops / last.seconds * 1e-9 : 0.0;
    return d;
  }

  nb::dict config() const { return config_to_dict(cfg_); }
  size_t arena_bytes() const { return arena_bytes_; }
  std::string simd() const { return inner_->name; }
  int tile_series() const { return tile_series_; }
  int threads() const { return threads_; }

 private:
  ofa_status forward_all(const float* x, int32_t batch, float* y) {
    const int32_t L = cfg_.seq_len, C = cfg_.n_channels, H = cfg_.horizon;
    const int n_workers = std::min<int>(threads_, batch);
    std::vector<GemmCounters> counters(n_workers);
    std::vector<ofa_status> statuses(n_workers, OFA_OK);
    auto work = [&](int w) {
      const int32_t b0 = (int32_t)((int64_t)batch * w / n_workers);
      const int32_t b1 = (int32_t)((int64_t)batch * (w + 1) / n_workers);
      tl_inner = inner_;
      tl_counters = GemmCounters{};
      statuses[w] = ofa_forward(&model_, &timed_, tile_series_, x + (size_t)b0 * L * C,
                                b1 - b0, y + (size_t)b0 * H * C, arenas_[w].data,
                                arenas_[w].bytes);
      counters[w] = tl_counters;
    };
    ofa_host::run_workers(n_workers, work);
    last_ = GemmCounters{};
    ofa_status status = OFA_OK;
    for (int w = 0; w < n_workers; ++w) {
      last_.flops += counters[w].flops;
      last_.seconds += counters[w].seconds;
      last_.calls += counters[w].calls;
      if (statuses[w] != OFA_OK) status = statuses[w];
    }
    return status;
  }

  const float* take(nb::dict& tensors, std::map<std::string, bool>& used,
                    const std::string& name, const std::vector<size_t>& shape) {
    if (!tensors.contains(name.c_str())) value_error("missing tensor '" + name + "'");
    AnyArray a = to_array(name, tensors[name.c_str()]);
    const float* p = check_array(name, a, shape);
    keep_.push_back(a);  // zero-copy: hold the caller's array alive
    used[name] = true;
    return p;
  }

  void bind_tensors(nb::dict& t) {
    const size_t d = cfg_.d_model, f = cfg_.d_ff, P = cfg_.patch_len, H = cfg_.horizon;
    const size_t N = ofa_n_patches(&cfg_), r = cfg_.head_rank, C = cfg_.n_channels;
    std::map<std::string, bool> used;
    model_.config = cfg_;
    model_.in_w = take(t, used, "in_layer.weight", {d, P});
    model_.in_b = take(t, used, "in_layer.bias", {d});
    model_.pos = take(t, used, "pos", {N, d});
    if (cfg_.layout == OFA_LAYOUT_BERT) {
      model_.emb_ln_w = take(t, used, "emb_ln.weight", {d});
      model_.emb_ln_b = take(t, used, "emb_ln.bias", {d});
    } else {
      model_.final_ln_w = take(t, used, "final_ln.weight", {d});
      model_.final_ln_b = take(t, used, "final_ln.bias", {d});
    }
    layers_.resize(cfg_.n_layers);
    for (int i = 0; i < cfg_.n_layers; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      ofa_layer_weights& l = layers_[i];
      l.attn_qkv_w = take(t, used, p + "attn_qkv.weight", {3 * d, d});
      l.attn_qkv_b = take(t, used, p + "attn_qkv.bias", {3 * d});
      l.attn_out_w = take(t, used, p + "attn_out.weight", {d, d});
      l.attn_out_b = take(t, used, p + "attn_out.bias", {d});
      l.ln1_w = take(t, used, p + "ln1.weight", {d});
      l.ln1_b = take(t, used, p + "ln1.bias", {d});
      l.ln2_w = take(t, used, p + "ln2.weight", {d});
      l.ln2_b = take(t, used, p + "ln2.bias", {d});
      l.ff_in_w = take(t, used, p + "ff_in.weight", {f, d});
      l.ff_in_b = take(t, used, p + "ff_in.bias", {f});
      l.ff_out_w = take(t, used, p + "ff_out.weight", {d, f});
      l.ff_out_b = take(t, used, p + "ff_out.bias", {d});
    }
    model_.layers = layers_.data();
    if (r == 0) {
      model_.head_w = take(t, used, "head.weight", {H, N * d});
    } else {
      model_.head_a = take(t, used, "head.a", {r, N * d});
      model_.head_b_lr = take(t, used, "head.b", {H, r});
    }
    model_.head_bias = take(t, used, "head.bias", {H});
    if (cfg_.linear_path) {
      const size_t L = cfg_.seq_len;
      model_.linear_w = take(t, used, "linear.weight", {H, L});
      model_.linear_b = take(t, used, "linear.bias", {H});
    }
    model_.scaler_mean = take(t, used, "scaler.mean", {C});
    model_.scaler_std = take(t, used, "scaler.std", {C});
    for (size_t c = 0; c < C; ++c)
      if (!(model_.scaler_std[c] > 0.f)) value_error("scaler.std: must be > 0");
    for (auto item : t) {
      const std::string name = nb::cast<std::string>(nb::str(item.first));
      if (!used.count(name)) value_error("unexpected tensor '" + name + "' for this config");
    }
  }

  ofa_config cfg_;
  const ofa_kernels* inner_;
  ofa_kernels timed_{};
  int tile_series_ = 1, threads_ = 1;
  ofa_model model_{};
  std::vector<ofa_layer_weights> layers_;
  std::vector<AnyArray> keep_;
  size_t arena_bytes_ = 0;
  std::vector<AlignedBuffer> arenas_;
  std::mutex mutex_;
  GemmCounters last_;  // of the last run(), guarded by mutex_
};

// Checks dtype, shape and C-contiguity of a non-float tensor; returns data.
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

// The int8 engine: borrows the int8/int32 arrays of an int8 model file.
class EngineInt8 {
 public:
  EngineInt8(nb::dict config, nb::dict tensors, int tile_series, int threads, nb::object isa)
      : cfg_(parse_config(config)), kernels_(kernels_int8_for(isa)) {
    if (tile_series <= 0) value_error("tile_series must be >= 1");
    if (threads <= 0) value_error("threads must be >= 1");
    tile_series_ = tile_series;
    threads_ = threads;
    bind_tensors(tensors);
    const ofa_status vs = ofa_validate_model_int8(&model_);
    if (vs != OFA_OK) value_error(std::string("int8 model: ") + ofa_status_name(vs));
    if (ofa_arena_bytes_int8(&cfg_, tile_series_, &arena_bytes_) != OFA_OK)
      value_error("tile_series too large for this config");
    for (int i = 0; i < threads_; ++i) arenas_.emplace_back(arena_bytes_);
  }

  OutArray run(const AnyArray& x) {
    const int64_t L = cfg_.seq_len, C = cfg_.n_channels, H = cfg_.horizon;
    if (x.ndim() != 3) value_error("x: expected 3 dims (batch, seq_len, n_channels), got " + std::to_string(x.ndim()));
    const size_t batch = x.shape(0);
    if (batch == 0 || batch > (size_t)INT32_MAX / (size_t)C) value_error("x: batch must be >= 1");
    const float* xp = check_array("x", x, {batch, (size_t)L, (size_t)C});
    float* yp = new float[batch * H * C];
    nb::capsule owner(yp, [](void* p) noexcept { delete[] static_cast<float*>(p); });
    ofa_status st;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);
      st = forward_all(xp, (int32_t)batch, yp);
    }
    if (st != OFA_OK) value_error(std::string("forward failed: ") + ofa_status_name(st));
    return OutArray(yp, {batch, (size_t)H, (size_t)C}, owner);
  }

  nb::dict config() const { return config_to_dict(cfg_); }
  size_t arena_bytes() const { return arena_bytes_; }
  std::string simd() const { return kernels_->name; }
  int threads() const { return threads_; }

 private:
  static const ofa_kernels_int8* kernels_int8_for(const nb::object& isa) {
    if (isa.is_none()) return ofa_kernels_int8_best();
    const std::string name = nb::cast<std::string>(isa);
    const ofa_kernels_int8* k = ofa_kernels_int8_by_name(name.c_str());
    if (!k) value_error("int8 isa '" + name + "' is not built or not supported by this CPU");
    return k;
  }

  ofa_status forward_all(const float* x, int32_t batch, float* y) {
    const int32_t L = cfg_.seq_len, C = cfg_.n_channels, H = cfg_.horizon;
    const int n_workers = std::min<int>(threads_, batch);
    std::vector<ofa_status> statuses(n_workers, OFA_OK);
    auto work = [&](int w) {
      const int32_t b0 = (int32_t)((int64_t)batch * w / n_workers);
      const int32_t b1 = (int32_t)((int64_t)batch * (w + 1) / n_workers);
      statuses[w] = ofa_forward_int8(&model_, kernels_, tile_series_, x + (size_t)b0 * L * C, b1 - b0,
                                     y + (size_t)b0 * H * C, arenas_[w].data, arenas_[w].bytes);
    };
    ofa_host::run_workers(n_workers, work);
    for (ofa_status s : statuses)
      if (s != OFA_OK) return s;
    return OFA_OK;
  }

  AnyArray fetch(nb::dict& t, const std::string& name) {
    if (!t.contains(name.c_str())) value_error("missing tensor '" + name + "'");
    AnyArray a = to_array(name, t[name.c_str()]);
    keep_.push_back(a);  // zero-copy: hold the caller's array alive
    used_[name] = true;
    return a;
  }
  template <class T>
  const T* take(nb::dict& t, const std::string& name, const std::vector<size_t>& shape, const char* dt) {
    return check_typed<T>(name, fetch(t, name), shape, dt);
  }
  ofa_requant requant(nb::dict& t, const std::string& name, size_t channels) {
    AnyArray a = fetch(t, name);
    const size_t count = a.ndim() == 2 ? a.shape(1) : 0;
    if (count != 1 && count != channels)
      value_error(name + ": expected shape (3, 1) or (3, " + std::to_string(channels) + ")");
    ofa_requant q;
    q.table = check_typed<int32_t>(name, a, {3, count}, "int32");
    q.count = (int32_t)count;
    return q;
  }
  ofa_linear_int8 linear(nb::dict& t, const std::string& p, size_t n_out, size_t k, size_t rq_channels) {
    ofa_linear_int8 l{};
    l.w = take<int8_t>(t, p + ".weight", {n_out, k}, "int8");
    l.b = take<int32_t>(t, p + ".bias", {n_out}, "int32");
    if (rq_channels) l.out = requant(t, p + ".requant", rq_channels);
    return l;
  }
  ofa_layer_norm_int8 layer_norm(nb::dict& t, const std::string& p, size_t d) {
    ofa_layer_norm_int8 ln{};
    ln.eps = take<int64_t>(t, p + ".eps", {1}, "int64");
    ln.out = requant(t, p + ".requant", d);
    ln.narrow = requant(t, p + ".narrow", 1);
    return ln;
  }

  void bind_tensors(nb::dict& t) {
    const size_t d = cfg_.d_model, f = cfg_.d_ff, P = cfg_.patch_len, H = cfg_.horizon;
    const size_t N = ofa_n_patches(&cfg_), r = cfg_.head_rank, C = cfg_.n_channels;
    model_.config = cfg_;
    model_.patch_inv_scale = take<float>(t, "patch.inv_scale", {1}, "float32");
    model_.in_layer = linear(t, "in_layer", d, P, d);
    model_.pos = take<int32_t>(t, "pos", {N, d}, "int32");
    if (cfg_.layout == OFA_LAYOUT_BERT) model_.emb_ln = layer_norm(t, "emb_ln", d);
    else model_.final_ln = layer_norm(t, "final_ln", d);
    layers_.resize(cfg_.n_layers);
    for (int i = 0; i < cfg_.n_layers; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      ofa_layer_int8& l = layers_[i];
      l.qkv = linear(t, p + "attn_qkv", 3 * d, d, 3 * d);
      l.scores = requant(t, p + "scores.requant", 1);
      l.context = requant(t, p + "context.requant", 1);
      l.attn_out = linear(t, p + "attn_out", d, d, d);
      l.ln1 = layer_norm(t, p + "ln1", d);
      l.ln2 = layer_norm(t, p + "ln2", d);
      l.ff_in = linear(t, p + "ff_in", f, d, f);
      l.gelu_lut = take<int8_t>(t, p + "gelu.lut", {256}, "int8");
      l.ff_out = linear(t, p + "ff_out", d, f, d);
    }
    model_.layers = layers_.data();
    if (r == 0) {
      model_.head = linear(t, "head", H, N * d, 0);
    } else {
      model_.head_a = linear(t, "head.a", r, N * d, r);
      model_.head_b = linear(t, "head.b", H, r, 0);
    }
    model_.head_out_scale = take<float>(t, "head.out_scale", {H}, "float32");
    if (cfg_.linear_path) {
      const size_t L = cfg_.seq_len;
      model_.linear.w = take<int8_t>(t, "linear.weight", {H, L}, "int8");
      model_.linear_out_scale = take<float>(t, "linear.out_scale", {H}, "float32");
      model_.linear_bias = take<float>(t, "linear.bias", {H}, "float32");
    }
    model_.scaler_mean = check_array("scaler.mean", fetch(t, "scaler.mean"), {C});
    model_.scaler_std = check_array("scaler.std", fetch(t, "scaler.std"), {C});
    for (size_t c = 0; c < C; ++c)
      if (!(model_.scaler_std[c] > 0.f)) value_error("scaler.std: must be > 0");
    for (auto item : t) {
      const std::string name = nb::cast<std::string>(nb::str(item.first));
      if (!used_.count(name)) value_error("unexpected tensor '" + name + "' for this config");
    }
  }

  ofa_config cfg_;
  const ofa_kernels_int8* kernels_;
  int tile_series_ = 1, threads_ = 1;
  ofa_model_int8 model_{};
  std::vector<ofa_layer_int8> layers_;
  std::vector<AnyArray> keep_;
  std::map<std::string, bool> used_;
  size_t arena_bytes_ = 0;
  std::vector<AlignedBuffer> arenas_;
  std::mutex mutex_;
};

// C = A W^T + bias with the selected ISA; returns (C, seconds per call).
std::tuple<OutArray, double> gemm_timed(const AnyArray& a, const AnyArray& w,
                                        nb::object bias, nb::object isa, int repeat) {
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
  const ofa_kernels* k = kernels_for(isa);
  AlignedBuffer scratch(ofa_gemm_scratch_floats((int32_t)K, (int32_t)N) * sizeof(float));
  float* cp = new float[M * N];
  nb::capsule owner(cp, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  const ofa_gemm_dims d = {(int32_t)M, (int32_t)N, (int32_t)K, (int32_t)K, (int32_t)K, (int32_t)N, 0};
  double secs;
  {
    nb::gil_scoped_release release;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < repeat; ++i)
      k->gemm(&d, ap, wp, bp, cp, reinterpret_cast<float*>(scratch.data));
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeat;
  }
  return {OutArray(cp, {M, N}, owner), secs};
}

}  // namespace

NB_MODULE(_engine, m) {
  m.doc() = "ofa C++ inference engine (fp32 and int8)";

  nb::class_<Engine>(m, "Engine")
      .def(nb::init<nb::dict, nb::dict, int, int, nb::object>(), nb::arg("config"),
           nb::arg("tensors"), nb::arg("tile_series") = 16, nb::arg("threads") = 1,
           nb::arg("isa") = nb::none(),
           "Borrow float32 C-contiguous tensors (zero-copy) and plan the arena.")
      .def("run", &Engine::run, nb::arg("x"),
           "x: float32 (B, seq_len, n_channels) -> float32 (B, horizon, n_channels)")
      .def("gemm_stats", &Engine::gemm_stats,
           "GEMM flops / seconds / calls of the last run (seconds summed over threads)")
      .def_prop_ro("config", &Engine::config)
      .def_prop_ro("arena_bytes", &Engine::arena_bytes)
      .def_prop_ro("simd", &Engine::simd)
      .def_prop_ro("tile_series", &Engine::tile_series)
      .def_prop_ro("threads", &Engine::threads);

  nb::class_<EngineInt8>(m, "EngineInt8")
      .def(nb::init<nb::dict, nb::dict, int, int, nb::object>(), nb::arg("config"),
           nb::arg("tensors"), nb::arg("tile_series") = 16, nb::arg("threads") = 1,
           nb::arg("isa") = nb::none(),
           "Borrow an int8 model's tensors (zero-copy), validate its quantisation and plan the arena.")
      .def("run", &EngineInt8::run, nb::arg("x"),
           "x: float32 (B, seq_len, n_channels) -> float32 (B, horizon, n_channels)")
      .def_prop_ro("config", &EngineInt8::config)
      .def_prop_ro("arena_bytes", &EngineInt8::arena_bytes)
      .def_prop_ro("simd", &EngineInt8::simd)
      .def_prop_ro("threads", &EngineInt8::threads);

  m.def("available_int8_isas", [] {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avx512vnni"})
      if (ofa_kernels_int8_by_name(n)) out.push_back(n);
    return out;
  });
  m.def("gemm_s8",
        [](const AnyArray& a, const AnyArray& w, nb::object isa) {
          if (a.ndim() != 2 || w.ndim() != 2) value_error("gemm_s8: a and w must be 2-D");
          const size_t M = a.shape(0), K = a.shape(1), N = w.shape(0);
          if (M == 0 || N == 0 || K == 0 || K > OFA_GEMM_S8_MAX_K || M > INT32_MAX || N > INT32_MAX)
            value_error("gemm_s8: empty or too large");
          const int8_t* ap = check_typed<int8_t>("a", a, {M, K}, "int8");
          const int8_t* wp = check_typed<int8_t>("w", w, {N, K}, "int8");
          const ofa_kernels_int8* k = ofa_kernels_int8_best();
          if (!isa.is_none()) {
            k = ofa_kernels_int8_by_name(nb::cast<std::string>(isa).c_str());
            if (!k) value_error("int8 isa not built or not supported by this CPU");
          }
          int32_t* cp = new int32_t[M * N];
          nb::capsule owner(cp, [](void* p) noexcept { delete[] static_cast<int32_t*>(p); });
          const ofa_gemm_s8_dims d = {(int32_t)M, (int32_t)N, (int32_t)K, (int32_t)K, (int32_t)K, (int32_t)N};
          AlignedBuffer scratch(ofa_gemm_s8_scratch_bytes((int32_t)K));
          k->gemm_s8(&d, ap, wp, nullptr, cp, scratch.data);
          return nb::ndarray<nb::numpy, int32_t>(cp, {M, N}, owner);
        },
        nb::arg("a"), nb::arg("w"), nb::arg("isa") = nb::none(),
        "C = a @ w.T in exact int32 with the int8 GEMM (a: (M,K) int8, w: (N,K) int8).");

  m.def("arena_bytes",
        [](nb::dict config, int tile_series) {
          const ofa_config c = parse_config(config);
          size_t bytes = 0;
          const ofa_status st = ofa_arena_bytes(&c, tile_series, &bytes);
          if (st != OFA_OK) value_error(std::string("arena_bytes: ") + ofa_status_name(st));
          return bytes;
        },
        nb::arg("config"), nb::arg("tile_series") = 16);
  m.def("arena_bytes_int8",
        [](nb::dict config, int tile_series) {
          const ofa_config c = parse_config(config);
          size_t bytes = 0;
          const ofa_status st = ofa_arena_bytes_int8(&c, tile_series, &bytes);
          if (st != OFA_OK) value_error(std::string("arena_bytes_int8: ") + ofa_status_name(st));
          return bytes;
        },
        nb::arg("config"), nb::arg("tile_series") = 16);

  m.def("gemm",
        [](const AnyArray& a, const AnyArray& w, nb::object bias, nb::object isa) {
          return std::get<0>(gemm_timed(a, w, bias, isa, 1));
        },
        nb::arg("a"), nb::arg("w"), nb::arg("bias") = nb::none(), nb::arg("isa") = nb::none(),
        "C = a @ w.T + bias with the engine's GEMM (a: (M,K), w: (N,K)).");
  m.def("gemm_timed", &gemm_timed, nb::arg("a"), nb::arg("w"), nb::arg("bias") = nb::none(),
        nb::arg("isa") = nb::none(), nb::arg("repeat") = 10,
        "Like gemm, plus mean seconds per call over `repeat` runs.");
  m.def("best_isa", [] { return std::string(ofa_kernels_best()->name); });
  m.def("available_isas", [] {
    std::vector<std::string> out;
    for (const char* n : {"scalar", "avx2", "avx512"})
      if (ofa_kernels_by_name(n)) out.push_back(n);
    return out;
  });
}
