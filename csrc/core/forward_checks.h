// The entry checks that ofa_forward and ofa_forward_int8 share: arguments,
// batch and arena. Each scheme's own model checks are its validator
// (ofa_validate_model / ofa_validate_model_int8), which the *_validated entry
// points leave to the caller's load step, as TFLite Micro does in Prepare.
#pragma once
#include <stdint.h>

#include "ofa/ofa.h"

namespace ofa_detail {

inline ofa_status check_pointers(const void* model, const float* x, const float* y, const void* arena) {
  return (!model || !x || !y || !arena) ? OFA_ERR_NULL_ARG : OFA_OK;
}

inline ofa_status check_batch(const ofa_config& c, int32_t batch, int32_t tile_series) {
  if (batch <= 0 || tile_series <= 0) return OFA_ERR_BAD_BATCH;
  if ((int64_t)batch * c.n_channels > INT32_MAX) return OFA_ERR_BAD_BATCH;
  return OFA_OK;
}

inline ofa_status check_arena(const void* arena, size_t have, size_t need) {
  if (have < need) return OFA_ERR_ARENA_TOO_SMALL;
  if ((uintptr_t)arena % OFA_ARENA_ALIGN != 0) return OFA_ERR_ARENA_MISALIGNED;
  return OFA_OK;
}

// The series a call runs: [first, first + count) of the batch's batch * C
// (series g is channel g % C of window g / C). A host splits a batch, even a
// single window, over threads by giving each its own range.
inline ofa_status check_series(const ofa_config& c, int32_t batch, int32_t first, int32_t count) {
  const int64_t total = (int64_t)batch * c.n_channels;
  return (first < 0 || count <= 0 || (int64_t)first + count > total) ? OFA_ERR_BAD_BATCH : OFA_OK;
}

// The windows a classify call runs: [first, first + count) of the batch.
inline ofa_status check_windows(int32_t batch, int32_t first, int32_t count) {
  return (first < 0 || count <= 0 || (int64_t)first + count > batch) ? OFA_ERR_BAD_BATCH : OFA_OK;
}

// One call's entry checks, in order: the pointers, the model's task, the batch against the tile, and the
// range the call runs (a forecaster's series, a classifier's windows). Each scheme's entry points then
// plan their own arena.
template <class Model>
inline ofa_status check_call(const Model* model, int32_t task, const float* x, const float* out, const void* arena,
                             int32_t batch, int32_t tile_series, int32_t first, int32_t count) {
  ofa_status st = check_pointers(model, x, out, arena);
  if (st != OFA_OK) return st;
  const ofa_config& c = model->config;
  if (c.task != task) return OFA_ERR_BAD_CONFIG;
  if ((st = check_batch(c, batch, tile_series)) != OFA_OK) return st;
  return task == OFA_TASK_CLASSIFY ? check_windows(batch, first, count) : check_series(c, batch, first, count);
}

// Every series of the batch, or 0 (which check_series refuses) when model or
// batch is bad: the checks then report those in their usual order.
inline int32_t all_series(const void* model_or_null, int32_t batch, int32_t n_channels) {
  const int64_t total = model_or_null && batch > 0 ? (int64_t)batch * n_channels : 0;
  return total > INT32_MAX ? 0 : (int32_t)total;
}
template <class Model>
inline int32_t all_series(const Model* model, int32_t batch) {
  return model ? all_series(model, batch, model->config.n_channels) : 0;
}

// Runs `tile` over series [first, first + count), tile_series at a time (the
// last tile may be shorter): tile.n_series is set before each
// run_tile(tile, x, g, y).
template <class Tile, class RunTile>
void for_each_tile(Tile& tile, int32_t first, int32_t count, int32_t tile_series, const float* x, float* y,
                   RunTile run_tile) {
  const int32_t end = first + count;
  for (int32_t g = first; g < end; g += tile_series) {
    tile.n_series = end - g < tile_series ? end - g : tile_series;
    run_tile(tile, x, g, y);
  }
}

// A classifier's tiles: windows [first, first + count), as many whole windows
// a tile as ofa_tile_series allows; tile.n_series (windows x
// ofa_window_sequences) is set before each run_tile(tile, x, first window, logits).
template <class Tile, class RunTile>
void for_each_window_tile(Tile& tile, const ofa_config& c, int32_t first, int32_t count, int32_t tile_series,
                          const float* x, float* logits, RunTile run_tile) {
  const int32_t sequences = ofa_window_sequences(&c);
  const int32_t per_tile = ofa_tile_series(&c, tile_series) / sequences, end = first + count;
  for (int32_t w = first; w < end; w += per_tile) {
    tile.n_series = (end - w < per_tile ? end - w : per_tile) * sequences;
    run_tile(tile, x, w, logits);
  }
}

// The checked entry point: the arguments, then the whole model, then the
// validated forward pass.
template <class Model, class Kernels>
ofa_status validate_then_forward(ofa_status (*validate)(const Model*),
                                 ofa_status (*forward)(const Model*, const Kernels*, int32_t, const float*, int32_t,
                                                       float*, void*, size_t),
                                 const Model* model, const Kernels* kernels, int32_t tile_series, const float* x,
                                 int32_t batch, float* y, void* arena, size_t arena_bytes) {
  ofa_status st = check_pointers(model, x, y, arena);
  if (st != OFA_OK) return st;
  if ((st = validate(model)) != OFA_OK) return st;
  return forward(model, kernels, tile_series, x, batch, y, arena, arena_bytes);
}

}  // namespace ofa_detail
