"""The Numenta Anomaly Benchmark (NAB) scorer: raw and normalised scores, and the exact threshold sweep.

Scoring rules (NAB v1.x, `nab/sweeper.py`; Lavin & Ahmad 2015), for one application profile with weights
tp, fp, fn (`config/profiles.json`):
- A detection is a row whose anomaly score is >= the threshold. Scores must lie in [0, 1].
- Probationary period: the first min(floor(0.15 n), 0.15 * 5000) rows of a file of n rows are not scored
  (`probation_rows`).
- Window of w rows, first row a, last row b: of the detections in it only the one with the best score counts,
  which is the earliest; a detection at row i scores tp * S(-(b - i + 1) / w) / S(-1), so a detection on the
  window's first row scores exactly tp. A window with no scored detection counts -fn.
- A detection outside every window is a false positive: fp * S((i - b) / (w - 1)), with b and w the last row
  and width of the closest preceding window, and -fp before the first window of its file.
- S(x) = 2 sigmoid(-5 x) - 1 (`scaled_sigmoid`), and -1 for x >= 3.
- The raw score is the sum over every file. Normalised: 100 (raw - null) / (perfect - null), with null the
  raw score of a detector that never detects (-fn per window that has scored rows) and perfect = tp per
  labelled window (NAB's `runner.normalize`).
- `optimize_threshold` is NAB's optimiser (`sweep_optimizer` over `Sweeper.calcScoreByThreshold`): the corpus
  raw score at every distinct anomaly score taken as threshold, plus 1.1 (nothing detected), and the best.
  Here that sweep is one sort and a few cumulative sums (O(N log N) for N rows), not a loop over thresholds.

Conventions where NAB's data or code leave a choice:
- Positions and distances are counted in rows, as NAB does, never in time: a gap in the timestamps (NAB's
  irregularly sampled files) is just the next row, not an error.
- Timestamps only locate the windows: each window edge must be the timestamp of exactly one row of its
  file (OfaError otherwise). Repeated or backward timestamps elsewhere are tolerated by default, because
  eight of NAB's own files have them (12 rows at 2014-03-09 03:00 in ec2_disk_write_bytes_1ef3de,
  ec2_network_in_5abac7 and ec2_request_latency_system_failure, a repeated row in exchange-2_cpc/cpm_results,
  occupancy_t4013 and speed_t4013, and a step back from 02:55 to 02:00 in machine_temperature_system_failure);
  `strict=True` makes any duplicate or backward timestamp an OfaError, for corpora other than NAB.
- A window of one row makes NAB's false-positive distance divide by zero (w - 1 = 0); here the divisor is
  max(w - 1, 1). NAB's corpus has no such window.
- Windows must not overlap (OfaError); a window entirely inside the probationary period is not scored (no
  -fn), as in NAB's sweeper, while `perfect` still counts it, as NAB's normalisation does.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import OfaError

PROBATION_PERCENT = 0.15
NO_DETECTION_THRESHOLD = 1.1  # NAB's sweep starts above every score in [0, 1]: nothing is detected


@dataclass(frozen=True)
class Profile:
    """The weights of one NAB application profile (tn_weight is carried but unused by NAB's scoring)."""

    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float = 1.0


# NAB's config/profiles.json, for corpora built in memory.
NAB_PROFILES: dict[str, Profile] = {
    "standard": Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0),
    "reward_low_FP_rate": Profile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "reward_low_FN_rate": Profile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}


@dataclass(frozen=True, eq=False)
class DataFile:
    """One series of the corpus: its timestamps and its anomaly windows as (first row, last row), inclusive."""

    name: str
    timestamps: np.ndarray = field(repr=False)  # datetime64[ns], in file order
    windows: tuple[tuple[int, int], ...] = ()

    @property
    def rows(self) -> int:
        return len(self.timestamps)


