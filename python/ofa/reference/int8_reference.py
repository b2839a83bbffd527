"""numpy reference of the whole int8 forward pass: the same bits as the C++ engine (csrc/core/engine_int8.cpp).

Float appears only where the engine uses it: the input normalisation (float32, one sequential sum per
series, exactly the C loop order) and the output scaling. Everything between is integer (int8_ops).
Vectorised over series; `blocks` also returns each block's output, dequantised, for error reports.
"""
from __future__ import annotations

import numpy as np

from . import int8_ops as q
from ..data import n_patches


def series_of(x: np.ndarray) -> np.ndarray:
    """(B, L, C) -> (B*C, L), series g = b*C + c, as the engine walks them."""
    b, l, c = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1).reshape(b * c, l))


def is_classifier(config: dict) -> bool:
    return config.get("task", "forecast") == "classify"


def normalised_patches(config: dict, tensors: dict, x: np.ndarray):
    """float32 (S, N, W) tokens, mean, std of ofa_series_to_patches, same operation order (float32).
    x: a forecaster's (B, L, C), or a classifier's (B, C, L), whose norm "global" is the scaler alone
    (ofa_series_to_scaled_patches; mean and std are then None). The tokens are each series' (N, P)
    patches, or a classifier's joined tokens (config "tokens": "joined"): one sequence per window, token n
    value p*C + c = patch n of channel c, step p (ofa_tokens, csrc/core/window_tokens.h)."""
    patches, mu, sd = _series_patches(config, tensors, x)
    if is_classifier(config) and config.get("tokens", "channel") == "joined":
        b, c, _ = x.shape
        s, n, p = patches.shape
        patches = np.ascontiguousarray(patches.reshape(b, c, n, p).transpose(0, 2, 3, 1).reshape(b, n, p * c))
    return patches, mu, sd


def _series_patches(config: dict, tensors: dict, x: np.ndarray):
    """float32 (S, N, P) patches of every series, mean, std (normalised_patches, before any joining)."""
    f32 = np.float32
    if is_classifier(config):
        b, c, length = x.shape
        s = np.ascontiguousarray(x.astype(f32).reshape(b * c, length))  # series g = b*C + c, as for a forecaster
    else:
        b, length, c = x.shape
        s = series_of(x.astype(f32))
    mean_c = np.tile(tensors["scaler.mean"].astype(f32), b)
    inv_std = (f32(1) / tensors["scaler.std"].astype(f32))
    inv_std = np.tile(inv_std, b)
    z = (s - mean_c[:, None]) * inv_std[:, None]
    P, S = config["patch_len"], config["stride"]
    n = n_patches(length, P, S)
    idx = np.minimum(np.arange(n)[:, None] * S + np.arange(P)[None, :], length - 1)
    if config.get("norm", "instance") == "global":
        return z[:, idx].astype(f32), None, None
    acc = np.zeros(len(s), f32)
    for t in range(length):   # sequential sum, as the C loop (numpy's own sum is pairwise)
        acc = acc + z[:, t]
    mu = acc / f32(length)
    acc = np.zeros(len(s), f32)
    for t in range(length):
        d = z[:, t] - mu
        acc = acc + d * d
    var = acc / f32(length)
    sd = np.sqrt(var + f32(config["revin_eps"]))
    inv_s = f32(1) / sd
    patches = (z[:, idx] - mu[:, None, None]) * inv_s[:, None, None]
    return patches.astype(f32), mu, sd


