"""How well does a way of choosing the anomaly scorer's settings generalise? Cross-validation inside NAB's
tuning half, then one look at the held-out half.

    python bench/anomaly_selection.py                 # needs the forecasts cache (built on first run, ~20 min)

bench/anomaly.py tunes the scorer (ofa.anomaly.detector.ScorerConfig) on the files at an even position in
sorted order (`tune`) and reports the others (`holdout`) apart; the defaults score 75.0 on the tuning half
and 64.3 on the held-out one, so the choice overfits. This script compares selection *procedures* without
touching the held-out half: the tuning half is cut in two folds (its even / odd positions); a procedure
chooses settings on one fold, is scored (NAB standard, threshold optimised) on the other, and the other way
round. The procedure with the best mean cross-validated score is then run on the whole tuning half, and its
settings are scored once on the held-out half and on all 58 files. The forecasts do not depend on the
scorer: they are computed once (Detector's defaults, retraining at each doubling) and cached, and the C
scorer (`ofa._engine.scorer_scores`, the firmware's arithmetic) scores a file in milliseconds.

Procedures: "search" (bench/anomaly.py's: a random search over the grid below, the best kept), "search-small"
(the same over the error z-score and the windows only, the spatial rule, the suppression and Numenta's
filter fixed at their defaults), and "robust" (the search, but a setting's score is the mean over the fold's
two halves of its per-half NAB score, so it must do well on both); and ensembles, "<search>, mean of top K":
the K best settings of a search, their scores averaged row by row.

    python bench/anomaly_selection.py --members       # detectors of several members (caches -h1, -seed1, ...)

--members compares detectors whose score is the larger of their members' (a forecaster and its own scorer, the
scorer's defaults): the default forecaster, the same with seed 1, and the same trained for horizon 1, alone and
in pairs, on the tuning half's folds; the best pair with the default forecaster is then scored once on the
held-out half. That is how DetectorConfig.one_step was chosen. A second round (horizons 4 and 32, in pairs and
triples) ran on the tuning half only and would replace the choice only if better on both folds. The procedures
above score the default forecaster alone, as when they were run.
Writes bench/results/anomaly_selection.json.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import asdict, replace

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)

from anomaly import DATA, halves, read_values, sub_corpus  # noqa: E402
from ofa import _engine  # noqa: E402
from ofa.anomaly import nab  # noqa: E402
from ofa.anomaly.detector import DetectorConfig, ScorerConfig, series_forecasts  # noqa: E402
from ofa.anomaly.forecaster import ForecasterConfig  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402

GRID = {"error_window": [300, 1000, 3000], "z_offset": [1.0, 1.5, 2.0, 3.0, 4.0], "short_window": [5, 10, 30],
        "long_window": [300, 1000, 3000, 8640], "spatial_tolerance": [0.0, 0.02, 0.05],
        "suppress_rows": [0, 100, 200, 400], "suppress_factor": [0.0, 0.5], "red_yellow": [True, False]}
SMALL = ("error_window", "z_offset", "short_window", "long_window")
# Ensembles average the scores of a search's K best settings: less variance than one argmax, if the choice
# overfits by chance (the scorer would then run K times per sample).
PROCEDURES = ("search", "search-small", "robust", "search, mean of top 5", "search, mean of top 10",
              "search-small, mean of top 5", "search-small, mean of top 10")


def forecasts(nab_dir: str, names: list[str], cache: str, log, overrides: tuple[dict, dict] = ({}, {})
              ) -> dict[str, np.ndarray]:
    """Each file's forecasts by the default detector, or one with (DetectorConfig, ForecasterConfig) overrides,
    cached in `cache` (one folder per setting)."""
    os.makedirs(cache, exist_ok=True)
    out = {}
    for name in names:
        path = os.path.join(cache, name.replace("/", "__") + ".npy")
        if not os.path.exists(path):
            values = read_values(nab_dir, name)
            t0 = time.perf_counter()
            cfg = DetectorConfig(train_rows=nab.probation_rows(len(values)), **overrides[0],
                                 forecaster=ForecasterConfig(**overrides[1]))
            f, _ = series_forecasts(values, cfg)
            np.save(path + ".tmp.npy", f)
            os.replace(path + ".tmp.npy", path)
            log(f"{name}: forecasts in {time.perf_counter() - t0:.1f} s")
        out[name] = np.load(path)
    return out


class Scorer:
    """NAB standard score of a ScorerConfig on a set of files, from the cached forecasts."""

    def __init__(self, corpus, values, fc):
        self.corpus, self.values, self.fc = corpus, values, fc

    def scores(self, cfg: ScorerConfig | list[ScorerConfig], names) -> dict:
        """Each file's scores under one setting, or the mean of several settings' scores (an ensemble)."""
        ensemble = cfg if isinstance(cfg, list) else [cfg]
        out = {}
        for n in names:
            s = np.mean([_engine.scorer_scores(self.values[n], self.fc[n], asdict(c)) for c in ensemble], axis=0)
            s[:nab.probation_rows(len(s))] = 0.0
            out[n] = s
        return out

    def nab(self, cfg: ScorerConfig | list[ScorerConfig], names) -> float:
        return nab.optimize_threshold(sub_corpus(self.corpus, names), self.scores(cfg, names), "standard")[1]


def candidates(keys, count: int, seed: int) -> list[ScorerConfig]:
    base = ScorerConfig()
    combos = list(itertools.product(*(GRID[k] for k in keys)))
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(combos), size=min(count, len(combos)), replace=False)
    out = [base] + [replace(base, **dict(zip(keys, combos[i]))) for i in picks]
    return out


def choose(procedure: str, scorer: Scorer, names: list[str], count: int, seed: int
           ) -> tuple[ScorerConfig | list[ScorerConfig], float]:
    """The settings a procedure picks on `names` and their score there. "<search>, mean of top K": the K best
    settings of that search, their scores averaged (an ensemble)."""
    search, _, ensemble = procedure.partition(", mean of top ")
    keys = SMALL if search == "search-small" else tuple(GRID)
    parts = [names[0::2], names[1::2]]
    scored = []
    for cfg in candidates(keys, count, seed):
        if search == "robust":
            scored.append((float(np.mean([scorer.nab(cfg, p) for p in parts])), cfg))
        else:
            scored.append((scorer.nab(cfg, names), cfg))
    order = sorted(range(len(scored)), key=lambda i: -scored[i][0])  # ties: the earlier candidate
    if not ensemble:
        return scored[order[0]][1], scored[order[0]][0]
    top = [scored[i][1] for i in order[:int(ensemble)]]
    return top, scorer.nab(top, names)


def settings_record(cfg: ScorerConfig | list[ScorerConfig]):
    return [asdict(c) for c in cfg] if isinstance(cfg, list) else asdict(cfg)


# --variants: forecasters the detector could use instead of its default, (label, cache suffix, DetectorConfig
# overrides, ForecasterConfig overrides). Each is scored as the procedures are, by the winning procedure
# (search-small) chosen on one fold of the tuning half and scored on the other; the held-out half is not read.
VARIANTS = (("the default forecaster", "", {}, {}),
            ("horizon 1 (trained and validated on the one step the detector uses)", "h1", {}, {"horizon": 1}),
            ("memory 8000 (a retraining sees the last 8,000 rows)", "mem8000", {"memory": 8000}, {}))


def compare_variants(args, corpus, tune: list[str], log) -> list[dict]:
    folds = [tune[0::2], tune[1::2]]
    values = {n: read_values(args.nab, n) for n in tune}
    rows = []
    for label, suffix, det, fore in VARIANTS:
        fc = forecasts(args.nab, tune, args.cache + (f"-{suffix}" if suffix else ""), log, (det, fore))
        scorer = Scorer(corpus, values, fc)
        cv = []
        for k in (0, 1):
            cfg, inside = choose("search-small", scorer, folds[k], args.candidates, args.seed + k)
            cv.append({"chosen_on": k, "inside": inside, "outside": scorer.nab(cfg, folds[1 - k])})
        scored = [n for n in tune if np.std(values[n]) > 0]  # the forecast error in units of the series' spread
        start = {n: nab.probation_rows(len(values[n])) for n in scored}
        error = float(np.mean([np.nanmean(np.abs(values[n][start[n]:] - fc[n][start[n]:])) / np.std(values[n])
                               for n in scored]))
        rows.append({"variant": label, "detector": det, "forecaster": fore, "cv": cv,
                     "cv_mean": float(np.mean([c["outside"] for c in cv])), "error_over_std": error})
        print(f"{label}: cross-validated {rows[-1]['cv_mean']:.1f} ("
              + ", ".join(f"{c['inside']:.1f} -> {c['outside']:.1f}" for c in cv) + f"), |error| / std {error:.4f}")
    return rows


# --members: the detector as the larger score of several members, each a forecaster with its own scorer
# (defaults), compared on the tuning half's two folds. Round 1: a second seed of the default forecaster tells
# horizon diversity from a second draw of the same model; the best pair with the default forecaster is then
# scored once on the held-out half. Round 2, on the tuning half only: other horizons, which replace the round-1
# choice only if they beat it on both folds (none did; the held-out half was not scored again).
MEMBERS = (("default", ""), ("seed 1", "seed1"), ("horizon 1", "h1"), ("horizon 4", "h4"), ("horizon 32", "h32"))
ROUND_1 = (("default",), ("seed 1",), ("horizon 1",),
           ("default", "seed 1"), ("default", "horizon 1"), ("seed 1", "horizon 1"))
ROUND_2 = (("horizon 4",), ("horizon 32",), ("horizon 4", "horizon 1"), ("horizon 32", "horizon 1"),
           ("default", "horizon 32"), ("default", "horizon 1", "horizon 4"), ("default", "horizon 1", "horizon 32"))
OVERRIDES = {"": ({}, {}), "seed1": ({}, {"seed": 1}), "h1": ({}, {"horizon": 1}), "h4": ({}, {"horizon": 4}),
             "h32": ({}, {"horizon": 32})}


def compare_members(args, corpus, tune: list[str], holdout: list[str], log) -> dict:
    folds = [tune[0::2], tune[1::2]]
    names = sorted(corpus.files)
    values = {n: read_values(args.nab, n) for n in names}
    suffixes = dict(MEMBERS)

    def member_scores(label: str, want: list[str]) -> dict:
        suffix = suffixes[label]
        fc = forecasts(args.nab, want, args.cache + (f"-{suffix}" if suffix else ""), log, OVERRIDES[suffix])
        return Scorer(corpus, values, fc).scores(ScorerConfig(), want)

    scores = {label: member_scores(label, tune) for label, _ in MEMBERS}

    def combined(parts, names_):
        return {n: np.max([scores[p][n] for p in parts], axis=0) for n in names_}

    def nab_of(parts, names_):
        return nab.optimize_threshold(sub_corpus(corpus, names_), combined(parts, names_), "standard")[1]

    tune_corpus = sub_corpus(corpus, tune)
    rows = []
    for round_, sets in ((1, ROUND_1), (2, ROUND_2)):
        for parts in sets:
            threshold, inside = nab.optimize_threshold(tune_corpus, combined(parts, tune), "standard")
            counts = nab.detection_counts(tune_corpus, combined(parts, tune), threshold)
            rows.append({"round": round_, "members": list(parts), "folds": [nab_of(parts, f) for f in folds],
                         "tune": inside, "tune_threshold": threshold, "tune_counts": counts})
            print(f"round {round_}: {' + '.join(parts):36s} folds " + ", ".join(f"{v:.1f}" for v in rows[-1]["folds"])
                  + f"   tuning half {inside:.1f} (windows {counts['detected']}/{counts['windows']}, "
                  f"false positives {counts['false_positives']})")
    # the rule, fixed before the held-out half was scored: of round 1's pairs with the default forecaster (the
    # one the detector trains anyway), the best on the tuning half; round 2 replaces it only if better on both folds
    chosen = max((r for r in rows if r["round"] == 1 and len(r["members"]) == 2 and "default" in r["members"]),
                 key=lambda r: r["tune"])
    better = [r["members"] for r in rows if r["round"] == 2 and all(a > b for a, b in zip(r["folds"], chosen["folds"]))]
    print(f"round 2 sets better on both folds than {' + '.join(chosen['members'])}: {better or 'none'}")
    for label in {"default", *chosen["members"]}:
        scores[label] |= member_scores(label, holdout)
    once = {"members": chosen["members"], "holdout": nab_of(chosen["members"], holdout),
            "all": nab_of(chosen["members"], names), "default_holdout": nab_of(("default",), holdout),
            "default_all": nab_of(("default",), names)}
    print(f"{' + '.join(chosen['members'])}: held-out half {once['holdout']:.1f} "
          f"(default alone {once['default_holdout']:.1f}), all 58 {once['all']:.1f} ({once['default_all']:.1f})")
    return {"tuning_half": rows, "round_2_better_on_both_folds": better, "held_out_once": once}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", default=os.path.join(DATA, "NAB"))
    ap.add_argument("--cache", default="build/nab-forecasts")
    ap.add_argument("--candidates", type=int, default=300, help="random settings per search")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "anomaly_selection.json"))
    ap.add_argument("--members", action="store_true",
                    help="compare detectors made of two members (MEMBERS, PAIRS) on the tuning half, then score the "
                         "default + horizon-1 pair once on the held-out half; kept beside the procedures")
    ap.add_argument("--variants", action="store_true",
                    help="compare the forecaster VARIANTS instead (tuning half only); kept beside the procedures")
    args = ap.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    corpus = nab.load_corpus(args.nab)
    split = halves(list(corpus.files))
    tune, holdout = split["tune"], split["holdout"]
    if args.members:
        atomic_write_json(args.out, previous(args.out) | {"members": compare_members(args, corpus, tune, holdout, log)})
        print(f"wrote {args.out}")
        return 0
    if args.variants:
        atomic_write_json(args.out, previous(args.out) | {"forecaster_variants": compare_variants(args, corpus, tune,
                                                                                                  log)})
        print(f"wrote {args.out}")
        return 0
    values = {n: read_values(args.nab, n) for n in corpus.files}
    scorer = Scorer(corpus, values, forecasts(args.nab, sorted(corpus.files), args.cache, log))
    folds = [tune[0::2], tune[1::2]]
    record = {"procedures": {}, "folds": folds, "candidates": args.candidates, "seed": args.seed}
    for procedure in PROCEDURES:
        cv = []
        for k in (0, 1):
            t0 = time.perf_counter()
            cfg, inside = choose(procedure, scorer, folds[k], args.candidates, args.seed + k)
            outside = scorer.nab(cfg, folds[1 - k])
            cv.append({"chosen_on": k, "inside": inside, "outside": outside, "settings": settings_record(cfg)})
            log(f"{procedure}: chosen on fold {k}: {inside:.1f} there, {outside:.1f} on the other fold "
                f"({time.perf_counter() - t0:.0f} s)")
        record["procedures"][procedure] = {"cv": cv, "cv_mean": float(np.mean([c["outside"] for c in cv]))}
    defaults = ScorerConfig()
    record["defaults_on_folds"] = [scorer.nab(defaults, f) for f in folds]  # chosen on the whole tuning half
    winner = max(record["procedures"], key=lambda p: record["procedures"][p]["cv_mean"])
    cfg, inside = choose(winner, scorer, tune, args.candidates, args.seed + 2)
    record["winner"] = {"procedure": winner, "settings": settings_record(cfg), "tune": inside,
                        "holdout": scorer.nab(cfg, holdout), "all": scorer.nab(cfg, sorted(corpus.files))}
    record["defaults"] = {"settings": asdict(defaults), "tune": scorer.nab(defaults, tune),
                          "holdout": scorer.nab(defaults, holdout), "all": scorer.nab(defaults, sorted(corpus.files))}
    for p, r in record["procedures"].items():
        print(f"{p:14s} cross-validated {r['cv_mean']:.1f}  (" + ", ".join(f"{c['inside']:.1f} -> {c['outside']:.1f}"
                                                                       for c in r["cv"]) + ")")
    w, d = record["winner"], record["defaults"]
    print(f"winner {winner}: tune {w['tune']:.1f}, holdout {w['holdout']:.1f}, all 58 {w['all']:.1f}")
    print(f"defaults:        tune {d['tune']:.1f}, holdout {d['holdout']:.1f}, all 58 {d['all']:.1f}")
    kept = {k: v for k, v in previous(args.out).items() if k in ("forecaster_variants", "members")}
    atomic_write_json(args.out, record | kept)
    print(f"wrote {args.out}")
    return 0


def previous(path: str) -> dict:
    """The record already written, or {}."""
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return json.load(fh)


if __name__ == "__main__":
    sys.exit(main())
