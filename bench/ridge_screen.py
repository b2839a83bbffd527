"""The linear path alone: the validated ridge forecaster per (dataset, horizon, lookback), numpy only.

    python bench/ridge_screen.py --cells ETTh1:96:336,ETTh1:96:512,Weather:96:720
    python bench/ridge_screen.py --cells ETTh2:720:336 --normalise std     # the form the default avoids
    python bench/ridge_screen.py --cells Weather:96:720 --train-fraction 0.1 --grid 1e-4,1e-3,1e-2,3e-2,0.1,0.3,1,3,10,30,100 \
        --test-windows bench                                                # few-shot, a wider ridge grid
    python bench/ridge_screen.py --choose --cells ETTh1:96,ETTh2:96 --train-fraction 0.1   # --seq-len auto's choice

Trains on the reduced protocol's windows (bench/accuracy.py), chooses the ridge strength on the whole
validation split, scores every test window. --normalise std fits the ridge on windows divided by their
own standard deviation (targets too), the RevIN form, instead of mean-centred ones. --train-fraction trains
on the first fraction of the training split (the few-shot protocol's windows), --grid replaces the ridge
strengths (ofa.training.linear_path.RIDGE_GRID), --test-windows bench scores the accuracy bench's every k-th
test window instead of all. Prints one line a cell and writes bench/results/ridge_screen.json.

--choose (cells DATASET:HORIZON) runs `--seq-len auto`'s choice of the linear path on the reduced protocol's
splits (linear_path.choose_lookback, with ENSEMBLE_MEMBERS) and scores on the accuracy bench's test windows
both what it chooses and what the choice among single lookbacks (`--single-lookback`) would have been:
the linear path alone, no transformer. Writes bench/results/lookback_mean_screen.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))  # run from a checkout too
DEFAULT_OUT = os.path.join(HERE, "results", "ridge_screen.json")

from ofa.training import linear_path
from ofa.fileio import atomic_write_json  # noqa: E402


def accuracy_bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", os.path.join(HERE, "accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StdNormalised:
    """A WindowSet view whose windows and targets are divided by each window's own std (RevIN form)."""

    def __init__(self, windows):
        self.w, self.seq_len, self.horizon = windows, windows.seq_len, windows.horizon

    def __len__(self):
        return len(self.w)

    def batch(self, index):
        x, y = self.w.batch(index)
        sd = np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
        return x / sd, y / sd


def bench_every(acc, path: str, horizon: int) -> int:
    """The accuracy bench's test-window stride for this cell (test_stride)."""
    return acc.test_stride(path, horizon, argparse.Namespace(screen=1, full=False))[0]


