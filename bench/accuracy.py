"""Accuracy benchmark: One-for-All vs DLinear, trained and scored in the same run on the same windows.

    python bench/accuracy.py                       # reduced protocol, 5 datasets, horizon 96 (~1 h, 2 cores)
    python bench/accuracy.py --full                # published protocol (seq_len 336 ETTh / 512 others, 10 epochs)
    python bench/accuracy.py --datasets ETTh1 --models ofa,ofa-paper,dlinear --out bench/results/x.json

Reduced protocol: evenly spaced training window starts (all channels of each) up to about
REDUCED_TRAIN_SERIES series, REDUCED_EPOCHS epochs, validation on at most REDUCED_VAL_SERIES evenly spaced series,
peak lr SHORT_BUDGET_LR for the default preset unless a variant sets one (the preset's lr is for full-length
training; the paper preset keeps the paper's).
Both protocols train with bf16 autocast where the CPU computes bf16 natively (AMX or AVX512-BF16), fp32
elsewhere (--precision auto: on an AVX2-only EPYC a bf16 matmul of the model's shapes ran about 50x slower
than fp32); scoring is always fp32
on the standard test split (every window in the full protocol, every k-th window in the reduced one: see
test_stride), by the exported model in the C++ engine (identical to the PyTorch model within 1e-4, see
bench/parity.py).
Few-shot (the GPT4TS paper's few-shot task): `--fewshot 10` (or `--train-fraction 0.1`) trains every model on the
first 10% of the training split only (TSLib's percent rule, ofa.data.make_splits(train_fraction)); validation and
test are the full standard splits. Protocol "fewshot-10" (reduced: the reduced protocol's training cap applies
within the fraction, and its test stride; FEWSHOT_EPOCHS epochs and One-for-All's lr "auto", as `ofa train` runs)
or "fewshot-10-full"; records carry "train_fraction". `--epochs N` overrides the protocol's epoch count (3
reduced, 10 few-shot and full) for every model of the run.
Records: {"dataset", "horizon", "model", "protocol", "mse", "mae", "train_seconds", "trainable_params"}, plus
"run" (when the run started: records with the same "run" were trained and scored in the same run),
"seed", and "test_every" / "test_windows" (which test windows were scored).
A run merges into --out: its records replace those with the same dataset, horizon, model and protocol (and
lookback, seed, test stride, train fraction: RECORD_KEY), and the others stay, so `--full --datasets ETTh1` adds
full-protocol rows beside the reduced ones and few-shot records never replace long-term ones.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))  # run from a checkout too

from ofa.training.checkpoint import atomic_write_json  # noqa: E402
from ofa.data import load_series, make_splits  # noqa: E402
from ofa.evaluation import scores  # noqa: E402
from ofa.training.model import ModelConfig, parameter_counts  # noqa: E402
from ofa.errors import OfaError, SeriesTooShort  # noqa: E402
from ofa.training.linear_path import LOOKBACKS, SHORT_LOOKBACKS  # noqa: E402
from ofa.training.loop import PRESETS, SHORT_BUDGET_LR, TrainConfig, every_for, train  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
DATASETS = {"ETTh1": "ETT/ETTh1.csv", "ETTh2": "ETT/ETTh2.csv", "ETTm1": "ETT/ETTm1.csv",
            "ETTm2": "ETT/ETTm2.csv", "Weather": "weather/weather.csv"}
REDUCED_TRAIN_SERIES = 14000  # training series (window x channel) per epoch, evenly spaced window starts
REDUCED_EPOCHS = 3
# Few-shot: `ofa train`'s own defaults (10 epochs, patience 3, lr "auto" from the budget) for One-for-All, and 10
# epochs for DLinear. On ETTh1-96 at 10% (validation only) DLinear's best validation MSE was 0.7070 at 3 epochs
# and 0.6939 at 10; One-for-All kept epoch 0 (the ridge forecaster) at lr 2e-3 / 3 epochs and at 5e-4 / 10 epochs.
FEWSHOT_EPOCHS = 10
REDUCED_VAL_SERIES = 4096
REDUCED_TEST_SERIES = 20000  # scored series (window x channel): every k-th test window, all channels of each

# One-for-All variants: model- and train-config overrides on top of a preset. "ofa" is the default preset
# (trained at SHORT_BUDGET_LR in the reduced protocol). The screens of the architecture ran while the
# default's lr was 1e-3, so their variants pin it: each README row's command reproduces its figure.
# Variants screened before the linear path and lookback choice joined the default preset pin the old
# default (no linear path, seq_len 336), so each README row's command still reproduces its figure.
BEFORE_LINEAR_PATH = dict(linear_path="none", seq_len=336)
VARIANTS = {
    "ofa": dict(preset="default"),
    "ofa-paper": dict(preset="paper"),
    "ofa-paper-lr1e-3": dict(preset="paper", lr=1e-3),  # the paper preset's rate when it was screened
    "ofa-paper-zero-head": dict(preset="paper", head_base="zero"),
    # screened at lr 1e-3
    "ofa-random-head": dict(preset="default", **BEFORE_LINEAR_PATH, head_base="random", lr=1e-3),
    "ofa-6blocks": dict(preset="default", **BEFORE_LINEAR_PATH, layers=6, lr=1e-3),
    "ofa-6blocks-b256": dict(preset="default", **BEFORE_LINEAR_PATH, layers=6, batch_size=256, lr=1e-3),
    "ofa-6blocks-lr3e-3": dict(preset="default", **BEFORE_LINEAR_PATH, layers=6, lr=3e-3),
    "ofa-3blocks": dict(preset="default", **BEFORE_LINEAR_PATH, layers=3, lr=1e-3),
    "ofa-1block": dict(preset="default", **BEFORE_LINEAR_PATH, layers=1, lr=1e-3),
    "ofa-5ep": dict(preset="default", **BEFORE_LINEAR_PATH, epochs=5, lr=1e-3),
    "ofa-dropout0.1": dict(preset="default", **BEFORE_LINEAR_PATH, lora_dropout=0.1, lr=1e-3),
    "ofa-wd0.05": dict(preset="default", **BEFORE_LINEAR_PATH, weight_decay=0.05, lr=1e-3),
    "ofa-ln": dict(preset="default", **BEFORE_LINEAR_PATH, train="lora+input+ln", lr=1e-3),
    "ofa-b32": dict(preset="default", **BEFORE_LINEAR_PATH, batch_size=32, lr=1e-3),
    # the learning-rate screen
    "ofa-lr1e-4": dict(preset="default", **BEFORE_LINEAR_PATH, lr=1e-4),  # GPT4TS's; the default preset's (full-length training)
    "ofa-lr3e-4": dict(preset="default", **BEFORE_LINEAR_PATH, lr=3e-4),
    "ofa-lr3e-4-6ep": dict(preset="default", **BEFORE_LINEAR_PATH, lr=3e-4, epochs=6),
    "ofa-lr1e-3": dict(preset="default", **BEFORE_LINEAR_PATH, lr=1e-3),
    "ofa-lr2e-3": dict(preset="default", **BEFORE_LINEAR_PATH, lr=2e-3),
    "ofa-lr2e-3-b32": dict(preset="default", **BEFORE_LINEAR_PATH, lr=2e-3, batch_size=32),
    "ofa-lr3e-3": dict(preset="default", **BEFORE_LINEAR_PATH, lr=3e-3),
    # the linear path (issue 11): instance-normalised window -> horizon, added to the transformer head
    "ofa-ridge": dict(preset="default", linear_path="ridge", seq_len=336),
    "ofa-ridge-train": dict(preset="default", linear_path="ridge+train", seq_len=336),
    "ofa-ridge-lr5e-4": dict(preset="default", linear_path="ridge", lr=5e-4, seq_len=336),
    "ofa-no-linear": dict(preset="default", linear_path="none"),  # the default's lookback, no linear path
    # The default before the mean of the lookbacks' ridge fits joined `--seq-len auto` (README, "Few-shot").
    "ofa-single-lookback": dict(preset="default", lookback_mean=False),
    # few-shot screen (issue 15): the default preset (linear path, --seq-len auto) at a lower transformer rate
    "ofa-auto-lr5e-4": dict(preset="default", lr=5e-4),
}
# Variant keys that belong to TrainConfig.
TRAIN_KEYS = ("lr", "precision", "batch_size", "epochs", "weight_decay", "lookback_mean")


# ---- DLinear (Zeng et al. 2023): moving-average decomposition + two shared linear maps ----
class DLinear(nn.Module):
    def __init__(self, seq_len: int, horizon: int, kernel: int = 25):
        super().__init__()
        self.kernel = kernel
        self.seasonal = nn.Linear(seq_len, horizon)
        self.trend = nn.Linear(seq_len, horizon)
        for layer in (self.seasonal, self.trend):  # the reference initialises both to a plain average
            nn.init.constant_(layer.weight, 1.0 / seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, L) -> (S, H); replicate-padded moving average as in the reference code."""
        pad = (self.kernel - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, pad), x, x[:, -1:].expand(-1, pad)], dim=1)
        trend = padded.unfold(1, self.kernel, 1).mean(-1)
        return self.seasonal(x - trend) + self.trend(trend)


