/* profile.h - per-kernel instruction counts of the int8 forward (profile.c; -DOFA_PROFILE=ON). */
#ifndef OFA_FW_PROFILE_H
#define OFA_FW_PROFILE_H

#include <stdint.h>

#include "ofa/ofa_kernels_int8.h"

#define OFA_PROFILE_KERNELS 9
extern const ofa_kernels_int8 ofa_kernels_int8_profiled;
extern uint64_t ofa_profile_instructions[OFA_PROFILE_KERNELS];
extern uint32_t ofa_profile_calls[OFA_PROFILE_KERNELS];
extern const char* const ofa_profile_names[OFA_PROFILE_KERNELS];
void ofa_profile_reset(void);

#endif
