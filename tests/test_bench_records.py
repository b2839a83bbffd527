"""bench/accuracy.py keeps earlier records: a full-protocol run must not wipe the reduced-protocol table."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest

def load_bench(script: str):
    """A bench/ script as a module. The bench puts the checkout's python/ on sys.path (to run from a
    checkout); undo that, or later tests that hand sys.path to a subprocess would import the source tree
    instead of the installed ofa."""
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location(f"bench_{script}",
                                                  os.path.join(os.path.dirname(__file__), "..", "bench", f"{script}.py"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def accuracy():
    return load_bench("accuracy")


def rec(model, protocol, mse):
    return {"dataset": "ETTh1", "horizon": 96, "model": model, "protocol": protocol, "mse": mse}


def test_merge_replaces_same_key_keeps_others_in_order(accuracy):
    earlier = [rec("dlinear", "reduced", 0.37), rec("ofa", "reduced", 0.39), rec("ofa", "full", 0.5)]
    new = [rec("ofa", "full", 0.38), rec("dlinear", "full", 0.372)]
    merged = accuracy.merge_records(earlier, new)
    assert [(r["model"], r["protocol"], r["mse"]) for r in merged] == [
        ("dlinear", "reduced", 0.37), ("ofa", "reduced", 0.39), ("ofa", "full", 0.38), ("dlinear", "full", 0.372)]


def test_earlier_records_missing_and_bad_files(accuracy, tmp_path):
    assert accuracy.earlier_records(str(tmp_path / "absent.json")) == []
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="not readable as JSON"):
        accuracy.earlier_records(str(bad))
    bad.write_text(json.dumps([{"dataset": "ETTh1"}]))
    with pytest.raises(SystemExit, match="not a list of accuracy records"):
        accuracy.earlier_records(str(bad))


def test_datasets_take_names_and_paths(accuracy, tmp_path):
    path = str(tmp_path / "my-data.csv")
    got = accuracy.dataset_paths(f"ETTh1,{path}")
    assert got[0][0] == "ETTh1" and got[0][1].endswith("ETT/ETTh1.csv") and got[1] == ("my-data", path)
    with pytest.raises(SystemExit, match="neither a built-in dataset"):
        accuracy.dataset_paths("NotADataset")


def test_reduced_protocol_scores_about_twenty_thousand_series(accuracy, tmp_path):
    from conftest import noisy_sines, write_csv

    data = write_csv(tmp_path / "d.csv", noisy_sines(0, rows=3000), ["a", "b"])
    args = type("Args", (), {"screen": 1, "full": False})()
    k, windows = accuracy.test_stride(data, 96, args)
    assert k == 1 and windows == 600 - 96 + 1  # 505 windows x 2 channels: under the cap, all scored
    args.full, args.screen = True, 1
    assert accuracy.test_stride(data, 96, args)[0] == 1
    args.full, args.screen = False, 4
    assert accuracy.test_stride(data, 96, args) == (4, len(range(0, 505, 4)))


def test_firmware_bench_scores_dlinear_as_the_accuracy_bench_does(accuracy, tmp_path):
    """bench/firmware.py calls dlinear_cell with its own arguments: they must hold all the cell reads."""
    import argparse
    import re

    from conftest import noisy_sines, write_csv

    source = open(os.path.join(os.path.dirname(__file__), "..", "bench", "firmware.py")).read()
    call = re.search(r"argparse\.Namespace\((.*?)\)\)", source, re.S).group(1)
    fields = dict(re.findall(r"(\w+)=([\w.]+)", call))
    data = write_csv(tmp_path / "d.csv", noisy_sines(0, rows=1400), ["a", "b"])
    args = argparse.Namespace(**{k: {"False": False, "REDUCED_TRAIN_SERIES": 2000}.get(v, v) for k, v in fields.items()})
    args.seed, args.screen, args.test_every = int(args.seed), int(args.screen), int(args.test_every)
    rec = accuracy.dlinear_cell("dlinear", "d", data, 16, 64, args)
    assert rec["mse"] > 0 and rec["seq_len"] == 64


def test_fewshot_records_never_replace_long_term_ones(accuracy):
    """The protocol, and the train fraction with it, are part of the key: a few-shot run merges beside the
    long-term records of the same dataset, horizon and model, and replaces only its own earlier records."""
    reduced = rec("ofa", "reduced", 0.366) | {"lookback": "auto", "seed": 0, "test_every": 1}
    old_fewshot = reduced | {"protocol": "fewshot-10", "train_fraction": 0.1, "mse": 0.45}
    new_fewshot = old_fewshot | {"mse": 0.44}
    other_fraction = old_fewshot | {"protocol": "fewshot-5", "train_fraction": 0.05, "mse": 0.47}
    merged = accuracy.merge_records([reduced, old_fewshot], [new_fewshot, other_fraction])
    assert [(r["protocol"], r["mse"]) for r in merged] == [("reduced", 0.366), ("fewshot-10", 0.44), ("fewshot-5", 0.47)]
    # a record from before train_fraction was recorded trained on the whole split: it keys as 1.0
    assert accuracy.key_of(rec("ofa", "reduced", 0.3)) == accuracy.key_of(rec("ofa", "reduced", 0.3) | {"train_fraction": 1.0})
    # even under one protocol name, another fraction is another measurement
    assert accuracy.key_of(old_fewshot) != accuracy.key_of(old_fewshot | {"train_fraction": 0.2})


def test_fewshot_protocol_names_and_flags(accuracy):
    import argparse

    def name(**kw):
        base = dict(full=False, train_series=accuracy.REDUCED_TRAIN_SERIES, epochs=None, screen=1, train_fraction=1.0)
        return accuracy.protocol_name(argparse.Namespace(**(base | kw)))

    assert name() == "reduced" and name(full=True) == "full"
    assert name(train_fraction=0.1) == "fewshot-10" and name(train_fraction=0.05) == "fewshot-5"
    assert name(train_fraction=0.1, full=True) == "fewshot-10-full"
    assert name(train_fraction=0.1, epochs=10) == "fewshot-10-10ep"
    ap = argparse.ArgumentParser()
    ap.add_argument("--fewshot", type=float)
    ap.add_argument("--train-fraction", type=float)
    assert accuracy.train_fraction_of(ap.parse_args(["--fewshot", "10"]), ap) == 0.1
    assert accuracy.train_fraction_of(ap.parse_args(["--train-fraction", "0.05"]), ap) == 0.05
    assert accuracy.train_fraction_of(ap.parse_args([]), ap) == 1.0
    with pytest.raises(SystemExit):
        accuracy.train_fraction_of(ap.parse_args(["--fewshot", "10", "--train-fraction", "0.1"]), ap)
    with pytest.raises(SystemExit):
        accuracy.train_fraction_of(ap.parse_args(["--fewshot", "0"]), ap)


def test_fewshot_splits_train_on_the_first_fraction_only(accuracy, tmp_path):
    """DLinear's splits under a fraction: TSLib's percent rule on the training part, validation and test as
    without it."""
    from conftest import noisy_sines, write_csv

    data = write_csv(tmp_path / "d.csv", noisy_sines(0, rows=3000), ["a", "b"])
    whole = accuracy.reduced_splits(data, 64, 16, True, accuracy.REDUCED_TRAIN_SERIES)
    tenth = accuracy.reduced_splits(data, 64, 16, True, accuracy.REDUCED_TRAIN_SERIES, 0.1)
    assert tenth.borders[0] == (0, int((2100 - 64) * 0.1) + 64) and whole.borders[0] == (0, 2100)
    assert tenth.borders[1:] == whole.borders[1:] and len(tenth.test) == len(whole.test)
    assert np.array_equal(tenth.scaler.mean, whole.scaler.mean)  # TSLib fits the scaler on the whole train part


def test_classification_cv_folds_are_stratified_and_selection_writes_keep_other_fields(tmp_path, monkeypatch):
    bench = load_bench("classification")
    labels = np.repeat(np.arange(3), [7, 5, 10])
    fold = bench.stratified_folds(labels, 5, 0)
    for k in range(3):  # each class dealt round-robin: its fold sizes differ by at most one
        sizes = np.bincount(fold[labels == k], minlength=5)
        assert sizes.max() - sizes.min() <= 1 and sizes.sum() == np.count_nonzero(labels == k)
    assert not np.array_equal(fold, bench.stratified_folds(labels, 5, 1))
    monkeypatch.setattr(bench, "SELECTION", str(tmp_path / "selection.json"))
    bench.write_selection({"rows": [1], "refit": [2]})
    bench.write_selection({"cv": {"rows": [3]}})
    bench.write_selection({"rows": [4]})
    assert json.loads((tmp_path / "selection.json").read_text()) == {"rows": [4], "refit": [2], "cv": {"rows": [3]}}


def test_anomaly_selection_ensembles_average_the_best_settings():
    """'<search>, mean of top K' keeps a search's K best settings (ties: the earlier candidate) and scores
    their mean; a plain search keeps the best one."""
    sel = load_bench("anomaly_selection")

    class FakeScorer:  # a setting's score is its error window; an ensemble's, its members' mean
        def nab(self, cfg, names):
            return float(np.mean([c.error_window for c in cfg])) if isinstance(cfg, list) else float(cfg.error_window)

    one, best = sel.choose("search-small", FakeScorer(), ["a"], 40, 0)
    assert best == max(sel.GRID["error_window"]) and one.error_window == best
    top, mean = sel.choose("search-small, mean of top 5", FakeScorer(), ["a"], 40, 0)
    candidates = sel.candidates(sel.SMALL, 40, 0)
    want = sorted(range(len(candidates)), key=lambda i: -candidates[i].error_window)[:5]
    assert top == [candidates[i] for i in want] and mean == np.mean([c.error_window for c in top])
    assert sel.settings_record(top)[0]["error_window"] == best and isinstance(sel.settings_record(one), dict)


def test_a_checkpoint_is_held_to_the_chosen_settings_and_older_ones_read_as_defaults(tmp_path):
    from dataclasses import asdict

    from ofa.training import checkpoint, classifier

    bench = load_bench("classification")
    cfg_over, train_over = bench.CHOSEN["BasicMotions"]
    model = asdict(classifier.ClassifierConfig(**cfg_over))
    train = asdict(classifier.ClassifyTrainConfig(**train_over)) | {"seed": 3}

    def checkpoint_dir(name, model, train):
        path = tmp_path / name
        path.mkdir()
        meta = {"format": checkpoint.FORMAT, "task": "classify", "data": {"name": "BasicMotions"}, "model": model,
                "train": train, "scaler": {}, "backbone_fingerprint": ""}
        (path / "ofa.json").write_text(json.dumps(meta))
        return str(path)

    assert bench.checked_settings("BasicMotions", checkpoint_dir("now", model, train)) == 3
    # A checkpoint from before the token layout and the regularisers: the fields it lacks are their defaults.
    older = {k: v for k, v in model.items() if k != "tokens"}
    older_train = {k: v for k, v in train.items() if k not in ("mixup", "label_smoothing", "ema", "keep")}
    assert bench.checked_settings("BasicMotions", checkpoint_dir("older", older, older_train)) == 3
    with pytest.raises(SystemExit, match="tokens differ"):
        bench.checked_settings("BasicMotions", checkpoint_dir("joined", model | {"tokens": "joined"}, train))
