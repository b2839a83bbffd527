"""Forecast what comes after the last row of a CSV: `ofa forecast`, `ofa.forecast` (ofa.runtime.forecasting.forecast).

The input is the user's own CSV in the data's units (a date column, then channels). The model's channels
are picked from it by name, so another column order works and a missing channel is refused by name. The
last seq_len rows go through an exported model file (C++ engine, fp32 or int8) or a checkpoint directory
(PyTorch), and the next `horizon` rows come back with their dates, continued at the data's own frequency.

Dates: a regular series (pandas infers a frequency from the input window: hourly, 15-minute, monthly...)
continues at that frequency. An irregular one (gaps, jitter) continues at its most common step, and the
result says so in "note". Without a date column the rows are numbered 1..horizon in a "step" column.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import OfaError


def read_window(path: str, channels: list[str], seq_len: int):
    """(x (seq_len, C) float32 in `channels` order, its dates or None, the date column's name, ignored columns)."""
    import pandas as pd

    from ..data import check_finite, parse_dates, read_frame

    frame = read_frame(path)
    have = list(frame.columns[1:])
    missing = [c for c in channels if c not in have]
    if missing:
        raise OfaError(f"{path}: lacks the model's channel(s) {', '.join(map(repr, missing))} "
                       f"(the model needs {', '.join(channels)}; the file has {', '.join(have)})")
    if len(frame) < seq_len:
        raise OfaError(f"{path}: {len(frame)} rows, the model reads the last {seq_len}")
    recent = frame.iloc[len(frame) - seq_len:]
    bad = [c for c in channels if not pd.api.types.is_numeric_dtype(recent[c])]
    if bad:
        raise OfaError(f"{path}: non-numeric value(s) in column(s) {', '.join(map(repr, bad))} of the last "
                       f"{seq_len} rows")
    x = recent[channels].to_numpy(dtype=np.float64)
    check_finite(x, path, channels, first_line=len(frame) - seq_len + 2)
    ignored = [c for c in have if c not in channels]
    return x.astype(np.float32), parse_dates(recent.iloc[:, 0]), frame.columns[0], ignored


def future_dates(dates: np.ndarray, horizon: int, path: str = "the data"):
    """(the `horizon` dates after the last one, the frequency's name, a note or None)."""
    import pandas as pd

    index = pd.DatetimeIndex(dates)
    steps = np.diff(index.asi8)
    if len(steps) == 0:
        raise OfaError(f"{path}: one row cannot say the date step; the model needs more")
    if (steps <= 0).any():
        at = int(np.argmax(steps <= 0))
        raise OfaError(f"{path}: dates do not increase ({index[at]} then {index[at + 1]} in the last "
                       f"{len(index)} rows): sort the file by date")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset; both work below
        freq = pd.infer_freq(index) if len(index) >= 3 else None
    freq = getattr(freq, "freqstr", freq)
    if freq is not None:
        return pd.date_range(index[-1], periods=horizon + 1, freq=freq)[1:], step_name(freq), None
    values, counts = np.unique(steps, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]))
    note = (f"dates are irregular in the last {len(index)} rows (steps from {step_name(int(steps.min()))} to "
            f"{step_name(int(steps.max()))}); the forecast continues at the most common step, "
            f"{step_name(step.value)}")
    return index[-1] + step * np.arange(1, horizon + 1), step_name(step.value), note


def step_name(freq) -> str:
    """'1 hour', '15 minutes', 'month start (MS)': a pandas frequency or a step in nanoseconds, for people."""
    import pandas as pd

    try:
        nanos = freq if isinstance(freq, int) else pd.Timedelta(pd.tseries.frequencies.to_offset(freq)).value
    except (ValueError, TypeError):  # calendar frequencies (months, business days) have no fixed length
        offset = pd.tseries.frequencies.to_offset(freq)
        return f"{type(offset).__name__} ({freq})"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if nanos % (size * 10 ** 9) == 0:
            n = nanos // (size * 10 ** 9)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{nanos} ns"


