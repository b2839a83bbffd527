"""numpy twins of the C++ integer kernels (csrc/kernels/int8/int8_ops.cpp), bit for bit, vectorised.

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


def _clip_(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """In-place clip of an int64 array (a fresh temporary)."""
    np.maximum(v, lo, out=v)
    np.minimum(v, hi, out=v)
    return v


def srdhm(a: np.ndarray, b) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul.

    gemmlowp adds a nudge (2^30, or 1 - 2^30 for a negative product) and divides by 2^31 truncating toward
    zero; for every product that equals floor((a*b + 2^30) / 2^31), one add and one arithmetic shift.
    """
    a, b = i64(a), i64(b)
    q = a * b
    q += 1 << 30
    q >>= 31
    if (b == INT32_MIN).any():  # the one saturating case: INT32_MIN * INT32_MIN
        q = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)
    return q


def rdbpot(x: np.ndarray, exponent) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT, exponent in 0..31: x / 2^e rounded half away from zero.

    gemmlowp's (x >> e) + (remainder > (mask >> 1) + (x < 0)) equals (x + 2^e / 2 - (x < 0 and e > 0)) >> e.
    """
    x, e = i64(x), i64(exponent)
    neg = x >> 63                     # -1 where x < 0
    if e.ndim == 0:
        if e == 0:
            return x.copy()
        y = x + (np.int64(1) << (e - 1))
        y += neg
    else:
        y = x + ((np.int64(1) << e) >> 1)
        neg &= -(e > 0).astype(np.int64)
        y += neg
    y >>= e
    return y


def requantize(x, mult, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier: x * mult * 2^shift / 2^31, the left shift saturating."""
    shift = i64(shift)
    right = np.maximum(-shift, 0)
    if (shift > 0).any():
        left = np.maximum(shift, 0)
        x = _clip_(i64(x) * (np.int64(1) << left), INT32_MIN, INT32_MAX)
    return rdbpot(srdhm(x, mult), right)


def requant_table(table: np.ndarray, cols: int):
    """(mult, shift, zp) broadcastable over the last axis of a (..., cols) array."""
    t = i64(table)
    if t.shape[1] == 1:
        return t[0, 0], t[1, 0], t[2, 0]
    assert t.shape[1] == cols
    return t[0], t[1], t[2]


def requant_to_s8(acc: np.ndarray, table: np.ndarray) -> np.ndarray:
    """clamp(sat32(requant + zp), -128, 127): with int64 sums the int32 saturation is inside the clamp."""
    mult, shift, zp = requant_table(table, acc.shape[-1])
    v = requantize(acc, mult, shift)
    v += zp
    return _clip_(v, -128, 127)


def requant_add(h: np.ndarray, acc: np.ndarray, table: np.ndarray) -> np.ndarray:
    """sat32(sat32(h + requant) + zp), as ofa_requant_add_s32."""
    mult, shift, zp = requant_table(table, acc.shape[-1])
    v = requantize(acc, mult, shift)
    v += h
    _clip_(v, INT32_MIN, INT32_MAX)
    if np.any(zp != 0):
        v += zp
        _clip_(v, INT32_MIN, INT32_MAX)
    return v


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


GEMM_F32_DEPTH = 1024   # |sum| <= 1024 * 128 * 128 = 2^24: every partial sum is an exact float32 integer


def gemm(a: np.ndarray, w: np.ndarray, bias=None) -> np.ndarray:
    """Exact int8 GEMM a @ w.T (+ bias) through float32 BLAS.

    Inputs are int8 values, so over a depth of at most 1024 every partial sum, in whatever order BLAS adds
    (FMA or not), is an integer of magnitude <= 2^24, exact in float32; deeper GEMMs add such slices in int64.
    """
    k = a.shape[-1]
    a2 = a.reshape(-1, k)   # 2-D: BLAS
    w = np.asarray(w)
    c = None
    for k0 in range(0, k, GEMM_F32_DEPTH):
        part = a2[:, k0:k0 + GEMM_F32_DEPTH].astype(np.float32) @ w[:, k0:k0 + GEMM_F32_DEPTH].astype(np.float32).T
        if c is None:
            c = part.astype(np.int64)
        else:
            c += part.astype(np.int64)
    c = c.reshape(*a.shape[:-1], w.shape[0])
    if bias is not None:
        c += i64(bias)
    return c


def matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched int8-valued a @ b (depth <= 1024) in float32, exact for the same reason as gemm."""
    assert a.shape[-1] <= GEMM_F32_DEPTH
    return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.int64)


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
