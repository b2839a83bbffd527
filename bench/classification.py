"""Classification on UEA JapaneseVowels and BasicMotions: One-for-All (frozen MiniLM, rsLoRA, linear head)
against 1-nearest-neighbour baselines, accuracy on each set's test file.

    python bench/classification.py                         # both sets, the chosen settings; writes the records
    python bench/classification.py --datasets BasicMotions
    python bench/classification.py --select                # re-run the validation screen the settings came from
    python bench/classification.py --cv --datasets JapaneseVowels   # 5-fold cross-validation of the regularisers
    python bench/classification.py --no-baselines --checkpoint JapaneseVowels=runs/jv --checkpoint BasicMotions=runs/bm
                                                           # score checkpoints already trained with the chosen
                                                           # settings (checked) instead of training them again

Every setting of the classifier was chosen on a stratified 20% validation split of the train file
(`--select` re-runs that screen and writes bench/results/classification_selection.json); the test file is
read only to score the final model. Baselines: 1-NN with Euclidean distance and with DTW (dependent, no
window), on z-normalised cases (`norm case`) and on cases standardised by the training set's statistics
(`norm train`); they have no settings to choose. Each One-for-All model is scored three ways: in PyTorch
("engine": "torch"), and exported to the C++ engine in fp32 ("ofa-fp32") and in int8 ("ofa-int8", calibrated on
the train file's cases); the engine runs the same windows (ofa.runtime.classifying.windows). Writes
bench/results/classification.json (atomically): records {"dataset", "model", "engine", "accuracy",
"train_seconds", "cases", ...}; records of sets not run are kept (One-for-All records from before the engine
records existed are PyTorch's and get "engine": "torch").
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from ofa.classification import baseline, read_ts  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402
from ofa.training import checkpoint, classifier  # noqa: E402

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
    # 0.009 against 1e-3's 0.015. That split saturates, so the regularisers were then compared by 5-fold
    # cross-validation (--cv, CV_SCREEN; the rule fixed before: best pooled accuracy, then loss): GPT4TS's
    # joined tokens (one sequence of patches of all 12 channels) 261/270 (loss 0.132), against mixup 0.2 with
    # a sequence per channel 259/270 (0.177) and lr 3e-4 alone 256/270 (0.308); every other candidate 248-260.
    "JapaneseVowels": ({"tokens": "joined"}, {"lr": 3e-4}),
    # mean pooling: validation accuracy 87.5 / 100 / 100% on three splits (flatten 87.5 / 100 / 87.5,
    # instance+stats with mean pooling 87.5 / 100 / 87.5); its loss still fell at epoch 30 (2 steps an
    # epoch), so 100 epochs, patience 20: loss 0.129 / 0.007 / 0.010 against 0.247 / 0.047 / 0.071.
    # Refit (nested validation, REFIT_SCREEN): 87.5% both, loss 0.135 against 0.213 early-stopped. On
    # JapaneseVowels refit lost (92.6% against 96.3%), so it refits here only.
    "BasicMotions": ({"pool": "mean"}, {"epochs": 100, "patience": 20, "refit": True}),
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

# --cv: regularisers for JapaneseVowels, whose single 20% validation split saturates at 100% (README,
# "Classification"). Each candidate's whole training procedure (early stopping on an inner 20% split included) is
# scored by stratified 5-fold cross-validation over the train file: 270 held-out predictions, fold k trained with
# seed k. Only the train file is read.
CV_FOLDS = 5
CV_SCREEN = {
    "JapaneseVowels": [
        ("lr 3e-4 (the earlier choice)", {}, {"lr": 3e-4}),
        ("head dropout 0.5", {"head_dropout": 0.5}, {"lr": 3e-4}),
        ("label smoothing 0.1", {}, {"lr": 3e-4, "label_smoothing": 0.1}),
        ("mixup 0.2", {}, {"lr": 3e-4, "mixup": 0.2}),
        ("refit", {}, {"lr": 3e-4, "refit": True}),
        ("mixup 0.2, ema 0.95", {}, {"lr": 3e-4, "mixup": 0.2, "ema": 0.95}),
        ("mixup 0.4", {}, {"lr": 3e-4, "mixup": 0.4}),
        ("mixup 0.2, smoothing 0.1, dropout 0.5", {"head_dropout": 0.5}, {"lr": 3e-4, "mixup": 0.2,
                                                                          "label_smoothing": 0.1}),
        ("mixup 0.2, lengths pad", {"lengths": "pad"}, {"lr": 3e-4, "mixup": 0.2}),
        ("12 epochs, last", {}, {"lr": 3e-4, "epochs": 12, "keep": "last"}),
        ("12 epochs, last, mixup 0.2", {}, {"lr": 3e-4, "epochs": 12, "keep": "last", "mixup": 0.2}),
        ("20 epochs, last", {}, {"lr": 3e-4, "epochs": 20, "keep": "last"}),
        ("mixup 0.2, 4 blocks", {"layers": 4}, {"lr": 3e-4, "mixup": 0.2}),
        ("joined tokens", {"tokens": "joined"}, {"lr": 3e-4}),
        ("joined tokens, mixup 0.2", {"tokens": "joined"}, {"lr": 3e-4, "mixup": 0.2}),
        ("joined tokens, lr 1e-3", {"tokens": "joined"}, {"lr": 1e-3}),
        ("joined tokens, lr 1e-3, mixup 0.2", {"tokens": "joined"}, {"lr": 1e-3, "mixup": 0.2}),
        ("joined tokens, patch 8", {"tokens": "joined", "patch": 8, "stride": 4}, {"lr": 3e-4}),
        ("joined tokens, 4 blocks", {"tokens": "joined", "layers": 4}, {"lr": 3e-4}),
        ("joined tokens, lengths pad", {"tokens": "joined", "lengths": "pad"}, {"lr": 3e-4}),
    ],
    # 8 held-out cases a fold: whether joined tokens hold up where channel tokens already score 100%.
    "BasicMotions": [
        ("the earlier choice", {"pool": "mean"}, {"epochs": 100, "patience": 20, "refit": True}),
        ("joined tokens", {"pool": "mean", "tokens": "joined"}, {"epochs": 100, "patience": 20, "refit": True}),
    ],
}


def files(name: str) -> tuple[str, str]:
    return tuple(os.path.join(DATA, "UEA", name, f"{name}_{part}.ts") for part in ("TRAIN", "TEST"))


def train_ofa(name: str, train_path: str, overrides: tuple[dict, dict], workdir: str, threads: int, log,
              seed: int | None = None) -> dict:
    cfg = classifier.ClassifierConfig(**overrides[0])
    tc = classifier.ClassifyTrainConfig(threads=threads, **(overrides[1] | ({} if seed is None else {"seed": seed})))
    out = os.path.join(workdir, f"{name}-ofa-{tc.seed}")
    t0 = time.perf_counter()
    meta = classifier.train(train_path, out, cfg, tc, log=log)
    return {"meta": meta, "out": out, "wall_seconds": time.perf_counter() - t0}


def run_dataset(name: str, args, workdir: str) -> list[dict]:
    train_path, test_path = files(name)
    train, test = read_ts(train_path), read_ts(test_path)
    records = []
    if name in args.checkpoints:
        records += engine_records(name, args.checkpoints[name], train_path, test_path, workdir,
                                  checked_settings(name, args.checkpoints[name]))
    else:
        for seed in args.seeds:
            record = ofa_record(name, train_path, test_path, test.cases, seed, args, workdir)
            records += [record] + engine_records(name, record.pop("checkpoint"), train_path, test_path, workdir,
                                                 seed)
    if not args.baselines:
        return records
    for metric in ("euclidean", "dtw"):
        for norm in ("case", "train"):
            t0 = time.perf_counter()
            accuracy = baseline.accuracy(train, test, metric, norm)
            records.append({"dataset": name, "model": f"1nn-{metric}-{'znorm' if norm == 'case' else 'trainnorm'}",
                            "accuracy": accuracy, "train_seconds": 0.0, "cases": test.cases,
                            "predict_seconds": round(time.perf_counter() - t0, 2)})
    return records


def ofa_record(name: str, train_path: str, test_path: str, cases: int, seed: int, args, workdir: str) -> dict:
    """Train One-for-All with the chosen settings and `seed` (its validation split and initialisation), score
    the test file."""
    fit = train_ofa(name, train_path, CHOSEN[name], workdir, args.threads,
                    lambda line: print(f"  {line}", file=sys.stderr, flush=True), seed=seed)
    scores = classifier.evaluate(fit["out"], test_path)
    meta = fit["meta"]
    return {"dataset": name, "model": "ofa", "engine": "torch", "checkpoint": fit["out"], "seed": seed,
            "accuracy": scores["accuracy"], "correct": scores["correct"],
            "train_seconds": round(meta["train_seconds"], 1), "cases": cases,
            "wall_seconds": round(fit["wall_seconds"], 1), "val_accuracy": meta["best_val_accuracy"],
            "best_epoch": meta["best_epoch"], "epochs_run": len(meta["history"]),
            "config": {k: meta["model"][k] for k in ("backbone", "layers", "seq_len", "patch", "stride",
                                                    "lengths", "norm", "pool", "tokens", "head_dropout")}
            | {k: meta["train"][k] for k in ("lr", "batch_size", "epochs", "patience", "val_fraction", "refit",
                                             "mixup", "label_smoothing", "ema")},
            "trainable_params": meta["sizes"]["trainable_params"]}


def engine_records(name: str, checkpoint_dir: str, train_path: str, test_path: str, workdir: str,
                   seed: int) -> list[dict]:
    """The checkpoint exported to the engine in fp32 and in int8 (calibrated on the train file's cases), each
    scored on the test file (`ofa eval --model`'s path); PyTorch's accuracy on the same checkpoint beside them,
    and the share of test cases where the engine predicts PyTorch's class."""
    import numpy as np

    import ofa
    from ofa.export.merge import export
    from ofa.runtime.classifying import evaluate, windows

    torch_scores = classifier.evaluate(checkpoint_dir, test_path)
    model, _ = classifier.load(checkpoint_dir)
    test = read_ts(test_path)
    torch_pred = classifier.logits_of(model, classifier.windows(test, model.get_base_model().cfg),
                                      torch.device("cpu")).argmax(1)
    records = []
    for scheme in ("fp32", "int8"):
        path = os.path.join(workdir, f"{name}-{seed}-{scheme}.ofa")
        info = export(checkpoint_dir, path, int8=scheme == "int8", data=train_path if scheme == "int8" else None)
        t0 = time.perf_counter()
        scores = evaluate(path, test_path)
        seconds = time.perf_counter() - t0
        engine = ofa.load(path)
        pred = ofa.infer(engine, windows(engine, test)).argmax(1)
        records.append({"dataset": name, "model": "ofa", "engine": f"ofa-{scheme}", "seed": seed,
                        "accuracy": scores["accuracy"], "correct": scores["correct"], "cases": scores["cases"],
                        "torch_accuracy": torch_scores["accuracy"], "file_bytes": info["bytes"],
                        "eval_seconds": round(seconds, 2),  # load, read the test file, classify it: one thread
                        "same_class_as_torch": float(np.mean(pred == torch_pred))})
        print(f"  {name} seed {seed} {scheme}: {scores['correct']}/{scores['cases']} "
              f"(PyTorch {torch_scores['correct']}/{torch_scores['cases']})", file=sys.stderr, flush=True)
    return records


def checked_settings(name: str, checkpoint_dir: str) -> int:
    """A checkpoint given with --checkpoint must have been trained with CHOSEN[name]; returns its seed."""
    meta = checkpoint.read_meta(checkpoint_dir)
    if meta.get("task") != "classify" or meta["data"].get("name") != name:
        raise SystemExit(f"{checkpoint_dir} is not a {name} classifier checkpoint")
    cfg_over, train_over = CHOSEN[name]
    want_model = {k: v for k, v in asdict(classifier.ClassifierConfig(**cfg_over)).items()
                  if k not in ("classes", "channels", "seq_len", "layers", "patch", "stride") or k in cfg_over}
    want_train = {k: v for k, v in asdict(classifier.ClassifyTrainConfig(**train_over)).items()
                  if k not in ("seed", "threads", "device", "progress")}
    # A field the checkpoint predates (tokens, the regularisers) reads as its default, as classifier.load does.
    model_defaults, train_defaults = asdict(classifier.ClassifierConfig()), asdict(classifier.ClassifyTrainConfig())
    wrong = [k for k, v in want_model.items() if meta["model"].get(k, model_defaults[k]) != v] + \
        [k for k, v in want_train.items() if meta["train"].get(k, train_defaults[k]) != v]
    if wrong:
        raise SystemExit(f"{checkpoint_dir} was not trained with the chosen {name} settings ({', '.join(wrong)} differ)")
    return int(meta["train"]["seed"])


def nested_refit(name: str, overrides: tuple[dict, dict], workdir: str, threads: int) -> dict:
    """Refit against early stopping, on validation only: the train file's stratified 20% (seed 0) is held out;
    on the other 80%, one model early-stops on an inner 20% split, the other is then refit on all of that 80%
    for its best epoch count; both are scored on the held-out 20%."""
    import numpy as np

    full = read_ts(files(name)[0])
    outer, held = classifier.stratified_split(full.labels, 0.2, 0)
    row = {"dataset": name, "config": overrides[0], "train": overrides[1]}
    for refit in (False, True):
        cfg = classifier.ClassifierConfig(**overrides[0])
        tc = classifier.ClassifyTrainConfig(threads=threads, **(overrides[1] | {"refit": refit}))
        out = os.path.join(workdir, f"{name}-nested-{refit}")
        meta = classifier.train(files(name)[0], out, cfg, tc, log=lambda line: None, train_data=full.subset(outer))
        model, _ = classifier.load(out)
        z = classifier.logits_of(model, classifier.windows(full.subset(held), model.get_base_model().cfg),
                                 torch.device("cpu"))
        y = full.labels[held]
        row["refit" if refit else "early-stopped"] = {
            "val_accuracy": float(np.mean(z.argmax(1) == y)), "inner_best_epoch": meta["best_epoch"],
            "val_loss": float(torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y)))}
    print(f"{name:15s} refit: {row['refit']}  early-stopped: {row['early-stopped']}", flush=True)
    return row


