"""Panel data: many short series, one per row (the M4 competition's CSV format).

A row is an id, then the series' values; shorter series end in empty fields or NA. The test file has
the same ids in the same order, each with its horizon's values. Reading is strict: an all-empty row, a
non-numeric cell, a value after the padding began, or test ids that do not match are refused with the
file's line number. numpy and the csv module only.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from .errors import OfaError

MISSING = {"", "NA", "NaN", "nan"}


def read_m4(path: str) -> tuple[list[str], list[np.ndarray]]:
    """(ids, series) of an M4-format CSV: each series its values in order, padding removed (float64)."""
    if not os.path.isfile(path):
        raise OfaError(f"panel file not found: {path}")
    ids, series = [], []
    with open(path, newline="") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if not header or len(header) < 2:
            raise OfaError(f"{path}: expected a header of an id column and at least one value column")
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            sid, cells = row[0].strip(), row[1:]
            if not sid:
                raise OfaError(f"{path}: line {line} has no series id")
            n = len(cells)
            while n and cells[n - 1].strip() in MISSING:
                n -= 1
            if n == 0:
                raise OfaError(f"{path}: line {line} (series {sid!r}) has no values")
            try:
                values = np.array([float(c) if c.strip() not in MISSING else np.nan for c in cells[:n]])
            except ValueError:
                bad = next(c for c in cells[:n] if c.strip() not in MISSING and not _is_number(c))
                raise OfaError(f"{path}: line {line} (series {sid!r}): non-numeric value {bad!r}") from None
            if not np.isfinite(values).all():
                raise OfaError(f"{path}: line {line} (series {sid!r}): a missing or non-finite value inside the "
                               f"series (only trailing padding may be empty)")
            ids.append(sid)
            series.append(values)
    if not series:
        raise OfaError(f"{path}: no series")
    return ids, series


def read_m4_pair(train_path: str, test_path: str) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """(ids, in-sample series, test horizons) of matching M4 train and test files."""
    ids, train = read_m4(train_path)
    test_ids, test = read_m4(test_path)
    if test_ids != ids:
        first = next((i for i, (a, b) in enumerate(zip(ids, test_ids)) if a != b), min(len(ids), len(test_ids)))
        raise OfaError(f"{test_path}: its series ids do not match {train_path} (first difference at series "
                       f"{first + 1}: {test_ids[first] if first < len(test_ids) else 'none'!r} against "
                       f"{ids[first] if first < len(ids) else 'none'!r})")
    horizons = {len(t) for t in test}
    if len(horizons) != 1:
        raise OfaError(f"{test_path}: series have different horizons {sorted(horizons)}")
    return ids, train, test


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class PanelWindows:
    """Windows over many series laid end to end in one column: item i is (x (seq_len,), y (horizon,)),
    with the WindowSet interface (len, batch, windows, starts, seq_len, horizon, n_channels = 1). No window
    crosses from one series into the next: `starts` lists only starts inside a series.

    The series of a panel differ in scale by orders of magnitude (M4: from tens to hundreds of thousands),
    so each window comes divided by the mean absolute value of its input's last `horizon` steps (`scale`,
    1 where those are all 0): the loss weighs every series alike, as sMAPE and MASE do, and the scale of a
    validation target does not depend on the lookback, so lookbacks compare on the same units. The model
    is scale-equivariant (instance norm), and forecasts are multiplied back (ofa.shortterm)."""

    def __init__(self, data: np.ndarray, seq_len: int, horizon: int, starts: np.ndarray):
        self.data = np.ascontiguousarray(data, dtype=np.float32).reshape(-1, 1)
        self.seq_len, self.horizon = seq_len, horizon
        self.starts = np.asarray(starts, dtype=np.int64)
        self.n_channels = 1
        tail = min(horizon, seq_len)
        inputs = self.data[self.starts[:, None] + np.arange(seq_len - tail, seq_len)[None, :], 0].astype(np.float64)
        scale = np.abs(inputs).mean(axis=1)
        self.scale = np.where(scale > 0, scale, 1.0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.starts)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stack items, each divided by its scale: x (B, seq_len), y (B, horizon)."""
        offsets = np.arange(self.seq_len + self.horizon)
        rows = self.data[self.starts[indices][:, None] + offsets[None, :], 0] / self.scale[indices][:, None]
        return rows[:, : self.seq_len], rows[:, self.seq_len:]

    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows, scaled: x (W, seq_len, 1), y (W, horizon, 1)."""
        x, y = self.batch(np.arange(len(self)))
        return x[:, :, None], y[:, :, None]


def padded(values: np.ndarray, length: int) -> np.ndarray:
    """A series at least `length` long: shorter ones are left-padded with their first value (documented:
    the model sees a flat start, never a made-up trend), longer ones are unchanged."""
    return values if len(values) >= length else np.r_[np.full(length - len(values), values[0]), values]


def panel_splits(series: list[np.ndarray], seq_len: int, horizon: int, train_every: int = 1):
    """Train and validation windows of a panel, for training across its series.

    Validation holds out each series' last `horizon` values: one window per series, its input the
    `seq_len` values before them. Training windows end before that hold-out. A series shorter than
    seq_len + 2 * horizon is left-padded (padded()) so that it gives one training and one validation
    window. The scale is each window's own (instance norm), so the dataset scaler is the identity.
    """
    from .data import Scaler, Series, Splits

    need = seq_len + 2 * horizon
    parts, train_starts, val_starts, at = [], [], [], 0
    for values in series:
        v = padded(np.asarray(values, np.float64), need)
        last_train_start = len(v) - horizon - seq_len - horizon  # the last window whose target ends before the hold-out
        train_starts.append(at + np.arange(0, last_train_start + 1))
        val_starts.append(at + len(v) - seq_len - horizon)
        parts.append(v)
        at += len(v)
    data = np.concatenate(parts)
    starts = np.concatenate(train_starts)[::train_every]
    train = PanelWindows(data, seq_len, horizon, starts)
    val = PanelWindows(data, seq_len, horizon, np.array(val_starts))
    one = Series("panel", data.astype(np.float32)[:, None], ["value"])
    return Splits(one, Scaler(np.zeros(1, np.float32), np.ones(1, np.float32)), train, val, val)


def panel_test_windows(train: list[np.ndarray], test: list[np.ndarray], seq_len: int) -> PanelWindows:
    """One window per series: the last seq_len in-sample values (padded()) and the test horizon."""
    horizon = len(test[0])
    parts, starts, at = [], [], 0
    for x, y in zip(train, test):
        v = np.r_[padded(np.asarray(x, np.float64), seq_len)[-seq_len:], np.asarray(y, np.float64)]
        parts.append(v)
        starts.append(at)
        at += len(v)
    return PanelWindows(np.concatenate(parts), seq_len, horizon, np.array(starts))
