/* board.h - what the demo needs from the board: a stack size and a monotonic counter. */
#ifndef OFA_FW_BOARD_H
#define OFA_FW_BOARD_H

#include <stdint.h>

#ifndef OFA_STACK_BYTES
#define OFA_STACK_BYTES 8192
#endif

/* The board's SysTick "processor clock" in Hz (QEMU: 25 MHz on MPS2, 32 MHz on MPS3 AN547). */
#ifndef OFA_BOARD_CLOCK_HZ
#error "OFA_BOARD_CLOCK_HZ must be defined by the build (firmware/CMakeLists.txt)"
#endif

void ofa_systick_handler(void);
void counter_start(void);
/* SysTick ticks since counter_start(). Under QEMU -icount shift=0 one instruction takes 1 ns of
 * virtual time, so ticks * 1e9 / OFA_BOARD_CLOCK_HZ is the instructions executed (to within one tick);
 * the DWT cycle counter is not modelled by QEMU, and QEMU does not model cycles at all. */
uint64_t counter_ticks(void);
uint64_t ticks_to_instructions(uint64_t ticks);

#endif