@dataclass(frozen=True, eq=False)
class _Geometry:
    """Everything about the scored rows that does not depend on the detector, over all files in name order."""

    probation: np.ndarray  # (files,) rows skipped at the start of each file
    file_index: np.ndarray  # (N,) file of each scored row
    window: np.ndarray  # (N,) corpus-wide window id of each scored row, -1 outside windows
    unweighted: np.ndarray  # (N,) S(position) of each scored row, before the profile's weights
    window_file: np.ndarray  # (windows,) file of each window
    window_scored: np.ndarray  # (windows,) whether the window has a scored row

    def weighted(self, profile: Profile) -> np.ndarray:
        """Each scored row's contribution if detected: TP credit inside windows, FP penalty outside."""
        inside = self.window >= 0
        return np.where(inside, self.unweighted * profile.tp_weight / _MAX_TP, self.unweighted * profile.fp_weight)


@dataclass(frozen=True, eq=False)
class Corpus:
    """The labelled series to score (file name -> DataFile, sorted by name) and the profiles to score with."""

    files: dict[str, DataFile]
    profiles: dict[str, Profile]
    probation_percent: float = PROBATION_PERCENT
    _geometry: _Geometry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_geometry", _build_geometry(self.files, self.probation_percent))

    @property
    def window_count(self) -> int:
        return sum(len(f.windows) for f in self.files.values())

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise OfaError(f"unknown NAB profile {name!r}; the corpus has {', '.join(sorted(self.profiles))}")
        return self.profiles[name]


def scaled_sigmoid(x: Any) -> Any:
    """NAB's S(x) = 2 sigmoid(-5 x) - 1, and -1 for x >= 3: 0.9866 at -1 (a window's first row), 0 at 0."""
    x = np.asarray(x, dtype=np.float64)
    out = np.where(x >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(x, 3.0))) - 1.0)
    return out if out.ndim else float(out)


_MAX_TP = scaled_sigmoid(-1.0)