def window_from_patches(config: dict, patches: np.ndarray) -> np.ndarray:
    """(S, N, P) patches -> the (S, L) normalised window they hold, read as ofa_patch_offset does:
    step t from the first patch that contains it (stride <= patch_len)."""
    steps = np.arange(config["seq_len"])
    first = np.minimum(steps // config["stride"], patches.shape[1] - 1)
    return patches[:, first, steps - first * config["stride"]]


class Int8Forward:
    """Runs an int8 model file's tensors; `run` equals the engine's output bit for bit."""

    def __init__(self, config: dict, tensors: dict):
        self.c = config
        self.t = tensors
        self.gpt2 = config["layout"] in ("gpt2", 1)

    def linear(self, x, name):
        return q.gemm(x, self.t[f"{name}.weight"], self.t[f"{name}.bias"])

    def layer_norm(self, h, name):
        y = q.layer_norm(h, int(self.t[f"{name}.eps"][0]), self.t[f"{name}.requant"])
        return y, q.requant_to_s8(y, self.t[f"{name}.narrow"])

    def attention(self, x8, i):
        c, t = self.c, self.t
        d, heads = c["d_model"], c["n_heads"]
        hd = d // heads
        s, n, _ = x8.shape
        qkv = q.requant_to_s8(self.linear(x8, f"blocks.{i}.attn_qkv"), t[f"blocks.{i}.attn_qkv.requant"])
        qkv = qkv.reshape(s, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)  # (3, S, heads, N, hd)
        qh, kh, vh = qkv[0], qkv[1], qkv[2]
        scores = q.matmul_exact(qh, kh.swapaxes(-1, -2))
        probs = q.softmax(scores, t[f"blocks.{i}.scores.requant"], self.gpt2)
        ctx = q.matmul_exact(probs, vh)  # (S, heads, N, hd)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(s, n, d)
        return q.requant_to_s8(ctx, t[f"blocks.{i}.context.requant"])

    def feed_forward(self, x8, i):
        t = self.t
        g = q.requant_to_s8(self.linear(x8, f"blocks.{i}.ff_in"), t[f"blocks.{i}.ff_in.requant"])
        g = t[f"blocks.{i}.gelu.lut"].astype(np.int64)[g + 128]
        return self.linear(g, f"blocks.{i}.ff_out")

    def hidden(self, x: np.ndarray, blocks: list | None = None):
        """Final int8 hidden states (S, N, d) and the instance stats; appends block outputs to `blocks`."""
        c, t = self.c, self.t
        patches, mu, sd = normalised_patches(c, t, x)
        p8 = q.quantize_patches(patches, t["patch.inv_scale"][0])
        h = q.requant_add(q.i64(t["pos"])[None], self.linear(p8, "in_layer"), t["in_layer.requant"])
        x8 = None
        if not self.gpt2:
            h, x8 = self.layer_norm(h, "emb_ln")
        for i in range(c["n_layers"]):
            b = f"blocks.{i}"
            if self.gpt2:
                _, x8 = self.layer_norm(h, f"{b}.ln1")
                h = q.requant_add(h, self.linear(self.attention(x8, i), f"{b}.attn_out"), t[f"{b}.attn_out.requant"])
                _, x8 = self.layer_norm(h, f"{b}.ln2")
                h = q.requant_add(h, self.feed_forward(x8, i), t[f"{b}.ff_out.requant"])
            else:
                h = q.requant_add(h, self.linear(self.attention(x8, i), f"{b}.attn_out"), t[f"{b}.attn_out.requant"])
                h, x8 = self.layer_norm(h, f"{b}.ln1")
                h = q.requant_add(h, self.feed_forward(x8, i), t[f"{b}.ff_out.requant"])
                h, x8 = self.layer_norm(h, f"{b}.ln2")
            if blocks is not None:
                blocks.append(h.astype(np.float64) * self.grid_scale(i))
        if self.gpt2:
            _, x8 = self.layer_norm(h, "final_ln")
        return x8, mu, sd, patches

    def grid_scale(self, i: int) -> float:
        """Real value of one unit of block i's int32 output (from the exporter's metadata)."""
        return self.c["int8"]["block_grids"][i]

    def classify(self, x: np.ndarray, chunk: int = 64) -> np.ndarray:
        """x (B, C, L) float32 data units -> logits (B, K) float32, as ofa_classify_int8: the head's int32 sums
        over every channel's states, then one scale per class."""
        out = []
        per = max(1, chunk // x.shape[1])
        for start in range(0, len(x), per):
            xb = x[start:start + per]
            x8, _, _, _ = self.hidden(xb)
            acc = self.linear(x8.reshape(len(xb), -1), "head")
            out.append(acc.astype(np.float32) * self.t["head.out_scale"].astype(np.float32))
        return np.concatenate(out)

    def run(self, x: np.ndarray, blocks: list | None = None, chunk: int = 64) -> np.ndarray:
        """x (B, L, C) float32 data units -> (B, H, C) float32, as ofa_forward_int8; a classifier's x (B, C, L)
        -> logits (B, K) (classify)."""
        if is_classifier(self.c):
            return self.classify(x, chunk)
        f32 = np.float32
        b, _, c = x.shape
        t, H = self.t, self.c["horizon"]
        out = []
        per = max(1, chunk // c)
        for start in range(0, b, per):
            xb = x[start:start + per]
            x8, mu, sd, patches = self.hidden(xb, blocks)
            flat = x8.reshape(x8.shape[0], -1)
            if self.c.get("head_rank", 0) == 0:
                acc = self.linear(flat, "head")
            else:
                low = q.requant_to_s8(self.linear(flat, "head.a"), t["head.a.requant"])
                acc = self.linear(low, "head.b")
            z = acc.astype(f32) * t["head.out_scale"].astype(f32)
            if self.c.get("linear_path", 0):
                u8 = q.quantize_patches(window_from_patches(self.c, patches), t["patch.inv_scale"][0])
                z = z + q.gemm(u8, t["linear.weight"]).astype(f32) * t["linear.out_scale"].astype(f32)
            v = z * sd[:, None] + mu[:, None]
            if self.c.get("linear_path", 0):
                v = v + t["linear.bias"].astype(f32)
            v = v.reshape(-1, c, H).transpose(0, 2, 1)
            out.append(v * t["scaler.std"].astype(f32) + t["scaler.mean"].astype(f32))
        return np.concatenate(out).astype(f32)


def reference_forward_int8(config: dict, tensors: dict, x: np.ndarray) -> np.ndarray:
    return Int8Forward(config, tensors).run(x)
