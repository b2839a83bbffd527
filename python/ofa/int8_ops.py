"""numpy twins of the C++ integer kernels (csrc/kernels/int8_ops.cpp), bit for bit, vectorised.

Every function works on int64 arrays holding int32 values, so no intermediate overflows where the C
code uses int64; right shifts of negative numbers are arithmetic in both. Also the float -> (multiplier,
shift) quantisation the exporter uses.
"""
from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
SHIFT_MIN, SHIFT_MAX = -31, 30
LN2_Q10, B_Q10, C_SCALED = 709, 1385, 1006164   # I-BERT exp constants on a Q10 grid (see int8_ops.cpp)
EXP_CUTOFF = LN2_Q10 * 31
INV_LN2_MUL, INV_LN2_SHIFT = 1479, 20
LN_K_BITS = 16        # layer norm: normalised value k = t * 2^16 / sqrt(var)
LN_T_BITS = 22        # |t| is scaled below 2^22 before squaring


def i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def saturate32(v: np.ndarray) -> np.ndarray:
    return np.clip(v, INT32_MIN, INT32_MAX)


def srdhm(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul."""
    a, b = i64(a), i64(b)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))  # C division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rdbpot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT, exponent in 0..31."""
    x, exponent = i64(x), i64(exponent)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(x, mult, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier: x * mult * 2^shift / 2^31, the left shift saturating."""
    shift = i64(shift)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    shifted = saturate32(i64(x) * (np.int64(1) << left))
    return rdbpot(srdhm(shifted, mult), right)


def requant_table(table: np.ndarray, cols: int):
    """(mult, shift, zp) broadcastable over the last axis of a (..., cols) array."""
    t = i64(table)
    if t.shape[1] == 1:
        return t[0, 0], t[1, 0], t[2, 0]
    assert t.shape[1] == cols
    return t[0], t[1], t[2]


def requant_to_s8(acc: np.ndarray, table: np.ndarray) -> np.ndarray:
    mult, shift, zp = requant_table(table, acc.shape[-1])
    return np.clip(saturate32(requantize(acc, mult, shift) + zp), -128, 127)


def requant_add(h: np.ndarray, acc: np.ndarray, table: np.ndarray) -> np.ndarray:
    mult, shift, zp = requant_table(table, acc.shape[-1])
    return saturate32(h + requantize(acc, mult, shift) + zp)


def isqrt(v: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(v)) of int64 v >= 0 (float estimate, then integer correction)."""
    v = i64(v)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    for _ in range(3):
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


def bit_length(v: np.ndarray) -> np.ndarray:
    """Bits of non-negative int64 values below 2^53."""
    return np.frexp(i64(v).astype(np.float64))[1].astype(np.int64)


def layer_norm(x: np.ndarray, eps: int, table: np.ndarray) -> np.ndarray:
    """ofa_layer_norm_s32 over the last axis of int32 values."""
    x = i64(x)
    n = x.shape[-1]
    t_full = n * x - x.sum(-1, keepdims=True)
    sh = np.maximum(bit_length(np.abs(t_full).max(-1, keepdims=True)) - LN_T_BITS, 0)
    t = t_full >> sh
    var = (t * t).sum(-1, keepdims=True) + (np.int64(eps) >> (2 * sh))
    root = np.maximum(isqrt(var), 1)
    inv = ((np.int64(1) << 46) + root // 2) // root
    k = (t * inv + (np.int64(1) << 29)) >> 30
    mult, shift, beta = i64(table)
    return saturate32(requantize(k, mult, shift) + beta)


def iexp_q10(x: np.ndarray) -> np.ndarray:
    """I-BERT exp of Q10 logits x <= 0 (ofa_iexp_q10)."""
    x = np.minimum(i64(x), 0)
    n = np.minimum(-x, EXP_CUTOFF)
    z = (n * INV_LN2_MUL) >> INV_LN2_SHIFT
    p = -n + z * LN2_Q10
    q = p + B_Q10
    e = (q * q + C_SCALED) >> np.minimum(z, 62)
    return np.where(-x >= EXP_CUTOFF, 0, e)


def softmax(scores: np.ndarray, table: np.ndarray, causal: bool) -> np.ndarray:
    """ofa_softmax_s8 over the last axis of (..., rows, cols) int32 scores -> int8 in [0, 127]."""
    mult, shift, zp = requant_table(table, 1)
    v = saturate32(requantize(scores, mult, shift) + zp)
    rows, cols = v.shape[-2:]
    used = np.ones((rows, cols), bool)
    if causal:
        used = np.tril(used)
    mx = np.where(used, v, INT32_MIN).max(-1, keepdims=True)
    e = np.where(used, iexp_q10(np.maximum(v - mx, -EXP_CUTOFF)), 0)
    total = e.sum(-1, keepdims=True)
    inv = ((np.int64(127) << 32) + total // 2) // total
    p = (e * inv + (np.int64(1) << 31)) >> 32
    return np.where(used, np.minimum(p, 127), 0)


def gemm(a: np.ndarray, w: np.ndarray, bias=None) -> np.ndarray:
    """Exact int8 GEMM a @ w.T (+ bias) through float64 BLAS: every sum stays below 2^53."""
    a2 = a.reshape(-1, a.shape[-1]).astype(np.float64)   # 2-D: BLAS
    c = (a2 @ np.asarray(w, np.float64).T).astype(np.int64).reshape(*a.shape[:-1], w.shape[0])
    return c if bias is None else c + i64(bias)


def quantize_multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers -> (Q31 mult, shift) with real ~= mult * 2^shift / 2^31; sign kept in mult.

    Multipliers too small for the shift range become (0, 0); too large ones raise ValueError.
    """
    real = np.atleast_1d(np.asarray(real, dtype=np.float64))
    if not np.isfinite(real).all():
        raise ValueError("non-finite requantisation multiplier")
    mult = np.zeros(real.shape, np.int64)
    shift = np.zeros(real.shape, np.int64)
    for i, r in enumerate(real.flat):
        if r == 0.0:
            continue
        m, e = math.frexp(abs(r))
        q = int(round(m * (1 << 31)))
        if q == 1 << 31:
            q //= 2
            e += 1
        if e < SHIFT_MIN:
            continue
        if e > SHIFT_MAX:
            raise ValueError(f"requantisation multiplier {r:g} too large (shift {e} > {SHIFT_MAX})")
        mult.flat[i] = q if r > 0 else -q
        shift.flat[i] = e
    return mult, shift


def table(real, zp=0) -> np.ndarray:
    """A (3, n) int32 requant table from real multipliers and zero point(s)."""
    mult, shift = quantize_multiplier(real)
    zps = np.broadcast_to(i64(zp), mult.shape)
    return np.stack([mult, shift, zps]).astype(np.int32)


def quantize_patches(u: np.ndarray, inv_scale: np.float32) -> np.ndarray:
    """float32 normalised patches -> int8, as engine_int8.cpp: scale, clamp, round half away from zero."""
    v = u.astype(np.float32) * np.float32(inv_scale)
    v = np.clip(v, np.float32(-128), np.float32(127))
    v = np.where(v >= 0, v + np.float32(0.5), v - np.float32(0.5))
    return np.trunc(v).astype(np.int64)
