"""Single-thread GEMM GFLOP/s: ofa._engine.gemm vs torch.mm (sgemm peak).

Usage: python bench/gemm_probe.py [--repeat N]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ofa import _engine


def torch_gflops(m: int, n: int, k: int, repeat: int) -> float:
    a, w = torch.randn(m, k), torch.randn(n, k)
    wt = w.t()
    torch.mm(a, wt)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeat):
            torch.mm(a, wt)
        best = min(best, (time.perf_counter() - t0) / repeat)
    return 2 * m * n * k / best * 1e-9


def engine_gflops(m: int, n: int, k: int, repeat: int, isa: str | None) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    w = rng.standard_normal((n, k), dtype=np.float32)
    b = rng.standard_normal(n, dtype=np.float32)
    _engine.gemm_timed(a, w, b, isa=isa, repeat=1)
    secs = min(_engine.gemm_timed(a, w, b, isa=isa, repeat=repeat)[1] for _ in range(3))
    return 2 * m * n * k / secs * 1e-9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--isa", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    peak = torch_gflops(1024, 1024, 1024, args.repeat)
    print(f"torch.mm 1024^3 single-thread: {peak:.1f} GFLOP/s   engine isa: {args.isa or _engine.best_isa()}")
    shapes = [(1024, 1024, 1024), (294, 1152, 384), (294, 384, 384), (294, 1536, 384),
              (294, 384, 1536), (672, 1152, 384), (672, 1536, 384), (672, 384, 1536),
              (2688, 1536, 384), (2688, 384, 1536)]
    print(f"{'M':>5} {'N':>5} {'K':>5} {'engine':>8} {'torch':>8} {'engine/peak':>11}")
    for m, n, k in shapes:
        e = engine_gflops(m, n, k, args.repeat, args.isa)
        t = torch_gflops(m, n, k, args.repeat)
        print(f"{m:5d} {n:5d} {k:5d} {e:8.1f} {t:8.1f} {e / peak:10.0%}")


if __name__ == "__main__":
    main()
