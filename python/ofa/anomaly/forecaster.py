"""The forecaster behind the anomaly detector: a small ofa model trained on the rows the detector has seen.

`fit_forecaster(values)` trains an ordinary ofa checkpoint (`ofa.train`: the ridge linear path fitted in
closed form, then the transformer's correction kept only where it improves validation) on one series'
first rows, and returns a `Forecaster` that maps windows of `seq_len` values (data units) to the next
`horizon` values. The model is fixed after that: the detector never trains on what it scores.

- The training rows are cut in time order: the first (1 - val_fraction) for training, the rest for
  validation (early stopping, the ridge strength and the lookback), plus `horizon` rows that ofa's split
  reserves as a test part and this module does not use.
- The lookback is the one of `lookbacks` whose validated ridge forecaster has the lowest validation MSE
  (`ofa.training.linear_path.choose_lookback`), among those that leave a training and a validation window.
  With `lookback_mean`, each lookback L is also tried with the mean of the ridge forecasters at the
  lookbacks up to L as its linear path (as `ofa train --seq-len auto` does).
- Constant training rows (NAB's art_flatline) leave nothing to learn and make the ridge normal equations
  singular: the forecaster is then persistence (the window's last value).
- backbone "student" (the default): a randomly initialised one-block BERT of `width` (ofa distill's
  student shape, small enough for the firmware) trained whole; any other name (minilm, a directory) is a
  frozen pre-trained backbone with rsLoRA adapters, ofa's default preset, cut to `layers` blocks.

The checkpoint lives in a temporary directory that is removed once the model is in memory (`keep` copies it
out first: ofa.anomaly.device exports it for the engine and the firmware).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import OfaError, SeriesTooShort


@dataclass
class ForecasterConfig:
    backbone: str = "student"
    layers: int = 1
    width: int = 64          # student only: d_model, heads, feed-forward width
    heads: int = 4
    ff: int = 128
    lookbacks: tuple = (32, 64, 128, 256, 512)
    horizon: int = 8
    patch: int = 16
    stride: int = 8
    epochs: int = 10
    batch_size: int = 64
    val_fraction: float = 0.2
    lookback_mean: bool = False   # also try the mean of the ridge forecasters at the lookbacks up to each one
    seed: int = 0

    def check(self) -> None:
        for label in ("layers", "width", "heads", "ff", "horizon", "patch", "stride", "epochs", "batch_size"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise OfaError(f"forecaster {label} must be a positive integer, got {value!r}")
        lookbacks = tuple(self.lookbacks)
        if not lookbacks or any(not isinstance(v, int) or v < self.patch for v in lookbacks):
            raise OfaError(f"forecaster lookbacks must be integers of at least the patch ({self.patch}), "
                           f"got {self.lookbacks!r}")
        if not isinstance(self.lookback_mean, bool):
            raise OfaError(f"forecaster lookback_mean must be true or false, got {self.lookback_mean!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise OfaError(f"forecaster val_fraction must be in (0, 1), got {self.val_fraction}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lookbacks"] = list(self.lookbacks)
        return out


class Forecaster:
    """A trained ofa model in memory: `predict(windows (B, seq_len)) -> (B, horizon)`, data units."""

    def __init__(self, model, scaler, seq_len: int, horizon: int, info: dict):
        self.model, self.scaler = model, scaler
        self.seq_len, self.horizon, self.info = seq_len, horizon, info

    def predict(self, windows: np.ndarray, batch: int = 4096) -> np.ndarray:
        import torch

        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim != 2 or windows.shape[1] != self.seq_len:
            raise OfaError(f"forecaster windows must have shape (B, {self.seq_len}), got {windows.shape}")
        mean, std = float(self.scaler.mean[0]), float(self.scaler.std[0])
        out = np.empty((len(windows), self.horizon), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(windows), batch):
                x = ((windows[start:start + batch] - mean) / std).astype(np.float32)
                y = self.model(torch.from_numpy(x)[..., None])[..., 0].numpy()
                out[start:start + len(x)] = y.astype(np.float64) * std + mean
        return out


class Persistence(Forecaster):
    """The forecaster of constant training rows: the window's last value, at every step of the horizon."""

    def __init__(self, seq_len: int, horizon: int):
        super().__init__(None, None, seq_len, horizon, {"seq_len": seq_len, "persistence": True,
                                                        "reason": "the training rows are constant"})

    def predict(self, windows: np.ndarray, batch: int = 4096) -> np.ndarray:
        windows = np.asarray(windows, dtype=np.float64)
        if windows.ndim != 2 or windows.shape[1] != self.seq_len:
            raise OfaError(f"forecaster windows must have shape (B, {self.seq_len}), got {windows.shape}")
        return np.repeat(windows[:, -1:], self.horizon, axis=1)


