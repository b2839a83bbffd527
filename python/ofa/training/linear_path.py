"""The linear path: a closed-form ridge forecast that the transformer head then corrects.

    forecast = (head(h) + W u) * sd + mu + b,   u = (x - mu) / sd  (the instance-normalised window)

so W u * sd = W (x - mu): a linear map of the mean-centred window, in the scaler's units, plus a bias
b outside the instance scaling. It is fitted once, before the adapters train, by ridge regression on
the training series (float64 normal equations, streamed over batches), with the ridge strength
chosen on the validation series. Centring on the window mean (not dividing by its std) keeps
least squares from being dominated by flat windows whose normalised targets blow up.

With the head's zero base the model starts at the best validated linear forecaster, and the
training loop keeps that starting point as a candidate (epoch 0), so training can only improve
validation from there.
"""
from __future__ import annotations

import numpy as np

from ..data import WindowSet
from ..errors import OfaError

# Ridge strengths relative to the mean energy of a centred input step (unitless), chosen on validation.
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)
BATCH = 8192


def _centred(x: np.ndarray, y: np.ndarray | None = None):
    x = x.astype(np.float64)
    mu = x.mean(axis=1, keepdims=True)
    return x - mu, (None if y is None else y.astype(np.float64) - mu), mu


def normal_equations(windows: WindowSet) -> tuple[np.ndarray, np.ndarray, int]:
    """(A^T A, A^T Z, rows) for A = [x - mu, 1], Z = y - mu over every series of `windows`."""
    length, horizon = windows.seq_len, windows.horizon
    gram = np.zeros((length + 1, length + 1))
    cross = np.zeros((length + 1, horizon))
    for start in range(0, len(windows), BATCH):
        x, y = windows.batch(np.arange(start, min(start + BATCH, len(windows))))
        u, z, _ = _centred(x, y)
        a = np.hstack([u, np.ones((len(u), 1))])
        gram += a.T @ a
        cross += a.T @ z
    return gram, cross, len(windows)


