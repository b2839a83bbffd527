"""Zero-shot transfer: a model trained on one dataset scores another with no training, beside the target's
own (in-domain) model, for One-for-All and DLinear.

    python bench/zero_shot.py                      # ETTh2->ETTh1, ETTh1->ETTh2, ETTm2->ETTm1, ETTm1->ETTm2, h 96
    python bench/zero_shot.py --pairs ETTh2:ETTh1
    python bench/zero_shot.py --models ofa         # re-score One-for-All only (its default changed)
    python bench/zero_shot.py --models ofa --variant ofa-single-lookback   # another bench/accuracy.py variant

One-for-All: the default preset's reduced-protocol checkpoints that `python bench/accuracy.py` leaves in
runs/bench/<dataset>.csv-<H>-ofa-Lauto (run it first), scored in PyTorch on every window of the target's
test split. The target is scaled with a scaler fitted on its own train part (ofa.evaluate does this for
any checkpoint; the model itself is scale-free after instance norm); its test part is never used for
anything but the score. DLinear: trained on the source exactly as bench/accuracy.py trains it (reduced
protocol, lookback and rate on the source's validation split), then scored the same way on the target.
Records go into bench/results/accuracy.json with protocol "zeroshot-from-<source>" (in-domain ones:
"zeroshot-in-domain"), every test window (test_every 1).
"""
from __future__ import annotations

import argparse
import os
from types import SimpleNamespace
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from accuracy import (DATA, DATASETS, REDUCED_TRAIN_SERIES, VARIANTS, earlier_records,  # noqa: E402
                      merge_records, score_dlinear, validated_dlinear)

import ofa  # noqa: E402
from ofa.data import load_series, make_splits  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402

PAIRS = ("ETTh2:ETTh1", "ETTh1:ETTh2", "ETTm2:ETTm1", "ETTm1:ETTm2")


def ofa_score(source: str, target: str, horizon: int, workdir: str, variant: str = "ofa") -> dict:
    ckpt = os.path.join(workdir, f"{os.path.basename(DATASETS[source])}-{horizon}-{variant}-Lauto")
    if not os.path.isfile(os.path.join(ckpt, "ofa.json")):
        raise SystemExit(f"{ckpt}: no checkpoint; run `python bench/accuracy.py --datasets {source} "
                         f"--horizons {horizon} --models {variant}` first")
    r = ofa.evaluate(ckpt, os.path.join(DATA, DATASETS[target]))
    return {"mse": r["mse"], "mae": r["mae"], "seq_len": r["seq_len"], "test_windows": r["test_windows"],
            "checkpoint": ckpt}


def dlinear_score(source: str, target: str, horizon: int, seed: int) -> dict:
    """DLinear tuned on the source's validation split (as bench/accuracy.py tunes it), scored on the
    target's whole test split."""
    protocol = SimpleNamespace(full=False, train_series=REDUCED_TRAIN_SERIES, seed=seed)
    model, _, info = validated_dlinear("dlinear", source, os.path.join(DATA, DATASETS[source]), horizon, "auto",
                                       protocol)
    seq_len = info["seq_len"]
    target_splits = make_splits(load_series(os.path.join(DATA, DATASETS[target])), seq_len, horizon)
    return score_dlinear(model, target_splits) | {"seq_len": seq_len, "lr": info["lr"],
                                                 "test_windows": len(target_splits.test.starts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default=",".join(PAIRS), help="SOURCE:TARGET, comma-separated")
    ap.add_argument("--horizon", type=int, default=96)
    ap.add_argument("--models", default="ofa,dlinear", help="ofa and/or dlinear, comma-separated")
    ap.add_argument("--variant", default="ofa",
                    help="the bench/accuracy.py One-for-All variant whose reduced-protocol checkpoints score (default: "
                         "ofa, the default preset); its records carry the variant's name as model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=os.path.join("runs", "bench"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "accuracy.json"))
    args = ap.parse_args(argv)
    models = args.models.split(",")
    if not models or set(models) - {"ofa", "dlinear"}:
        ap.error(f"--models: ofa and/or dlinear, got {args.models!r}")
    if args.variant not in VARIANTS:
        ap.error(f"--variant: unknown {args.variant!r}; known: {', '.join(VARIANTS)}")
    torch.set_num_threads(args.threads)
    run_id = time.strftime("%Y-%m-%dT%H:%M:%S")
    records, done_in_domain = [], set()
    for pair in args.pairs.split(","):
        source, target = pair.split(":")
        for name in (source, target):
            if name not in DATASETS:
                raise SystemExit(f"--pairs: unknown dataset {name!r}; known: {', '.join(DATASETS)}")
        jobs = [(source, f"zeroshot-from-{source}")]
        if target not in done_in_domain:
            jobs.append((target, "zeroshot-in-domain"))
            done_in_domain.add(target)
        for trained_on, protocol in jobs:
            for model in models:
                print(f"== {target} h{args.horizon} {model}, trained on {trained_on}", flush=True)
                t0 = time.time()
                r = (ofa_score(trained_on, target, args.horizon, args.workdir, args.variant) if model == "ofa" else
                     dlinear_score(trained_on, target, args.horizon, args.seed))
                rec = {"dataset": target, "horizon": args.horizon,
                       "model": args.variant if model == "ofa" else model, "protocol": protocol,
                       "source": trained_on, "seed": args.seed, "test_every": 1, "lookback": "auto",
                       "run": run_id, "wall_seconds": round(time.time() - t0, 1), **r}
                print(f"   mse {rec['mse']:.4f}  mae {rec['mae']:.4f}  L {rec['seq_len']}", flush=True)
                records.append(rec)
                atomic_write_json(args.out, merge_records(earlier_records(args.out), records))
    print(f"\n{'target':7} {'model':8} {'protocol':>24} {'mse':>7}")
    for r in records:
        print(f"{r['dataset']:7} {r['model']:8} {r['protocol']:>24} {r['mse']:.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
