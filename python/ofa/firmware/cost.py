"""Multiply-accumulates of one int8 inference, GEMM by GEMM, from the config: the denominator of the
firmware benchmark's instructions per MAC. It follows the int8 engine's GEMMs (csrc/core/engine_int8.cpp)."""
from __future__ import annotations


def gemm_macs(config: dict) -> dict[str, int]:
    """{GEMM: MACs} for one window (all channels, one series each) and "total"."""
    from ..data import n_patches

    n = n_patches(config["seq_len"], config["patch_len"], config["stride"])
    d, f, heads, layers = config["d_model"], config["d_ff"], config["n_heads"], config["n_layers"]
    hd, rank, horizon = d // heads, config["head_rank"], config["horizon"]
    per_series = {
        "patch_embedding": n * config["patch_len"] * d,
        "qkv": layers * n * d * 3 * d,
        "scores": layers * heads * n * n * hd,
        "context": layers * heads * n * n * hd,
        "attention_out": layers * n * d * d,
        "feed_forward": layers * 2 * n * d * f,
        "head": n * d * horizon if rank == 0 else n * d * rank + rank * horizon,
        "linear_path": config["seq_len"] * horizon if config.get("linear_path") else 0,
    }
    out = {k: v * config["n_channels"] for k, v in per_series.items()}
    out["total"] = sum(out.values())
    return out