class Forecaster:
    """An exported model file (engine) or a checkpoint directory (PyTorch) behind one call: data units in and out."""

    def __init__(self, model: str, threads: int = 1, backbone: str | None = None):
        if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
            from ..training import checkpoint

            self.torch_model, meta = checkpoint.load(model, backbone=backbone)
            self.scaler = checkpoint.scaler_from(meta)
            self.channels = list(meta["data"]["channels"])
            self.seq_len, self.horizon = meta["model"]["seq_len"], meta["model"]["horizon"]
            self.kind = "checkpoint (PyTorch)"
        else:
            from .engine import load

            self.engine = load(model, threads=threads)
            if self.engine.task == "classify":
                raise OfaError(f"{model} is a classifier: it scores .ts cases (ofa eval --model), it does not forecast")
            if self.engine.channels is None:
                raise OfaError(f"{model}: the model file records no channel names, so columns cannot be matched")
            self.channels = [str(c) for c in self.engine.channels]
            self.seq_len, self.horizon = self.engine.seq_len, self.engine.horizon
            self.kind = f"{self.engine.scheme} model file (C++ engine)"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (seq_len, C) in data units -> (horizon, C) in data units."""
        if hasattr(self, "engine"):
            from .engine import infer

            return infer(self.engine, x)
        from ..evaluation import predict_windows_torch

        scaled = self.scaler.transform(x)[None]
        return self.scaler.inverse(predict_windows_torch(self.torch_model, scaled)[0])


def forecast(model: str, data: str, out: str | None = None, plot: str | None = None, threads: int = 1,
             backbone: str | None = None) -> dict:
    """Forecast the `horizon` rows after the last row of `data`.

    Returns {"frame": a pandas DataFrame (date column, then the model's channels), "frequency", "note",
    "model", "rows_read", "ignored_columns"}; writes `out` (CSV) and `plot` (PNG) atomically when given.
    backbone: a checkpoint's backbone, when its ofa.json names one outside its directory (checkpoint.load).
    """
    import pandas as pd

    for label, target in (("--out", out), ("--plot", plot)):
        if target is not None and (not target or str(target).endswith(("/", os.sep)) or os.path.isdir(target)):
            raise OfaError(f"{label} must name a file, got {target!r}")
    model_ = Forecaster(model, threads=threads, backbone=backbone)
    x, dates, date_column, ignored = read_window(data, model_.channels, model_.seq_len)
    y = model_(x)
    if dates is not None:
        when, frequency, note = future_dates(dates, model_.horizon, data)
    else:
        when, frequency, note = np.arange(1, model_.horizon + 1), None, None
        date_column = "step"
    frame = pd.DataFrame(y.astype(np.float32), columns=model_.channels)  # float32: written as the engine gave it
    frame.insert(0, date_column, when)
    if out is not None:
        from ..fileio import atomic_write_bytes

        try:
            atomic_write_bytes(out, frame.to_csv(index=False).encode())
        except OSError as exc:
            raise OfaError(f"cannot write {out}: {exc.strerror or exc}") from None
    if plot is not None:
        plot_forecast(x, dates, frame, model_.channels, plot, title=f"{os.path.basename(str(data))}: "
                      f"the next {model_.horizon} steps from the last {model_.seq_len}")
    return {"frame": frame, "frequency": frequency, "note": note, "model": model_.kind,
            "rows_read": model_.seq_len, "ignored_columns": ignored}


def plot_forecast(x: np.ndarray, dates, frame, channels: list[str], path: str, title: str,
                  max_channels: int = 4) -> None:
    """Recent history and the forecast of the last few channels (the target is usually last), dated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..fileio import atomic_write

    picks = list(range(max(0, len(channels) - max_channels), len(channels)))
    shown = min(len(x), 4 * len(frame))  # enough history to see the pattern, not so much that it hides the forecast
    x = x[-shown:]
    dates = None if dates is None else dates[-shown:]
    fig, axes = plt.subplots(len(picks), 1, figsize=(9, 2.2 * len(picks)), squeeze=False, sharex=True)
    past = dates if dates is not None else np.arange(-len(x) + 1, 1)
    future = frame.iloc[:, 0].to_numpy()
    for row, c in enumerate(picks):
        ax = axes[row][0]
        ax.plot(past, x[:, c], color="0.4", lw=0.8, label="history")
        ax.plot(future, frame[channels[c]].to_numpy(), color="tab:red", lw=1.1, label="forecast")
        ax.axvline(past[-1], color="0.7", lw=0.6, ls="--")
        ax.set_ylabel(channels[c], fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    ext = os.path.splitext(str(path))[1] or ".png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=ext.lstrip(".")))
    plt.close(fig)