def solve(gram: np.ndarray, cross: np.ndarray, rows: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """(W (H, L), b (H)) of the ridge solution; the bias is not penalised."""
    length = gram.shape[0] - 1
    energy = np.trace(gram[:length, :length]) / max(length * rows, 1)
    ridge = np.full(length + 1, strength * energy * rows)
    ridge[-1] = 0.0
    coef = np.linalg.solve(gram + np.diag(ridge), cross)
    return coef[:length].T.copy(), coef[length].copy()


def predict(weight: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    u, _, mu = _centred(x)
    return u @ weight.T + bias + mu


def val_mse(weight: np.ndarray, bias: np.ndarray, windows: WindowSet) -> float:
    total, count = 0.0, 0
    for start in range(0, len(windows), BATCH):
        x, y = windows.batch(np.arange(start, min(start + BATCH, len(windows))))
        err = predict(weight, bias, x) - y
        total += float(np.sum(err ** 2))
        count += err.size
    return total / count


def fit(train: WindowSet, val: WindowSet, grid=RIDGE_GRID) -> tuple[np.ndarray, np.ndarray, dict]:
    """The validated ridge forecaster: (W (H, L) float32, b (H) float32, info)."""
    gram, cross, rows = normal_equations(train)
    tried = []
    for strength in grid:
        weight, bias = solve(gram, cross, rows, strength)
        tried.append((val_mse(weight, bias, val), strength, weight, bias))
    best_val, strength, weight, bias = min(tried, key=lambda t: t[0])
    info = {"ridge": strength, "val_mse": best_val, "grid": list(grid), "grid_val_mse": [t[0] for t in tried]}
    return weight.astype(np.float32), bias.astype(np.float32), info


# Lookbacks `--seq-len auto` chooses from: the paper's 336 and 512, and 720 (90 patches at stride 8).
LOOKBACKS = (336, 512, 720)
# Where none of those fits (a series of a few hundred rows), the shorter ones that do, down to 24
# (3 patches): chosen the same way, on validation.
SHORT_LOOKBACKS = (256, 192, 128, 96, 64, 48, 32, 24)
# `--seq-len auto` also tries, at each lookback L, the mean of the ridge forecasters fitted on the last
# 96, 192, ... L steps (each with its own validated ridge strength), as N-BEATS ensembles over lookbacks.
# Short members see recent level shifts; long ones, the slow seasons; averaging them cuts the variance
# of fits on few windows (README, "Few-shot forecasting": ETTh1 10% validation 0.6948 -> 0.6640).
ENSEMBLE_MEMBERS = (96, 192, 336, 512, 720)


def on_window(weight: np.ndarray, seq_len: int) -> np.ndarray:
    """A forecaster's weight on the last `weight.shape[1]` steps as the (H, seq_len) weight of the same form
    on the whole window: predict(W', b, x) == predict(weight, b, x[:, -len:]) for every x and bias b.

    predict is W (x - mean x) + mean x + b = F x + b with F = W + (1 - W 1) 1^T / len, rows summing to 1;
    a map whose rows sum to 1 is its own centred weight (the mean terms cancel), so F, placed on the
    window's last steps, is the weight on the longer window."""
    length = weight.shape[1]
    w = weight.astype(np.float64)
    full = np.zeros((w.shape[0], seq_len))
    full[:, seq_len - length:] = w + (1.0 - w.sum(axis=1, keepdims=True)) / length
    return full


def mean_forecaster(fits: dict, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(W (H, seq_len), b): the mean of the forecasts of `fits` {lookback: (W, b, info)}, all <= seq_len."""
    weight = np.mean([on_window(w, seq_len) for w, _, _ in fits.values()], axis=0)
    bias = np.mean([b.astype(np.float64) for _, b, _ in fits.values()], axis=0)
    return weight, bias


def describe(info: dict) -> str:
    """The fit info of one ridge forecaster or of a mean of them, in words."""
    if "members" not in info:
        return f"ridge {info['ridge']:g}"
    return (f"mean of the ridge forecasters on the last {', '.join(map(str, info['members']))} steps (ridge "
            + ", ".join(f"{r:g}" for r in info["ridge"]) + ")")


def choose_lookback(splits_for, candidates=LOOKBACKS, members=()) -> tuple[int, dict, tuple]:
    """The lookback, and linear path, whose validated ridge forecaster has the lowest validation MSE.

    `splits_for(seq_len)` returns the Splits for that lookback, or None where the data are too short.
    Validation targets start at the same border for every lookback, so the MSEs compare the same rows.
    With `members`, each candidate L is tried twice: its own ridge fit, and the mean of the fits at the
    members up to L (mean_forecaster), labelled "96+192+336".
    Returns (seq_len, info, the chosen forecaster's fit (W, b, fit info)) so it need not be fitted again.
    """
    splits, fits = {}, {}
    for seq_len in sorted(set(candidates) | set(members)):
        splits[seq_len] = splits_for(seq_len)
        if splits[seq_len] is not None:
            fits[seq_len] = fit(splits[seq_len].train, splits[seq_len].val)
    options = {str(k): (k, fits[k]) for k in candidates if k in fits}
    if not options and candidates == LOOKBACKS:  # a short series: its own, shorter lookbacks
        return choose_lookback(splits_for, SHORT_LOOKBACKS)
    if not options:
        raise OfaError(f"no lookback of {list(LOOKBACKS + SHORT_LOOKBACKS)} fits this series' splits "
                       f"(too few rows for a training and a validation window); give --seq-len")
    for seq_len in (k for k in candidates if k in fits):
        used = {m: fits[m] for m in members if m <= seq_len and m in fits}
        if len(used) < 2:
            continue
        weight, bias = mean_forecaster(used, seq_len)
        info = {"members": sorted(used), "ridge": [used[m][2]["ridge"] for m in sorted(used)],
                "val_mse": val_mse(weight, bias, splits[seq_len].val)}
        label = "+".join(map(str, sorted(used)))
        options[label] = (seq_len, (weight.astype(np.float32), bias.astype(np.float32), info))
    best = min(options, key=lambda k: options[k][1][2]["val_mse"])
    seq_len, chosen = options[best]
    return seq_len, {"chosen": seq_len, "linear_path": best,
                     "val_mse": {k: f[2]["val_mse"] for k, (_, f) in options.items()}}, chosen
