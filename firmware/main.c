/* main.c - the firmware demo: run the golden windows through the int8 engine in one static arena,
 * compare bit for bit with the host engine's outputs, and report through semihosting.
 *
 * Exit status: 0 all windows bit-exact, 1 a difference, 2 the engine refused the model or arena.
 * The last line is machine-readable ("OFA_RESULT key=value ..."); bench/firmware.py parses it. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "demo_util.h"
#include "ofa/ofa_int8.h"
#include "ofa_golden.h"
/* The weights in a section of their own, which the link script places (link.ld.in). */
#define OFA_FLASH_ALIGN __attribute__((aligned(16), section(".ofa_weights")))
#include "ofa_model.h"
#include "semihost.h"
#if OFA_PROFILE
#include "profile.h"
#define OFA_DEMO_KERNELS (&ofa_kernels_int8_profiled)
#else
#define OFA_DEMO_KERNELS NULL /* the portable kernels */
#endif

static unsigned char arena[OFA_ARENA_BYTES] __attribute__((aligned(OFA_ARENA_ALIGN)));
static float forecast[OFA_HORIZON * OFA_N_CHANNELS];

int main(void) {
  sh_buf b = {{0}, 0};
  sh_str(&b, "ofa firmware demo: " OFA_TARGET_NAME ", model " OFA_MODEL_NAME);
  sh_line(&b);

  const int refused = demo_check_model(&ofa_firmware_model, OFA_TILE_SERIES, OFA_ARENA_BYTES);
  if (refused) return refused;

  const uint64_t known = demo_counter_check();
  demo_paint_stack();
  int exact_windows = 0;
  uint32_t mismatches = 0;
  float max_diff = 0.f;
  size_t arena_used = 0;
  uint64_t instructions_max = 0;
  for (int w = 0; w < OFA_GOLDEN_COUNT; ++w) {
    const unsigned char fill = (w & 1) ? 0x5A : 0xA5;
    memset(arena, fill, sizeof arena);
#if OFA_PROFILE
    ofa_profile_reset();
#endif
    const uint64_t t0 = counter_ticks();
    /* Validated once above: each window runs without walking the weights again. */
    const ofa_status st = ofa_forward_int8_validated(&ofa_firmware_model, OFA_DEMO_KERNELS, OFA_TILE_SERIES,
                                                     ofa_golden_x[w], 1, forecast, arena, sizeof arena);
    const uint64_t t1 = counter_ticks();
    if (st != OFA_OK) return demo_refuse("forward", st);
    const uint64_t instructions = ticks_to_instructions(t1 - t0);
    if (instructions > instructions_max) instructions_max = instructions;
    const size_t used = demo_high_water(arena, sizeof arena, fill);
    if (used > arena_used) arena_used = used;

    uint32_t differ = 0;
    float window_diff = 0.f;
    for (int i = 0; i < OFA_HORIZON * OFA_N_CHANNELS; ++i) {
      uint32_t bits;
      memcpy(&bits, &forecast[i], sizeof bits);
      if (bits == ofa_golden_y_bits[w][i]) continue;
      ++differ;
      float want;
      memcpy(&want, &ofa_golden_y_bits[w][i], sizeof want);
      const float d = forecast[i] > want ? forecast[i] - want : want - forecast[i];
      if (!(d <= window_diff)) window_diff = d; /* NaN propagates */
    }
    mismatches += differ;
    if (!(window_diff <= max_diff)) max_diff = window_diff;
    if (differ == 0) ++exact_windows;
    sh_str_u64(&b, "window ", (uint64_t)w);
    if (differ) {
      sh_str_u64(&b, ": DIFFERS in ", differ);
      sh_str(&b, " outputs, max |diff| ");
      sh_f32(&b, window_diff);
    } else {
      sh_str(&b, ": bit-exact");
    }
    sh_str_u64(&b, ", ", instructions);
    sh_str(&b, " instructions");
    sh_line(&b);
  }

#if OFA_PROFILE
  /* The last window's split, one line per kernel, then what no kernel covered. */
  uint64_t covered = 0;
  for (int i = 0; i < OFA_PROFILE_KERNELS; ++i) {
    covered += ofa_profile_instructions[i];
    sh_str(&b, "OFA_PROFILE kernel=");
    sh_str(&b, ofa_profile_names[i]);
    const sh_field f[] = {{"calls", ofa_profile_calls[i]}, {"instructions", ofa_profile_instructions[i]}};
    sh_fields(&b, f, 2);
    sh_line(&b);
  }
  sh_str(&b, "OFA_PROFILE kernel=outside_kernels");
  const sh_field outside[] = {{"calls", 0}, {"instructions", instructions_max > covered ? instructions_max - covered : 0}};
  sh_fields(&b, outside, 2);
  sh_line(&b);
#endif

  const int pass = exact_windows == OFA_GOLDEN_COUNT;
  sh_str_u64(&b, pass ? "PASS: " : "FAIL: ", (uint64_t)exact_windows);
  sh_str_u64(&b, "/", OFA_GOLDEN_COUNT);
  sh_str_u64(&b, " windows bit-exact with the host; arena ", arena_used);
  sh_str_u64(&b, " of ", OFA_ARENA_BYTES);
  sh_str_u64(&b, " bytes used; stack peak ", demo_stack_high_water());
  sh_line(&b);
  sh_str(&b, "OFA_RESULT target=" OFA_TARGET_NAME);
  const sh_field result[] = {{"pass", (uint64_t)pass}, {"windows", OFA_GOLDEN_COUNT}, {"mismatches", mismatches}};
  sh_fields(&b, result, 3);
  sh_str(&b, " max_abs_diff=");
  sh_f32(&b, max_diff);
  sh_line(&b);
  sh_str(&b, "OFA_RESULT");
  const sh_field sizes[] = {{"arena_planned", OFA_ARENA_BYTES}, {"arena_used", arena_used},
                            {"stack_peak", demo_stack_high_water()}, {"instructions", instructions_max},
                            {"counter_check", known}};
  sh_fields(&b, sizes, 5);
  sh_line(&b);
  return pass ? 0 : 1;
}