def select(names, args, workdir: str) -> None:
    """The validation screen (SCREEN, then refit against early stopping); only the train files are read."""
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
    refit = [nested_refit(name, (CHOSEN[name][0], {k: v for k, v in CHOSEN[name][1].items() if k != "refit"}),
                          workdir, args.threads) for name in names]
    write_selection({"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
                     "rows": rows, "refit": refit})


def read_selection() -> dict:
    if not os.path.exists(SELECTION):
        return {}
    with open(SELECTION) as f:
        return json.load(f)


def write_selection(update: dict) -> None:
    """Replace these top-level fields of the selection record (the screen's, or "cv"), keeping the others."""
    atomic_write_json(SELECTION, read_selection() | update)


def stratified_folds(labels, folds: int, seed: int):
    """Fold index of every case: each class's cases, in a seeded order, dealt round-robin."""
    import numpy as np

    rng, fold = np.random.default_rng(seed), np.zeros(len(labels), dtype=int)
    for k in np.unique(labels):
        cases = rng.permutation(np.flatnonzero(labels == k))
        fold[cases] = np.arange(len(cases)) % folds
    return fold


def cv_fold(name: str, label: str, overrides: tuple[dict, dict], fold: int, workdir: str) -> dict:
    """One fold of --cv (a worker process, one torch thread): train on the other folds, score this one."""
    import numpy as np

    full = read_ts(files(name)[0])
    folds = stratified_folds(full.labels, CV_FOLDS, 0)
    held = np.flatnonzero(folds == fold)
    cfg = classifier.ClassifierConfig(**overrides[0])
    tc = classifier.ClassifyTrainConfig(threads=1, **(overrides[1] | {"seed": fold}))
    out = os.path.join(workdir, f"{name}-cv-{''.join(c if c.isalnum() else '_' for c in label)}-{fold}")
    t0 = time.perf_counter()
    meta = classifier.train(files(name)[0], out, cfg, tc, log=lambda line: None,
                            train_data=full.subset(np.flatnonzero(folds != fold)))
    model, _ = classifier.load(out)
    z = classifier.logits_of(model, classifier.windows(full.subset(held), model.get_base_model().cfg),
                             torch.device("cpu"))
    return {"fold": fold, "cases": held.tolist(), "logits": z.tolist(),
            "best_epoch": meta["best_epoch"], "seconds": round(time.perf_counter() - t0, 1)}


