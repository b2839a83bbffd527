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
