"""Classify with an exported classifier in the C++ engine: windows from .ts cases, logits, probabilities, accuracy.

    model = ofa.load("jv-int8.ofa")
    x = windows(model, "JapaneseVowels_TEST.ts")  # (cases, C, seq_len): the windows PyTorch saw in training
    logits = ofa.infer(model, x)                    # (cases, K); class k is model.classes[k]
    p = probabilities(logits)                       # their softmax
    names = [model.classes[k] for k in logits.argmax(1)]

`windows` brings each case to the model's window with the rule it was trained with (resample or pad, from
the file's "lengths"; ofa.classification.uea.windows, the one rule PyTorch uses too). `evaluate` is
`ofa eval --model FILE --data TEST.ts`. No torch here.
"""
from __future__ import annotations

import numpy as np

from ..classification import uea
from ..errors import OfaError


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (the K classes) of logits (K,) or (B, K): float32, each row sums to 1."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def windows(model, cases) -> np.ndarray:
    """The model's input windows (cases, C, seq_len) float32 from `cases`: a .ts file's path, its
    ofa.classification.UEAData, or a list of (C, n_i) arrays (one case each, any lengths n_i >= 1)."""
    if model.task != "classify":
        raise OfaError(f"{model.path} is a forecaster, not a classifier")
    if isinstance(cases, str):
        cases = uea.read_ts(cases)
    if not isinstance(cases, uea.UEAData):
        arrays = [np.asarray(c, dtype=np.float32) for c in cases]
        if not arrays or any(a.ndim != 2 or a.shape[1] < 1 for a in arrays):
            raise OfaError("cases must be a non-empty list of (C, n) arrays with n >= 1")
        dims = {a.shape[0] for a in arrays}
        if len(dims) != 1:
            raise OfaError(f"cases have different channel counts {sorted(dims)}")
        if not all(np.isfinite(a).all() for a in arrays):
            raise OfaError("cases contain NaN or inf")
        lengths = np.array([a.shape[1] for a in arrays])
        values = np.zeros((len(arrays), dims.pop(), lengths.max()), np.float32)
        for i, a in enumerate(arrays):
            values[i, :, :a.shape[1]] = a
        cases = uea.UEAData(values, lengths, np.zeros(len(arrays), np.int64), list(model.classes), "cases", "cases")
    return uea.windows(cases, model.n_channels, model.seq_len, model.lengths)


def accuracy_record(test: uea.UEAData, truth: np.ndarray, pred: np.ndarray, classes: list, window: int,
                    lengths: str) -> dict:
    """The scores `ofa eval` reports for a classifier, PyTorch or engine alike."""
    per_class = {name: float(np.mean(pred[truth == k] == k)) for k, name in enumerate(classes) if np.any(truth == k)}
    return {"dataset": test.name, "accuracy": float(np.mean(pred == truth)), "correct": int(np.sum(pred == truth)),
            "cases": test.cases, "per_class_accuracy": per_class,
            "longer_than_window": int(np.sum(test.lengths > window)), "window": window, "lengths": lengths}


def evaluate(model_file: str, data: str, json_path: str | None = None, threads: int = 1) -> dict:
    """Accuracy of an exported classifier (fp32 or int8, in the engine) on a .ts file (its test part);
    `json_path` gets it, written atomically."""
    from .engine import load

    model = load(model_file, threads=threads)
    if model.task != "classify":
        raise OfaError(f"{model_file} is a forecaster; score it on a CSV (a .ts file needs a classifier)")
    test = uea.read_ts(data)
    truth = uea.relabel(test, model.classes)
    pred = model.run(windows(model, test)).argmax(1)
    result = {"task": "classify", "data": data, "model": model_file, "engine": f"ofa-{model.scheme}"} | \
        accuracy_record(test, truth, pred, model.classes, model.seq_len, model.lengths)
    if json_path:
        from ..fileio import atomic_write_json

        atomic_write_json(json_path, result)
    return result