# The learning rates of the official LTSF-Linear scripts (Zeng et al., scripts/EXP-LongForecasting/Linear);
# the bench lets DLinear pick its rate per dataset and horizon on the validation split from a grid around these.
DLINEAR_OFFICIAL_LR = {"ETTh1": 5e-3, "ETTh2": 5e-2, "ETTm1": 1e-4, "ETTm2": 1e-3, "Weather": 1e-4}
DLINEAR_LR_FACTORS = (0.1, 0.3, 1.0, 3.0, 10.0)
DLINEAR_LR_COMMON = (1e-3, 5e-3)  # the bench's earlier fixed rate and its neighbour, in every grid
DLINEAR_LR_EDGE_STEPS = 2  # a best rate at the grid's edge tries up to this many more, x3 or /3 each


def dlinear_lr_grid(dataset: str) -> list[float]:
    official = DLINEAR_OFFICIAL_LR.get(dataset, 5e-3)
    return sorted({float(f"{official * f:.3g}") for f in DLINEAR_LR_FACTORS} | set(DLINEAR_LR_COMMON))


def val_mse_of(model, splits) -> float:
    """MSE over every validation series: what the DLinear grid is chosen by (never the test split)."""
    vx, vy = splits.val.batch(np.arange(len(splits.val)))
    with torch.no_grad():
        return float(np.mean((model(torch.from_numpy(vx)).numpy() - vy) ** 2))


