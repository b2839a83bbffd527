"""Streaming anomaly detection on the Numenta Anomaly Benchmark: ofa.anomaly.detector on NAB's 58 files, scored
with ofa.anomaly.nab (NAB's rules; the threshold optimised per profile over the files scored, as NAB does).

    python bench/anomaly.py                      # all 58 files (writes bench/results/anomaly.json)
    python bench/anomaly.py --files 6            # a quick run: 6 files spread over the sorted list
    python bench/anomaly.py --subset tune        # the tuning half only (files at an even position)
    python bench/anomaly.py --device             # what the firmware computes: first model only, int8 engine

Each file is a stream: the detector trains its forecaster on the file's probationary period (NAB's first
min(15%, 750) rows, nab.probation_rows), then scores every later row from what came before it, retraining
as its data doubles (DetectorConfig). The hyper-parameters were chosen on the files at an even position in
sorted order (`tune`, 29 files) and never looked at on the others (`holdout`, 29 files); a full run reports
both halves apart: each with its own optimised threshold, and the holdout half at the tuning half's threshold.
Data: ../shared/data/NAB (OFA_DATA, or --nab). Published scores: its results/final_results.json.

--device scores each file as a sensor node would (ofa.anomaly.device): the first model only, exported int8,
the samples as float32 through the C core's ofa_stream in the int8 engine (bit-exact with the firmware's
anomaly mode); a full run writes bench/results/anomaly-device.json. A file whose training rows are constant
has no model to export (the host detector forecasts persistence there): the device has no detector for it
and its scores are 0, listed under "no_model".
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from ofa.anomaly import nab  # noqa: E402
from ofa.anomaly.detector import DetectorConfig, score_forecasts, series_forecasts  # noqa: E402
from ofa.fileio import atomic_write, atomic_write_json  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
OUT = os.path.join(HERE, "results", "anomaly.json")
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
LEADERBOARD = ("ARTime", "numenta", "contextOSE", "htmjava", "knncad", "random", "null")
NAMES = {"numenta": "Numenta HTM"}


def halves(names: list[str]) -> dict[str, list[str]]:
    """The fixed split of the corpus: files at an even position in sorted order tune, the others are held out."""
    ordered = sorted(names)
    return {"tune": ordered[0::2], "holdout": ordered[1::2]}


def pick(names: list[str], subset: str, files: int) -> list[str]:
    chosen = sorted(names) if subset == "all" else halves(names)[subset]
    if files:
        chosen = [chosen[i] for i in np.unique(np.linspace(0, len(chosen) - 1, min(files, len(chosen))).astype(int))]
    return chosen


def sub_corpus(corpus: nab.Corpus, names: list[str]) -> nab.Corpus:
    return nab.Corpus({n: corpus.files[n] for n in names}, corpus.profiles, corpus.probation_percent)


def read_values(nab_dir: str, name: str) -> np.ndarray:
    import pandas as pd

    return pd.read_csv(os.path.join(nab_dir, "data", name), usecols=["value"])["value"].to_numpy(np.float64)


def run_file_device(nab_dir: str, name: str, log, stride: int, workdir: str) -> dict:
    """The on-device detector: export the first model (int8), then stream every sample through the engine."""
    from ofa.anomaly.device import export_detector, stream_scores
    from ofa.errors import OfaError

    values = read_values(nab_dir, name)
    cfg = DetectorConfig(train_rows=nab.probation_rows(len(values)), retrain="none", stride=stride)
    model = os.path.join(workdir, name.replace("/", "__") + ".ofa")
    t0 = time.perf_counter()
    try:
        info = export_detector(values, model, cfg)
    except OfaError as exc:
        log(f"{name}: no model ({exc})")
        return {"scores": np.zeros(len(values)), "rows": len(values), "forecaster_seconds": time.perf_counter() - t0,
                "scorer_seconds": 0.0, "fits": [], "no_model": str(exc)}
    t1 = time.perf_counter()
    scores = stream_scores(model, values)
    t2 = time.perf_counter()
    log(f"{name}: {len(values)} rows, lookback {info['seq_len']}, trained + exported {t1 - t0:.1f} s, "
        f"engine stream {t2 - t1:.2f} s")
    return {"scores": scores, "rows": len(values), "forecaster_seconds": t1 - t0, "scorer_seconds": t2 - t1,
            "fits": [{"rows_seen": cfg.train_rows, "seq_len": info["seq_len"]}]}


def detector_config(lookback_mean: bool | None = None, **settings) -> DetectorConfig:
    """DetectorConfig(**settings), its forecaster's lookback_mean set where given (--lookback-mean)."""
    cfg = DetectorConfig(**settings)
    if lookback_mean is not None:
        cfg.forecaster.lookback_mean = lookback_mean
    return cfg