def test_series(splits, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Every `every`-th test window, each channel a series: x (B, seq_len), y (B, horizon)."""
    x, y = splits.test.windows()
    x, y = x[::every], y[::every]
    return x.transpose(0, 2, 1).reshape(-1, x.shape[1]), y.transpose(0, 2, 1).reshape(-1, y.shape[1])


def test_mse(splits, weight, bias, every: int) -> float:
    x, y = test_series(splits, every)
    return float(np.mean((linear_path.predict(weight, bias, x) - y) ** 2))


def write_merged(out: str, records: list, key) -> None:
    """`records` into the JSON list at `out`, each replacing an earlier record of the same key."""
    earlier = json.load(open(out)) if os.path.isfile(out) else []
    fresh = {key(r): r for r in records}
    atomic_write_json(out, [fresh.pop(key(r), r) for r in earlier] + list(fresh.values()))


def choose_cell(acc, name: str, horizon: int, train_fraction: float) -> dict:
    """--seq-len auto's linear path with and without the lookback means, each scored on test."""
    from ofa.errors import SeriesTooShort

    path = os.path.join(acc.DATA, acc.DATASETS[name])
    cache = {}

    def splits_for(seq_len):
        if seq_len not in cache:
            try:
                cache[seq_len] = acc.reduced_splits(path, seq_len, horizon, False, acc.REDUCED_TRAIN_SERIES,
                                                    train_fraction)
            except SeriesTooShort:
                cache[seq_len] = None
        return cache[seq_len]

    seq_len, info, (weight, bias, _) = linear_path.choose_lookback(splits_for, members=linear_path.ENSEMBLE_MEMBERS)
    every = bench_every(acc, path, horizon)
    singles = {k: v for k, v in info["val_mse"].items() if "+" not in k}
    single = min(singles, key=singles.get)
    splits = splits_for(int(single))
    w1, b1, _ = linear_path.fit(splits.train, splits.val)
    return {"dataset": name, "horizon": horizon, "train_fraction": train_fraction, "test_every": every,
            "val_mse": info["val_mse"],
            "single": {"linear_path": single, "seq_len": int(single), "val_mse": singles[single],
                       "mse": test_mse(splits, w1, b1, every)},
            "chosen": {"linear_path": info["linear_path"], "seq_len": seq_len,
                       "val_mse": info["val_mse"][info["linear_path"]],
                       "mse": test_mse(splits_for(seq_len), weight, bias, every)}}


def main_choose(args, acc) -> int:
    out = args.out if args.out != DEFAULT_OUT else os.path.join(HERE, "results", "lookback_mean_screen.json")
    records = []
    for cell in args.cells.split(","):
        name, horizon = cell.split(":")[:2]
        rec = choose_cell(acc, name, int(horizon), args.train_fraction)
        a, b = rec["single"], rec["chosen"]
        print(f"{name}-{horizon} (train fraction {args.train_fraction:g}): single lookbacks {a['linear_path']} val "
              f"{a['val_mse']:.4f} test {a['mse']:.4f} | with the means {b['linear_path']} val {b['val_mse']:.4f} "
              f"test {b['mse']:.4f}", flush=True)
        records.append(rec)
    write_merged(out, records, lambda r: (r["dataset"], r["horizon"], r["train_fraction"]))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", required=True, help="DATASET:HORIZON:SEQ_LEN, comma-separated")
    ap.add_argument("--normalise", choices=["mean", "std"], default="mean")
    ap.add_argument("--train-fraction", type=float, default=1.0, help="few-shot: the first fraction of train")
    ap.add_argument("--grid", default=None, help="ridge strengths, comma-separated (default: the product's grid)")
    ap.add_argument("--test-windows", choices=["all", "bench"], default="all",
                    help="score every test window, or the accuracy bench's every k-th (test_stride)")
    ap.add_argument("--choose", action="store_true",
                    help="cells DATASET:HORIZON: --seq-len auto's linear path with and without the lookback means")
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    grid = tuple(float(g) for g in args.grid.split(",")) if args.grid else linear_path.RIDGE_GRID
    acc = accuracy_bench()
    if args.choose:
        return main_choose(args, acc)
    records = []
    for cell in args.cells.split(","):
        name, horizon, seq_len = cell.split(":")
        horizon, seq_len = int(horizon), int(seq_len)
        path = os.path.join(acc.DATA, acc.DATASETS[name])
        splits = acc.reduced_splits(path, seq_len, horizon, False, acc.REDUCED_TRAIN_SERIES, args.train_fraction)
        train, val = splits.train, splits.val
        if args.normalise == "std":
            train, val = StdNormalised(train), StdNormalised(val)
        weight, bias, info = linear_path.fit(train, val, grid)
        every = 1 if args.test_windows == "all" else bench_every(acc, path, horizon)
        x, y = test_series(splits, every)
        if args.normalise == "std":
            sd = np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
            pred = linear_path.predict(weight, bias, x / sd) * sd
        else:
            pred = linear_path.predict(weight, bias, x)
        mse = float(np.mean((pred - y) ** 2))
        rec = {"dataset": name, "horizon": horizon, "seq_len": seq_len, "normalise": args.normalise,
               "ridge": info["ridge"], "val_mse": info["val_mse"], "mse": mse,
               "train_fraction": args.train_fraction, "grid": list(grid), "grid_val_mse": info["grid_val_mse"],
               "test_every": every}
        print(f"{name}-{horizon} L{seq_len} ({args.normalise}, train fraction {args.train_fraction:g}): ridge "
              f"{info['ridge']:g}, val {info['val_mse']:.4f}, test mse {mse:.4f} (every {every} test window); "
              "grid val " + ", ".join(f"{g:g}: {v:.4f}" for g, v in zip(grid, info["grid_val_mse"])), flush=True)
        records.append(rec)
    write_merged(args.out, records, lambda r: (r["dataset"], r["horizon"], r["seq_len"], r["normalise"],
                                               r.get("train_fraction", 1.0),
                                               tuple(r.get("grid", linear_path.RIDGE_GRID)), r.get("test_every", 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