def tuned_dlinear(dataset: str, splits, seq_len: int, horizon: int, epochs: int, seed: int, kind: str = "dlinear"):
    """DLinear (or RLinear) at each rate of the grid; the one with the best validation MSE. (model, info)."""
    t0 = time.perf_counter()
    tried = []

    def attempt(lr: float) -> None:
        model, _ = train_dlinear(splits, seq_len, horizon, epochs, seed, lr=lr, kind=kind)
        tried.append((val_mse_of(model, splits), lr, model))
        print(f"    {kind} lr {lr:g}: val mse {tried[-1][0]:.4f}", flush=True)

    for lr in dlinear_lr_grid(dataset):
        attempt(lr)
    for _ in range(DLINEAR_LR_EDGE_STEPS):  # the best is at an edge: the grid did not bracket it
        rates = sorted(t[1] for t in tried)
        best = min(tried, key=lambda t: t[0])[1]
        if best == rates[0]:
            attempt(float(f"{best / 3:.3g}"))
        elif best == rates[-1]:
            attempt(float(f"{best * 3:.3g}"))
        else:
            break
    val, lr, model = min(tried, key=lambda t: t[0])
    tried.sort(key=lambda t: t[1])
    return model, {"lr": lr, "val_mse": val, "lr_grid": [t[1] for t in tried],
                   "grid_val_mse": [t[0] for t in tried], "train_seconds": time.perf_counter() - t0}


def score_naive(splits, test_every: int = 1) -> dict:
    """Repeat the window's last value over the horizon."""
    x, y = splits.test.windows()
    x, y = x[::test_every], y[::test_every]
    return scores(np.repeat(x[:, -1:, :], y.shape[1], axis=1), y)


