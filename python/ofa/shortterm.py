"""Short-term (M4-style) scoring: a checkpoint or a model file forecasts each series of a panel from its
last in-sample values; sMAPE, MASE and OWA against Naive2 (ofa.metrics) over the panel's test file."""
from __future__ import annotations

import os
import re

import numpy as np

from . import metrics
from .errors import OfaError
from .panel import panel_test_windows, read_m4_pair

M4_PREFIX = {"H": "hourly", "D": "daily", "W": "weekly", "M": "monthly", "Q": "quarterly", "Y": "yearly"}


def frequency_of(ids: list[str], path: str) -> str | None:
    """M4's frequency from its ids (H1, W12, ...) or from the file name (Hourly-test.csv); None if neither says."""
    prefixes = {re.match(r"[A-Za-z]*", i).group(0).upper() for i in ids}
    if len(prefixes) == 1 and (p := prefixes.pop()) in M4_PREFIX:
        return M4_PREFIX[p]
    name = os.path.basename(path).lower()
    return next((f for f in metrics.SEASONAL_PERIOD if f in name), None)


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
    else:
        from .runtime.engine import load

        engine = load(model_file)
        meta = engine.meta
        forecast = engine.run
        data_meta = meta.get("data", {})
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
    result = metrics.score(insample, truth, list(pred), seasonality)
    return result | {"dataset": os.path.splitext(os.path.basename(test))[0], "frequency": freq,
                     "seasonality": seasonality, "horizon": mc["horizon"], "seq_len": mc["seq_len"]}
