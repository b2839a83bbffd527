"""Wall-clock timing shared by the benchmarks: the best of several calls after a warm-up."""
from __future__ import annotations

import math
import time


def best_ms(fn, repeats: int = 5, min_seconds: float = 1.0) -> float:
    """Best of at least `repeats` calls (and at least min_seconds of timing, at most 4x repeats), in ms."""
    fn()
    best, spent, n = math.inf, 0.0, 0
    while n < repeats or spent < min_seconds:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
        if n >= 4 * repeats:
            break
    return best * 1e3
