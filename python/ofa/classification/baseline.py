"""The classification baseline: 1-nearest-neighbour on z-normalised series, Euclidean or DTW (numpy only).

Each case is z-normalised per dimension over its own steps (a constant dimension becomes 0), or, with
norm "train", every case is standardised by the training set's per-dimension mean and std (which keeps
each case's level and scale: on JapaneseVowels, whose speakers differ in level, that is the better one;
README, "Classification"). Euclidean
distance needs equal lengths, so unequal cases are first resampled onto the longest training length
(uea.resample); DTW compares the cases as they are: dependent multivariate DTW (one warping path for all
dimensions, squared Euclidean cost between time steps), no window, the cumulative cost at the two ends.
"""
from __future__ import annotations

import numpy as np

from .uea import UEAData, channel_stats, relabel, resample


def znorm(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per case and dimension, (x - mean) / std over the case's own steps; padding stays 0."""
    out = np.zeros_like(values, dtype=np.float64)
    for i, n in enumerate(lengths):
        x = values[i, :, :n].astype(np.float64)
        std = x.std(axis=1, keepdims=True)
        out[i, :, :n] = (x - x.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
    return out


def dtw_to_all(query: np.ndarray, refs: np.ndarray, ref_lengths: np.ndarray) -> np.ndarray:
    """DTW distances from one case (dims, n) to each of refs (K, dims, M) whose first ref_lengths[k] steps
    count; the dynamic programme runs over all K references at once, one row of the query at a time."""
    n, (k, _, m) = query.shape[1], refs.shape
    cost = ((query.T[None, :, None, :] - refs.transpose(0, 2, 1)[:, None, :, :]) ** 2).sum(-1)  # (K, n, M)
    row = np.full((k, m), np.inf)
    for i in range(n):
        above = row
        diagonal = np.concatenate([np.full((k, 1), 0.0 if i == 0 else np.inf), above[:, :-1]], axis=1)
        best = np.minimum(above, diagonal)
        row = np.empty((k, m))
        left = np.full(k, np.inf)
        for j in range(m):
            left = cost[:, i, j] + np.minimum(best[:, j], left)
            row[:, j] = left
    return row[np.arange(k), ref_lengths - 1]


def standardise(values: np.ndarray, lengths: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per dimension with given statistics; padding stays 0."""
    out = np.zeros_like(values, dtype=np.float64)
    for i, n in enumerate(lengths):
        out[i, :, :n] = (values[i, :, :n] - mean[:, None]) / std[:, None]
    return out


def nearest_neighbour(train: UEAData, test: UEAData, metric: str, norm: str = "case") -> np.ndarray:
    """Predicted class (index into train.classes) of each test case by 1-NN, metric "euclidean" or "dtw",
    norm "case" (z-normalised per case) or "train" (the training set's per-dimension statistics)."""
    if norm == "case":
        a, b = znorm(train.values, train.lengths), znorm(test.values, test.lengths)
    elif norm == "train":
        mean, std = channel_stats(train)
        a, b = standardise(train.values, train.lengths, mean, std), standardise(test.values, test.lengths, mean, std)
    else:
        raise ValueError(f"unknown norm {norm!r}")
    if metric == "euclidean":
        length = int(train.lengths.max())
        a = resample(a, train.lengths, length).reshape(train.cases, -1).astype(np.float64)
        b = resample(b, test.lengths, length).reshape(test.cases, -1).astype(np.float64)
        d = (b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None, :]
        return train.labels[np.argmin(d, axis=1)]
    if metric == "dtw":
        return np.asarray([train.labels[np.argmin(dtw_to_all(b[i, :, :n], a, train.lengths))]
                           for i, n in enumerate(test.lengths)])
    raise ValueError(f"unknown metric {metric!r}")


def accuracy(train: UEAData, test: UEAData, metric: str, norm: str = "case") -> float:
    truth = relabel(test, train.classes)
    return float(np.mean(nearest_neighbour(train, test, metric, norm) == truth))