def probation_rows(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows NAB leaves unscored at the start of a file: min(floor(percent * rows), percent * 5000), rounded up."""
    return int(math.ceil(min(math.floor(percent * rows), percent * 5000)))


# ---------------------------------------------------------------------------------------------- loading


def load_corpus(nab_dir: str | os.PathLike, *, labels: str = "labels/combined_windows.json",
                strict: bool = False) -> Corpus:
    """Read a NAB checkout: `labels` (windows per file), `data/<file>` timestamps, `config/profiles.json`.

    The corpus is the files that `labels` lists. strict: see `build_corpus`.
    """
    nab_dir = os.fspath(nab_dir)
    if not os.path.isdir(nab_dir):
        raise OfaError(f"NAB directory {nab_dir} not found")
    labels_path = os.path.join(nab_dir, labels)
    windows = _read_json(labels_path)
    if not isinstance(windows, dict) or not windows:
        raise OfaError(f"{labels_path}: expected an object of file name -> list of [start, end] windows")
    profiles = _read_profiles(os.path.join(nab_dir, "config", "profiles.json"))
    timestamps = {}
    for name in sorted(windows):
        path = os.path.join(nab_dir, "data", name)
        if not os.path.isfile(path):
            raise OfaError(f"{path}: data file of {name} (listed in {labels_path}) not found")
        timestamps[name] = _read_columns(path, ["timestamp"])["timestamp"].to_numpy()
    return build_corpus(timestamps, windows, profiles, strict=strict)


def build_corpus(timestamps: Mapping[str, Sequence[Any] | np.ndarray],
                 windows: Mapping[str, Sequence[Sequence[Any]]],
                 profiles: Mapping[str, Profile] | None = None, *,
                 probation_percent: float = PROBATION_PERCENT, strict: bool = False) -> Corpus:
    """A corpus from timestamps per file (strings or datetimes) and windows per file ([start, end] timestamps).

    Every file needs a windows entry ([] for none). Each window edge must be the timestamp of exactly one
    row; windows must not overlap. strict: also reject any repeated or backward timestamp (NAB's own data
    has some, see the module docstring, so the default tolerates them away from window edges).
    """
    if not 0.0 <= probation_percent < 1.0:
        raise OfaError(f"probation_percent must be in [0, 1), got {probation_percent}")
    for name in windows:
        if name not in timestamps:
            raise OfaError(f"{name}: has anomaly windows but no timestamps")
    files = {}
    for name in sorted(timestamps):
        if name not in windows:
            raise OfaError(f"{name}: no windows entry (give [] for a file without anomalies)")
        ts = _to_datetime(timestamps[name], name)
        if len(ts) == 0:
            raise OfaError(f"{name}: the file has no rows")
        if strict:
            _check_increasing(name, ts)
        files[name] = DataFile(name, ts, _window_rows(name, ts, windows[name]))
    if not files:
        raise OfaError("the corpus has no files")
    profiles = dict(NAB_PROFILES if profiles is None else profiles)
    if not profiles:
        raise OfaError("the corpus needs at least one scoring profile")
    return Corpus(files, profiles, probation_percent)


def read_detector_results(results_dir: str | os.PathLike, detector: str,
                          corpus: Corpus | None = None) -> dict[str, np.ndarray]:
    """A detector's anomaly scores from NAB's layout `<results_dir>/<detector>/<category>/<detector>_<name>.csv`.

    Returns {"<category>/<name>.csv": anomaly_score column}. With `corpus`, reads exactly the corpus's files
    (OfaError for a missing one) and checks each file's timestamp column against the corpus's data file.
    """
    base = os.path.join(os.fspath(results_dir), detector)
    if not os.path.isdir(base):
        raise OfaError(f"results directory {base} of detector {detector!r} not found")
    if corpus is not None:
        names = list(corpus.files)
    else:
        names = []
        for category in sorted(os.listdir(base)):
            folder = os.path.join(base, category)
            if os.path.isdir(folder):  # the <detector>_<profile>_scores.csv summaries sit beside the folders
                names += [f"{category}/{f[len(detector) + 1:]}" for f in sorted(os.listdir(folder))
                          if f.startswith(detector + "_") and f.endswith(".csv")]
        if not names:
            raise OfaError(f"{base}: no result files {detector}_<name>.csv in its category folders")
    out = {}
    for name in names:
        category, file_name = os.path.split(name)
        path = os.path.join(base, category, f"{detector}_{file_name}")
        if not os.path.isfile(path):
            raise OfaError(f"{path}: result file of {name} not found")
        frame = _read_columns(path, ["anomaly_score"] + (["timestamp"] if corpus is not None else []))
        scores = _to_float(frame["anomaly_score"], path)
        if corpus is not None:
            expected = corpus.files[name].timestamps
            ts = _to_datetime(frame["timestamp"].to_numpy(), path)
            if len(ts) != len(expected):
                raise OfaError(f"{path}: {len(ts)} rows, but the data file {name} has {len(expected)}")
            differ = np.flatnonzero(ts != expected)
            if differ.size:
                raise OfaError(f"{path}: timestamp {ts[differ[0]]} at row {differ[0]} differs from the data file's "
                               f"{expected[differ[0]]}")
        out[name] = scores
    return out


# ---------------------------------------------------------------------------------------------- scoring


def file_scores(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str,
                threshold: float) -> dict[str, float]:
    """Raw NAB score of each file with detections at anomaly score >= threshold."""
    return dict(zip(corpus.files, _file_score_array(corpus, scores, profile, threshold).tolist()))


def score(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str, threshold: float) -> float:
    """Raw NAB score of the corpus (the sum over files) with detections at anomaly score >= threshold."""
    return float(np.sum(_file_score_array(corpus, scores, profile, threshold)))


def normalized_score(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str, threshold: float) -> float:
    """NAB's normalised score: 100 (raw - null) / (perfect - null); 0 never detects, 100 detects every window
    on its first row and nothing else."""
    return _normalize(corpus, corpus.profile(profile), score(corpus, scores, profile, threshold))


def detection_counts(corpus: Corpus, scores: Mapping[str, np.ndarray], threshold: float) -> dict[str, int]:
    """What a threshold detects, in counts: the scored windows, those with a detection, and the false
    positives (scored rows at or above the threshold outside every window)."""
    g = corpus._geometry
    detected = _gather(corpus, scores) >= threshold
    hit = np.zeros(len(g.window_scored), dtype=bool)
    hit[g.window[detected & (g.window >= 0)]] = True
    return {"windows": int(np.count_nonzero(g.window_scored)), "detected": int(np.count_nonzero(hit)),
            "false_positives": int(np.count_nonzero(detected & (g.window < 0)))}


def sweep(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str) -> tuple[np.ndarray, np.ndarray]:
    """The raw corpus score at every threshold that changes it: (thresholds, raw scores).

    Thresholds descend: 1.1 (nothing detected), then every distinct anomaly score of the scored rows, as
    NAB's `calcScoreByThreshold`; raw[k] == score(corpus, scores, profile, thresholds[k]).
    """
    p = corpus.profile(profile)
    g = corpus._geometry
    s = _gather(corpus, scores)
    w = g.weighted(p)
    n = len(s)
    base = -p.fn_weight * float(np.count_nonzero(g.window_scored))
    if n == 0:
        return np.array([NO_DETECTION_THRESHOLD]), np.array([base])
    # Rows are activated in order of decreasing anomaly score; rank = a row's place in that order.
    order = np.argsort(-s, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    gain = np.zeros(n)  # change of the raw score when the row of each rank becomes a detection
    outside = g.window < 0
    gain[rank[outside]] = w[outside]  # every false positive counts
    # In a window only the earliest detection counts: activating a row changes the window's credit only when
    # no earlier row of the window is active yet, i.e. its rank is below every earlier row's. Ranks offset
    # by -window * n make one running minimum restart at each window (ids increase with the row order).
    inside = np.flatnonzero(~outside)
    if inside.size:
        key = rank[inside] - g.window[inside] * n
        first = np.ones(inside.size, dtype=bool)
        first[1:] = key[1:] < np.minimum.accumulate(key)[:-1]
        rec = inside[first]  # rows that take over their window's credit, in row order
        credit = w[rec]
        # Such a row replaces the next such row of its window (activated before it), or the -fn of no detection.
        replaced = np.full(rec.size, -p.fn_weight)
        same = g.window[rec][1:] == g.window[rec][:-1]
        replaced[:-1][same] = credit[1:][same]
        gain[rank[rec]] = credit - replaced
    raw = (base + np.cumsum(gain, dtype=np.longdouble)).astype(np.float64)  # extended precision where available
    ordered = s[order]
    ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))  # last rank of each distinct score
    return np.append(NO_DETECTION_THRESHOLD, ordered[ends]), np.append(base, raw[ends])


def optimize_threshold(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str) -> tuple[float, float]:
    """NAB's threshold optimisation: the threshold with the best corpus score over the exact sweep, and its
    normalised score. Ties go to the highest threshold (NAB's stable sort); 1.1 means detecting nothing is best."""
    thresholds, raw = sweep(corpus, scores, profile)
    best = int(np.argmax(raw))
    return float(thresholds[best]), _normalize(corpus, corpus.profile(profile), float(raw[best]))


# ---------------------------------------------------------------------------------------------- internals


def _file_score_array(corpus: Corpus, scores: Mapping[str, np.ndarray], profile: str,
                      threshold: float) -> np.ndarray:
    p = corpus.profile(profile)
    if not isinstance(threshold, (int, float, np.floating, np.integer)) or math.isnan(threshold):
        raise OfaError(f"threshold must be a number, got {threshold!r}")
    g = corpus._geometry
    s = _gather(corpus, scores)
    w = g.weighted(p)
    detected = s >= threshold
    nfiles = len(corpus.files)
    fp = detected & (g.window < 0)
    per_file = np.bincount(g.file_index[fp], weights=w[fp], minlength=nfiles)
    tp = detected & (g.window >= 0)
    credit = np.where(g.window_scored, -p.fn_weight, 0.0)
    np.maximum.at(credit, g.window[tp], w[tp])  # TP credits are > 0 > -fn; the max is the earliest row's
    return per_file + np.bincount(g.window_file, weights=credit, minlength=nfiles)


def _normalize(corpus: Corpus, p: Profile, raw: float) -> float:
    null = -p.fn_weight * float(np.count_nonzero(corpus._geometry.window_scored))
    perfect = p.tp_weight * corpus.window_count
    if perfect == null:
        raise OfaError("the corpus has no scored anomaly window: the normalised NAB score is undefined")
    return 100.0 * (raw - null) / (perfect - null)


def _gather(corpus: Corpus, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The scored rows' anomaly scores, concatenated in the geometry's order, after checking every file's."""
    if not isinstance(scores, Mapping):
        raise OfaError(f"anomaly scores must be a mapping of file name -> array, got {type(scores).__name__}")
    missing = [name for name in corpus.files if name not in scores]
    if missing:
        more = f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""
        raise OfaError(f"{missing[0]}: no anomaly scores for this corpus file{more}")
    extra = [name for name in scores if name not in corpus.files]
    if extra:
        raise OfaError(f"{extra[0]}: anomaly scores for a file that is not in the corpus")
    parts = []
    for k, (name, f) in enumerate(corpus.files.items()):
        try:
            s = np.asarray(scores[name], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise OfaError(f"{name}: anomaly scores are not numbers ({e})") from None
        if s.ndim != 1 or len(s) != f.rows:
            raise OfaError(f"{name}: {s.shape[0] if s.ndim == 1 else s.shape} anomaly scores for {f.rows} rows")
        nan = np.flatnonzero(np.isnan(s))
        if nan.size:
            raise OfaError(f"{name}: anomaly score is NaN at row {nan[0]} ({nan.size} NaN rows in all)")
        out = np.flatnonzero((s < 0.0) | (s > 1.0))
        if out.size:
            raise OfaError(f"{name}: anomaly score {s[out[0]]} at row {out[0]} is outside [0, 1] "
                           f"({out.size} rows in all)")
        parts.append(s[int(corpus._geometry.probation[k]):])
    return np.concatenate(parts)


def _build_geometry(files: Mapping[str, DataFile], probation_percent: float) -> _Geometry:
    probation, file_index, window, unweighted, window_file = [], [], [], [], []
    next_id = 0
    for k, f in enumerate(files.values()):
        n = f.rows
        rows = np.arange(n)
        u = np.full(n, -1.0)  # a false positive before the file's first window: S(3) = -1, as NAB
        win = np.full(n, -1, dtype=np.int64)
        for j, (a, b) in enumerate(f.windows):
            width = b - a + 1
            u[a:b + 1] = scaled_sigmoid(-(b - rows[a:b + 1] + 1) / width)
            win[a:b + 1] = next_id + j
            stop = f.windows[j + 1][0] if j + 1 < len(f.windows) else n
            u[b + 1:stop] = scaled_sigmoid((rows[b + 1:stop] - b) / max(width - 1, 1))
        window_file += [k] * len(f.windows)
        next_id += len(f.windows)
        skip = min(probation_rows(n, probation_percent), n)
        probation.append(skip)
        file_index.append(np.full(n - skip, k, dtype=np.int64))
        window.append(win[skip:])
        unweighted.append(u[skip:])
    window = np.concatenate(window)
    scored = np.zeros(next_id, dtype=bool)
    scored[window[window >= 0]] = True
    return _Geometry(np.array(probation, dtype=np.int64), np.concatenate(file_index), window,
                     np.concatenate(unweighted), np.array(window_file, dtype=np.int64), scored)


def _window_rows(name: str, ts: np.ndarray, limits: Sequence[Sequence[Any]]) -> tuple[tuple[int, int], ...]:
    if isinstance(limits, (str, bytes)) or not isinstance(limits, Sequence):
        raise OfaError(f"{name}: windows must be a list of [start, end] pairs, got {limits!r}")
    rows = []
    for limit in limits:
        if isinstance(limit, (str, bytes)) or len(limit) != 2:
            raise OfaError(f"{name}: window {limit!r} is not a [start, end] pair")
        edges = []
        for what, t in zip(("start", "end"), _to_datetime(list(limit), name)):
            match = np.flatnonzero(ts == t)
            if match.size == 0:
                raise OfaError(f"{name}: window {what} {t} is not a timestamp of the file")
            if match.size > 1:
                raise OfaError(f"{name}: window {what} {t} is the timestamp of rows {match[0]} and {match[1]}: "
                               "the window edge is ambiguous")
            edges.append(int(match[0]))
        if edges[1] < edges[0]:
            raise OfaError(f"{name}: window [{limit[0]}, {limit[1]}] ends on row {edges[1]}, before it starts "
                           f"(row {edges[0]})")
        rows.append((edges[0], edges[1]))
    rows.sort()
    for (a0, b0), (a1, b1) in zip(rows, rows[1:]):
        if a1 <= b0:
            raise OfaError(f"{name}: windows on rows {a0}-{b0} and {a1}-{b1} overlap")
    return tuple(rows)


def _check_increasing(name: str, ts: np.ndarray) -> None:
    steps = np.diff(ts)
    bad = np.flatnonzero(steps <= np.timedelta64(0, "ns"))
    if bad.size:
        i = int(bad[0])
        kind = "repeats" if ts[i + 1] == ts[i] else "goes back from"
        raise OfaError(f"{name}: timestamp {ts[i + 1]} at row {i + 1} {kind} {ts[i]} at row {i} "
                       f"({bad.size} such rows; timestamps must increase)")


def _to_datetime(values: Any, where: str) -> np.ndarray:
    import pandas as pd

    try:
        if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
            index = pd.DatetimeIndex(values)
        else:
            index = pd.DatetimeIndex(pd.to_datetime(np.asarray(values, dtype=object), format="ISO8601"))
    except (TypeError, ValueError) as e:
        raise OfaError(f"{where}: timestamps are not dates ({e})") from None
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    out = index.to_numpy(dtype="datetime64[ns]")
    if np.isnat(out).any():
        raise OfaError(f"{where}: missing timestamp at row {int(np.flatnonzero(np.isnat(out))[0])}")
    return out


def _to_float(column: Any, where: str) -> np.ndarray:
    import pandas as pd

    try:
        return pd.to_numeric(column).to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise OfaError(f"{where}: anomaly_score is not numeric ({e})") from None


def _read_columns(path: str, columns: list[str]):
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0).columns
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise OfaError(f"{path}: not a readable CSV file ({e})") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise OfaError(f"{path}: no column {missing[0]!r} (columns: {', '.join(map(str, header))})")
    try:
        return pd.read_csv(path, usecols=columns, dtype={"timestamp": str})
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise OfaError(f"{path}: not a readable CSV file ({e})") from None


def _read_json(path: str) -> Any:
    if not os.path.isfile(path):
        raise OfaError(f"{path} not found")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise OfaError(f"{path}: not valid JSON ({e})") from None


def _read_profiles(path: str) -> dict[str, Profile]:
    raw = _read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise OfaError(f"{path}: expected an object of profile name -> {{\"CostMatrix\": weights}}")
    profiles = {}
    for name, entry in raw.items():
        costs = entry.get("CostMatrix") if isinstance(entry, dict) else None
        try:
            profiles[name] = Profile(float(costs["tpWeight"]), float(costs["fpWeight"]), float(costs["fnWeight"]),
                                     float(costs.get("tnWeight", 1.0)))
        except (TypeError, KeyError, ValueError):
            raise OfaError(f"{path}: profile {name!r} needs a CostMatrix with tpWeight, fpWeight and fnWeight") from None
    return profiles
