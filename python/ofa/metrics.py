"""The forecasting competitions' own metrics and benchmark: sMAPE, MASE and OWA against Naive2 (M4).

Definitions follow the M4 Competitor's Guide and its benchmark code (Makridakis et al., 2018; the
`Benchmarks.R` of the M4-methods repository), so that the Naive2 submission scores OWA 1.000:
- sMAPE = 200 / h * sum |y - f| / (|y| + |f|), per series, then the mean over series;
- MASE = mean |y - f| over the horizon / mean |x_t - x_{t-m}| over the in-sample series, m the
  frequency's seasonal period (M4: 24 hourly, 12 monthly, 4 quarterly, 1 for the others);
- OWA = (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2) / 2, from the means over a frequency's series;
- Naive2: the last value of the seasonally adjusted series, reseasonalised, where the 90%
  autocorrelation test finds seasonality at lag m (classical multiplicative decomposition, as R's
  `decompose`); plain naive otherwise.
- Theta (Assimakopoulos & Nikolopoulos, 2000; M3's best method, an M4 benchmark), in Hyndman & Billah's
  (2003) form: simple exponential smoothing plus half the slope of the series' linear trend, on the
  series seasonally adjusted as for Naive2. Here the smoothing weight is the one of a grid (0.02 to
  0.98) with the least one-step in-sample squared error, and the level starts at the first value (R's
  `thetaf` also optimises the start), so the figures are close to, not equal to, M4's Theta. numpy only.
"""
from __future__ import annotations

import numpy as np

from .errors import OfaError

