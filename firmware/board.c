#include "board.h"

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SYST_RELOAD 0xFFFFFFu

static volatile uint32_t wraps;

void ofa_systick_handler(void) { ++wraps; }

void counter_start(void) {
  SYST_CSR = 0;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0;    /* clears the counter; it loads the reload value on its next clock */
  SYST_CSR = 0x7u; /* enable, interrupt on wrap, processor clock */
  while (SYST_CVR == 0) {
  }
  wraps = 0;
}

uint64_t counter_ticks(void) {
  uint32_t hi, lo;
  do { /* re-read if a wrap happened in between */
    hi = wraps;
    lo = SYST_CVR;
  } while (hi != wraps);
  return (uint64_t)hi * (SYST_RELOAD + 1u) + (SYST_RELOAD - lo);
}

uint64_t ticks_to_instructions(uint64_t ticks) {
  return ticks * 1000000000ull / OFA_BOARD_CLOCK_HZ;
}
