"""Post-training int8 quantisation of an fp32 model file's arrays, calibrated on training windows.

Scheme (TFLite int8 spec for the GEMMs; integer-only elsewhere, see csrc/ofa/ofa_int8.h):
- GEMM weights: int8 symmetric per output channel (scale = max|row| / 127);
- GEMM inputs: int8 per tensor, asymmetric (min/max over the calibration windows), except the
  patches and q/k/v, which are symmetric; the input zero point is folded into the int32 bias;
- requantisation: Q31 multiplier + shift per output channel;
- residual stream: int32 on a grid of max|h| / 2^14 per stream segment (mixed precision: the
  additions and layer-norm inputs keep ~15 bits, the GEMMs see int8);
- layer norm: integer, output grid max|y| / 2^14, then an int8 copy for the next GEMM;
- softmax: I-BERT integer exp on Q10 logits, probabilities int8 / 127; GELU: a 256-entry table.
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..reference import int8_ops as q
from ..errors import OfaError
from ..reference.float_forward import FloatForward, gelu
from ..reference.int8_reference import is_classifier

RESIDUAL_LEVELS = 2 ** 14
LN_K_SCALE = 2 ** q.LN_K_BITS
MAX_BIAS = 2 ** 30
MAX_GEMM_DEPTH = 2 ** 16  # OFA_GEMM_S8_MAX_K: with |bias| < 2^30 every int32 sum fits
DEFAULT_CALIBRATION_WINDOWS = 256


class RangeStats:
    """Running min / max of every observed tensor."""

    def __init__(self):
        self.lo: dict[str, float] = {}
        self.hi: dict[str, float] = {}

    def __call__(self, name: str, value: np.ndarray) -> None:
        lo, hi = float(np.min(value)), float(np.max(value))
        self.lo[name] = min(lo, self.lo.get(name, lo))
        self.hi[name] = max(hi, self.hi.get(name, hi))

    def max_abs(self, name: str) -> float:
        return max(abs(self.lo[name]), abs(self.hi[name]))


def check_calibration_windows(x: np.ndarray, channels: list[str] | None = None, classifier: bool = False) -> None:
    """NaN / inf, or a channel that never varies, would give meaningless ranges: refuse them by name.
    x: (W, seq_len, C), or a classifier's (W, C, seq_len)."""
    if x.ndim != 3 or len(x) == 0:
        layout = "(W, C, seq_len)" if classifier else "(W, seq_len, C)"
        raise OfaError(f"calibration windows must be {layout} with W >= 1, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise OfaError("calibration windows contain NaN or inf")
    flat = (x.transpose(0, 2, 1) if classifier else x).reshape(-1, x.shape[1 if classifier else 2])
    for c in np.flatnonzero(flat.max(0) == flat.min(0)):
        label = channels[c] if channels and c < len(channels) else f"#{c}"
        raise OfaError(f"channel {label} is constant over the calibration windows: its activation ranges "
                       f"cannot be calibrated; calibrate on data where it varies")


def calibrate(config: dict, tensors: dict, x: np.ndarray, batch: int = 64) -> RangeStats:
    """Ranges of every quantised tensor over the windows x (W, L, C), data units."""
    stats = RangeStats()
    forward = FloatForward(config, tensors)
    for start in range(0, len(x), batch):
        forward.run(x[start:start + batch], observe=stats)
    return stats


def positive_scale(value: float, what: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise OfaError(f"calibration gave scale {value!r} for {what}: the calibration data never exercise it "
                       f"(constant or empty inputs)")
    return value


def asymmetric(lo: float, hi: float, what: str) -> tuple[float, int]:
    """(scale, zero point) covering [lo, hi] and 0 with 256 levels."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = positive_scale((hi - lo) / 255.0, what)
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric per output row; an all-zero row gets scale 1 (its products are 0 anyway)."""
    w = np.asarray(w, np.float64)
    scale = np.abs(w).max(1) / 127.0
    scale = np.where(scale > 0, scale, 1.0)
    wq = np.clip(np.round(w / scale[:, None]), -127, 127).astype(np.int8)
    return wq, scale


class Builder:
    def __init__(self, config: dict, f: dict, stats: RangeStats):
        self.c, self.f, self.s = config, f, stats
        self.out: dict[str, np.ndarray] = {}

    def linear(self, name: str, w, b, s_in: float, zp_in: int) -> np.ndarray:
        """int8 weight + folded int32 bias; returns the accumulator scale per output channel."""
        wq, s_w = quantize_weight(w)
        acc_scale = s_in * s_w
        bias = np.round(np.asarray(b, np.float64) / acc_scale) - zp_in * wq.astype(np.int64).sum(1)
        if np.abs(bias).max(initial=0) >= MAX_BIAS:
            raise OfaError(f"{name}: bias does not fit the int8 accumulator range (|bias / scale| >= 2^30)")
        self.out[f"{name}.weight"] = wq
        self.out[f"{name}.bias"] = bias.astype(np.int32)
        return acc_scale

    def grid(self, name: str) -> float:
        return positive_scale(self.s.max_abs(name) / RESIDUAL_LEVELS, name)

    def asym(self, name: str) -> tuple[float, int]:
        return asymmetric(self.s.lo[name], self.s.hi[name], name)

    def layer_norm(self, name: str, g_in: float) -> tuple[float, float, int]:
        """Integer LN from grid g_in; returns (output grid, int8 scale, int8 zero point)."""
        d = self.c["d_model"]
        g_out = self.grid(f"{name}.out")
        gamma, beta = self.f[f"{name}.weight"].astype(np.float64), self.f[f"{name}.bias"].astype(np.float64)
        mult, shift = q.quantize_multiplier(gamma * math.sqrt(d) / (LN_K_SCALE * g_out))
        beta_q = np.round(beta / g_out)
        self.out[f"{name}.requant"] = np.stack([mult, shift, beta_q]).astype(np.int32)
        eps = self.c["ln_eps"] * d ** 3 / g_in ** 2
        self.out[f"{name}.eps"] = np.array([min(round(eps), 2 ** 62)], np.int64)
        s_n, zp_n = self.asym(f"{name}.out")
        self.out[f"{name}.narrow"] = q.table(g_out / s_n, zp_n)
        return g_out, s_n, zp_n

    def block(self, i: int, g_in: float, s_x: float, zp_x: int, g_res: float | None):
        """One block; returns (output grid, int8 scale, zero point) of what the next block reads."""
        c, f, b = self.c, self.f, f"blocks.{i}"
        d, hd = c["d_model"], c["d_model"] // c["n_heads"]
        gpt2 = g_res is not None
        if gpt2:
            _, s_x, zp_x = self.layer_norm(f"{b}.ln1", g_res)
        acc = self.linear(f"{b}.attn_qkv", f[f"{b}.attn_qkv.weight"], f[f"{b}.attn_qkv.bias"], s_x, zp_x)
        s_qkv = [positive_scale(self.s.max_abs(f"{b}.{p}") / 127.0, f"{b}.{p}") for p in "qkv"]
        self.out[f"{b}.attn_qkv.requant"] = q.table(acc / np.repeat(s_qkv, d), 0)
        self.out[f"{b}.scores.requant"] = q.table(s_qkv[0] * s_qkv[1] / math.sqrt(hd) * 1024.0, 0)
        s_c, zp_c = self.asym(f"{b}.context")
        self.out[f"{b}.context.requant"] = q.table(s_qkv[2] / 127.0 / s_c, zp_c)
        g_attn = g_res if gpt2 else g_in
        acc = self.linear(f"{b}.attn_out", f[f"{b}.attn_out.weight"], f[f"{b}.attn_out.bias"], s_c, zp_c)
        self.out[f"{b}.attn_out.requant"] = q.table(acc / g_attn, 0)
        if gpt2:
            _, s_x, zp_x = self.layer_norm(f"{b}.ln2", g_res)
            g_ff = g_res
        else:
            g_ff, s_x, zp_x = self.layer_norm(f"{b}.ln1", g_in)
        acc = self.linear(f"{b}.ff_in", f[f"{b}.ff_in.weight"], f[f"{b}.ff_in.bias"], s_x, zp_x)
        s_gi, zp_gi = self.asym(f"{b}.ff_in.out")
        self.out[f"{b}.ff_in.requant"] = q.table(acc / s_gi, zp_gi)
        g = gelu((np.arange(-128, 128) - zp_gi) * s_gi, c["gelu"])
        s_go, zp_go = asymmetric(float(g.min()), float(g.max()), f"{b}.gelu")
        self.out[f"{b}.gelu.lut"] = np.clip(np.round(g / s_go) + zp_go, -128, 127).astype(np.int8)
        acc = self.linear(f"{b}.ff_out", f[f"{b}.ff_out.weight"], f[f"{b}.ff_out.bias"], s_go, zp_go)
        self.out[f"{b}.ff_out.requant"] = q.table(acc / g_ff, 0)
        if gpt2:
            return g_res, None, None
        return self.layer_norm(f"{b}.ln2", g_ff)

    def head(self, s_x: float, zp_x: int) -> None:
        f, H = self.f, self.c["n_classes"] if is_classifier(self.c) else self.c["horizon"]
        depth = f["head.weight"].shape[1] if "head.weight" in f else 0
        if depth > MAX_GEMM_DEPTH:  # a classifier's head reads every channel: C*N*d
            raise OfaError(f"the head reads {depth:,} int8 values, more than the {MAX_GEMM_DEPTH:,} whose int32 sums "
                           f"the int8 engine can hold; export it in fp32, or train with a longer --patch / --stride")
        if self.c.get("head_rank", 0) == 0:
            acc = self.linear("head", f["head.weight"], f["head.bias"], s_x, zp_x)
        else:
            acc = self.linear("head.a", f["head.a"], np.zeros(len(f["head.a"])), s_x, zp_x)
            s_low, zp_low = self.asym("head.low")
            self.out["head.a.requant"] = q.table(acc / s_low, zp_low)
            acc = self.linear("head.b", f["head.b"], f["head.bias"], s_low, zp_low)
        assert acc.shape == (H,)
        self.out["head.out_scale"] = acc.astype(np.float32)

    def build(self) -> dict:
        c, f = self.c, self.f
        gpt2 = c["layout"] in ("gpt2", 1)
        s_p = positive_scale(self.s.max_abs("patches") / 127.0, "patches")
        inv = np.float32(1.0 / s_p)
        self.out["patch.inv_scale"] = np.array([inv], np.float32)
        s_p = 1.0 / float(inv)  # the scale the engine really applies
        g_res = self.grid("residual")
        acc = self.linear("in_layer", f["in_layer.weight"], f["in_layer.bias"], s_p, 0)
        self.out["in_layer.requant"] = q.table(acc / g_res, 0)
        self.out["pos"] = np.round(f["pos"].astype(np.float64) / g_res).astype(np.int32)
        block_grids = []
        if gpt2:
            s_x = zp_x = None
            for i in range(c["n_layers"]):
                self.block(i, g_res, s_x, zp_x, g_res)
                block_grids.append(g_res)
            _, s_x, zp_x = self.layer_norm("final_ln", g_res)
        else:
            g, s_x, zp_x = self.layer_norm("emb_ln", g_res)
            for i in range(c["n_layers"]):
                g, s_x, zp_x = self.block(i, g, s_x, zp_x, None)
                block_grids.append(g)
        self.head(s_x, zp_x)
        if c.get("linear_path", 0):  # over the window's steps on the patch grid; no accumulator bias
            wq, s_w = quantize_weight(f["linear.weight"])
            self.out["linear.weight"] = wq
            self.out["linear.out_scale"] = (s_p * s_w).astype(np.float32)
            self.out["linear.bias"] = f["linear.bias"].astype(np.float32)
        self.out["scaler.mean"], self.out["scaler.std"] = f["scaler.mean"], f["scaler.std"]
        self.block_grids = block_grids
        return self.out


def quantize_arrays(arrays: dict, metadata: dict, x: np.ndarray) -> tuple[dict, dict]:
    """fp32 model-file arrays + metadata and calibration windows x (W, L, C) (a classifier's (W, C, L)) in data
    units -> the int8 model file's arrays and metadata (checksum left to the caller)."""
    from ..modelfile import FORMAT_VERSION

    config = json.loads(metadata["config"])
    check_calibration_windows(x, json.loads(metadata.get("channels", "null")), is_classifier(config))
    stats = calibrate(config, arrays, x.astype(np.float32))
    builder = Builder(config, arrays, stats)
    try:
        out = builder.build()
    except ValueError as exc:
        raise OfaError(f"quantisation failed: {exc}") from None
    config["int8"] = {"scheme": "int8 per-channel weights, per-tensor activations, int32 residual",
                      "calibration_windows": int(len(x)), "residual_levels": RESIDUAL_LEVELS,
                      "block_grids": builder.block_grids}
    meta = dict(metadata)
    meta.pop("checksum", None)
    meta.update({"dtype": "int8", "format_version": str(FORMAT_VERSION), "config": json.dumps(config)})
    return out, meta
