// anomaly_binding.cpp - ofa._engine's anomaly entry points (anomaly_binding.h); checks, then the C core.
#include "python/anomaly_binding.h"

#include <cmath>
#include <string>
#include <vector>

namespace ofa_py {
namespace {

using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;

[[noreturn]] void value_error(const std::string& msg) { throw nb::value_error(msg.c_str()); }

nb::object need(const nb::dict& d, const char* where, const char* key) {
  if (!d.contains(key)) value_error(std::string(where) + " is missing key '" + key + "'");
  return d[key];
}

int32_t int_of(const nb::dict& d, const char* where, const char* key) {
  nb::object v = need(d, where, key);
  long long x = 0;
  if (!nb::isinstance<nb::int_>(v) || nb::isinstance<nb::bool_>(v) || !nb::try_cast<long long>(v, x) ||
      x < INT32_MIN || x > INT32_MAX)
    value_error(std::string(where) + "['" + key + "'] must be a 32-bit int");
  return (int32_t)x;
}

double float_of(const nb::dict& d, const char* where, const char* key) {
  nb::object v = need(d, where, key);
  double x = 0;
  if (nb::isinstance<nb::bool_>(v) || !nb::try_cast<double>(v, x)) value_error(std::string(where) + "['" + key + "'] must be a number");
  return x;
}

ofa_scorer_config scorer_config(const nb::dict& d) {
  const char* w = "scorer config";
  ofa_scorer_config c{};
  c.error_window = int_of(d, w, "error_window");
  c.short_window = int_of(d, w, "short_window");
  c.long_window = int_of(d, w, "long_window");
  c.suppress_rows = int_of(d, w, "suppress_rows");
  nb::object ry = need(d, w, "red_yellow");
  if (!nb::isinstance<nb::bool_>(ry)) value_error("scorer config['red_yellow'] must be a bool");
  c.red_yellow = nb::cast<bool>(ry) ? 1 : 0;
  c.z_offset = float_of(d, w, "z_offset");
  c.spatial_tolerance = float_of(d, w, "spatial_tolerance");
  c.suppress_threshold = float_of(d, w, "suppress_threshold");
  c.suppress_factor = float_of(d, w, "suppress_factor");
  if (ofa_validate_scorer_config(&c) != OFA_OK)
    value_error("scorer config: a setting is out of range (windows >= 1, suppress_rows >= 0, z_offset and "
                "spatial_tolerance >= 0, suppress_threshold in (0, 1], suppress_factor in [0, 1])");
  return c;
}

const float* values_of(const AnyArray& v, size_t* n) {
  if (v.dtype() != nb::dtype<float>() || v.ndim() != 1) value_error("values: expected a float32 1-D array");
  if (v.shape(0) > 1 && v.stride(0) != 1) value_error("values: must be contiguous");
  *n = v.shape(0);
  const float* p = static_cast<const float*>(v.data());
  for (size_t i = 0; i < *n; ++i)
    if (!std::isfinite(p[i])) value_error("values: row " + std::to_string(i) + " is not finite");
  return p;
}

Scores new_scores(size_t n, double** out) {
  *out = new double[n ? n : 1];
  nb::capsule owner(*out, [](void* p) noexcept { delete[] static_cast<double*>(p); });
  return Scores(*out, {n}, owner);
}

// The scorer alone over (x, f) pairs (f NaN: no forecast): what Detector's Scorer.step computes.
Scores scorer_scores(const AnyArray& values, const AnyArray& forecasts, nb::dict config) {
  const ofa_scorer_config c = scorer_config(config);
  if (values.dtype() != nb::dtype<double>() || forecasts.dtype() != nb::dtype<double>() || values.ndim() != 1 ||
      forecasts.ndim() != 1 || values.shape(0) != forecasts.shape(0))
    value_error("scorer_scores: values and forecasts must be float64 1-D arrays of one length");
  if ((values.shape(0) > 1 && values.stride(0) != 1) || (forecasts.shape(0) > 1 && forecasts.stride(0) != 1))
    value_error("scorer_scores: arrays must be contiguous");
  const size_t n = values.shape(0);
  const double* x = static_cast<const double*>(values.data());
  const double* f = static_cast<const double*>(forecasts.data());
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) value_error("values: row " + std::to_string(i) + " is not finite");
  std::vector<float> mem(ofa_scorer_bytes(&c) / sizeof(float));
  ofa_scorer s;
  if (ofa_scorer_init(&s, &c, mem.data(), mem.size() * sizeof(float)) != OFA_OK) value_error("scorer init failed");
  double* out;
  Scores result = new_scores(n, &out);
  for (size_t i = 0; i < n; ++i) out[i] = ofa_scorer_step(&s, x[i], f[i]);
  return result;
}

}  // namespace

ofa_stream_config stream_config(const nb::dict& d, int32_t seq_len, int32_t horizon) {
  ofa_stream_config c{};
  c.seq_len = seq_len;
  c.horizon = horizon;
  c.stride = int_of(d, "stream config", "stride");
  c.train_rows = int_of(d, "stream config", "train_rows");
  nb::object s = need(d, "stream config", "scorer");
  if (!nb::isinstance<nb::dict>(s)) value_error("stream config['scorer'] must be a dict");
  c.scorer = scorer_config(nb::cast<nb::dict>(s));
  if (c.stride < 1 || c.stride > horizon)
    value_error("stream config: stride must be between 1 and the model's horizon (" + std::to_string(horizon) + ")");
  if (c.train_rows < seq_len)
    value_error("stream config: train_rows must be at least the model's seq_len (" + std::to_string(seq_len) + ")");
  if (ofa_validate_stream_config(&c) != OFA_OK) value_error("stream config: invalid");
  return c;
}

Scores run_stream(const ofa_stream_config& config, const AnyArray& values, ofa_forecast_fn forecast_fn, void* ctx) {
  size_t n = 0;
  const float* x = values_of(values, &n);
  std::vector<float> mem(ofa_stream_bytes(&config) / sizeof(float) + 1);
  ofa_stream s;
  if (ofa_stream_init(&s, &config, mem.data(), mem.size() * sizeof(float)) != OFA_OK) value_error("stream init failed");
  double* out;
  Scores result = new_scores(n, &out);
  ofa_status st = OFA_OK;
  size_t i = 0;
  {
    nb::gil_scoped_release release;
    for (; i < n && st == OFA_OK; ++i) st = ofa_stream_push(&s, x[i], forecast_fn, ctx, &out[i]);
  }
  if (st != OFA_OK) value_error("row " + std::to_string(i - 1) + ": forecast failed: " + ofa_status_name(st));
  return result;
}

void bind_anomaly(nb::module_& m) {
  m.def("scorer_scores", &scorer_scores, nb::arg("values"), nb::arg("forecasts"), nb::arg("config"),
        "The anomaly scorer alone (ofa_anomaly.h) over float64 values and their forecasts (NaN: none).");
  m.def("stream_bytes",
        [](nb::dict config, int32_t seq_len, int32_t horizon) {
          const ofa_stream_config c = stream_config(config, seq_len, horizon);
          return ofa_stream_bytes(&c);
        },
        nb::arg("config"), nb::arg("seq_len"), nb::arg("horizon"),
        "Bytes of state an ofa_stream needs (the firmware's anomaly arena on top of the forward's).");
}

}  // namespace ofa_py
