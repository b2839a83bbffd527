/* main_anomaly.c - the firmware's anomaly mode: stream the samples of ofa_stream.h one at a time through
 * ofa_stream (csrc/ofa/ofa_anomaly.h), the int8 engine forecasting, in one static arena; compare every
 * score bit for bit with the host engine's, and count the instructions each sample takes.
 *
 * Exit status: 0 every score bit-exact, 1 a difference, 2 the engine refused the model, arena or stream.
 * The last lines are machine-readable ("OFA_RESULT key=value ..."); bench/firmware.py parses them. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "demo_util.h"
#include "ofa/ofa_anomaly.h"
#include "ofa/ofa_int8.h"
#include "semihost.h"
#define OFA_FLASH_ALIGN __attribute__((aligned(16), section(".ofa_weights")))
#include "ofa_model.h"
#include "ofa_stream.h"

/* One arena: the forward's scratch, then the stream's state (rings, window, forecast). */
#define STATE_OFFSET ((OFA_ARENA_BYTES + 7u) & ~7u)
static unsigned char arena[STATE_OFFSET + OFA_STREAM_STATE_BYTES] __attribute__((aligned(OFA_ARENA_ALIGN)));

static uint64_t forecast_instructions; /* of the forecasts made during the current push */

static ofa_status forecast(void* ctx, const float* window, float* out) {
  (void)ctx;
  const uint64_t t0 = counter_ticks();
  const ofa_status st = ofa_forward_int8_validated(&ofa_firmware_model, NULL, OFA_TILE_SERIES, window, 1, out,
                                                   arena, OFA_ARENA_BYTES);
  forecast_instructions += ticks_to_instructions(counter_ticks() - t0);
  return st;
}

int main(void) {
  sh_buf b = {{0}, 0};
  sh_str(&b, "ofa firmware anomaly demo: " OFA_TARGET_NAME ", model " OFA_MODEL_NAME);
  sh_line(&b);

  const int refused = demo_check_model(&ofa_firmware_model, OFA_TILE_SERIES, OFA_ARENA_BYTES);
  if (refused) return refused;
  if (ofa_stream_bytes(&ofa_stream_settings) != OFA_STREAM_STATE_BYTES) {
    sh_str_u64(&b, "FAIL: the target's stream wants ", ofa_stream_bytes(&ofa_stream_settings));
    sh_str_u64(&b, " state bytes, the header says ", OFA_STREAM_STATE_BYTES);
    sh_line(&b);
    return 2;
  }
  memset(arena, 0xA5, sizeof arena);
  ofa_stream stream;
  ofa_status st = ofa_stream_init(&stream, &ofa_stream_settings, arena + STATE_OFFSET, OFA_STREAM_STATE_BYTES);
  if (st != OFA_OK) return demo_refuse("stream", st);

  const uint64_t known = demo_counter_check();
  demo_paint_stack();
  uint32_t mismatches = 0, first_mismatch = 0;
  uint64_t total = 0, forecast_total = 0, push_max = 0, scorer_max = 0, scored = 0;
  double score_max = 0.0;
  for (uint32_t t = 0; t < OFA_STREAM_ROWS; ++t) {
    double score;
    forecast_instructions = 0;
    const uint64_t t0 = counter_ticks();
    st = ofa_stream_push(&stream, ofa_stream_x[t], forecast, NULL, &score);
    const uint64_t used = ticks_to_instructions(counter_ticks() - t0);
    if (st != OFA_OK) return demo_refuse("push", st);
    total += used;
    forecast_total += forecast_instructions;
    if (used > push_max) push_max = used;
    /* What the scorer and the schedule take beyond the forecast (a sample with a forecast due). */
    const uint64_t rest = used > forecast_instructions ? used - forecast_instructions : 0;
    if (rest > scorer_max) scorer_max = rest;
    if ((int64_t)t >= ofa_stream_settings.train_rows) ++scored;
    if (score > score_max) score_max = score;
    uint64_t bits;
    memcpy(&bits, &score, sizeof bits);
    if (bits != ofa_stream_score_bits[t]) {
      if (mismatches == 0) first_mismatch = t;
      ++mismatches;
    }
  }
  const size_t arena_used = demo_high_water(arena, STATE_OFFSET, 0xA5);
  const int pass = mismatches == 0;
  if (pass) {
    sh_str_u64(&b, "PASS: ", OFA_STREAM_ROWS);
    sh_str(&b, " scores bit-exact with the host");
  } else {
    sh_str_u64(&b, "FAIL: ", mismatches);
    sh_str_u64(&b, " scores differ from the host's, the first at row ", first_mismatch);
  }
  sh_str_u64(&b, "; ", stream.forecasts);
  sh_str_u64(&b, " forecasts; forward arena ", arena_used);
  sh_str_u64(&b, " of ", OFA_ARENA_BYTES);
  sh_str_u64(&b, " bytes used, stream state ", OFA_STREAM_STATE_BYTES);
  sh_str_u64(&b, "; stack peak ", demo_stack_high_water());
  sh_line(&b);
  sh_str(&b, "OFA_RESULT target=" OFA_TARGET_NAME " mode=anomaly");
  const sh_field result[] = {{"pass", (uint64_t)pass}, {"rows", OFA_STREAM_ROWS}, {"mismatches", mismatches},
                             {"scored_rows", scored}, {"forecasts", (uint64_t)stream.forecasts}};
  sh_fields(&b, result, 5);
  sh_str(&b, " max_score=");
  sh_f32(&b, (float)score_max);
  sh_line(&b);
  sh_str(&b, "OFA_RESULT");
  const sh_field sizes[] = {{"arena_planned", OFA_ARENA_BYTES}, {"stream_state", OFA_STREAM_STATE_BYTES},
                            {"stack_peak", demo_stack_high_water()}, {"counter_check", known}};
  sh_fields(&b, sizes, 4);
  sh_line(&b);
  sh_str(&b, "OFA_RESULT");
  const sh_field counts[] = {{"instructions", total}, {"per_sample", total / OFA_STREAM_ROWS},
                             {"per_forecast", stream.forecasts ? forecast_total / (uint64_t)stream.forecasts : 0},
                             {"scorer_per_sample", (total - forecast_total) / OFA_STREAM_ROWS},
                             {"scorer_max", scorer_max}, {"push_max", push_max}};
  sh_fields(&b, counts, 6);
  sh_line(&b);
  return pass ? 0 : 1;
}
