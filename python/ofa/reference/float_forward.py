"""Vectorised float32 forward of an fp32 model file's tensors, with observation points for calibration.

The same graph as the engine and tests/engine_reference.py, batched over series (BLAS GEMMs), so
calibrating on a few hundred windows takes seconds. `observe(name, array)` sees every tensor the int8
scheme quantises, under the names quantize.py uses.
"""
from __future__ import annotations

import math

import numpy as np

from .int8_reference import is_classifier, normalised_patches, window_from_patches


def gelu(x: np.ndarray, kind: str) -> np.ndarray:
    x = np.asarray(x)
    x = x if x.dtype == np.float32 else x.astype(np.float64)  # float32 activations stay float32 (speed)
    if kind == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _nothing(name, value):
    return None


class FloatForward:
    def __init__(self, config: dict, tensors: dict):
        self.c = config
        self.t = {k: np.asarray(v, np.float32) for k, v in tensors.items()}
        self.gpt2 = config["layout"] in ("gpt2", 1)
        self.gelu = config.get("gelu", "tanh" if self.gpt2 else "erf")

    def lin(self, x, name):
        w = self.t[f"{name}.weight"]
        # 2-D so numpy hands it to BLAS (stacked 3-D matmul with a transposed operand does not)
        y = x.reshape(-1, x.shape[-1]) @ w.T + self.t[f"{name}.bias"]
        return y.reshape(*x.shape[:-1], w.shape[0])

    def ln(self, x, name, observe):
        y = layer_norm(x, self.t[f"{name}.weight"], self.t[f"{name}.bias"], self.c["ln_eps"]).astype(np.float32)
        observe(f"{name}.out", y)
        return y

    def attention(self, h, i, observe):
        d, heads = self.c["d_model"], self.c["n_heads"]
        hd = d // heads
        s, n, _ = h.shape
        qkv = self.lin(h, f"blocks.{i}.attn_qkv")
        observe(f"blocks.{i}.q", qkv[..., :d])
        observe(f"blocks.{i}.k", qkv[..., d:2 * d])
        observe(f"blocks.{i}.v", qkv[..., 2 * d:])
        qkv = qkv.reshape(s, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)
        sc = qkv[0] @ qkv[1].swapaxes(-1, -2) / np.float32(math.sqrt(hd))
        if self.gpt2:
            sc = np.where(np.tril(np.ones((n, n), bool)), sc, -np.inf)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        sc /= sc.sum(-1, keepdims=True)
        ctx = (sc @ qkv[2]).transpose(0, 2, 1, 3).reshape(s, n, d)
        observe(f"blocks.{i}.context", ctx)
        return self.lin(ctx, f"blocks.{i}.attn_out")

    def feed_forward(self, h, i, observe):
        pre = self.lin(h, f"blocks.{i}.ff_in")
        observe(f"blocks.{i}.ff_in.out", pre)
        return self.lin(gelu(pre, self.gelu).astype(np.float32), f"blocks.{i}.ff_out")

    def hidden(self, x, observe=_nothing, blocks: list | None = None):
        """Final hidden states (S, N, d) (after the final LN for GPT-2), plus instance mean and std."""
        c = self.c
        patches, mu, sd = normalised_patches(c, self.t, x)
        observe("patches", patches)
        h = self.lin(patches, "in_layer") + self.t["pos"]
        observe("residual", h)
        if not self.gpt2:
            h = self.ln(h, "emb_ln", observe)
        for i in range(c["n_layers"]):
            b = f"blocks.{i}"
            if self.gpt2:
                h = h + self.attention(self.ln(h, f"{b}.ln1", observe), i, observe)
                observe("residual", h)
                h = h + self.feed_forward(self.ln(h, f"{b}.ln2", observe), i, observe)
                observe("residual", h)
            else:
                h = self.ln(h + self.attention(h, i, observe), f"{b}.ln1", observe)
                h = self.ln(h + self.feed_forward(h, i, observe), f"{b}.ln2", observe)
            if blocks is not None:
                blocks.append(h.astype(np.float64))
        if self.gpt2:
            h = self.ln(h, "final_ln", observe)
        return h, mu, sd, patches

    def classify(self, x, observe=_nothing, chunk: int = 256) -> np.ndarray:
        """A classifier's x (B, C, L) data units -> logits (B, K) float32: the head over each window's C*N*d
        states, channel-major (ofa_classify)."""
        out = []
        per = max(1, chunk // x.shape[1])
        for start in range(0, len(x), per):
            xb = x[start:start + per]
            h, _, _, _ = self.hidden(xb, observe)
            out.append(self.lin(h.reshape(len(xb), -1), "head"))
        return np.concatenate(out).astype(np.float32)

    def run(self, x, observe=_nothing, blocks: list | None = None, chunk: int = 256) -> np.ndarray:
        """x (B, L, C) data units -> (B, H, C) float32; a classifier's x (B, C, L) -> logits (B, K) (classify)."""
        if is_classifier(self.c):
            return self.classify(x, observe, chunk)
        b, _, c = x.shape
        H, t = self.c["horizon"], self.t
        out = []
        per = max(1, chunk // c)
        for start in range(0, b, per):
            h, mu, sd, patches = self.hidden(x[start:start + per], observe, blocks)
            flat = h.reshape(h.shape[0], -1)
            if self.c.get("head_rank", 0) == 0:
                z = flat @ t["head.weight"].T + t["head.bias"]
            else:
                low = flat @ t["head.a"].T
                observe("head.low", low)
                z = low @ t["head.b"].T + t["head.bias"]
            if self.c.get("linear_path", 0):
                z = z + window_from_patches(self.c, patches) @ t["linear.weight"].T
            v = z * sd[:, None] + mu[:, None]
            if self.c.get("linear_path", 0):
                v = v + t["linear.bias"]
            v = v.reshape(-1, c, H).transpose(0, 2, 1)
            out.append(v * t["scaler.std"] + t["scaler.mean"])
        return np.concatenate(out).astype(np.float32)
