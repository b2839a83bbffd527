"""The streaming anomaly detector (ofa.anomaly.detector) and `ofa detect`: online, bounded, scores in [0, 1],
the batched path equal to the one-value-at-a-time path, and the CLI's files and refusals. Small students
(width 16, one block, two epochs) keep every training to about a second."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from ofa.anomaly.detector import (
    Detector,
    DetectorConfig,
    ScorerConfig,
    refit_rows,
    score_forecasts,
    score_series,
)
from ofa.anomaly.forecaster import ForecasterConfig, Persistence, fit_forecaster
from ofa.errors import OfaError

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models train fastest on one thread (and the test machine is shared)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = ForecasterConfig(width=16, heads=2, ff=32, lookbacks=(16, 32), horizon=4, patch=8, stride=4, epochs=2)


def series(rows: int = 480, seed: int = 0) -> np.ndarray:
    t = np.arange(rows)
    return 10 + np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(seed).uniform(-1, 1, rows)


def tiny_config(**kw) -> DetectorConfig:
    return DetectorConfig(**{"train_rows": 120, "memory": 400, "forecaster": TINY, **kw})


@pytest.fixture(scope="module")
def clean_and_spiked():
    """One series scored twice: as it is, and with values changed from row 330 on (refits at 120 and 240)."""
    cfg = tiny_config()
    base = series()
    changed = base.copy()
    changed[330:] += np.linspace(0, 5, len(base) - 330)
    changed[330] += 8.0
    return cfg, base, changed, score_series(base, cfg), score_series(changed, cfg)


def test_online_scores_do_not_see_the_future(clean_and_spiked):
    cfg, base, changed, a, b = clean_and_spiked
    assert refit_rows(cfg, len(base)) == [120, 240]
    np.testing.assert_array_equal(a["scores"][:330], b["scores"][:330])  # rows up to 329 never see row 330
    np.testing.assert_array_equal(a["forecasts"][:331], b["forecasts"][:331])  # f_330 uses rows < 330 only
    assert not np.array_equal(a["scores"][330:], b["scores"][330:])  # ... and the later rows do differ
    assert b["scores"][330] == 1.0 and a["scores"][330] < 0.5  # the jump is detected at once (spatial rule)
    assert a["scores"][cfg.train_rows:].max() < 0.5  # and the clean series raises nothing
    assert np.all(a["scores"][:cfg.train_rows] == 0.0)  # rows before the first model score 0


def test_streaming_detector_matches_the_batched_path(clean_and_spiked):
    cfg, _, changed, _, batched = clean_and_spiked
    det = Detector(cfg)
    streamed = np.array([det.update(x) for x in changed])
    # the streaming detector also retrains after the last row (rows seen reach 480), which scores nothing
    assert det.trainings == 3 and det.last_fit["rows_seen"] == 480
    np.testing.assert_allclose(streamed, batched["scores"], atol=1e-6)


def test_the_score_is_the_larger_of_the_two_members(clean_and_spiked):
    """The default detector runs the forecaster and the same trained for horizon 1, each with its own scorer."""
    cfg, _, _, _, b = clean_and_spiked
    assert [m.horizon for m in cfg.members] == [4, 1] and [m["horizon"] for m in b["members"]] == [4, 1]
    main, one_step = (m["scores"] for m in b["members"])
    assert not np.array_equal(main, one_step)  # two different detectors ...
    np.testing.assert_array_equal(b["scores"], np.maximum(main, one_step))  # ... and the row's score is the larger
    single = score_series(series(), tiny_config(one_step=False))
    assert len(single["members"]) == 1 and single["members"][0]["horizon"] == 4
    np.testing.assert_array_equal(single["scores"], clean_and_spiked[3]["members"][0]["scores"])
    # stride > 1 leaves rows without a one-step forecast: the main forecaster alone
    assert [m.horizon for m in tiny_config(stride=2).members] == [4]
    assert [m.horizon for m in DetectorConfig().members] == [8, 1]
    with pytest.raises(OfaError, match="one_step must be true or false"):
        tiny_config(one_step="yes").check()


def test_stride_forecasts_cover_every_row():
    cfg = tiny_config(stride=4, retrain="none")
    x = series(300, seed=3)
    batched = score_series(x, cfg)
    f = batched["forecasts"]
    lookback = batched["fits"][0][1]["seq_len"]
    assert np.isnan(f[:lookback]).all() and np.isfinite(f[lookback:]).all()  # every later row has a forecast
    det = Detector(cfg)
    streamed = np.array([det.update(v) for v in x])
    assert det.trainings == 1
    np.testing.assert_allclose(streamed, batched["scores"], atol=1e-6)


def test_scores_stay_in_the_unit_interval():
    rng = np.random.default_rng(1)
    cases = {
        "noise": rng.standard_normal(3000),
        "spikes": np.where(rng.random(3000) < 0.01, 1e6, rng.standard_normal(3000)),
        "constant": np.zeros(3000),
        "walk": np.cumsum(rng.standard_normal(3000)),
        "extreme": rng.choice([-1e300, 0.0, 1e300], size=3000),
        "tiny": 1e-300 * rng.standard_normal(3000),
    }
    for name, x in cases.items():
        for f in (np.zeros_like(x), np.roll(x, 1), x + rng.standard_normal(len(x))):
            s = score_forecasts(x, f, 0, ScorerConfig())
            assert np.all(np.isfinite(s)) and s.min() >= 0.0 and s.max() <= 1.0, name
    # the squash spans the interval: plain Gaussian errors stay near 0; one 20-sigma error is one raw score
    # of 1 in the average of S = 30 (below 0.5: one-row spikes are the spatial rule's), a run of ten reaches 1
    cfg = ScorerConfig(spatial_tolerance=0.0)
    x = rng.standard_normal(4000)
    s = score_forecasts(x, np.zeros_like(x), 0, cfg)
    assert np.quantile(s[1000:], 0.99) < 0.2
    x[3500] = 20.0
    s = score_forecasts(x, np.zeros_like(x), 0, cfg)
    assert s[3499] < s[3500] < 0.5
    x[3500:3510] = 20.0
    s = score_forecasts(x, np.zeros_like(x), 0, cfg)
    assert 0.5 < s[3500:3510].max() < 0.99  # the first detection, then suppression and Numenta's filter
    plain = ScorerConfig(spatial_tolerance=0.0, suppress_rows=0, red_yellow=False)
    assert score_forecasts(x, np.zeros_like(x), 0, plain)[3500:3510].max() > 0.99


def test_suppression_and_spatial_rule():
    x = np.zeros(1000)
    x[::2] = 1.0  # range [0, 1]
    f = x.copy()  # perfect forecasts: only the spatial rule can fire
    x[600], x[650], x[900] = 3.0, 5.0, 9.0
    s = score_forecasts(x, f, 0, ScorerConfig(suppress_rows=100, suppress_factor=0.25, suppress_threshold=0.5))
    assert s[600] == 1.0                     # a new extreme beyond 2% of the range
    assert s[650] == 0.25                    # within 100 rows of a detection: scaled down
    assert s[900] == 1.0                     # later: full score again
    off = score_forecasts(x, f, 0, ScorerConfig(spatial_tolerance=0.0))
    assert off[600] < 1.0


def test_bounded_memory():
    class Last:  # a forecaster that needs no training: the last value (the memory test is the detector's)
        seq_len, horizon, info = 8, 4, {"seq_len": 8}

        def predict(self, windows):
            return np.repeat(windows[:, -1:], 4, axis=1)

    cfg = DetectorConfig(train_rows=64, memory=128, retrain="double", forecaster=TINY)
    det = Detector(cfg, fit=lambda values, fc: Last())
    rng = np.random.default_rng(0)
    sizes = None
    for chunk in range(6):
        tracemalloc.start()
        for x in rng.standard_normal(5000):
            det.update(x)
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        now = (len(det.values), len(det.scorer.errors.buf), len(det.scorer.raw.buf),
               len(det.scorer.averages.buf), det.scorer.state_floats())
        assert sizes is None or now == sizes
        sizes = now
        if chunk:
            assert current < 20_000, f"{current} bytes still held after 5,000 more rows"
    assert det.rows == 30_000 and sizes[0] == 128
    assert det.trainings == 1 + int(math.log2(30_000 // 64))  # doublings: 64, 128, ... 16384


def test_forecaster_choices_and_refusals():
    flat = fit_forecaster(np.full(200, 3.0), TINY)
    assert isinstance(flat, Persistence) and flat.predict(np.full((2, flat.seq_len), 3.0)).tolist() == [[3.0] * 4] * 2
    with pytest.raises(OfaError, match="too few"):
        fit_forecaster(series(20), TINY)
    with pytest.raises(OfaError, match="stride"):
        tiny_config(stride=5).check()
    with pytest.raises(OfaError, match="not finite"):
        score_series(np.r_[series(), np.nan], tiny_config())


def test_forecaster_can_take_the_mean_of_its_lookbacks():
    """lookback_mean: each lookback is also tried with the mean of the ridge fits up to it, on validation."""
    from dataclasses import replace

    with_means = fit_forecaster(series(), replace(TINY, lookbacks=(16, 32, 64), lookback_mean=True))
    scores = with_means.info["lookback_val_mse"]
    assert set(scores) == {"16", "32", "64", "16+32", "16+32+64"}
    assert with_means.info["linear_path"] == min(scores, key=scores.get)
    assert with_means.seq_len == int(with_means.info["linear_path"].split("+")[-1])
    singles = fit_forecaster(series(), replace(TINY, lookbacks=(16, 32, 64)))
    assert set(singles.info["lookback_val_mse"]) == {"16", "32", "64"}
    with pytest.raises(OfaError, match="lookback_mean"):
        replace(TINY, lookback_mean=1).check()


# ------------------------------------------------------------------------------------------------- CLI


def write_stream(path, values, stamps=None) -> str:
    stamps = stamps if stamps is not None else pd.date_range("2020-01-01", periods=len(values), freq="5min").astype(str)
    pd.DataFrame({"timestamp": stamps, "value": values}).to_csv(path, index=False)
    return str(path)


def test_cli_writes_scores(tmp_path, capsys):
    from ofa.cli import main

    x = series(400)
    x[300] += 6.0
    data = write_stream(tmp_path / "s.csv", x)
    out = tmp_path / "scores.csv"
    assert main(["detect", "--data", data, "--out", str(out), "--train-fraction", "0.5", "--quiet"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["timestamp", "value", "anomaly_score"] and len(frame) == 400
    assert frame["timestamp"].tolist() == pd.read_csv(data)["timestamp"].tolist()
    np.testing.assert_allclose(frame["value"], x, rtol=1e-9)
    s = frame["anomaly_score"].to_numpy()
    assert s.min() >= 0 and s.max() <= 1 and np.all(s[:200] == 0)
    assert int(np.argmax(s)) == 300
    assert "trained on the first 200 (horizons 8 and 1, 1 training each, lookback" in capsys.readouterr().out
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    assert main(["detect", "--data", data, "--out", str(out), "--train-fraction", "0.5", "--quiet", "--single"]) == 0
    assert "trained on the first 200 (horizon 8, 1 training, lookback" in capsys.readouterr().out


def test_cli_refuses_bad_input_with_status_2(tmp_path, capsys):
    from ofa.cli import main

    x = series(400)
    stamps = list(pd.date_range("2020-01-01", periods=400, freq="5min").astype(str))
    back = stamps.copy()
    back[250] = back[240]  # goes back (and repeats row 240's time)
    text = x.astype(object)
    text[123] = "n/a"
    cases = {
        "missing": (str(tmp_path / "none.csv"), [], "not found"),
        "column": (write_stream(tmp_path / "c.csv", x), ["--column", "load"], "no column 'load'"),
        "number": (write_stream(tmp_path / "n.csv", text), [], "line 125 is not a finite number"),
        "date": (write_stream(tmp_path / "d.csv", x, ["soon"] + stamps[1:]), [], "line 2 is not a date"),
        "strict": (write_stream(tmp_path / "b.csv", x, back), ["--strict"], "goes back"),
        "short": (write_stream(tmp_path / "s.csv", x[:60]), [], "too few"),
        "fraction": (write_stream(tmp_path / "f.csv", x), ["--train-fraction", "1.5"], "between 0 and 1"),
    }
    for name, (data, extra, message) in cases.items():
        out = tmp_path / f"{name}.out.csv"
        assert main(["detect", "--data", data, "--out", str(out), "--quiet", *extra]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("ofa detect: error: ") and message in err[0], (name, err)
        assert not out.exists(), name
    # without --strict the same file is scored, with a note
    out = tmp_path / "b.out.csv"
    assert main(["detect", "--data", str(tmp_path / "b.csv"), "--out", str(out), "--quiet",
                 "--train-fraction", "0.5", "--retrain", "none"]) == 0
    assert "note: timestamp" in capsys.readouterr().err and len(pd.read_csv(out)) == 400
