/* demo_util.c - see demo_util.h. */
#include "demo_util.h"

#include "board.h"
#include "semihost.h"

extern uint32_t ofa_stack[OFA_STACK_BYTES / 4];

int demo_refuse(const char* what, ofa_status s) {
  sh_buf b = {{0}, 0};
  sh_str(&b, "FAIL: ");
  sh_str(&b, what);
  sh_str(&b, ": ");
  sh_str(&b, ofa_status_name(s));
  sh_line(&b);
  return 2;
}

int demo_check_model(const ofa_model_int8* model, int32_t tile_series, size_t header_arena_bytes) {
  size_t planned = 0;
  ofa_status st = ofa_arena_bytes_int8(&model->config, tile_series, &planned);
  if (st != OFA_OK) return demo_refuse("arena plan", st);
  if (planned != header_arena_bytes) {
    sh_buf b = {{0}, 0};
    sh_str(&b, "FAIL: the target's planner wants ");
    sh_u64(&b, planned);
    sh_str(&b, " arena bytes, the header says ");
    sh_u64(&b, header_arena_bytes);
    sh_line(&b);
    return 2;
  }
  st = ofa_validate_model_int8(model);
  return st == OFA_OK ? 0 : demo_refuse("model", st);
}

size_t demo_high_water(const unsigned char* p, size_t n, unsigned char fill) {
  while (n > 0 && p[n - 1] == fill) --n;
  return n;
}

#define STACK_PAINT 0x5AC3A55Au
void demo_paint_stack(void) {
  uintptr_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  uint32_t* top = (uint32_t*)(sp - 256); /* leave the caller's frame alone */
  for (uint32_t* p = ofa_stack; p < top; ++p) *p = STACK_PAINT;
}

size_t demo_stack_high_water(void) {
  size_t i = 0;
  while (i < OFA_STACK_BYTES / 4 && ofa_stack[i] == STACK_PAINT) ++i;
  return OFA_STACK_BYTES - 4 * i;
}

uint64_t demo_counter_check(void) {
  counter_start();
  const uint64_t c0 = counter_ticks();
  uint32_t spins = 500000; /* 2 instructions per iteration */
  __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(spins));
  const uint64_t known = ticks_to_instructions(counter_ticks() - c0);
  sh_buf b = {{0}, 0};
  sh_str(&b, "instruction counter: a 1000000-instruction loop counts ");
  sh_u64(&b, known);
  sh_line(&b);
  return known;
}
