"""Classification on UEA JapaneseVowels and BasicMotions: One-for-All (frozen MiniLM, rsLoRA, linear head)
against 1-nearest-neighbour baselines, accuracy on each set's test file.

    python bench/classification.py                         # both sets, the chosen settings; writes the records
    python bench/classification.py --datasets BasicMotions
    python bench/classification.py --select                # re-run the validation screen the settings came from

Every setting of the classifier was chosen on a stratified 20% validation split of the train file
(`--select` re-runs that screen and writes bench/results/classification_selection.json); the test file is
read only to score the final model. Baselines: 1-NN with Euclidean distance and with DTW (dependent, no
window), on z-normalised cases (`norm case`) and on cases standardised by the training set's statistics
(`norm train`); they have no settings to choose. Writes bench/results/classification.json (atomically):
records {"dataset", "model", "accuracy", "train_seconds", "cases", ...}; records of sets not run are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from ofa.classification import baseline, read_ts  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402
from ofa.training import classifier  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
DATASETS = ("JapaneseVowels", "BasicMotions")
OUT = os.path.join(HERE, "results", "classification.json")
SELECTION = os.path.join(HERE, "results", "classification_selection.json")

# The settings the validation screen chose (--select; bench/results/classification_selection.json; README,
# "Classification"), per dataset: (ClassifierConfig overrides, ClassifyTrainConfig overrides); anything not
# named is the default (resample to the longest training case, norm global, pool flatten, auto_patch, 2
# MiniLM blocks, lr 1e-3, batch 16, 40 epochs, patience 10).
CHOSEN = {
    # flatten 100% / resample 100% / patch 4-2 (val loss 0.015) beat mean 96.3%, pad 98.1%, patch 8-4 (loss
    # 0.022), 1 block 96.3%; norm global 100% against instance+stats 81.5% and instance 81.5%; lr 3e-4 loss
    # 0.009 against 1e-3's 0.015.
    "JapaneseVowels": ({}, {"lr": 3e-4}),
    # mean pooling: validation accuracy 87.5 / 100 / 100% on three splits (flatten 87.5 / 100 / 87.5,
    # instance+stats with mean pooling 87.5 / 100 / 87.5); its loss still fell at epoch 30 (2 steps an
    # epoch), so 100 epochs, patience 20: loss 0.129 / 0.007 / 0.010 against 0.247 / 0.047 / 0.071.
    "BasicMotions": ({"pool": "mean"}, {"epochs": 100, "patience": 20}),
}
GLOBAL = {"norm": "global"}
# The screen (what --select runs): each setting trained on 80% of the train file (a stratified split drawn
# by the seed) and scored on the other 20%. JapaneseVowels: one split, one change at a time; BasicMotions
# (8 validation cases a split): three splits each.
SCREEN = {
    "JapaneseVowels": [(label, cfg, tc, 0) for label, cfg, tc in [
        ("instance+stats", {"norm": "instance+stats"}, {"epochs": 30}),
        ("instance", {"norm": "instance"}, {"epochs": 30}),
        ("global", GLOBAL, {"epochs": 30}),
        ("global, pool mean", GLOBAL | {"pool": "mean"}, {"epochs": 30}),
        ("global, lengths pad", GLOBAL | {"lengths": "pad"}, {"epochs": 30}),
        ("global, patch 8 stride 4", GLOBAL | {"patch": 8, "stride": 4}, {"epochs": 30}),
        ("global, lr 3e-4", GLOBAL, {"epochs": 30, "lr": 3e-4}),
        ("global, 1 block", GLOBAL | {"layers": 1}, {"epochs": 30}),
    ]],
    "BasicMotions": [(label, cfg, tc | {"seed": seed}, seed) for seed in (0, 1, 2) for label, cfg, tc in [
        ("global, pool mean", GLOBAL | {"pool": "mean"}, {"epochs": 30}),
        ("instance+stats, pool mean", {"norm": "instance+stats", "pool": "mean"}, {"epochs": 30}),
        ("global, flatten", GLOBAL, {"epochs": 30}),
        ("global, pool mean, 100 epochs", GLOBAL | {"pool": "mean"}, {"epochs": 100, "patience": 20}),
        ("global, flatten, 100 epochs", GLOBAL, {"epochs": 100, "patience": 20}),
    ]],
}

def files(name: str) -> tuple[str, str]:
    return tuple(os.path.join(DATA, "UEA", name, f"{name}_{part}.ts") for part in ("TRAIN", "TEST"))


def train_ofa(name: str, train_path: str, overrides: tuple[dict, dict], workdir: str, threads: int, log) -> dict:
    cfg = classifier.ClassifierConfig(**overrides[0])
    tc = classifier.ClassifyTrainConfig(threads=threads, **overrides[1])
    out = os.path.join(workdir, f"{name}-ofa")
    t0 = time.perf_counter()
    meta = classifier.train(train_path, out, cfg, tc, log=log)
    return {"meta": meta, "out": out, "wall_seconds": time.perf_counter() - t0}


def run_dataset(name: str, args, workdir: str) -> list[dict]:
    train_path, test_path = files(name)
    train, test = read_ts(train_path), read_ts(test_path)
    records = []
    fit = train_ofa(name, train_path, CHOSEN[name], workdir, args.threads,
                    lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    scores = classifier.evaluate(fit["out"], test_path)
    meta = fit["meta"]
    records.append({"dataset": name, "model": "ofa", "accuracy": scores["accuracy"],
                    "train_seconds": round(meta["train_seconds"], 1), "cases": test.cases,
                    "wall_seconds": round(fit["wall_seconds"], 1), "val_accuracy": meta["best_val_accuracy"],
                    "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]),
                    "config": {k: meta["model"][k] for k in ("backbone", "layers", "seq_len", "patch", "stride",
                                                            "lengths", "norm", "pool")}
                    | {k: meta["train"][k] for k in ("lr", "batch_size", "epochs", "patience", "val_fraction")},
                    "trainable_params": meta["sizes"]["trainable_params"]})
    for metric in ("euclidean", "dtw"):
        for norm in ("case", "train"):
            t0 = time.perf_counter()
            accuracy = baseline.accuracy(train, test, metric, norm)
            records.append({"dataset": name, "model": f"1nn-{metric}-{'znorm' if norm == 'case' else 'trainnorm'}",
                            "accuracy": accuracy, "train_seconds": 0.0, "cases": test.cases,
                            "predict_seconds": round(time.perf_counter() - t0, 2)})
    return records


def select(names, args, workdir: str) -> None:
    """The validation screen (SCREEN); only the train files are read."""
    rows = []
    for name in names:
        train_path = files(name)[0]
        for label, cfg, tc, seed in SCREEN[name]:
            meta = train_ofa(name, train_path, (cfg, tc), workdir, args.threads, lambda line: None)["meta"]
            rows.append({"dataset": name, "setting": label, "seed": seed, "config": cfg, "train": tc,
                         "val_accuracy": meta["best_val_accuracy"], "val_loss": meta["best_val_loss"],
                         "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]),
                         "train_seconds": round(meta["train_seconds"], 1)})
            print(f"{name:15s} {label:32s} seed {seed}  val accuracy {meta['best_val_accuracy']:.4f}  "
                  f"loss {meta['best_val_loss']:.4f}  epoch {meta['best_epoch']}", flush=True)
    atomic_write_json(SELECTION, {"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
                                  "rows": rows})

def merge(path: str, new: list[dict]) -> list[dict]:
    earlier = []
    if os.path.exists(path):
        with open(path) as f:
            earlier = json.load(f).get("records", [])
    keys = {(r["dataset"], r["model"]) for r in new}
    return [r for r in earlier if (r["dataset"], r["model"]) not in keys] + new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: JapaneseVowels, BasicMotions")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--select", action="store_true", help="run the validation screen instead (no test file read)")
    args = ap.parse_args()
    names = [n for n in args.datasets.split(",") if n]
    for name in names:
        if name not in DATASETS:
            raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        for path in files(name):
            if not os.path.isfile(path):
                raise SystemExit(f"{path} not found (set OFA_DATA to the shared data directory)")
    with tempfile.TemporaryDirectory(prefix="ofa-classification-") as workdir:
        if args.select:
            select(names, args, workdir)
            return
        records = [r for name in names for r in run_dataset(name, args, workdir)]
    print(f"\n{'dataset':15s} {'model':22s} {'accuracy':>8s} {'train s':>8s} {'cases':>5s}")
    for r in records:
        print(f"{r['dataset']:15s} {r['model']:22s} {100 * r['accuracy']:7.1f}% {r['train_seconds']:8.1f} "
              f"{r['cases']:5d}")
    atomic_write_json(OUT, {"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
                            "records": merge(OUT, records)})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
