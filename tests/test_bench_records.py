"""bench/accuracy.py keeps earlier records: a full-protocol run must not wipe the reduced-protocol table."""
import importlib.util
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "bench", "accuracy.py")


@pytest.fixture(scope="module")
def accuracy():
    # The bench puts the checkout's python/ on sys.path (to run from a checkout); undo that, or later
    # tests that hand sys.path to a subprocess would import the source tree instead of the installed ofa.
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_accuracy", BENCH)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


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

    source = open(os.path.join(os.path.dirname(BENCH), "firmware.py")).read()
    call = re.search(r"argparse\.Namespace\((.*?)\)\)", source, re.S).group(1)
    fields = dict(re.findall(r"(\w+)=([\w.]+)", call))
    data = write_csv(tmp_path / "d.csv", noisy_sines(0, rows=1400), ["a", "b"])
    args = argparse.Namespace(**{k: {"False": False, "REDUCED_TRAIN_SERIES": 2000}.get(v, v) for k, v in fields.items()})
    args.seed, args.screen, args.test_every = int(args.seed), int(args.screen), int(args.test_every)
    rec = accuracy.dlinear_cell("dlinear", "d", data, 16, 64, args)
    assert rec["mse"] > 0 and rec["seq_len"] == 64
