// stream.cpp - the forecast schedule around the scorer (ofa_anomaly.h): Detector with retrain "none".
//
// Row t: before seq_len samples there is no window, so the value only enters the scorer's range. From
// then on f_t comes from the most recent forecast covering t: a new one is made from the seq_len samples
// before t when none is held, when stride rows have passed since its origin, and at t = train_rows (the
// host detector trains there and starts its forecasts afresh). Rows before train_rows warm the scorer
// up with the model's in-sample forecasts; their scores are 0, as NAB's probationary period wants.
#include "ofa/ofa_anomaly.h"

namespace {

size_t floats_after_scorer(const ofa_stream_config* c) { return 2 * (size_t)c->seq_len + (size_t)c->horizon; }

bool finite_f(float v) { return v == v && v - v == 0.f; }

}  // namespace

extern "C" {

ofa_status ofa_validate_stream_config(const ofa_stream_config* c) {
  if (!c) return OFA_ERR_NULL_ARG;
  if (c->seq_len < 1 || c->horizon < 1 || c->stride < 1 || c->stride > c->horizon || c->train_rows < c->seq_len ||
      c->seq_len > (1 << 24) || c->horizon > (1 << 24))
    return OFA_ERR_BAD_CONFIG;
  return ofa_validate_scorer_config(&c->scorer);
}

size_t ofa_stream_bytes(const ofa_stream_config* c) {
  if (ofa_validate_stream_config(c) != OFA_OK) return 0;
  return ofa_scorer_bytes(&c->scorer) + sizeof(float) * floats_after_scorer(c);
}

ofa_status ofa_stream_init(ofa_stream* s, const ofa_stream_config* c, void* mem, size_t bytes) {
  if (!s || !c || !mem) return OFA_ERR_NULL_ARG;
  const ofa_status st = ofa_validate_stream_config(c);
  if (st != OFA_OK) return st;
  if (bytes < ofa_stream_bytes(c)) return OFA_ERR_ARENA_TOO_SMALL;
  const size_t scorer_bytes = ofa_scorer_bytes(&c->scorer);
  const ofa_status si = ofa_scorer_init(&s->scorer, &c->scorer, mem, scorer_bytes);
  if (si != OFA_OK) return si;
  float* p = reinterpret_cast<float*>(static_cast<unsigned char*>(mem) + scorer_bytes);
  s->config = *c;
  s->history = p;
  s->window = p + c->seq_len;
  s->forecast = p + 2 * c->seq_len;
  for (size_t i = 0; i < floats_after_scorer(c); ++i) p[i] = 0.f;
  s->rows = 0;
  s->origin = -1;
  s->forecasts = 0;
  return OFA_OK;
}

ofa_status ofa_stream_push(ofa_stream* s, float x, ofa_forecast_fn forecast_fn, void* ctx, double* score) {
  if (!s || !forecast_fn || !score) return OFA_ERR_NULL_ARG;
  if (!finite_f(x)) return OFA_ERR_BAD_TENSOR;
  const ofa_stream_config& c = s->config;
  const int64_t t = s->rows;
  double out = 0.0;
  if (t < c.seq_len) {
    ofa_scorer_observe(&s->scorer, (double)x);
  } else {
    if (s->origin < 0 || t - s->origin >= c.stride || t == c.train_rows) {
      // The last seq_len samples, oldest first: the ring's write position holds the oldest.
      const int32_t start = (int32_t)(t % c.seq_len);
      for (int32_t i = 0; i < c.seq_len; ++i) {
        const int32_t j = start + i;
        s->window[i] = s->history[j < c.seq_len ? j : j - c.seq_len];
      }
      const ofa_status st = forecast_fn(ctx, s->window, s->forecast);
      if (st != OFA_OK) {
        s->origin = -1;  // the forecast buffer may be half written: forecast again on the next push
        return st;
      }
      s->origin = t;
      ++s->forecasts;
    }
    const double f = (double)s->forecast[t - s->origin];
    const double v = ofa_scorer_step(&s->scorer, (double)x, f);
    out = t < c.train_rows ? 0.0 : v;
  }
  s->history[t % c.seq_len] = x;
  s->rows = t + 1;
  *score = out;
  return OFA_OK;
}

}  // extern "C"
