/* ofa_anomaly.h - streaming anomaly scores on top of any forecaster: one sample in, one score out.
 *
 * The algorithm is python/ofa/anomaly/detector.py's (its docstring owns the steps, their meaning and
 * the defaults); this is its port for the firmware and the host engine, in fixed memory:
 *   ofa_scorer: steps 1-8 of the per-sample arithmetic, given a value and its forecast;
 *   ofa_stream: the schedule around it, as Detector runs it with retrain "none": a ring of the last
 *               seq_len samples, a forecast of the next `horizon` samples every `stride` samples made
 *               by the caller's ofa_forecast_fn (the int8 or fp32 engine), scores 0 before train_rows.
 * The arithmetic is IEEE double with its own exp/log/erfc (anomaly/dmath.h), so the host and a
 * Cortex-M give the same bits. Rings hold float32 (half the memory); their sums are double and are
 * recomputed from the ring each time its write index wraps. All memory is the caller's, sized by
 * ofa_scorer_bytes / ofa_stream_bytes: no heap. */
#ifndef OFA_OFA_ANOMALY_H
#define OFA_OFA_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#include "ofa.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ofa_scorer_config {
  int32_t error_window;      /* E: errors the z-score is taken over */
  int32_t short_window;      /* S: raw scores averaged */
  int32_t long_window;       /* G: averages the likelihood is taken over */
  int32_t suppress_rows;     /* K: rows damped after a detection; 0 = off */
  int32_t red_yellow;        /* 1: Numenta's filter of repeated red values */
  double z_offset;           /* z0 >= 0 */
  double spatial_tolerance;  /* TOL >= 0; 0 = off */
  double suppress_threshold; /* TAU in (0, 1] */
  double suppress_factor;    /* RHO in [0, 1] */
} ofa_scorer_config;

typedef struct ofa_ring {
  float* buf;
  int32_t size, index, count;
  double s1, s2; /* running sum and sum of squares of buf[0..count) */
} ofa_ring;

typedef struct ofa_scorer {
  ofa_scorer_config config;
  ofa_ring errors, raw, averages;
  double low, high; /* the range of every value seen (valid once seen_value) */
  int32_t seen_value;
  int32_t suppress_left;
  int32_t previous_red;
} ofa_scorer;

/* OFA_ERR_BAD_CONFIG when a setting is out of its range (windows >= 1, the rest as above). */
ofa_status ofa_validate_scorer_config(const ofa_scorer_config* config);
/* Bytes of ring storage (4 (E + S + G)), 0 for an invalid config. */
size_t ofa_scorer_bytes(const ofa_scorer_config* config);
/* mem: at least ofa_scorer_bytes, 4-byte aligned; the scorer points into it. */
ofa_status ofa_scorer_init(ofa_scorer* scorer, const ofa_scorer_config* config, void* mem, size_t bytes);
/* A sample without a forecast: only the value range learns it. */
void ofa_scorer_observe(ofa_scorer* scorer, double x);
/* The score in [0, 1] of value x given its forecast f (NaN f: no forecast, the same as observe, 0). */
double ofa_scorer_step(ofa_scorer* scorer, double x, double f);

/* forecast[0..horizon) of the samples after window[0..seq_len) (oldest first), in the data's units. */
typedef ofa_status (*ofa_forecast_fn)(void* ctx, const float* window, float* forecast);

typedef struct ofa_stream_config {
  int32_t seq_len;    /* the forecaster's window */
  int32_t horizon;    /* steps each forecast covers */
  int32_t stride;     /* samples between forecasts, 1..horizon */
  int32_t train_rows; /* rows the model was trained on (>= seq_len): their scores are 0 */
  ofa_scorer_config scorer;
} ofa_stream_config;

typedef struct ofa_stream {
  ofa_stream_config config;
  ofa_scorer scorer;
  float* history;  /* ring of the last seq_len samples */
  float* window;   /* history in time order, for the forecaster */
  float* forecast; /* horizon values from `origin` */
  int64_t rows;    /* samples seen */
  int64_t origin;  /* the row the current forecast starts at; -1: none yet */
  int64_t forecasts; /* forecaster calls so far */
} ofa_stream;

ofa_status ofa_validate_stream_config(const ofa_stream_config* config);
/* Bytes of memory the stream needs: the scorer's rings, then 2 seq_len + horizon floats; 0 if invalid. */
size_t ofa_stream_bytes(const ofa_stream_config* config);
ofa_status ofa_stream_init(ofa_stream* stream, const ofa_stream_config* config, void* mem, size_t bytes);
/* The next sample: calls forecast_fn when a new forecast is due, then writes the sample's score. On
 * a forecaster error that status is returned, *score is not written and the sample is not consumed
 * (pushing it again forecasts again). A non-finite x is refused (OFA_ERR_BAD_TENSOR) the same way. */
ofa_status ofa_stream_push(ofa_stream* stream, float x, ofa_forecast_fn forecast_fn, void* ctx, double* score);

#ifdef __cplusplus
}
#endif

#endif
