"""Parity: the C++ engine vs the PyTorch model over a whole test split, in normalised units.

    python bench/parity.py --checkpoint runs/bench/ETTh1.csv-96-ofa --data ../shared/data/ETT/ETTh1.csv

Exports the checkpoint, forecasts every test window with both, and writes bench/results/parity.json:
{"dataset", "checkpoint", "windows", "channels", "max_abs_diff", "mean_abs_diff", "mse_torch", "mse_engine"}.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import ofa  # noqa: E402
from ofa.training import checkpoint  # noqa: E402
from ofa.data import load_series, make_splits  # noqa: E402
from ofa.evaluation import predict_windows_torch, scores  # noqa: E402
from ofa.export.merge import export  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "parity.json"))
    args = ap.parse_args(argv)
    model, meta = checkpoint.load(args.checkpoint)
    splits = make_splits(load_series(args.data, meta["data"].get("target")), meta["model"]["seq_len"],
                         meta["model"]["horizon"])
    x, y = splits.test.windows()
    c = x.shape[2]
    want = predict_windows_torch(model, x)
    path = os.path.join(tempfile.mkdtemp(prefix="ofa-parity-"), "model.ofa")
    export(args.checkpoint, path)
    got = splits.scaler.transform(ofa.infer(ofa.load(path, threads=args.threads), splits.scaler.inverse(x)))
    diff = np.abs(got - want)
    record = {"dataset": splits.series.name, "checkpoint": args.checkpoint, "windows": int(x.shape[0]),
              "channels": int(c), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
              "mse_torch": scores(want, y)["mse"], "mse_engine": scores(got, y)["mse"]}
    checkpoint.atomic_write_json(args.out, record)
    print(f"{record['dataset']}: {record['windows']} windows x {c} channels; max |engine - torch| = "
          f"{record['max_abs_diff']:.2e} (mean {record['mean_abs_diff']:.2e}); test mse torch "
          f"{record['mse_torch']:.6f} engine {record['mse_engine']:.6f}")
    return 0 if record["max_abs_diff"] <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