class RLinear(nn.Module):
    """Instance normalisation + one linear map (Li et al. 2023, "Revisiting long-term time series forecasting"):
    what One-for-All's linear path alone would be."""

    def __init__(self, seq_len: int, horizon: int):
        super().__init__()
        self.linear = nn.Linear(seq_len, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
        return self.linear((x - mean) / std) * std + mean


LINEAR_BASELINES = {"dlinear": DLinear, "rlinear": RLinear}


def train_dlinear(splits, seq_len: int, horizon: int, epochs: int, seed: int, lr: float = 5e-3,
                  batch: int = 256, patience: int = 3, kind: str = "dlinear") -> tuple[nn.Module, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = LINEAR_BASELINES[kind](seq_len, horizon)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    total = math.ceil(len(splits.train) / batch) * epochs
    step, best, bad, best_state = 0, math.inf, 0, None
    vx, vy = splits.val.batch(np.arange(len(splits.val))[:: max(1, len(splits.val) // REDUCED_VAL_SERIES)])
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = rng.permutation(len(splits.train))
        for start in range(0, len(order), batch):
            x, y = splits.train.batch(order[start:start + batch])
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        with torch.no_grad():
            val = nn.functional.mse_loss(model(torch.from_numpy(vx)), torch.from_numpy(vy)).item()
        if val < best:
            best, bad, best_state = val, 0, {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best_state)
    return model, time.perf_counter() - t0


def score_dlinear(model, splits, test_every: int = 1) -> dict:
    x, y = splits.test.windows()  # (W, L, C)
    x, y = x[::test_every], y[::test_every]
    w, length, c = x.shape
    with torch.no_grad():
        flat = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1).reshape(w * c, length)))
        pred = model(flat).numpy().reshape(w, c, -1).transpose(0, 2, 1)
    return scores(pred, y)


def engine_forecast(checkpoint_dir: str, scaler, x: np.ndarray, threads: int) -> np.ndarray:
    """Scaled forecasts of scaled windows x (W, L, C) by the exported model in the C++ engine.

    Scoring goes through the product path (ofa export + ofa.infer), which matches the PyTorch model
    to 1e-4 (bench/parity.py) and, unlike torch's OpenMP threads, does not stall when cores are shared.
    """
    import ofa
    from ofa.export.merge import export

    path = os.path.join(checkpoint_dir, "model.ofa")
    export(checkpoint_dir, path)
    raw = scaler.inverse(x)
    forecast = ofa.infer(ofa.load(path, threads=max(1, threads or torch.get_num_threads())), raw)
    return scaler.transform(forecast)


def reduced_window_cap(path: str, series: int = REDUCED_TRAIN_SERIES) -> int:
    """Window starts that give about `series` training series for this file's channel count."""
    return max(1, series // load_series(path).values.shape[1])


def run_ofa(name: str, path: str, horizon: int, lookback, full: bool, seed: int, workdir: str,
            test_every: int = 1, threads: int = 0, train_series: int = REDUCED_TRAIN_SERIES,
            rescore: bool = False, precision: str = "bf16", scorer: str = "engine",
            train_fraction: float = 1.0, epochs: int | None = None) -> dict:
    from ofa.training import checkpoint

    spec = dict(VARIANTS[name])
    preset_name = spec.pop("preset")
    preset = PRESETS[preset_name]
    spec_train = {k: spec.pop(k) for k in TRAIN_KEYS if k in spec}  # what the variant sets explicitly
    train_over = preset["train"] | spec_train
    if not full and train_fraction >= 1.0 and preset_name == "default" and "lr" not in spec_train:
        train_over["lr"] = SHORT_BUDGET_LR  # the reduced budget is ~650 steps: the preset's lr undertrains it
    model_over = preset["model"] | spec | ({} if lookback is None else {"seq_len": lookback})
    mc = ModelConfig(horizon=horizon, **model_over)
    tc = TrainConfig(epochs=epochs or protocol_epochs(full, train_fraction), seed=seed, precision=precision,
                     max_train_windows=0 if full else reduced_window_cap(path, train_series),
                     max_val_series=0 if full else REDUCED_VAL_SERIES, train_fraction=train_fraction,
                     progress=False)
    for key, value in train_over.items():
        setattr(tc, key, value)
    # Few-shot checkpoints get their own directory: the long-term ones (bench/zero_shot.py reads them) stay.
    suffix = ("" if mc.seq_len == 336 else f"-L{mc.seq_len}") + (f"-s{seed}" if seed else "") + \
        ("" if train_fraction >= 1.0 else f"-f{percent_of(train_fraction)}") + (f"-e{epochs}" if epochs else "")
    out = os.path.join(workdir, f"{os.path.basename(path)}-{horizon}-{name}{suffix}")
    if rescore and os.path.isfile(os.path.join(out, "ofa.json")):
        meta = checkpoint.read_meta(out)  # a finished training of this run: score it again
        if mc.seq_len != "auto" and meta["model"] != mc.to_dict():
            raise SystemExit(f"--rescore: {out} holds a different model configuration")
    else:
        meta = train(path, out, mc, tc, log=lambda s: print("   ", s, flush=True))
    seq_len = meta["model"]["seq_len"]
    splits = make_splits(load_series(path), seq_len, horizon)  # the test split is the same whatever the fraction
    x, y = splits.test.windows()
    x, y = x[::test_every], y[::test_every]
    if scorer == "engine":
        result = scores(engine_forecast(out, splits.scaler, x, threads), y)
    else:  # PyTorch: for screening variants the engine cannot run yet
        from ofa.evaluation import predict_windows_torch
        result = scores(predict_windows_torch(checkpoint.load(out)[0], x), y)
    return result | {"seq_len": seq_len, "lookback_val_mse": meta.get("lookback", {}).get("val_mse"),
                     "linear_path": meta.get("linear_path"), "scorer": scorer, "train_seconds": meta["train_seconds"], "trainable_params": meta["sizes"]["trainable_params"],
                     "epochs_run": len(meta["history"]), "lr": meta.get("train", {}).get("lr", tc.lr), "precision": tc.precision,
                     "epochs": tc.epochs, "train_series_used": meta["data"]["train_series"],
                     "best_epoch": best_epoch(meta), "best_val_mse": meta.get("best_val_mse")}


def best_epoch(meta: dict) -> int:
    """The epoch whose weights the checkpoint holds: 0 is the linear path alone (no history entry reaches it)."""
    best = meta.get("best_val_mse")
    return next((h["epoch"] for h in meta.get("history", []) if best is not None and h["val_mse"] == best), 0)


def percent_of(fraction: float) -> str:
    """0.1 -> "10", 0.05 -> "5", 0.125 -> "12.5": the fraction's name in protocols and directories."""
    return f"{fraction * 100:.6g}"


def protocol_epochs(full: bool, train_fraction: float = 1.0) -> int:
    return 10 if full else FEWSHOT_EPOCHS if train_fraction < 1.0 else REDUCED_EPOCHS


def protocol_name(args) -> str:
    """reduced | full | fewshot-<pct> (reduced) | fewshot-<pct>-full, then -<k>k for another --train-series and
    -screen<K> for --screen K. The protocol is part of every record's key (RECORD_FIELDS)."""
    fraction = getattr(args, "train_fraction", 1.0)
    if fraction < 1.0:
        protocol = f"fewshot-{percent_of(fraction)}" + ("-full" if args.full else "")
    else:
        protocol = "full" if args.full else "reduced"
    if not args.full and getattr(args, "train_series", REDUCED_TRAIN_SERIES) != REDUCED_TRAIN_SERIES:
        protocol += f"-{args.train_series // 1000}k"
    if getattr(args, "epochs", None):
        protocol += f"-{args.epochs}ep"
    if getattr(args, "screen", 1) > 1:
        protocol += f"-screen{args.screen}"
    return protocol


RECORD_FIELDS = ("dataset", "horizon", "model", "protocol")  # every record has these
# What one measurement is identified by. train_fraction: the protocol already names it (fewshot-10), and the
# key holds it too, so no few-shot record can replace a long-term one whatever its protocol is called.
RECORD_KEY = RECORD_FIELDS + ("lookback", "seed", "test_every", "train_fraction")
KEY_DEFAULTS = {"seed": 0, "test_every": 1, "train_fraction": 1.0}  # what records from before a key field existed used


def key_of(record: dict) -> tuple:
    """lookback: what was asked for (a length, or "auto"); records before it existed asked for their seq_len.
    seed, test_every, train_fraction: records before they were recorded used seed 0, scored every test
    window and trained on the whole training split."""
    return tuple(record.get(k, KEY_DEFAULTS[k]) if k in KEY_DEFAULTS else record.get(k, record.get("seq_len"))
                 for k in RECORD_KEY)


def earlier_records(path: str) -> list[dict]:
    """The records already in `path` (none if it does not exist); a file that is not a record list is an error."""
    if not os.path.isfile(path):
        return []
    try:
        with open(path) as f:
            records = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--out {path}: not readable as JSON ({e}); move it away or pick another --out") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and all(k in r for k in RECORD_FIELDS)
                                                for r in records):
        raise SystemExit(f"--out {path}: not a list of accuracy records; move it away or pick another --out")
    return records


def merge_records(earlier: list[dict], new: list[dict]) -> list[dict]:
    """`earlier` in its order, each record that `new` measures again replaced, then the rest of `new`."""
    fresh = {key_of(r): r for r in new}
    merged = [fresh.pop(key_of(r), r) for r in earlier]
    return merged + list(fresh.values())


def reduced_splits(path: str, seq_len: int, horizon: int, full: bool, train_series: int, train_fraction: float = 1.0):
    """The splits every model of a cell trains on: all windows (full) or the reduced protocol's; few-shot,
    only the first `train_fraction` of the training split (the reduced cap then strides within it)."""
    splits = make_splits(load_series(path), seq_len, horizon, train_fraction)
    if full:
        return splits
    every = math.ceil(len(splits.train.starts) / reduced_window_cap(path, train_series))
    return make_splits(load_series(path), seq_len, horizon, train_fraction, train_every=every)


def scoring_seq_len(series, horizon: int) -> int:
    """A lookback the series is long enough for: 336, or on a short series the longest of `--seq-len auto`'s
    short ones that fits. The test targets start at the same border for any lookback, so they are the same."""
    for seq_len in (336, *SHORT_LOOKBACKS):
        try:
            make_splits(series, seq_len, horizon)
            return seq_len
        except SeriesTooShort:
            continue
    raise OfaError(f"{series.name}: too few rows for horizon {horizon} with any lookback down to {SHORT_LOOKBACKS[-1]}")


def test_stride(path: str, horizon: int, args) -> tuple[int, int]:
    """(k, windows): every k-th test window is scored, `windows` of them, the same for every model of a cell.

    The full protocol scores every window. The reduced one scores about REDUCED_TEST_SERIES series: all of
    ETTh (about 19k series), every 4th window of ETTm, every 11th of Weather. Neighbouring windows share all
    but one row, so their MSE is close to the full split's (Weather-96: 0.1705 against 0.1706), and scoring,
    not training, was most of the reduced run's time. --screen K overrides it.
    """
    series = load_series(path)
    n = len(make_splits(series, scoring_seq_len(series, horizon), horizon).test.starts)  # the same for any seq_len
    k = args.screen if args.screen > 1 else 1 if args.full or getattr(args, "all_test_windows", False) else \
        every_for(n * series.values.shape[1], REDUCED_TEST_SERIES)
    return k, len(range(0, n, k))


def validated_dlinear(name: str, ds: str, path: str, horizon: int, lookback, args):
    """DLinear (or RLinear) with its rate, and under "auto" its lookback too, chosen on the validation
    split of `path`: (model, its splits, info)."""
    fraction = getattr(args, "train_fraction", 1.0)
    epochs = getattr(args, "epochs", None) or protocol_epochs(args.full, fraction)
    best = None
    candidates = LOOKBACKS if lookback == "auto" else (lookback,)
    if lookback == "auto" and scoring_seq_len(load_series(path), horizon) < min(LOOKBACKS):
        candidates = SHORT_LOOKBACKS  # a short series: the shorter lookbacks One-for-All's auto also tries
    for seq_len in candidates:
        try:
            splits = reduced_splits(path, seq_len, horizon, args.full, args.train_series, fraction)
        except SeriesTooShort:
            continue  # too short for this lookback
        model, info = tuned_dlinear(ds, splits, seq_len, horizon, epochs, args.seed, kind=name)
        info["seq_len"], info["epochs"], info["train_series_used"] = seq_len, epochs, len(splits.train)
        print(f"    {name} L{seq_len}: lr {info['lr']:g}, val mse {info['val_mse']:.4f}", flush=True)
        if best is None or info["val_mse"] < best[2]["val_mse"]:
            best = (model, splits, info)
    return best


def dlinear_cell(name: str, ds: str, path: str, horizon: int, lookback, args) -> dict:
    """validated_dlinear, scored on the same dataset's test split."""
    model, splits, info = validated_dlinear(name, ds, path, horizon, lookback, args)
    return score_dlinear(model, splits, args.test_every) | info | {
        "trainable_params": parameter_counts(model)["trainable_params"]}


def measure(name: str, ds: str, path: str, horizon: int, args, protocol: str) -> dict:
    """Train (where the model trains) and score one model on one (dataset, horizon) cell: one record."""
    t0 = time.time()
    lookback = args.seq_len
    args.test_every, test_windows = test_stride(path, horizon, args)
    print(f"== {ds} h{horizon} {name} ({protocol}, lookback {lookback or 'the preset' + chr(39) + 's'})", flush=True)
    if name == "naive":
        series = load_series(path)
        rec = score_naive(make_splits(series, scoring_seq_len(series, horizon), horizon), args.test_every)  # any L
        rec |= {"train_seconds": 0.0, "trainable_params": 0, "seq_len": 1}
    elif name == "dlinear-lr5e-3":  # the bench's DLinear before its rate and lookback were tuned
        splits = reduced_splits(path, 336, horizon, args.full, args.train_series, args.train_fraction)
        model, seconds = train_dlinear(splits, 336, horizon, args.epochs or protocol_epochs(args.full, args.train_fraction), args.seed)
        rec = score_dlinear(model, splits, args.test_every) | {
            "train_seconds": seconds, "trainable_params": parameter_counts(model)["trainable_params"], "seq_len": 336}
    elif name in LINEAR_BASELINES:
        rec = dlinear_cell(name, ds, path, horizon, lookback or "auto", args)
    else:
        rec = run_ofa(name, path, horizon, lookback, args.full, args.seed, args.workdir, args.test_every,
                      args.engine_threads, args.train_series, args.rescore, args.precision, args.scorer,
                      args.train_fraction, args.epochs)
    return {"dataset": ds, "horizon": horizon, "model": name, "protocol": protocol, "seed": args.seed,
            "test_every": args.test_every, "test_windows": test_windows, "train_fraction": args.train_fraction,
            "lookback": lookback or {"naive": "auto", "dlinear-lr5e-3": 336}.get(
                name, "auto" if name in LINEAR_BASELINES else "preset"),
            **rec, "wall_seconds": time.time() - t0}


# Published MSE (full protocol, GPU), as quoted in the GPT4TS paper's long-term table (Zhou et al., NeurIPS
# 2023): GPT4TS, PatchTST and DLinear, horizons 96 / 192 / 336 / 720.
PUBLISHED = {
    "ETTh1": {"gpt4ts": (0.376, 0.416, 0.442, 0.477), "patchtst": (0.370, 0.413, 0.422, 0.447),
              "dlinear": (0.375, 0.405, 0.439, 0.472)},
    "ETTh2": {"gpt4ts": (0.285, 0.354, 0.373, 0.406), "patchtst": (0.274, 0.341, 0.329, 0.379),
              "dlinear": (0.289, 0.383, 0.448, 0.605)},
    "ETTm1": {"gpt4ts": (0.292, 0.332, 0.366, 0.417), "patchtst": (0.290, 0.332, 0.366, 0.416),
              "dlinear": (0.299, 0.335, 0.369, 0.425)},
    "ETTm2": {"gpt4ts": (0.173, 0.229, 0.286, 0.378), "patchtst": (0.165, 0.220, 0.274, 0.362),
              "dlinear": (0.167, 0.224, 0.281, 0.397)},
    "Weather": {"gpt4ts": (0.162, 0.204, 0.254, 0.326), "patchtst": (0.149, 0.194, 0.245, 0.314),
                "dlinear": (0.176, 0.220, 0.265, 0.323)},
}
PUBLISHED_HORIZONS = (96, 192, 336, 720)
# GPT4TS few-shot MSE with 10% of the training data (the GPT4TS paper's few-shot table), averaged over the four
# horizons; the per-horizon figures are not transcribed here, so a horizon-96 cell is not directly comparable.
PUBLISHED_FEWSHOT10_AVG = {"ETTh1": 0.590, "ETTh2": 0.397, "ETTm1": 0.464, "ETTm2": 0.293, "Weather": 0.238}


def report(records: list[dict], run: str | None, protocol: str, model: str = "ofa", base: str = "dlinear") -> str:
    """Markdown table of a run (or of several, "RUN1,RUN2": each cell from the last of them that measured
    it, `model` and `base` always from the same run): `model` vs `base` per cell, with the repeat-last
    forecast and the published figures; then the geometric mean of the ratios and the worst cell. Seed 0."""
    records = [r for r in records if r.get("seed", 0) == 0]
    runs = sorted({r["run"] for r in records if r.get("protocol") == protocol and r["model"] == model})
    if not runs:
        raise SystemExit(f"--report: no {model!r} records of protocol {protocol!r}")
    chosen = (run or runs[-1]).split(",")
    cell, cell_run = {}, {}
    for name in chosen:  # later runs replace earlier ones, cell by cell (model, base and naive together)
        rows = [r for r in records if r.get("run") == name and r.get("protocol") == protocol]
        got = {(r["dataset"], r["horizon"], r["model"]): r for r in rows}
        for (ds, h, m), r in got.items():
            if m == model and (ds, h, base) in got:
                for k in (model, base, "naive"):
                    cell.pop((ds, h, k), None)
                cell.update({key: v for key, v in got.items() if key[:2] == (ds, h)})
                cell_run[(ds, h)] = name
    run = ",".join(chosen)
    fewshot = protocol.startswith("fewshot-10")  # the published few-shot anchors are GPT4TS's at 10%
    out = ["| dataset | H | One-for-All MSE (L) | DLinear MSE (L, lr) | ratio | repeat-last | " +
           ("GPT4TS 10% few-shot, 4-horizon average |" if fewshot else "published GPT4TS / PatchTST / DLinear |"),
           "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    ratios = []
    for ds in DATASETS:
        for h in sorted({k[1] for k in cell if k[0] == ds}):
            a, b, n = cell.get((ds, h, model)), cell.get((ds, h, base)), cell.get((ds, h, "naive"))
            if not (a and b):
                continue
            ratio = a["mse"] / b["mse"]
            ratios.append((ratio, ds, h))
            pub = PUBLISHED.get(ds, {})
            i = PUBLISHED_HORIZONS.index(h) if h in PUBLISHED_HORIZONS else None
            published = " / ".join(f"{pub[k][i]:.3f}" for k in ("gpt4ts", "patchtst", "dlinear")) if pub and i is not None else ""
            if fewshot:
                published = f"{PUBLISHED_FEWSHOT10_AVG[ds]:.3f}" if ds in PUBLISHED_FEWSHOT10_AVG else ""
            out.append(f"| {ds} | {h} | {a['mse']:.4f} ({a.get('seq_len')}) | {b['mse']:.4f} ({b.get('seq_len')}, "
                       f"{b.get('lr', 0):g}) | {ratio:.3f} | {n['mse']:.4f} | {published} |" if n else
                       f"| {ds} | {h} | {a['mse']:.4f} ({a.get('seq_len')}) | {b['mse']:.4f} | {ratio:.3f} | | {published} |")
    if ratios:
        geo = math.exp(sum(math.log(r) for r, _, _ in ratios) / len(ratios))
        worst = max(ratios)
        out.append(f"\n{len(ratios)} cells of run {run}: geometric mean of {model}/{base} MSE {geo:.3f}; "
                   f"worst cell {worst[1]}-{worst[2]} {worst[0]:.3f}")
        for ds in DATASETS if fewshot else ():  # the anchors are 4-horizon averages: ours where all four ran
            got = [(cell.get((ds, h, model)), cell.get((ds, h, base))) for h in PUBLISHED_HORIZONS]
            if all(a and b for a, b in got):
                out.append(f"{ds} average over horizons {'/'.join(map(str, PUBLISHED_HORIZONS))}: {model} "
                           f"{np.mean([a['mse'] for a, _ in got]):.4f}, {base} {np.mean([b['mse'] for _, b in got]):.4f}"
                           f" (GPT4TS 10% few-shot {PUBLISHED_FEWSHOT10_AVG.get(ds, math.nan):.3f})")
        if len(chosen) > 1:
            for name in chosen:
                cells = [f"{ds}-{h}" for (ds, h), r in cell_run.items() if r == name]
                out.append(f"run {name}: {', '.join(cells) if cells else 'no cell'}")
    return "\n".join(out)


def seeds_report(records: list[dict], protocol: str, model: str = "ofa", base: str = "dlinear") -> str:
    """Mean and sample standard deviation over the seeds of each cell measured with 3 or more seeds, for
    `model` and `base`; a difference of means under two standard deviations (the larger) is not a win."""
    groups: dict = {}  # seeds are only compared when scored on the same test windows
    for r in records:
        if r.get("protocol") == protocol and r["model"] in (model, base):
            groups.setdefault((r["dataset"], r["horizon"], r["model"], r.get("test_every", 1)), {})[
                r.get("seed", 0)] = r["mse"]
    out = ["| dataset | H | seeds | One-for-All MSE mean ± std | DLinear MSE mean ± std | ratio of means | "
           "difference / 2 std |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for ds, h, every in sorted({k[:2] + k[3:] for k in groups}, key=lambda k: (list(DATASETS).index(k[0]), k[1:])):
        if True:
            a, b = groups.get((ds, h, model, every), {}), groups.get((ds, h, base, every), {})
            seeds = sorted(set(a) & set(b))
            if len(seeds) < 3:
                continue
            xa, xb = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
            sd = max(xa.std(ddof=1), xb.std(ddof=1))
            margin = abs(xa.mean() - xb.mean()) / (2 * sd) if sd > 0 else math.inf
            verdict = f"{margin:.1f}: " + ("a win" if xa.mean() < xb.mean() else "a loss") if margin >= 1 \
                else f"{margin:.1f}: not a win (under 2 std)"
            out.append(f"| {ds} | {h} | {len(seeds)} | {xa.mean():.4f} ± {xa.std(ddof=1):.4f} | "
                       f"{xb.mean():.4f} ± {xb.std(ddof=1):.4f} | {xa.mean() / xb.mean():.3f} | {verdict} |")
    return "\n".join(out)


def dataset_paths(spec: str) -> list[tuple[str, str]]:
    """(name, path) per comma-separated entry: a built-in name (ETTh1, ..., Weather) or any CSV path,
    named by its file name (DLinear's grid then starts from 5e-3, the bench's rate before tuning)."""
    out = []
    for item in spec.split(","):
        if item in DATASETS:
            out.append((item, os.path.join(DATA, DATASETS[item])))
        elif item.startswith("builtin:"):  # the packaged series (ofa.data.load_series), e.g. builtin:taylor
            out.append((item.split(":", 1)[1], item))
        elif item.endswith(".csv") or os.sep in item:
            out.append((os.path.splitext(os.path.basename(item))[0], item))
        else:
            raise SystemExit(f"--datasets: {item!r} is neither a built-in dataset ({', '.join(DATASETS)}) "
                             f"nor a CSV path")
    return out


def train_fraction_of(args, ap) -> float:
    """--fewshot PCT or --train-fraction F (not both) as a fraction in (0, 1]; 1 without either."""
    if args.fewshot is not None and args.train_fraction is not None:
        ap.error("--fewshot and --train-fraction say the same thing: give one")
    fraction = args.fewshot / 100 if args.fewshot is not None else args.train_fraction
    if fraction is None:
        return 1.0
    if not 0.0 < fraction <= 1.0:
        ap.error(f"the train fraction must be in (0, 1] (--fewshot in (0, 100]), got {fraction:g}")
    return float(f"{fraction:.6g}")


def native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AMX-BF16 or AVX512-BF16), from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="published protocol instead of the reduced one")
    ap.add_argument("--datasets", default=",".join(DATASETS),
                    help="built-in names and/or CSV paths, comma-separated")
    ap.add_argument("--models", default="ofa,dlinear,naive",
                    help=f"dlinear, rlinear (validation-tuned lr), naive (repeat last) and any of {', '.join(VARIANTS)}")
    ap.add_argument("--horizons", "--horizon", default="96",
                    help="comma-separated horizons, e.g. 96,192,336,720")
    ap.add_argument("--seq-len", type=lambda v: v if v == "auto" else int(v), default=None,
                    help="lookback for every model of the run: a length, or auto (each model picks one of "
                         f"{LOOKBACKS} on its own validation split); default: each variant's own (auto for the "
                         "default preset), and auto for DLinear")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fewshot", type=float, default=None, metavar="PCT",
                    help="few-shot protocol: train on the first PCT%% of the training split only (5, 10); "
                         "validation and test unchanged")
    ap.add_argument("--train-fraction", type=float, default=None, metavar="F",
                    help="the same as a fraction: --train-fraction 0.1 is --fewshot 10")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"epochs for every model (default: {REDUCED_EPOCHS} reduced, {FEWSHOT_EPOCHS} few-shot, 10 full); the protocol "
                         "name says so (-Nep)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "accuracy.json"))
    ap.add_argument("--workdir", default=os.path.join("runs", "bench"))
    ap.add_argument("--all-test-windows", action="store_true",
                    help="reduced protocol, but score every test window (as the full protocol does)")
    ap.add_argument("--screen", type=int, default=1, metavar="K",
                    help="score every K-th test window only (quick screening of variants; not a published figure)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for training (0: torch's default)")
    ap.add_argument("--train-series", type=int, default=REDUCED_TRAIN_SERIES,
                    help="reduced protocol: training series (window x channel) per epoch")
    ap.add_argument("--rescore", action="store_true",
                    help="score an existing finished checkpoint in --workdir instead of training it again")
    ap.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                    help="One-for-All training matmuls (bf16: faster on AMX/AVX512-BF16 CPUs; auto: bf16 where the "
                         "CPU has either, else fp32); scoring is fp32")
    ap.add_argument("--engine-threads", type=int, default=2, help="C++ engine threads for scoring")
    ap.add_argument("--scorer", choices=["engine", "torch"], default="engine",
                    help="score One-for-All through the exported model in the C++ engine (the product path) or "
                         "in PyTorch (screening only)")
    ap.add_argument("--report", nargs="?", const="latest", metavar="RUN",
                    help="print the markdown table of a run in --out (default: the latest; RUN1,RUN2: each cell "
                         "from the last run that measured it) and exit")
    ap.add_argument("--report-seeds", action="store_true",
                    help="print mean and std over seeds of the cells measured with 3 or more and exit")
    args = ap.parse_args(argv)
    args.train_fraction = train_fraction_of(args, ap)
    if args.precision == "auto":
        args.precision = "bf16" if native_bf16() else "fp32"
    protocol = protocol_name(args)
    if args.report_seeds:
        print(seeds_report(earlier_records(args.out), protocol))
        return 0
    if args.report:
        print(report(earlier_records(args.out), None if args.report == "latest" else args.report, protocol))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.time()
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))
    earlier_records(args.out)  # refuse a bad --out before hours of training
    records = []
    for horizon in [int(h) for h in args.horizons.split(",")]:  # horizon-major: a cut-short run has whole rows
        for ds, path in dataset_paths(args.datasets):
            if not path.startswith("builtin:") and not os.path.isfile(path):
                print(f"skip {ds}: {path} not found (set OFA_DATA)")
                continue
            for name in args.models.split(","):
                rec = measure(name, ds, path, horizon, args, protocol)
                rec["run"] = run_id
                print(f"   mse {rec['mse']:.4f}  mae {rec['mae']:.4f}  L {rec['seq_len']}  train "
                      f"{rec['train_seconds']:.0f} s  params {rec['trainable_params']:,}", flush=True)
                records.append(rec)
                # After every record, so a long run keeps what it finished; read again so another run's
                # writes stay.
                atomic_write_json(args.out, merge_records(earlier_records(args.out), records))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    print(f"\n{'dataset':8} {'H':>4} {'model':18} {'mse':>7} {'mae':>7}  {'/dlinear':>8}   ({protocol} protocol, "
          f"{machine}, {(time.time() - started) / 60:.0f} min)")
    base = {(r["dataset"], r["horizon"]): r["mse"] for r in records if r["model"] == "dlinear"}
    for r in records:
        ratio = r["mse"] / base[(r["dataset"], r["horizon"])] if (r["dataset"], r["horizon"]) in base else math.nan
        print(f"{r['dataset']:8} {r['horizon']:4} {r['model']:18} {r['mse']:7.4f} {r['mae']:7.4f}  {ratio:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