# The seasonal period of each M4 / M3 frequency (MASE's m and Naive2's decomposition period).
SEASONAL_PERIOD = {"hourly": 24, "daily": 1, "weekly": 1, "monthly": 12, "quarterly": 4, "yearly": 1, "other": 1}


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """sMAPE of one series' forecast, in percent (0..200). A step where both are 0 counts 0."""
    y, f = np.asarray(y, np.float64), np.asarray(f, np.float64)
    _same_length(y, f)
    denom = np.abs(y) + np.abs(f)
    terms = np.divide(np.abs(y - f), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(200.0 * terms.mean())


def mase(y: np.ndarray, f: np.ndarray, insample: np.ndarray, m: int) -> float:
    """MASE of one series' forecast: its MAE over the in-sample seasonal naive's (lag m) MAE."""
    y, f, x = (np.asarray(a, np.float64) for a in (y, f, insample))
    _same_length(y, f)
    if len(x) <= m:
        raise OfaError(f"MASE needs more than m = {m} in-sample values, got {len(x)}")
    scale = np.abs(x[m:] - x[:-m]).mean()
    if not scale > 0:
        raise OfaError("MASE is undefined for a constant in-sample series (its seasonal naive errors are all 0)")
    return float(np.abs(y - f).mean() / scale)


def owa(smape_mean: float, mase_mean: float, smape_naive2: float, mase_naive2: float) -> float:
    return 0.5 * (smape_mean / smape_naive2 + mase_mean / mase_naive2)


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations at lags 1..max_lag, as R's acf (mean removed, divided by the lag-0 sum)."""
    d = np.asarray(x, np.float64) - np.mean(x)
    denom = float(d @ d)
    if denom == 0:
        return np.zeros(max_lag)
    return np.array([float(d[:-k] @ d[k:]) / denom for k in range(1, max_lag + 1)])


def seasonal(x: np.ndarray, m: int) -> bool:
    """M4's seasonality test: |acf(m)| above the 90% limit 1.645 * sqrt((1 + 2 sum_{k<m} acf_k^2) / n)."""
    if m <= 1 or len(x) < 3 * m:
        return False
    r = acf(x, m)
    limit = 1.645 / np.sqrt(len(x)) * np.sqrt(1 + 2 * np.sum(r[:-1] ** 2))
    return bool(abs(r[m - 1]) > limit)


def seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """R's decompose(ts(x, frequency = m), "multiplicative")$seasonal: per-position means of x over its
    centred moving average (weights 1/2m at the ends for even m), normalised to mean 1, repeated."""
    x = np.asarray(x, np.float64)
    n = len(x)
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    k = len(w) // 2
    trend = np.full(n, np.nan)
    for t in range(k, n - k):
        trend[t] = w @ x[t - k:t + k + 1]
    ratio = x / trend
    figure = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    figure = figure / figure.mean()
    return np.tile(figure, n // m + 1)[:n]


def naive2(insample: np.ndarray, h: int, m: int) -> np.ndarray:
    """The M4 Naive2 forecast of one series, h steps."""
    x = np.asarray(insample, np.float64)
    if m > 1 and seasonal(x, m):
        s = seasonal_indices(x, m)
        out = np.resize(s[-m:], h)  # the last season's indices, repeated over the horizon
        return x[-1] / s[-1] * out
    return np.full(h, x[-1])


THETA_ALPHAS = np.linspace(0.02, 0.98, 49)  # the smoothing weights Theta chooses among


def ses_levels(x: np.ndarray, alphas: np.ndarray = THETA_ALPHAS) -> tuple[np.ndarray, np.ndarray]:
    """Simple exponential smoothing of x for each weight in `alphas` at once, the level starting at x[0]:
    (final levels, one-step in-sample squared errors), one of each per weight."""
    level = np.full(len(alphas), float(x[0]))
    sse = np.zeros(len(alphas))
    for v in x[1:]:
        e = v - level
        sse += e * e
        level = level + alphas * e
    return level, sse


def theta(insample: np.ndarray, h: int, m: int) -> np.ndarray:
    """The Theta method's forecast of one series, h steps (Hyndman & Billah's SES with drift: the SES
    level plus half the least-squares slope b times (k - 1 + 1/a - (1 - a)^n / a) at step k), on the
    series seasonally adjusted where Naive2 finds seasonality, reseasonalised with the last season."""
    x = np.asarray(insample, np.float64)
    season = None
    if m > 1 and seasonal(x, m):
        s = seasonal_indices(x, m)
        x, season = x / s, np.resize(s[-m:], h)
    levels, sse = ses_levels(x)
    best = int(np.argmin(sse))
    a, level, n = float(THETA_ALPHAS[best]), float(levels[best]), len(x)
    t = np.arange(n, dtype=np.float64)
    slope = float(np.polyfit(t, x, 1)[0]) if n >= 2 else 0.0
    k = np.arange(1, h + 1, dtype=np.float64)
    f = level + 0.5 * slope * (k - 1 + 1 / a - (1 - a) ** n / a)
    return f * season if season is not None else f


def seasonal_naive(insample: np.ndarray, h: int, m: int) -> np.ndarray:
    """The last season repeated (plain naive for m = 1)."""
    x = np.asarray(insample, np.float64)
    if m <= 1 or len(x) < m:
        return np.full(h, x[-1])
    return np.resize(x[-m:], h)


def score(insample: list[np.ndarray], truth: list[np.ndarray], forecasts: list[np.ndarray], m: int,
          naive2_forecasts: list[np.ndarray] | None = None) -> dict:
    """sMAPE and MASE means over a frequency's series and, against Naive2 (computed here unless given,
    e.g. the M4 submission), OWA."""
    if not (len(insample) == len(truth) == len(forecasts)) or not truth:
        raise OfaError(f"score: {len(insample)} in-sample series, {len(truth)} truths, {len(forecasts)} forecasts")
    if naive2_forecasts is None:
        naive2_forecasts = [naive2(x, len(y), m) for x, y in zip(insample, truth)]
    s = np.mean([smape(y, f) for y, f in zip(truth, forecasts)])
    q = np.mean([mase(y, f, x, m) for x, y, f in zip(insample, truth, forecasts)])
    s2 = np.mean([smape(y, f) for y, f in zip(truth, naive2_forecasts)])
    q2 = np.mean([mase(y, f, x, m) for x, y, f in zip(insample, truth, naive2_forecasts)])
    return {"smape": float(s), "mase": float(q), "owa": float(owa(s, q, s2, q2)), "series": len(truth),
            "naive2_smape": float(s2), "naive2_mase": float(q2)}


def _same_length(y: np.ndarray, f: np.ndarray) -> None:
    if y.shape != f.shape or y.ndim != 1 or not len(y):
        raise OfaError(f"a forecast of shape {f.shape} for a truth of shape {y.shape}: expected two equal 1-D arrays")
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise OfaError("non-finite value in a truth or a forecast")


# The competitions' statistical benchmarks by name (each f(insample, h, m) -> h forecasts): what a
# panel model's forecasts may be combined with (ofa.shortterm.choose_combination).
BENCHMARKS = {"naive2": naive2, "seasonal-naive": seasonal_naive, "theta": theta}
