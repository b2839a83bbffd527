// The integer softmax's exp: I-BERT's second-order polynomial on a Q10 logit grid. One set of
// constants for every int8 ISA; the portable ofa_softmax_s8 (int8_ops.cpp) owns the algorithm and
// the SIMD kernels reproduce it lane for lane.
#pragma once
#include <stdint.h>

namespace ofa_iexp {
// ln2 = 709 / 1024; exp(p) on (-ln2, 0] ~ 0.3585 (p + 1.353)^2 + 0.344, scaled by 2^20 / 0.3585.
constexpr int32_t kLn2Q10 = 709;
constexpr int32_t kBQ10 = 1385;        // floor(1.353 * 1024)
constexpr int32_t kCScaled = 1006164;  // floor(0.344 / 0.3585 * 2^20)
constexpr int32_t kExpCutoff = kLn2Q10 * 31;  // beyond: exp below 2^-31, 0
// floor(n / 709) == (n * 1479) >> 20 for every 0 <= n < 709 * 32 (checked exhaustively by the unit
// tests); avoids a division per score.
constexpr int32_t kInvLn2Mul = 1479;
constexpr int kInvLn2Shift = 20;
}  // namespace ofa_iexp
