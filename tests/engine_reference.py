"""Pure-numpy reference forward of the ofa fp32 model (the engine's spec).

Computed in float64 so it can judge the float32 C++ engine.
"""
from __future__ import annotations

import math

import numpy as np

from ofa.data import n_patches


def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x, kind):
    if kind == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _attention(h, t, i, n_heads, causal):
    n, d = h.shape
    hd = d // n_heads
    qkv = h @ t[f"blocks.{i}.attn_qkv.weight"].T + t[f"blocks.{i}.attn_qkv.bias"]
    q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
    out = np.empty((n, d))
    for j in range(n_heads):
        sl = slice(j * hd, (j + 1) * hd)
        s = q[:, sl] @ k[:, sl].T / math.sqrt(hd)
        if causal:
            s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        out[:, sl] = s @ v[:, sl]
    return out @ t[f"blocks.{i}.attn_out.weight"].T + t[f"blocks.{i}.attn_out.bias"]


def _ff(h, t, i, gelu):
    m = _gelu(h @ t[f"blocks.{i}.ff_in.weight"].T + t[f"blocks.{i}.ff_in.bias"], gelu)
    return m @ t[f"blocks.{i}.ff_out.weight"].T + t[f"blocks.{i}.ff_out.bias"]


def reference_forward(config: dict, tensors: dict, x) -> np.ndarray:
    """x: (B, L, C) -> (B, H, C), float64."""
    t = {k: np.asarray(v, dtype=np.float64) for k, v in tensors.items()}
    gpt2 = config["layout"] in ("gpt2", 1)
    gelu = config.get("gelu", "tanh" if gpt2 else "erf")
    gelu = {0: "erf", 1: "tanh"}.get(gelu, gelu)
    ln_eps = config.get("ln_eps", 1e-5 if gpt2 else 1e-12)
    revin_eps = config.get("revin_eps", 1e-5)
    L, P, S = config["seq_len"], config["patch_len"], config["stride"]
    N = n_patches(L, P, S)
    H, C = config["horizon"], config["n_channels"]
    x = np.asarray(x, dtype=np.float64)
    B = x.shape[0]
    y = np.empty((B, H, C))
    for b in range(B):
        for c in range(C):
            z = (x[b, :, c] - t["scaler.mean"][c]) / t["scaler.std"][c]
            mu = z.mean()
            sd = math.sqrt(((z - mu) ** 2).mean() + revin_eps)
            u = np.concatenate([(z - mu) / sd, np.full(S, (z[-1] - mu) / sd)])
            p = np.stack([u[n * S : n * S + P] for n in range(N)])
            h = p @ t["in_layer.weight"].T + t["in_layer.bias"] + t["pos"]
            if not gpt2:
                h = _layer_norm(h, t["emb_ln.weight"], t["emb_ln.bias"], ln_eps)
            for i in range(config["n_layers"]):
                ln1 = (t[f"blocks.{i}.ln1.weight"], t[f"blocks.{i}.ln1.bias"], ln_eps)
                ln2 = (t[f"blocks.{i}.ln2.weight"], t[f"blocks.{i}.ln2.bias"], ln_eps)
                if gpt2:
                    h = h + _attention(_layer_norm(h, *ln1), t, i, config["n_heads"], True)
                    h = h + _ff(_layer_norm(h, *ln2), t, i, gelu)
                else:
                    h = _layer_norm(h + _attention(h, t, i, config["n_heads"], False), *ln1)
                    h = _layer_norm(h + _ff(h, t, i, gelu), *ln2)
            if gpt2:
                h = _layer_norm(h, t["final_ln.weight"], t["final_ln.bias"], ln_eps)
            flat = h.reshape(-1)
            if config.get("head_rank", 0) == 0:
                out = t["head.weight"] @ flat + t["head.bias"]
            else:
                out = t["head.b"] @ (t["head.a"] @ flat) + t["head.bias"]
            if config.get("linear_path", 0):  # the linear path: W u, its bias after the instance scaling
                out = out + t["linear.weight"] @ u[:L]
                y[b, :, c] = (out * sd + mu + t["linear.bias"]) * t["scaler.std"][c] + t["scaler.mean"][c]
                continue
            y[b, :, c] = (out * sd + mu) * t["scaler.std"][c] + t["scaler.mean"][c]
    return y
