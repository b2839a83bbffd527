/* demo_util.h - what both demos (main.c: forecasting, main_anomaly.c: the anomaly stream) report with:
 * refusals, the stack's and arena's high-water marks, and the instruction counter's self-check. */
#ifndef OFA_FW_DEMO_UTIL_H
#define OFA_FW_DEMO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "ofa/ofa_int8.h"

/* "FAIL: what: status" on the semihosting console; returns 2 (the engine refused). */
int demo_refuse(const char* what, ofa_status s);
/* The checks both demos start with: the target's planner must ask for the arena the header was emitted
 * with (the host asked the MCU planner), and the model must validate. 0, or a FAIL line and 2. */
int demo_check_model(const ofa_model_int8* model, int32_t tile_series, size_t header_arena_bytes);
/* Paint the stack below the caller's frame; stack_high_water() is then the deepest word overwritten. */
void demo_paint_stack(void);
size_t demo_stack_high_water(void);
/* Bytes up to the last one that no longer holds `fill`. */
size_t demo_high_water(const unsigned char* p, size_t n, unsigned char fill);
/* Start the counter and report what a loop of 1,000,000 instructions counts (printed and returned). */
uint64_t demo_counter_check(void);

#endif
