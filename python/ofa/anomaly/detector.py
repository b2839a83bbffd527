"""Streaming anomaly detection on top of the forecaster: one value in, one anomaly score in [0, 1] out.

The score of row t depends only on rows 0..t (the value at t and what came before it), in bounded memory.

Two members (DetectorConfig.members)
    The detector runs two forecasters side by side, each with its own scorer (below), and a row's score is the
    larger of the two: the forecaster (horizon 8) and the same trained for horizon 1, the one step the scorer
    reads (`one_step`; with stride 1 only: a one-step model cannot cover the rows between forecasts made every
    `stride` > 1 rows). They err differently (the one-step model tracks the series more closely): on NAB's
    tuning half each catches windows the other misses (bench/anomaly_selection.py --members). The firmware
    runs the first member alone (ofa.anomaly.device).

Forecasting (ofa.anomaly.forecaster, once per `stride` rows)
    The first `train_rows` rows (NAB's probationary period by default) are buffered and an ofa model is
    trained on them (a small one: ridge linear path + a one-block student transformer; lookback chosen
    on validation). From then on a forecast of the next `horizon` rows is made every `stride` rows from
    the last seq_len values; the forecast f_t of row t is the most recent forecast covering t (made at
    the latest origin o <= t, step t - o; stride <= horizon, so one always covers t).
    Retraining ("double", the default): when the number of rows seen reaches 2, 4, 8... times
    train_rows, the model is trained again on the last `memory` rows (a fixed ring buffer), so it
    learns what the stream has become; "none" keeps the first model (what firmware runs).
    When the first model is trained, rows seq_len..train_rows-1 are replayed through the scorer with
    that model's (in-sample) forecasts to warm its statistics up; the scores emitted for those rows,
    before any model existed, are 0 (NAB does not score the probationary period).

Per-sample scoring (`Scorer.step(x, f)`; the part meant for the firmware, see "Porting" below)
    A row without a forecast (f NaN: before the first lookback) only enters the value range (step 7).
    State: three ring buffers (errors: E floats, raw scores: S floats, averaged raw scores: G floats),
    each with its running sum (and sum of squares), running min/max of the values, a suppression
    counter and one flag. For row t with value x and forecast f:
      1. error      a = min(|x - f|, 1e150)   (squares stay finite)
      2. normalise  z = (a - mean_E) / std_E over the previous E errors (population std); z = 0 until
                    two errors are in; if std_E = 0, z = 0 when a <= mean_E, else z = Z_BIG. Push a.
      3. raw score  r = 1 - exp(-max(0, z - z0)^2 / 2)           (in [0, 1): errors z0 sigmas above the
                    recent mean start to count; a Gaussian error gives r = 0 almost always)
      4. average    m = mean of the last S raw scores (r included)
      5. likelihood mu = max(mean_G, MU_MIN), sd = max(std_G, SD_MIN) over the previous G averages
                    (m pushed afterwards); q = 0.5 erfc((m - mu) / (sd sqrt 2)), the Gaussian tail
                    probability of m (Numenta's "anomaly likelihood" is 1 - q); q = 1 until one average
                    is in. Numenta's filter: when q <= RED and the previous (unfiltered) q <= RED too,
                    q = YELLOW, so a run of red values scores once.
      6. squash     s = min(1, log(q + 1e-10) / log(1e-10))       (Numenta's log-likelihood: q = 1e-5 -> 0.5)
      7. spatial    once max > min: if x > max + TOL (max - min) or x < min - TOL (max - min), s = 1;
                    then min, max take x in (they hold every value seen, rows before the first forecast
                    included)
      8. suppress   if the counter is > 0: s = RHO s and the counter drops by one; otherwise, if
                    s >= TAU, the counter is set to K (the K rows after a detection score RHO times less)
    Sums are updated as values enter and leave the ring; when a ring's write index wraps to 0 its sums
    are recomputed from the buffer, so rounding cannot drift (the firmware may keep float32 buffers and
    double sums, or recompute the same way).

Hyper-parameters: chosen on half of NAB's files, those at an even position in sorted order (bench/anomaly.py
`halves()["tune"]`, 29 files), never on the other 29 (`holdout`), which bench/anomaly.py reports apart.
- Scorer (E, z0, S, G, TOL, K, RHO, the filter): a random search of 500 points of the grid E {300, 1000,
  3000}, z0 {2, 3, 4, 5}, S {5, 10, 30}, G {300, 1000, 3000, 8640}, TOL {0, 0.02, 0.05}, K {0, 100, 200,
  400}, RHO {0, 0.5}, filter {on, off}, then the full grid around its best (z0 {1.5, 2, 2.5, 3}, S {20,
  30, 50}, G {1000, 3000}, TOL {0.02, 0.05}, K {100, 200}, filter on/off; then E {500, 1000, 2000} x z0
  {0.5, 1, 1.5}): the NAB standard score of the tuning half, threshold optimised. TAU = 0.5 is fixed,
  not searched: it is the squash of RED (q = 1e-5).
- Retraining: with the ridge forecaster alone on the tuning half (mean over 8 scorer settings), a fixed
  model scored 62.6, retraining every 500 rows 66.4, at each doubling 67.0 for a tenth of the trainings.
- Forecaster: the lookback is chosen per training on its own validation rows; the student's size, epochs
  and horizon are fixed for cost (a training takes seconds), not searched.
- Members: on the tuning half's two folds (bench/anomaly_selection.py --members), the default forecaster alone
  scores 71.9 and 78.3, with the one-step member 73.5 and 79.4; a second seed of the default instead of the
  one-step member 70.8 and 78.3, so the gain is the horizon, not a second draw of the same model. The scorer's
  settings were chosen for the first member alone and kept.
- MU_MIN = 0.03, SD_MIN = sqrt(3e-4), RED = 1e-5, YELLOW = 1e-3 and the 1e-10 of the squash are Numenta's
  anomaly-likelihood constants (nupic's anomaly_likelihood.py), taken as they are.
Result (bench/results/anomaly.json): NAB standard 71.5 on the 58 files (tuning half 76.3, holdout half 66.1;
Numenta HTM 70.1 on all, 70.7 and 71.1 on those halves); with the first member alone 69.9 (75.0, 64.3). The
tuning half overstates what the choices are worth.

The C port (csrc/ofa/ofa_anomaly.h, csrc/anomaly/; ofa.anomaly.device) is what the engine and the firmware
run: the same steps in IEEE double with its own exp/log/erfc (so host and Cortex-M agree bit for bit), rings
of float32 (4 (E + S + G) bytes: 16,120 with the defaults) with double sums recomputed at each wrap, errors
capped at 1e30 instead of A_MAX, samples in float32, and the first model only (retrain "none": retraining is
host-side work). Given the same forecasts its scores agree with this module's to 1e-6, with the same
detections (tests/test_anomaly_device.py). On a Cortex-M4 (soft-float double) the scorer takes about 55,000
instructions per sample; the forecast, every `stride` samples, most of the rest (README, "On the device").
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import OfaError
from .forecaster import Forecaster, ForecasterConfig, fit_forecaster

MU_MIN = 0.03
SD_MIN = math.sqrt(3e-4)
RED, YELLOW = 1e-5, 1e-3
LOG_EPS = 1e-10
Z_BIG = 1e6
A_MAX = 1e150  # errors are capped here, so that their squares stay finite
RETRAIN = ("double", "none")


@dataclass
class ScorerConfig:
    # Chosen on NAB's tuning half (bench/anomaly.py), see the module docstring.
    error_window: int = 1000        # E
    z_offset: float = 1.5           # z0
    short_window: int = 30          # S
    long_window: int = 3000         # G
    spatial_tolerance: float = 0.02  # TOL; 0 turns the spatial rule off
    suppress_threshold: float = 0.5  # TAU
    suppress_rows: int = 200        # K; 0 turns suppression off
    suppress_factor: float = 0.5    # RHO
    red_yellow: bool = True         # Numenta's filter of repeated red values

    def check(self) -> None:
        for label in ("error_window", "short_window", "long_window"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OfaError(f"scorer {label} must be a positive integer, got {value!r}")
        if not isinstance(self.suppress_rows, int) or self.suppress_rows < 0:
            raise OfaError(f"scorer suppress_rows must be a whole number >= 0, got {self.suppress_rows!r}")
        if not (self.z_offset >= 0 and math.isfinite(self.z_offset)):
            raise OfaError(f"scorer z_offset must be >= 0, got {self.z_offset}")
        if not self.spatial_tolerance >= 0:
            raise OfaError(f"scorer spatial_tolerance must be >= 0, got {self.spatial_tolerance}")
        if not 0 <= self.suppress_factor <= 1:
            raise OfaError(f"scorer suppress_factor must be in [0, 1], got {self.suppress_factor}")
        if not 0 < self.suppress_threshold <= 1:
            raise OfaError(f"scorer suppress_threshold must be in (0, 1], got {self.suppress_threshold}")


class Ring:
    """A fixed-size ring buffer with the running sum and sum of squares of what it holds."""

    __slots__ = ("buf", "size", "index", "count", "s1", "s2")

    def __init__(self, size: int):
        self.buf = [0.0] * size
        self.size, self.index, self.count, self.s1, self.s2 = size, 0, 0, 0.0, 0.0

    def push(self, x: float) -> None:
        if self.count == self.size:
            old = self.buf[self.index]
            self.s1 -= old
            self.s2 -= old * old
        else:
            self.count += 1
        self.buf[self.index] = x
        self.s1 += x
        self.s2 += x * x
        self.index += 1
        if self.index == self.size:  # wrapped: recompute the sums exactly, so rounding cannot drift
            self.index = 0
            self.s1 = math.fsum(self.buf)
            self.s2 = math.fsum(v * v for v in self.buf)

    def mean(self) -> float:
        return self.s1 / self.count

    def std(self) -> float:
        m = self.s1 / self.count
        return math.sqrt(max(self.s2 / self.count - m * m, 0.0))


class Scorer:
    """The per-sample arithmetic after the forecast (module docstring, steps 1-8); O(1) time and memory."""

    def __init__(self, cfg: ScorerConfig | None = None):
        self.cfg = cfg or ScorerConfig()
        self.cfg.check()
        self.errors = Ring(self.cfg.error_window)
        self.raw = Ring(self.cfg.short_window)
        self.averages = Ring(self.cfg.long_window)
        self.low = self.high = None
        self.suppress_left = 0
        self.previous_red = False

    def observe(self, x: float) -> None:
        """A row without a forecast (before the first model's lookback): only the value range learns it."""
        self.low = x if self.low is None else min(self.low, x)
        self.high = x if self.high is None else max(self.high, x)

    def step(self, x: float, f: float) -> float:
        c = self.cfg
        if not math.isfinite(f):  # no forecast (NaN): the row only enters the value range
            self.observe(x)
            return 0.0
        a = min(abs(x - f), A_MAX)                                       # 1. error
        e = self.errors                                                  # 2. normalise
        if e.count >= 2:
            mu, sd = e.mean(), e.std()
            z = (a - mu) / sd if sd > 0 else (0.0 if a <= mu else Z_BIG)
        else:
            z = 0.0
        e.push(a)
        excess = max(0.0, z - c.z_offset)                                # 3. raw score
        r = 1.0 - math.exp(-0.5 * excess * excess)
        self.raw.push(r)                                                 # 4. average
        m = self.raw.mean()
        g = self.averages                                                # 5. likelihood
        if g.count >= 1:
            mu, sd = max(g.mean(), MU_MIN), max(g.std(), SD_MIN)
            q = 0.5 * math.erfc((m - mu) / (sd * math.sqrt(2.0)))
        else:
            q = 1.0
        g.push(m)
        red = q <= RED
        if c.red_yellow and red and self.previous_red:
            q = YELLOW
        self.previous_red = red
        s = min(1.0, max(0.0, math.log(q + LOG_EPS) / math.log(LOG_EPS)))  # 6. squash
        if self.low is not None and self.high > self.low and c.spatial_tolerance > 0:  # 7. spatial
            tol = c.spatial_tolerance * (self.high - self.low)
            if x > self.high + tol or x < self.low - tol:
                s = 1.0
        self.observe(x)
        if self.suppress_left > 0:                                       # 8. suppress
            s *= c.suppress_factor
            self.suppress_left -= 1
        elif c.suppress_rows and s >= c.suppress_threshold:
            self.suppress_left = c.suppress_rows
        return s

    def state_floats(self) -> int:
        """Floats of state (ring buffers and scalars): constant whatever the number of rows seen."""
        return len(self.errors.buf) + len(self.raw.buf) + len(self.averages.buf) + 3 * 2 + 2 + 2


@dataclass
class DetectorConfig:
    train_rows: int = 750            # rows before the first model (bench and CLI: NAB's probation rule)
    retrain: str = "double"          # "double": again at 2, 4, 8... x train_rows rows seen; "none"
    memory: int = 4000               # the last rows a retraining sees (a ring buffer)
    stride: int = 1                  # rows between forecasts (each covers `horizon` rows)
    forecaster: ForecasterConfig = field(default_factory=ForecasterConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    one_step: bool = True            # a second member, the forecaster trained for horizon 1 (stride 1 only)

    def check(self) -> None:
        if not isinstance(self.train_rows, int) or self.train_rows < 1:
            raise OfaError(f"train_rows must be a positive integer, got {self.train_rows!r}")
        if self.retrain not in RETRAIN:
            raise OfaError(f"retrain must be one of {', '.join(RETRAIN)}, got {self.retrain!r}")
        self.forecaster.check()
        self.scorer.check()
        if not isinstance(self.stride, int) or not 1 <= self.stride <= self.forecaster.horizon:
            raise OfaError(f"stride must be between 1 and the horizon ({self.forecaster.horizon}), "
                           f"got {self.stride!r}")
        if not isinstance(self.one_step, bool):
            raise OfaError(f"one_step must be true or false, got {self.one_step!r}")
        if not isinstance(self.memory, int) or self.memory < max(self.train_rows, max(self.forecaster.lookbacks)):
            raise OfaError(f"memory ({self.memory!r}) must hold at least the training rows ({self.train_rows}) "
                           f"and the longest lookback ({max(self.forecaster.lookbacks)})")

    @property
    def members(self) -> list[ForecasterConfig]:
        """The forecasters the detector runs, each with its own scorer: the row's score is the largest.
        The first is `forecaster` (the one the firmware runs); with one_step and stride 1, the same trained for
        horizon 1. (A one-step model cannot cover the rows between forecasts made every `stride` > 1 rows.)"""
        out = [self.forecaster]
        if self.one_step and self.stride == 1 and self.forecaster.horizon != 1:
            out.append(replace(self.forecaster, horizon=1))
        return out

    def to_dict(self) -> dict:
        out = asdict(self)
        out["forecaster"] = self.forecaster.to_dict()
        return out


def refit_rows(cfg: DetectorConfig, rows: int) -> list[int]:
    """The rows seen at each training: train_rows, then (retrain "double") 2, 4, 8... times it, below `rows`."""
    out, t = [cfg.train_rows], cfg.train_rows
    while cfg.retrain == "double" and 2 * t < rows:
        t *= 2
        out.append(t)
    return out


class _Member:
    """One forecaster of the detector, with its own scorer and its current forecast."""

    def __init__(self, forecaster: ForecasterConfig, scorer: ScorerConfig):
        self.forecaster = forecaster
        self.scorer = Scorer(scorer)
        self.model: Forecaster | None = None
        self.origin = 0                   # row of the current forecast
        self.forecast = None              # (horizon,) from `origin`


class Detector:
    """The online detector: `update(x)` takes the next value and returns its anomaly score in [0, 1], the
    largest of its members' scores (DetectorConfig.members).

    Memory is bounded by `memory` values, the models and the scorers' rings, whatever the stream's length."""

    def __init__(self, cfg: DetectorConfig | None = None, fit=fit_forecaster):
        self.cfg = cfg or DetectorConfig()
        self.cfg.check()
        self.fit = fit
        self.members = [_Member(f, self.cfg.scorer) for f in self.cfg.members]
        self.values = np.zeros(max(self.cfg.memory, self.cfg.train_rows))  # ring: the last rows seen
        self.rows = 0                     # rows seen
        self.next_fit = self.cfg.train_rows
        self.trainings = 0                # training rounds so far (each trains every member)
        self.last_fit: dict | None = None  # the latest round's first model's info

    @property
    def model(self) -> Forecaster | None:
        return self.members[0].model

    @property
    def scorer(self) -> Scorer:
        return self.members[0].scorer

    def _recent(self, count: int) -> np.ndarray:
        """The last `count` values seen, oldest first."""
        size = len(self.values)
        idx = (np.arange(self.rows - count, self.rows)) % size
        return self.values[idx]

    def _push(self, x: float) -> None:
        self.values[self.rows % len(self.values)] = x
        self.rows += 1

    def _forecast_for(self, m: _Member, t: int) -> float:
        """f_t, from the member's most recent forecast covering t; a new forecast every stride rows."""
        if m.forecast is None or t - m.origin >= self.cfg.stride:
            m.origin = t
            m.forecast = m.model.predict(self._recent(m.model.seq_len)[None, :])[0]
        return float(m.forecast[t - m.origin])

    def _train(self) -> None:
        recent = self._recent(min(self.rows, self.cfg.memory))  # every member trains on the same rows
        first = self.model is None
        history = self._recent(self.rows) if first else None
        for m in self.members:
            m.model = self.fit(recent, m.forecaster)
            m.forecast = None
            if first:  # warm the scorer up on the training rows, with the new model's in-sample forecasts
                f = forecasts(m.model, history, m.model.seq_len, self.rows, self.cfg.stride)
                for t in range(self.rows):
                    if t < m.model.seq_len:
                        m.scorer.observe(float(history[t]))
                    else:
                        m.scorer.step(float(history[t]), float(f[t]))
        self.trainings += 1
        self.last_fit = {"rows_seen": self.rows, **self.model.info}
        if self.cfg.retrain == "double":
            self.next_fit *= 2

    def update(self, x: float) -> float:
        x = float(x)
        if not math.isfinite(x):
            raise OfaError(f"row {self.rows}: value {x} is not finite")
        if self.model is None:
            self._push(x)
            if self.rows == self.next_fit:
                self._train()
            return 0.0
        s = max(m.scorer.step(x, self._forecast_for(m, self.rows)) for m in self.members)
        self._push(x)
        if self.rows == self.next_fit and self.cfg.retrain != "none":
            self._train()
        return s


def forecasts(model: Forecaster, values: np.ndarray, start: int, stop: int, stride: int) -> np.ndarray:
    """f_t for t in [start, stop) (NaN before start): forecasts from origins start, start + stride, ...,
    each from the seq_len values before it, batched. The same numbers Detector makes one row at a time."""
    out = np.full(stop, np.nan)
    if stop <= start:
        return out
    origins = np.arange(start, stop, stride)
    windows = np.lib.stride_tricks.sliding_window_view(values[:stop - 1], model.seq_len)[origins - model.seq_len]
    pred = model.predict(windows)
    t = np.arange(start, stop)
    k = (t - start) // stride
    out[start:stop] = pred[k, t - origins[k]]
    return out


def series_forecasts(values: np.ndarray, cfg: DetectorConfig, fit=fit_forecaster, log=None,
                     forecaster: ForecasterConfig | None = None) -> tuple[np.ndarray, list]:
    """The forecast of every row exactly as `Detector` makes it for one member (default: the first), batched:
    (f, fits), f NaN where there is none.

    Rows before train_rows carry the first model's in-sample forecasts (the scorer's warm-up)."""
    cfg.check()
    forecaster = forecaster or cfg.forecaster
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < cfg.train_rows:
        raise OfaError(f"{n} rows: the detector trains on the first {cfg.train_rows} rows and needs more")
    f = np.full(n, np.nan)
    fits = []
    starts = refit_rows(cfg, n)
    for k, seen in enumerate(starts):
        lo = max(0, seen - cfg.memory) if k else 0
        model = fit(values[lo:seen], forecaster)
        fits.append((seen, model.info))
        if log is not None:
            log(f"row {seen}: trained on rows {lo}-{seen - 1} (horizon {forecaster.horizon}), "
                f"lookback {model.seq_len}")
        if k == 0:
            f[:seen] = forecasts(model, values, model.seq_len, seen, cfg.stride)[:seen]
        stop = starts[k + 1] if k + 1 < len(starts) else n
        f[seen:stop] = forecasts(model, values, seen, stop, cfg.stride)[seen:stop]
    return f, fits


def score_forecasts(values: np.ndarray, f: np.ndarray, train_rows: int, cfg: ScorerConfig | None = None) -> np.ndarray:
    """Run the scorer over a series and its forecasts (NaN: no forecast yet); scores before train_rows are 0."""
    scorer = Scorer(cfg)
    out = np.zeros(len(values))
    for t, (x, ft) in enumerate(zip(values.tolist(), f.tolist())):
        out[t] = scorer.step(x, ft)  # NaN (before the first lookback): observed, scores 0
    out[:train_rows] = 0.0
    return out


def score_series(values: np.ndarray, cfg: DetectorConfig | None = None, fit=fit_forecaster, log=None) -> dict:
    """Anomaly scores of a whole series, the same as feeding it to `Detector` one value at a time (faster:
    forecasts are batched). Returns {"scores", "forecasts", "fits"}: the scores are the largest of the
    members'; "forecasts" and "fits" are the first member's, "members" holds each member's
    {"horizon", "forecasts", "fits", "scores"}."""
    cfg = cfg or DetectorConfig()
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise OfaError(f"row {bad}: value {values[bad]} is not finite")
    members = []
    for forecaster in cfg.members:
        f, fits = series_forecasts(values, cfg, fit, log, forecaster)
        members.append({"horizon": forecaster.horizon, "forecasts": f, "fits": fits,
                        "scores": score_forecasts(values, f, cfg.train_rows, cfg.scorer)})
    scores = np.max([m["scores"] for m in members], axis=0)
    return {"scores": scores, "forecasts": members[0]["forecasts"], "fits": members[0]["fits"], "members": members}