def cross_validate(names, args, workdir: str) -> None:
    """--cv: every CV_SCREEN candidate on every fold, two at a time; pooled accuracy and loss per candidate."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    rows = []
    wanted = lambda label: not args.cv_settings or label in args.cv_settings.split(";")  # noqa: E731
    with ProcessPoolExecutor(args.threads, mp_context=multiprocessing.get_context("spawn")) as pool:
        for name in names:
            labels = read_ts(files(name)[0]).labels
            screen = [(label, cfg, tc) for label, cfg, tc in CV_SCREEN.get(name, []) if wanted(label)]
            jobs = {(label, fold): pool.submit(cv_fold, name, label, (cfg, tc), fold, workdir)
                    for label, cfg, tc in screen for fold in range(CV_FOLDS)}
            for label, cfg, tc in screen:
                parts = [jobs[label, fold].result() for fold in range(CV_FOLDS)]
                cases = np.concatenate([p["cases"] for p in parts])
                z, y = np.concatenate([p["logits"] for p in parts]).astype(np.float32), labels[cases]
                hit = z.argmax(1) == y
                fold_of = np.repeat(np.arange(CV_FOLDS), [len(p["cases"]) for p in parts])
                row = {"dataset": name, "setting": label, "config": cfg, "train": tc, "folds": CV_FOLDS,
                       "cases": len(cases), "cv_accuracy": float(np.mean(hit)),
                       "cv_loss": float(torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y))),
                       "fold_accuracy": [float(np.mean(hit[fold_of == k])) for k in range(CV_FOLDS)],
                       "best_epochs": [p["best_epoch"] for p in parts], "seconds": [p["seconds"] for p in parts]}
                rows.append(row)
                print(f"{name:15s} {label:24s} cv accuracy {row['cv_accuracy']:.4f} ({int(hit.sum())}/{len(cases)})  "
                      f"loss {row['cv_loss']:.4f}  folds {[round(a, 3) for a in row['fold_accuracy']]}", flush=True)
    done = {(r["dataset"], r["setting"]) for r in rows}
    kept = [r for r in read_selection().get("cv", {}).get("rows", []) if (r["dataset"], r["setting"]) not in done]
    write_selection({"cv": {"machine": platform.machine(), "torch": torch.__version__,
                            "note": "stratified 5-fold cross-validation of the train file; fold k trains with seed k, "
                                    "one torch thread per fold", "rows": kept + rows}})


def merge(path: str, new: list[dict]) -> list[dict]:
    earlier = []
    if os.path.exists(path):
        with open(path) as f:
            earlier = json.load(f).get("records", [])
    for r in earlier:  # One-for-All records from before the engine records were PyTorch's
        if r["model"] == "ofa":
            r.setdefault("engine", "torch")

    def key(r):
        return r["dataset"], r["model"], r.get("seed"), r.get("engine")

    keys = {key(r) for r in new}
    return [r for r in earlier if key(r) not in keys] + new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated: JapaneseVowels, BasicMotions")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds of One-for-All's runs (validation split and "
                    "initialisation)")
    ap.add_argument("--no-baselines", dest="baselines", action="store_false", help="One-for-All only")
    ap.add_argument("--select", action="store_true", help="run the validation screen instead (no test file read)")
    ap.add_argument("--cv", action="store_true", help="cross-validate the CV_SCREEN candidates on the train file "
                    "(--threads folds at a time, one thread each; no test file read)")
    ap.add_argument("--cv-settings", default="", help="--cv: only these CV_SCREEN labels, separated by ';'")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="DATASET=DIR",
                    help="score this checkpoint (trained with the chosen settings, checked) in PyTorch and the engine "
                         "instead of training one")
    args = ap.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s]
    args.checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
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
        if args.cv:
            cross_validate(names, args, workdir)
            return
        records = [r for name in names for r in run_dataset(name, args, workdir)]
    print(f"\n{'dataset':15s} {'model':32s} {'accuracy':>8s} {'train s':>8s} {'cases':>5s}")
    for r in records:
        model = r["model"] + (f" {r['engine']}" if "engine" in r else "") + (f" (seed {r['seed']})" if "seed" in r else "")
        train_s = f"{r['train_seconds']:8.1f}" if "train_seconds" in r else f"{'':8s}"
        print(f"{r['dataset']:15s} {model:32s} {100 * r['accuracy']:7.1f}% {train_s} {r['cases']:5d}")
    atomic_write_json(OUT, {"machine": platform.machine(), "torch": torch.__version__, "threads": args.threads,
                            "records": merge(OUT, records)})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