def run_file(nab_dir: str, name: str, log, retrain: str = "double", lookback_mean: bool | None = None) -> dict:
    values = read_values(nab_dir, name)
    cfg = detector_config(lookback_mean, train_rows=nab.probation_rows(len(values)), retrain=retrain)
    t0 = time.perf_counter()
    members = [series_forecasts(values, cfg, forecaster=fc) for fc in cfg.members]
    t1 = time.perf_counter()
    scores = np.max([score_forecasts(values, f, cfg.train_rows, cfg.scorer) for f, _ in members], axis=0)
    t2 = time.perf_counter()
    fits = members[0][1]
    log(f"{name}: {len(values)} rows, {len(fits)} model(s) per member (lookbacks "
        + ", ".join(f"h{fc.horizon} {[i['seq_len'] for _, i in m[1]]}" for fc, m in zip(cfg.members, members))
        + f"), forecasters {t1 - t0:.1f} s, scorers {t2 - t1:.1f} s")
    return {"scores": scores, "rows": len(values), "forecaster_seconds": t1 - t0, "scorer_seconds": t2 - t1,
            "fits": [{"horizon": fc.horizon, "rows_seen": r, "seq_len": i["seq_len"],
                      "transformer_kept": i.get("transformer_kept", False), "persistence": i.get("persistence", False)}
                     for fc, (_, member_fits) in zip(cfg.members, members) for r, i in member_fits]}


def evaluate(corpus: nab.Corpus, scores: dict) -> dict:
    out = {}
    for p in PROFILES:
        threshold, normalised = nab.optimize_threshold(corpus, scores, p)
        out[p] = {"score": normalised, "threshold": threshold}
    return out


def at_threshold(corpus: nab.Corpus, scores: dict, thresholds: dict) -> dict:
    return {p: {"score": nab.normalized_score(corpus, scores, p, thresholds[p]["threshold"]),
                "threshold": thresholds[p]["threshold"]} for p in PROFILES}


def write_nab_results(directory: str, nab_dir: str, names: list[str], scores: dict) -> None:
    """The scores in NAB's results layout, <dir>/ofa/<category>/ofa_<file> (timestamp, value, anomaly_score)."""
    import pandas as pd

    for name in names:
        frame = pd.read_csv(os.path.join(nab_dir, "data", name), dtype={"timestamp": str})
        frame["anomaly_score"] = scores[name]
        category, file_name = os.path.split(name)
        path = os.path.join(directory, "ofa", category, f"ofa_{file_name}")
        atomic_write(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False, float_format="%.10g"))


