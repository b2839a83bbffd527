"""`ofa detect`'s files: read a stream (timestamp column, value column), write its anomaly scores atomically.

Input rules (each refusal is one OfaError line, `ofa detect` exit status 2):
- the first column holds the timestamps; every one must parse as a date (ISO 8601 or what pandas reads);
- the value column is --column (default `value`, or the one numeric column after the timestamps); every
  value must be a finite number;
- rows are the time axis, as in NAB: a gap in the timestamps (irregular sampling) is just the next row;
- timestamps that repeat or go back are accepted by default, because the detector only reads the rows in
  file order and eight of NAB's own files have them (ofa.anomaly.nab's docstring lists them); a note says
  how many. `strict=True` (`--strict`) refuses them instead.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import OfaError
from ..fileio import atomic_write


def read_stream(path: str, column: str | None = None, strict: bool = False) -> dict:
    """{"timestamps": the first column as written (str), "dates": datetime64, "values": float64,
    "column": the value column's name, "time_column", "notes": [lines]}."""
    import pandas as pd

    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise OfaError(f"data file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise OfaError(f"cannot read {path} as CSV: {exc}") from None
    if frame.shape[1] < 2:
        raise OfaError(f"{path}: expected a timestamp column and a value column")
    if len(frame) == 0:
        raise OfaError(f"{path}: no rows")
    names = [str(c) for c in frame.columns]
    frame.columns = names
    time_column = names[0]
    if column is None:
        if "value" in names[1:]:
            column = "value"
        else:
            numeric = [c for c in names[1:] if pd.to_numeric(frame[c], errors="coerce").notna().all()]
            if len(numeric) != 1:
                raise OfaError(f"{path}: give --column (columns: {', '.join(names)})")
            column = numeric[0]
    elif column not in names[1:]:
        raise OfaError(f"{path}: no column {column!r} (columns: {', '.join(names)})")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise OfaError(f"{path}: value {frame[column].iloc[bad[0]]!r} in column {column!r} at line {bad[0] + 2} is not "
                       f"a finite number ({bad.size} such rows)")
    stamps = frame[time_column].to_numpy(dtype=str)
    dates = pd.to_datetime(pd.Series(stamps), errors="coerce", format="mixed")
    missing = np.flatnonzero(dates.isna().to_numpy())
    if missing.size:
        raise OfaError(f"{path}: timestamp {stamps[missing[0]]!r} at line {missing[0] + 2} is not a date "
                       f"({missing.size} such rows)")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    dates = dates.to_numpy(dtype="datetime64[ns]")
    notes = []
    steps = np.diff(dates)
    back = np.flatnonzero(steps <= np.timedelta64(0, "ns"))
    if back.size:
        i = int(back[0]) + 1
        kind = "repeats" if dates[i] == dates[i - 1] else "goes back from"
        line = (f"timestamp {stamps[i]} at line {i + 2} {kind} {stamps[i - 1]} ({back.size} "
                f"{'row' if back.size == 1 else 'rows'} whose timestamp does not increase)")
        if strict:
            raise OfaError(f"{path}: {line}; --strict refuses them")
        notes.append(line + "; rows are scored in file order")
    return {"timestamps": stamps, "dates": dates, "values": values, "column": column, "time_column": time_column,
            "notes": notes}


def write_scores(path: str, timestamps, values: np.ndarray, scores: np.ndarray) -> None:
    """timestamp,value,anomaly_score (NAB's results layout, less its label columns), written atomically."""
    import pandas as pd

    frame = pd.DataFrame({"timestamp": np.asarray(timestamps), "value": np.asarray(values),
                          "anomaly_score": np.asarray(scores, dtype=np.float64)})

    def write(tmp):
        frame.to_csv(tmp, index=False, float_format="%.10g")

    atomic_write(path, write)


def detect_file(data: str, out: str, column: str | None = None, train_fraction: float | None = None,
                strict: bool = False, retrain: str = "double", stride: int = 1, log=None,
                export: str | None = None, model: str | None = None, one_step: bool = True) -> dict:
    """`ofa detect`: score every row of `data` and write `out`. The detector trains on the first rows (NAB's
    probationary period, min(floor(0.15 n), 750) rows, or floor(train_fraction n)) and scores the rest
    online (ofa.anomaly.detector); the training rows score 0. one_step: also run the one-step member
    (DetectorConfig.one_step; stride 1 only).

    export: also write the detector's first model, int8, with its stream settings (ofa.anomaly.device), for
    the engine and the firmware. model: score with such a file instead, in the C++ engine, as the firmware
    does (no training; its train_rows and stride are the file's)."""
    from .detector import DetectorConfig, score_series
    from .nab import probation_rows

    stream = read_stream(data, column, strict)
    n = len(stream["values"])
    if model is not None:
        if train_fraction is not None or export is not None:
            raise OfaError("--model scores with an exported detector: it takes neither --train-fraction nor --export")
        return _detect_with_model(stream, data, out, model)
    if train_fraction is None:
        train_rows = probation_rows(n)
    else:
        if not 0.0 < train_fraction < 1.0:
            raise OfaError(f"--train-fraction must be between 0 and 1, got {train_fraction}")
        train_rows = int(train_fraction * n)
    if train_rows < 1 or train_rows >= n:
        raise OfaError(f"{data}: {n} rows leave {train_rows} training rows and {n - train_rows} to score")
    defaults = DetectorConfig()
    cfg = DetectorConfig(train_rows=train_rows, retrain=retrain, stride=stride,
                         memory=max(defaults.memory, train_rows), one_step=one_step)
    if export is not None and (not export or export.endswith("/")):
        raise OfaError(f"--export must name a file, got {export!r}")
    result = score_series(stream["values"], cfg, log=log)
    write_scores(out, stream["timestamps"], stream["values"], result["scores"])
    exported = None
    if export is not None:
        from .device import export_detector

        exported = export_detector(stream["values"], export, cfg, log=log)
    return {"rows": n, "train_rows": train_rows, "column": stream["column"], "notes": stream["notes"],
            "fits": result["fits"], "horizons": [m["horizon"] for m in result["members"]], "scores": result["scores"],
            "config": cfg.to_dict(), "exported": exported}


def _detect_with_model(stream: dict, data: str, out: str, model_path: str) -> dict:
    from ..runtime.engine import Model
    from .device import read_settings, stream_scores

    model = Model(model_path)
    settings = read_settings(model.metadata, model_path, model.n_channels)
    n = len(stream["values"])
    if n <= settings["train_rows"]:
        raise OfaError(f"{data}: {n} rows; the detector {model_path} was trained on {settings['train_rows']} and "
                       f"scores the rows after them")
    scores = stream_scores(model, stream["values"])
    write_scores(out, stream["timestamps"], stream["values"], scores)
    return {"rows": n, "train_rows": settings["train_rows"], "column": stream["column"], "notes": stream["notes"],
            "fits": [(settings["train_rows"], {"seq_len": model.seq_len})], "horizons": [model.horizon],
            "scores": scores, "config": settings, "exported": None, "engine": model.scheme}
