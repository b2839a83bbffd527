"""Scoring: MSE and MAE on the scaled test split (the convention of the published tables), and plots."""
from __future__ import annotations

import os

import numpy as np
import torch

from .data import WindowSet, describe_split, evenly_spaced, load_series, make_splits
from .errors import OfaError

PREDICT_SERIES = 1024  # series per forward pass when scoring


def predict_windowset(model, windows: WindowSet, indices: np.ndarray | None = None, precision: str = "fp32",
                      batch: int = PREDICT_SERIES, device=None) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts and truths (S, H) for the series `indices` (all by default), scaled units."""
    from .training.distributed import autocast

    device = device or torch.device("cpu")
    if indices is None:
        indices = np.arange(len(windows))
    model.eval()
    preds, truths = [], []
    with torch.inference_mode(), autocast(device, precision):
        for start in range(0, len(indices), batch):
            x, y = windows.batch(indices[start:start + batch])
            pred = model(torch.from_numpy(x).unsqueeze(-1).to(device))
            preds.append(pred.float().squeeze(-1).cpu().numpy())
            truths.append(y)
    return np.concatenate(preds), np.concatenate(truths)


def scores(pred: np.ndarray, truth: np.ndarray) -> dict:
    err = pred.astype(np.float64) - truth.astype(np.float64)
    return {"mse": float(np.mean(err ** 2)), "mae": float(np.mean(np.abs(err)))}


def evaluate(checkpoint_dir: str | None = None, data: str | None = None, model_file: str | None = None,
             json_path: str | None = None, plot_path: str | None = None, target: str | None = None,
             backbone: str | None = None, log=None, device: str = "cpu", split: str | None = None) -> dict:
    """Score a checkpoint (PyTorch) or an exported model file (C++ engine) on the full test split.
    log: called with the split and a line before the (possibly long) scoring starts.
    split: how to cut `data` (data.split_borders); default: the split the model was trained with.

    backbone: the checkpoint's backbone, when ofa.json names one outside its directory (checkpoint.load)."""
    from .training import checkpoint

    if (checkpoint_dir is None) == (model_file is None):
        raise OfaError("give exactly one of a checkpoint directory or an exported model file")
    if data is None:
        raise OfaError("no data file given")
    if checkpoint_dir is not None:
        from .training.distributed import resolve_device

        model, meta = checkpoint.load(checkpoint_dir, backbone=backbone)
        torch_device = resolve_device(device)
        model.to(torch_device)
        mc = meta["model"]
        target = target if target is not None else meta["data"].get("target")
        split = split or meta["data"].get("split", "auto")
        forecast = lambda x: predict_windows_torch(model, x, device=torch_device)  # noqa: E731
    else:
        from .runtime.engine import load as load_engine

        engine = load_engine(model_file)
        mc = engine.meta["model"]
        target = target if target is not None else engine.meta.get("target")
        split = split or engine.split
        scaler = engine.scaler
        forecast = lambda x: scaler.transform(engine.run(scaler.inverse(x)))  # noqa: E731
    series = load_series(data, target, split)
    splits = make_splits(series, mc["seq_len"], mc["horizon"])
    channels = meta["data"]["channels"] if checkpoint_dir is not None else engine.channels
    if channels is not None and list(series.channels) != [str(c) for c in channels]:
        what = "checkpoint's" if checkpoint_dir is not None else "model file's"
        raise OfaError(f"{data}: channels {series.channels} differ from the {what} {list(channels)} "
                       f"(names and order must match)")
    x, y = splits.test.windows()
    if log is not None:
        log(describe_split(splits))
        log(f"scoring {x.shape[0]:,} test windows x {x.shape[2]} channel(s) with the "
            + ("checkpoint (PyTorch)" if checkpoint_dir is not None else f"{engine.scheme} model file (C++ engine)"))
    pred = forecast(x)
    result = scores(pred, y) | {"dataset": series.name, "horizon": mc["horizon"], "seq_len": mc["seq_len"],
                                "test_windows": int(x.shape[0]), "channels": int(x.shape[2])}
    if json_path:
        checkpoint.atomic_write_json(json_path, result)
    if plot_path:
        first_rows = splits.borders[2][0] + splits.test.starts  # each test window's first input row
        plot(splits.scaler.inverse(x), splits.scaler.inverse(y), splits.scaler.inverse(pred),
             series.channels, plot_path, title=f"{series.name}, horizon {mc['horizon']}: "
                                               f"test MSE {result['mse']:.3f}, MAE {result['mae']:.3f}",
             dates=None if series.dates is None else series.dates, first_rows=first_rows, scaled=(pred, y))
    return result


def predict_windows_torch(model, x: np.ndarray, batch: int = PREDICT_SERIES, device=None) -> np.ndarray:
    """x (W, L, C) scaled -> forecasts (W, H, C) scaled, with the PyTorch model (on `device`, default CPU)."""
    per_batch = max(1, batch // x.shape[2])
    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(x), per_batch):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start:start + per_batch]))
            out.append(model(chunk if device is None else chunk.to(device)).cpu().numpy())
    return np.concatenate(out)


def plot(x: np.ndarray, y: np.ndarray, pred: np.ndarray, channels: list[str], path: str, title: str,
         n_windows: int = 3, n_channels: int = 3, dates=None, first_rows=None, scaled=None) -> None:
    """Input, truth and forecast (data units) for a few evenly spaced test windows and the last few channels.
    dates / first_rows: the series' dates and each window's first row, for a dated axis; scaled: (pred, y)
    in scaled units, for each panel's MSE in the units of the published tables."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .training.checkpoint import atomic_write

    picks_w = evenly_spaced(len(x), n_windows)
    picks_c = list(range(max(0, x.shape[2] - n_channels), x.shape[2]))
    fig, axes = plt.subplots(len(picks_c), len(picks_w), figsize=(4.2 * len(picks_w), 2.4 * len(picks_c)),
                             squeeze=False)
    seq, hor = x.shape[1], y.shape[1]
    for row, c in enumerate(picks_c):
        for col, w in enumerate(picks_w):
            ax = axes[row][col]
            steps = np.arange(seq + hor)
            t = dates[first_rows[w] + steps] if dates is not None and first_rows is not None else steps
            ax.plot(t[:seq], x[w, :, c], color="0.5", lw=0.8, label="input")
            ax.plot(t[seq:], y[w, :, c], color="k", lw=1.0, label="truth")
            ax.plot(t[seq:], pred[w, :, c], color="tab:red", lw=1.0, label="forecast")
            mse = float(np.mean((scaled[0][w, :, c] - scaled[1][w, :, c]) ** 2)) if scaled is not None else None
            ax.set_title(f"{channels[c]}, window {w}" + (f": MSE {mse:.3f}" if mse is not None else ""), fontsize=8)
            ax.tick_params(labelsize=7)
            if dates is not None:
                ax.tick_params(axis="x", labelrotation=30)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    ext = os.path.splitext(path)[1] or ".png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=ext.lstrip(".")))
    plt.close(fig)

