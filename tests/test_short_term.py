"""Panel (M4-format) training and scoring end to end through the CLI, and its refusals."""
import json

import numpy as np
import pytest
from ofa.cli import main
from ofa.panel import read_m4


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_panel(path, rows):
    width = max(len(r) for _, r in rows)
    with open(path, "w") as fh:
        fh.write(",".join(f"V{i + 1}" for i in range(width + 1)) + "\n")
        for sid, r in rows:
            fh.write(",".join([sid] + [repr(float(v)) for v in r] + [""] * (width - len(r))) + "\n")


@pytest.fixture
def panel(tmp_path):
    rng = np.random.default_rng(0)
    train, test = [], []
    for i in range(12):
        n = 40 + 7 * i
        t = np.arange(n + 6)
        level = 10.0 ** (1 + i % 4)  # scales from 10 to 10^4, as M4's differ
        v = level * (2 + np.sin(2 * np.pi * t / 6) + 0.05 * rng.standard_normal(len(t)))
        train.append((f"H{i + 1}", v[:n]))
        test.append((f"H{i + 1}", v[n:]))
    write_panel(tmp_path / "Hourly-train.csv", train)
    write_panel(tmp_path / "Hourly-test.csv", test)
    return tmp_path


def test_train_and_score_a_panel(panel, capsys):
    out = panel / "run"
    code, _, err = run(capsys, "train", "--data", str(panel / "Hourly-train.csv"), "--format", "m4", "--horizon", "6",
                       "--out", str(out), "--epochs", "1", "--layers", "1", "--max-train-windows", "300")
    assert code == 0, err
    meta = json.loads((out / "ofa.json").read_text())
    assert meta["data"]["format"] == "m4" and meta["model"]["seq_len"] in (6, 12, 24, 48)
    assert meta["model"]["patch"] <= meta["model"]["seq_len"]
    # Panels train on the absolute error and stop on it; both validation errors are recorded.
    assert meta["train"]["loss"] == "mae" and {"val_mse", "val_mae", "train_mae"} <= set(meta["history"][0])
    assert meta["best_val_mae"] <= min(h["val_mae"] for h in meta["history"]) + 1e-12
    code, text, err = run(capsys, "eval", "--checkpoint", str(out), "--data", str(panel / "Hourly-test.csv"),
                          "--format", "m4", "--json", str(panel / "s.json"))
    assert code == 0, err
    scores = json.loads((panel / "s.json").read_text())
    assert scores["series"] == 12 and scores["seasonality"] == 24 and scores["frequency"] == "hourly"
    assert "OWA" in text and 0 < scores["smape"] < 200 and scores["owa"] > 0
    # The exported file in the C++ engine scores the same.
    assert run(capsys, "export", "--checkpoint", str(out), "--out", str(panel / "m.ofa"))[0] == 0
    code, _, err = run(capsys, "eval", "--model", str(panel / "m.ofa"), "--data", str(panel / "Hourly-test.csv"),
                       "--format", "m4", "--train-data", str(panel / "Hourly-train.csv"), "--json",
                       str(panel / "e.json"))
    assert code == 0, err
    engine_scores = json.loads((panel / "e.json").read_text())
    assert engine_scores["smape"] == pytest.approx(scores["smape"], rel=1e-3)
    # The validated combination: chosen on validation at training, recorded, applied by both scorers.
    combo = meta["combination"]
    assert combo["model_weight"] in (1.0, 0.75, 0.5, 0.25) and combo["seasonality"] == 24
    assert combo["val_owa"] == min(min(row) for row in combo["table"].values())
    assert scores["combination"]["model_weight"] == combo["model_weight"]
    assert engine_scores["combination"] == scores["combination"]
    assert combo["val_owa"] <= combo["model_val_owa"] + 1e-12