def table(ours: dict, published: dict, label: str) -> str:
    lines = [f"| detector | {' | '.join(PROFILES)} |", "| --- |" + " ---: |" * len(PROFILES)]
    rows = [(f"**ofa ({label})**", ours)] + [(NAMES.get(d, d), {p: {"score": published[d][p]} for p in PROFILES})
                                               for d in LEADERBOARD if d in published]
    rows.sort(key=lambda r: -r[1]["standard"]["score"])
    for name, s in rows:
        lines.append(f"| {name} | " + " | ".join(f"{s[p]['score']:.1f}" for p in PROFILES) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", default=os.path.join(DATA, "NAB"), help="NAB directory (data/, labels/, config/, results/)")
    ap.add_argument("--subset", choices=["all", "tune", "holdout"], default="all")
    ap.add_argument("--files", type=int, default=0, help="a quick run: this many files, evenly spread (0: all)")
    ap.add_argument("--json", default=None, help=f"results file (default: {os.path.relpath(OUT)} for a full run, "
                    "none for a partial one)")
    ap.add_argument("--nab-results", help="also write the scores in NAB's results layout under this directory")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--retrain", choices=["double", "none"], default="double",
                    help="none: the first model only (what firmware runs); a full run then writes "
                         "bench/results/anomaly-no-retrain.json")
    ap.add_argument("--device", action="store_true",
                    help="the firmware's detector: first model, int8 engine, float32 samples (ofa.anomaly.device); "
                         "a full run writes bench/results/anomaly-device.json")
    ap.add_argument("--stride", type=int, default=1, help="--device: samples between forecasts (1-8)")
    ap.add_argument("--lookback-mean", choices=["on", "off"], default=None,
                    help="the forecaster also tries the mean of the ridge fits up to each lookback (ForecasterConfig."
                         "lookback_mean; default: the config's)")
    ap.add_argument("--workdir", default="build/bench-anomaly-device", help="--device: the exported models")
    args = ap.parse_args(argv)
    if args.device and args.lookback_mean is not None:
        ap.error("--lookback-mean is for the host detector: --device runs the first model only")
    lookback_mean = None if args.lookback_mean is None else args.lookback_mean == "on"

    import torch

    torch.set_num_threads(args.threads)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    corpus = nab.load_corpus(args.nab)
    names = pick(list(corpus.files), args.subset, args.files)
    full = len(names) == len(corpus.files)
    scored = sub_corpus(corpus, names)
    if not scored.window_count:  # NAB normalises by the windows' reward: undefined without one (checked before the run)
        ap.error(f"the {len(names)} file(s) picked ({', '.join(names)}) have no anomaly window, so their NAB score is "
                 "undefined; pick more with --files")
    t0 = time.perf_counter()
    if args.device:
        os.makedirs(args.workdir, exist_ok=True)
        runs = {name: run_file_device(args.nab, name, log, args.stride, args.workdir) for name in names}
    else:
        runs = {name: run_file(args.nab, name, log, args.retrain, lookback_mean) for name in names}
    wall = time.perf_counter() - t0
    scores = {name: r["scores"] for name, r in runs.items()}
    result = evaluate(scored, scores)
    with open(os.path.join(args.nab, "results", "final_results.json")) as fh:
        published = json.load(fh)
    rows = sum(r["rows"] for r in runs.values())
    forecaster = sum(r["forecaster_seconds"] for r in runs.values())
    scorer = sum(r["scorer_seconds"] for r in runs.values())
    record = {
        "files": len(names), "rows": rows, "subset": args.subset if not args.files else f"{args.subset}, {len(names)} files",
        "profiles": result,
        "seconds": {"wall": wall, "forecaster": forecaster, "scorer": scorer,
                    "per_1000_rows": 1000 * (forecaster + scorer) / rows,
                    "forecaster_per_1000_rows": 1000 * forecaster / rows, "scorer_per_1000_rows": 1000 * scorer / rows},
        "settings": detector_config(lookback_mean, retrain="none" if args.device else args.retrain,
                                    stride=args.stride if args.device else 1,
                                    one_step=not args.device).to_dict()
                    | {"train_rows": "nab.probation_rows(rows)"},
        "engine": ("int8 C++ engine, ofa_stream (ofa.anomaly.device): bit-exact with the firmware's anomaly mode"
                   if args.device else "PyTorch forecaster, Python scorer (ofa.anomaly.detector)"),
        "no_model": {n: r["no_model"] for n, r in runs.items() if "no_model" in r},
        "tuning": "hyper-parameters chosen on the files at an even position in sorted order (halves()['tune']); "
                  "the holdout half was not used to choose anything",
        "published": {d: published[d] for d in LEADERBOARD if d in published},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "threads": args.threads},
        "per_file": {n: {"rows": r["rows"], "fits": r["fits"],
                         "standard_raw": nab.file_scores(scored, scores, "standard",
                                                         result["standard"]["threshold"])[n]}
                     for n, r in runs.items()},
    }
    numenta_all = nab.read_detector_results(os.path.join(args.nab, "results"), "numenta", corpus)
    record["numenta_same_files"] = evaluate(scored, {n: numenta_all[n] for n in names})
    print(table(result, published, f"{len(names)} files" if not full else "all 58 files"))
    if not full:
        print(f"(the leaderboard is over all 58 files; Numenta HTM on these {len(names)}: "
              + ", ".join(f"{p} {record['numenta_same_files'][p]['score']:.1f}" for p in PROFILES) + ")")
    if full:
        split = halves(names)
        parts = {part: sub_corpus(corpus, members) for part, members in split.items()}
        part_scores = {part: {n: scores[n] for n in members} for part, members in split.items()}
        record["halves"] = {part: evaluate(parts[part], part_scores[part]) for part in split}
        record["halves"]["holdout_at_tune_threshold"] = at_threshold(parts["holdout"], part_scores["holdout"],
                                                                     record["halves"]["tune"])
        record["halves_numenta"] = {part: evaluate(parts[part], {n: numenta_all[n] for n in members})
                                    for part, members in split.items()}
        for part in ("tune", "holdout", "holdout_at_tune_threshold"):
            s = record["halves"][part]
            ref = record["halves_numenta"].get(part if part != "holdout_at_tune_threshold" else "holdout")
            print(f"{part:26s} " + "  ".join(f"{p} {s[p]['score']:5.1f}" for p in PROFILES)
                  + f"   (Numenta HTM on the same files: {ref['standard']['score']:.1f} standard)")
    print(f"{rows:,} rows in {wall:.0f} s wall: {record['seconds']['per_1000_rows']:.2f} s per 1,000 rows "
          f"(forecaster {record['seconds']['forecaster_per_1000_rows']:.2f}, scorer "
          f"{record['seconds']['scorer_per_1000_rows']:.3f})")
    default = OUT if args.retrain == "double" else OUT.replace(".json", "-no-retrain.json")
    if args.device:
        default = OUT.replace(".json", "-device.json" if args.stride == 1 else f"-device-stride{args.stride}.json")
    out = args.json or (default if full else None)
    if out:
        atomic_write_json(out, record)
        print(f"wrote {out}")
    if args.nab_results:
        write_nab_results(args.nab_results, args.nab, names, scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