def _split(rows: int, cfg: ForecasterConfig) -> tuple[int, int, int]:
    usable = rows - cfg.horizon
    val = int(round(cfg.val_fraction * usable))
    return usable - val, val, cfg.horizon


def fit_forecaster(values: np.ndarray, cfg: ForecasterConfig | None = None, log=None,
                   keep: str | None = None) -> Forecaster:
    """Train a forecaster on `values` (the rows seen so far, 1-D, data units); see the module docstring.

    keep: a directory to copy the checkpoint and its training CSV (train.csv) to, for `ofa export`
    (ofa.anomaly.device); it must not exist yet. Persistence leaves no checkpoint (info["persistence"])."""
    import pandas as pd

    from ..data import load_series, make_splits
    from ..training import checkpoint
    from ..training.linear_path import choose_lookback
    from ..training.loop import TrainConfig, train
    from ..training.model import ModelConfig

    cfg = cfg or ForecasterConfig()
    cfg.check()
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(values).all():
        raise OfaError("the training rows hold a non-finite value")
    tr, val, test = _split(len(values), cfg)
    shortest = min(cfg.lookbacks)
    if tr < shortest + cfg.horizon or val < cfg.horizon:
        raise OfaError(f"{len(values)} training rows are too few for the forecaster: it needs at least "
                       f"{_rows_needed(shortest, cfg)} (lookback {shortest}, horizon {cfg.horizon}, "
                       f"validation {cfg.val_fraction:g} of them)")
    if np.ptp(values[:tr]) == 0.0:
        # Constant training rows: every centred window is zero, the ridge normal equations are singular
        # and there is nothing to learn; forecast the last value (persistence).
        return Persistence(max(shortest, cfg.patch), cfg.horizon)
    quiet = log or (lambda line: None)
    work = tempfile.mkdtemp(prefix="ofa-detect-")
    try:
        csv = os.path.join(work, "train.csv")
        pd.DataFrame({"step": np.arange(len(values)), "value": values}).to_csv(csv, index=False)
        split = f"rows:{tr},{val},{test}"
        series = load_series(csv, "value", split)

        def splits_for(seq_len):
            try:
                return make_splits(series, seq_len, cfg.horizon)
            except SeriesTooShort:
                return None

        candidates = tuple(sorted(cfg.lookbacks))
        seq_len, lookback, linear_fit = choose_lookback(splits_for, candidates,
                                                        members=candidates if cfg.lookback_mean else ())
        out = os.path.join(work, "checkpoint")
        if cfg.backbone == "student":
            from ..training.distill import StudentConfig, write_student_backbone

            mc = ModelConfig(backbone="./backbone", layers=cfg.layers, seq_len=seq_len, horizon=cfg.horizon,
                             patch=cfg.patch, stride=cfg.stride, train="all", head_base="zero")
            student = StudentConfig(width=cfg.width, layers=cfg.layers, heads=cfg.heads, ff=cfg.ff)
            student.check()
            write_student_backbone(os.path.join(out, "backbone"), student, mc.n_patches, cfg.seed)
        else:
            mc = ModelConfig(backbone=cfg.backbone, layers=cfg.layers, seq_len=seq_len, horizon=cfg.horizon,
                             patch=cfg.patch, stride=cfg.stride)
        tc = TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, split=split, seed=cfg.seed, progress=False,
                         device="cpu")
        meta = train(csv, out, mc, tc, target="value", log=quiet, linear_fit=linear_fit)
        model, meta = checkpoint.load(out)
        scaler = checkpoint.scaler_from(meta)
        if keep is not None:
            shutil.copytree(out, keep)
            shutil.copy(csv, os.path.join(keep, "train.csv"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = {"seq_len": seq_len, "lookback_val_mse": lookback["val_mse"], "best_val_mse": meta["best_val_mse"],
            "ridge": meta.get("linear_path", {}).get("ridge"), "linear_path": lookback["linear_path"],
            "epochs_run": len(meta["history"]),
            "transformer_kept": any(h["val_mse"] == meta["best_val_mse"] for h in meta["history"]),
            "train_rows": tr, "val_rows": val, "trainable_params": meta["sizes"]["trainable_params"]}
    return Forecaster(model, scaler, seq_len, cfg.horizon, info)


def _rows_needed(lookback: int, cfg: ForecasterConfig) -> int:
    for rows in range(lookback + 2 * cfg.horizon, 100 * (lookback + cfg.horizon)):
        tr, val, _ = _split(rows, cfg)
        if tr >= lookback + cfg.horizon and val >= cfg.horizon:
            return rows
    return 100 * (lookback + cfg.horizon)
