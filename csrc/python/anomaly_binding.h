// anomaly_binding.h - the Python side of ofa_anomaly.h: config dicts in, score arrays out.
#ifndef OFA_PYTHON_ANOMALY_BINDING_H
#define OFA_PYTHON_ANOMALY_BINDING_H

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "ofa/ofa_anomaly.h"

namespace ofa_py {

namespace nb = nanobind;
using Scores = nb::ndarray<nb::numpy, double>;

// config: the forecaster's window comes from the model; stride, train_rows and "scorer" (a dict of
// ScorerConfig's fields, python/ofa/anomaly/detector.py) from the caller.
ofa_stream_config stream_config(const nb::dict& config, int32_t seq_len, int32_t horizon);
// values: float32 (n,) -> the score of every sample, pushed one at a time through ofa_stream.
Scores run_stream(const ofa_stream_config& config, const nb::ndarray<nb::ro, nb::device::cpu>& values,
                  ofa_forecast_fn forecast_fn, void* ctx);
void bind_anomaly(nb::module_& m);

}  // namespace ofa_py

#endif