def test_train_without_combination(panel, capsys):
    out = panel / "plain"
    code, _, err = run(capsys, "train", "--data", str(panel / "Hourly-train.csv"), "--format", "m4", "--horizon", "6",
                       "--out", str(out), "--epochs", "1", "--layers", "1", "--max-train-windows", "100",
                       "--combine", "none")
    assert code == 0, err
    assert "combination" not in json.loads((out / "ofa.json").read_text())
    code, _, err = run(capsys, "eval", "--checkpoint", str(out), "--data", str(panel / "Hourly-test.csv"),
                       "--format", "m4", "--json", str(panel / "p.json"))
    scores = json.loads((panel / "p.json").read_text())
    assert scores["combination"] is None and scores["owa"] == scores["model_alone"]["owa"]


def test_choose_combination_picks_the_best_validated_pair():
    from ofa import metrics
    from ofa.shortterm import choose_combination, combine

    rng = np.random.default_rng(1)
    t = np.arange(30, dtype=float)
    # Series on linear trends: Theta extrapolates half the trend, naive none; a model that over-shoots the
    # truth by as much as naive under-shoots it is best combined half and half with naive.
    insample = [10 + (1 + i % 3) * t[:24] + rng.normal(0, 0.3, 24) for i in range(20)]
    truth = [10 + (1 + i % 3) * t[24:] for i in range(20)]
    naive = np.array([metrics.naive2(x, 6, 1) for x in insample])
    model = 2 * np.array(truth) - naive
    c = choose_combination(insample, truth, model, 1, benchmarks=("naive2",))
    assert c["benchmark"] == "naive2" and c["model_weight"] == 0.5 and c["val_owa"] < 0.05
    assert c["val_owa"] == min(c["table"]["naive2"]) and c["model_val_owa"] > 0.5
    assert c["benchmark_val_owa"]["naive2"] == pytest.approx(1.0)
    # A perfect model is left alone (weight 1 wins), and combine() then returns its forecasts unchanged.
    c = choose_combination(insample, truth, np.array(truth), 1)
    assert c["benchmark"] is None and c["model_weight"] == 1.0 and c["val_owa"] == 0.0
    assert np.array_equal(combine(np.array(truth), insample, c), truth)
    # combine() applies a recorded pair: w * model + (1 - w) * benchmark.
    rec = {"benchmark": "theta", "model_weight": 0.25, "seasonality": 1}
    want = 0.25 * model + 0.75 * np.array([metrics.theta(x, 6, 1) for x in insample])
    assert np.allclose(combine(model, insample, rec), want)
    # Series MASE cannot score (constant) are left out of the choice, not an error; none scorable is one.
    c = choose_combination(insample + [np.ones(24)], truth + [np.ones(6)], np.vstack([model, np.ones(6)]), 1)
    assert c["series"] == 20
    with pytest.raises(Exception, match="no validation series can be scored"):
        choose_combination([np.ones(24)], [np.ones(6)], np.ones((1, 6)), 1)


def test_panel_refusals(panel, capsys):
    ids, series = read_m4(str(panel / "Hourly-train.csv"))
    write_panel(panel / "short.csv", [("H1", series[0]), ("H2", series[1][:5])])
    code, _, err = run(capsys, "train", "--data", str(panel / "short.csv"), "--format", "m4", "--horizon", "6",
                       "--out", str(panel / "x"), "--epochs", "1", "--layers", "1")
    assert code == 2 and "'H2' has 5 values, not more than the horizon 6" in err and len(err.strip().splitlines()) == 1
    assert not (panel / "x" / "ofa.json").exists()
    write_panel(panel / "other-test.csv", [(f"X{i}", np.ones(6)) for i in range(12)])
    out = panel / "run"
    assert run(capsys, "train", "--data", str(panel / "Hourly-train.csv"), "--format", "m4", "--horizon", "6",
               "--out", str(out), "--epochs", "1", "--layers", "1", "--max-train-windows", "100")[0] == 0
    code, _, err = run(capsys, "eval", "--checkpoint", str(out), "--data", str(panel / "other-test.csv"),
                       "--format", "m4")
    assert code == 2 and "ids do not match" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        run(capsys, "train", "--data", str(panel / "Hourly-train.csv"), "--format", "xls", "--out", str(panel / "y"))
    assert exc.value.code == 2 and "invalid choice: 'xls'" in capsys.readouterr().err
