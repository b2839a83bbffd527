"""Short-term (M4-style) scoring: a checkpoint or a model file forecasts each series of a panel from its
last in-sample values; sMAPE, MASE and OWA against Naive2 (ofa.metrics) over the panel's test file.

The validated combination (forecast combination, the classic lesson of M3 and M4): a panel model's
forecast becomes w * model + (1 - w) * benchmark, the benchmark one of the competitions' statistical
ones (metrics.BENCHMARKS: Naive2, seasonal naive, Theta) and w one of COMBINATION_WEIGHTS (1, 0.75,
0.5, 0.25): the pair with the lowest OWA on the validation hold-out (each training series' last
horizon, forecast from the values before it; ofa.panel). Training chooses it (choose_combination) and
records it in the checkpoint; scoring applies it (combine). w = 1 is the model alone and wins ties."""
from __future__ import annotations

import os
import re

import numpy as np

from . import metrics
from .errors import OfaError
from .panel import panel_test_windows, read_m4_pair

# The model's weight, in the order ties are broken. Not 0: the combination shrinks the model's forecast
# towards a benchmark, it never replaces it (a panel where a benchmark alone validates best still gets a
# quarter of the model's forecast; the record shows each benchmark's own validation OWA beside it).
COMBINATION_WEIGHTS = (1.0, 0.75, 0.5, 0.25)
M4_PREFIX = {"H": "hourly", "D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly", "Y": "yearly"}


def frequency_of(ids: list[str], path: str) -> str | None:
    """M4's frequency from its ids (H1, W12, ...) or from the file name (Hourly-test.csv); None if neither says."""
    prefixes = {re.match(r"[A-Za-z]*", i).group(0).upper() for i in ids}
    if len(prefixes) == 1 and (p := prefixes.pop()) in M4_PREFIX:
        return M4_PREFIX[p]
    name = os.path.basename(path).lower()
    return next((f for f in metrics.SEASONAL_PERIOD if f in name), None)


def frequency_period(ids: list[str], path: str) -> tuple[str | None, int | None]:
    """(frequency, seasonal period) from the ids or the file name; (None, None) if neither says."""
    freq = frequency_of(ids, path)
    return freq, (metrics.SEASONAL_PERIOD[freq] if freq is not None else None)


def scorable(insample: list[np.ndarray], m: int) -> np.ndarray:
    """Which series MASE can score: more than m values, not constant at lag m."""
    return np.array([len(x) > m and bool(np.abs(x[m:] - x[:-m]).mean() > 0) for x in insample])


def choose_combination(insample: list[np.ndarray], truth: list[np.ndarray], forecasts: np.ndarray, m: int,
                       weights=COMBINATION_WEIGHTS, benchmarks=tuple(metrics.BENCHMARKS)) -> dict:
    """The validated combination: the (benchmark, model weight) of `benchmarks` x `weights` whose
    forecast w * model + (1 - w) * benchmark has the lowest OWA, on validation series (`insample` the
    values before each hold-out, `truth` the hold-out, `forecasts` (S, H) the model's). Series MASE cannot
    score (scorable) are left out. Returns {"benchmark" (None for the model alone), "model_weight", "val_owa",
    "model_val_owa", "table": {benchmark: [OWA per weight]}, "benchmark_val_owa": {benchmark: its OWA
    alone, for the record, not a choice}, "weights", "seasonality", "series"}."""
    keep = np.flatnonzero(scorable(insample, m))
    if not len(keep):
        raise OfaError("no validation series can be scored (each needs more than the seasonal period's values "
                       "before its hold-out, not all equal)")
    x = [np.asarray(insample[i], np.float64) for i in keep]
    y = [np.asarray(truth[i], np.float64) for i in keep]
    f = np.asarray(forecasts, np.float64)[keep]
    h = f.shape[1]
    naive2 = [metrics.naive2(v, h, m) for v in x]
    table, alone, best = {}, {}, None
    for name in benchmarks:
        b = np.array(naive2 if name == "naive2" else [metrics.BENCHMARKS[name](v, h, m) for v in x])
        table[name] = [metrics.score(x, y, list(w * f + (1 - w) * b), m, naive2)["owa"] for w in weights]
        alone[name] = metrics.score(x, y, list(b), m, naive2)["owa"]
        for w, o in zip(weights, table[name]):
            if best is None or o < best[0]:
                best = (o, name, w)
    val_owa, name, w = best
    return {"benchmark": name if w < 1 else None, "model_weight": float(w), "val_owa": float(val_owa),
            "model_val_owa": metrics.score(x, y, list(f), m, naive2)["owa"], "table": table,
            "benchmark_val_owa": alone, "weights": [float(w) for w in weights], "seasonality": m,
            "series": len(keep)}


