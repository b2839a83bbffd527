"""The linear path alone: the validated ridge forecaster per (dataset, horizon, lookback), numpy only.

    python bench/ridge_screen.py --cells ETTh1:96:336,ETTh1:96:512,Weather:96:720
    python bench/ridge_screen.py --cells ETTh2:720:336 --normalise std     # the form the default avoids

Trains on the reduced protocol's windows (bench/accuracy.py), chooses the ridge strength on the whole
validation split, scores every test window. --normalise std fits the ridge on windows divided by their
own standard deviation (targets too), the RevIN form, instead of mean-centred ones. Prints one line a
cell and writes bench/results/ridge_screen.json.
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", required=True, help="DATASET:HORIZON:SEQ_LEN, comma-separated")
    ap.add_argument("--normalise", choices=["mean", "std"], default="mean")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ridge_screen.json"))
    args = ap.parse_args(argv)
    acc = accuracy_bench()
    records = []
    for cell in args.cells.split(","):
        name, horizon, seq_len = cell.split(":")
        horizon, seq_len = int(horizon), int(seq_len)
        path = os.path.join(acc.DATA, acc.DATASETS[name])
        splits = acc.reduced_splits(path, seq_len, horizon, False, acc.REDUCED_TRAIN_SERIES)
        train, val = splits.train, splits.val
        if args.normalise == "std":
            train, val = StdNormalised(train), StdNormalised(val)
        weight, bias, info = linear_path.fit(train, val)
        x, y = splits.test.windows()
        x = x.transpose(0, 2, 1).reshape(-1, seq_len)
        y = y.transpose(0, 2, 1).reshape(-1, horizon)
        if args.normalise == "std":
            sd = np.sqrt(x.var(axis=1, keepdims=True) + 1e-5)
            pred = linear_path.predict(weight, bias, x / sd) * sd
        else:
            pred = linear_path.predict(weight, bias, x)
        mse = float(np.mean((pred - y) ** 2))
        rec = {"dataset": name, "horizon": horizon, "seq_len": seq_len, "normalise": args.normalise,
               "ridge": info["ridge"], "val_mse": info["val_mse"], "mse": mse}
        print(f"{name}-{horizon} L{seq_len} ({args.normalise}): ridge {info['ridge']:g}, val {info['val_mse']:.4f}, "
              f"test mse {mse:.4f}", flush=True)
        records.append(rec)
    earlier = json.load(open(args.out)) if os.path.isfile(args.out) else []
    key = lambda r: (r["dataset"], r["horizon"], r["seq_len"], r["normalise"])  # noqa: E731
    fresh = {key(r): r for r in records}
    atomic_write_json(args.out, [fresh.pop(key(r), r) for r in earlier] + list(fresh.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
