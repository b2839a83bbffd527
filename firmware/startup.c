/* startup.c - reset, vector table, stack and fault exits for the QEMU MPS2/MPS3 boards.
 * No libc start files: copy .data, zero .bss, enable the FPU, call main, report its status through
 * semihosting. Any fault ends the program with status 3, so QEMU never hangs on a crash. */
#include <stdint.h>

#include "board.h"
#include "semihost.h"

int main(void);

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end;

/* The stack: a static array in its own section (link.ld.in), which startup does not zero while it runs on
 * it; arm-none-eabi-size counts it in static RAM. */
uint32_t ofa_stack[OFA_STACK_BYTES / 4] __attribute__((aligned(8), section(".stack")));

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)

static void fault_handler(void) {
  sh_write("FAULT: the firmware took a hard fault\n");
  sh_exit(3);
}

static void default_handler(void) {
  sh_write("FAULT: unexpected interrupt\n");
  sh_exit(3);
}

/* Runs before the FPU is enabled: built without floating-point registers in use. */
__attribute__((noreturn)) void ofa_reset_handler(void) {
  SCB_CPACR |= 0xFu << 20; /* CP10 and CP11 full access: FPU (and MVE on Cortex-M55) */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  for (uint32_t *src = &__data_load, *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  sh_exit(main());
}

typedef void (*vector_fn)(void);

__attribute__((section(".vectors"), used)) static const vector_fn vectors[16] = {
    (vector_fn)(uintptr_t)(ofa_stack + OFA_STACK_BYTES / 4), /* initial stack pointer */
    ofa_reset_handler,
    default_handler,     /* NMI */
    fault_handler,       /* HardFault */
    fault_handler,       /* MemManage */
    fault_handler,       /* BusFault */
    fault_handler,       /* UsageFault */
    0, 0, 0, 0,
    default_handler,     /* SVCall */
    default_handler,     /* DebugMon */
    0,
    default_handler,     /* PendSV */
    ofa_systick_handler, /* SysTick: the instruction counter's overflow (board.c) */
};