def combine(forecasts: np.ndarray, insample: list[np.ndarray], combination: dict | None) -> np.ndarray:
    """Apply a recorded combination (choose_combination) to forecasts (S, H) of the series `insample`."""
    if not combination or combination.get("model_weight", 1.0) >= 1.0:
        return forecasts
    w, m, h = combination["model_weight"], combination["seasonality"], forecasts.shape[1]
    bench = metrics.BENCHMARKS[combination["benchmark"]]
    return w * forecasts + (1 - w) * np.array([bench(np.asarray(x, np.float64), h, m) for x in insample])


def evaluate_panel(test: str, checkpoint_dir: str | None = None, model_file: str | None = None,
                   train: str | None = None, seasonality: int | None = None, backbone: str | None = None,
                   log=None) -> dict:
    """Score on a panel's test file. `train`: the in-sample file (default: the one the model trained on);
    `seasonality`: MASE's and Naive2's period (default: the M4 frequency's, from ids or file name)."""
    if (checkpoint_dir is None) == (model_file is None):
        raise OfaError("give exactly one of a checkpoint directory or an exported model file")
    if checkpoint_dir is not None:
        from .evaluation import predict_windows_torch
        from .training import checkpoint

        model, meta = checkpoint.load(checkpoint_dir, backbone=backbone)
        forecast = lambda x: predict_windows_torch(model, x)  # noqa: E731
        data_meta = meta["data"]
        combination = meta.get("combination")
    else:
        from .runtime.engine import load

        engine = load(model_file)
        meta = engine.meta
        forecast = engine.run
        data_meta = meta.get("data", {})
        combination = engine.combination
    mc = meta["model"]
    train = train or data_meta.get("path")
    if not train:
        raise OfaError("no in-sample file: give --train-data (the panel the model forecasts from)")
    ids, insample, truth = read_m4_pair(train, test)
    if len(truth[0]) != mc["horizon"]:
        raise OfaError(f"{test}: horizon {len(truth[0])}, the model forecasts {mc['horizon']}")
    freq = frequency_of(ids, test)
    if seasonality is None:
        if freq is None:
            raise OfaError(f"{test}: cannot tell the frequency from its ids or name; give --seasonality")
        seasonality = metrics.SEASONAL_PERIOD[freq]
    windows = panel_test_windows(insample, truth, mc["seq_len"])
    x, _ = windows.windows()
    if log is not None:
        log(f"scoring {len(ids):,} series of {os.path.basename(test)} (seasonal period {seasonality}) with the "
            + ("checkpoint (PyTorch)" if checkpoint_dir is not None else "model file (C++ engine)"))
    pred = np.asarray(forecast(x.astype(np.float32)), np.float64)[:, :, 0] * windows.scale[:, None]
    if not np.isfinite(pred).all():
        raise OfaError("the model produced a non-finite forecast")
    alone = metrics.score(insample, truth, list(pred), seasonality)
    result = metrics.score(insample, truth, list(combine(pred, insample, combination)), seasonality)
    return result | {"combination": {k: combination[k] for k in ("benchmark", "model_weight", "val_owa")}
                     if combination else None,
                     "model_alone": {k: alone[k] for k in ("smape", "mase", "owa")}} | {"dataset": os.path.splitext(os.path.basename(test))[0], "frequency": freq,
                     "seasonality": seasonality, "horizon": mc["horizon"], "seq_len": mc["seq_len"]}
