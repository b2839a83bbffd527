"""The detector as the engine and the firmware run it (ofa.anomaly.device, csrc/ofa/ofa_anomaly.h): the C
scorer against the Python one, the stream's schedule against a re-implementation over the engine's own
forecasts, bit-equality across the engine's kernels, the exported file's refusals, and `ofa detect
--export / --model`. The firmware's run of the same stream on QEMU is in tests/test_firmware.py."""
from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from ofa import _engine
from ofa.anomaly.detector import DetectorConfig, Scorer, ScorerConfig
from ofa.anomaly.device import export_detector, read_settings, stream_scores
from ofa.anomaly.forecaster import ForecasterConfig
from ofa.errors import OfaError
from ofa.runtime.engine import Model

TINY = ForecasterConfig(width=16, heads=2, ff=32, lookbacks=(16, 32), horizon=4, patch=8, stride=4, epochs=2)
SPIKE = 330


def series(rows: int = 480, seed: int = 0) -> np.ndarray:
    t = np.arange(rows)
    x = 10 + np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(seed).uniform(-1, 1, rows)
    x[SPIKE] += 4.0
    return x


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    cfg = DetectorConfig(train_rows=200, retrain="none", stride=2, memory=400, forecaster=TINY)
    path = str(tmp_path_factory.mktemp("det") / "det-int8.ofa")
    info = export_detector(series(), path, cfg)
    return cfg, path, info


def python_stream(model: Model, values: np.ndarray, settings: dict) -> np.ndarray:
    """ofa_stream's schedule written out in Python over the engine's forecasts and the Python Scorer."""
    x = values.astype(np.float32)
    L = model.seq_len
    stride, train_rows = settings["stride"], settings["train_rows"]
    scorer, out, origin, forecast = Scorer(ScorerConfig(**settings["scorer"])), np.zeros(len(x)), None, None
    for t in range(len(x)):
        if t < L:
            scorer.observe(float(x[t]))
            continue
        if origin is None or t - origin >= stride or t == train_rows:
            origin, forecast = t, model.run(x[t - L:t].reshape(1, L, 1))[0, :, 0]
        s = scorer.step(float(x[t]), float(forecast[t - origin]))
        out[t] = s if t >= train_rows else 0.0
    return out


def test_c_scorer_matches_the_python_scorer():
    rng = np.random.default_rng(1)
    n = 6000
    f = np.sin(np.arange(n) / 20)
    x = f + 0.1 * rng.standard_normal(n)
    x[2500:2510] += 3.0
    x[5000] -= 6.0
    f[:50] = np.nan  # no forecast yet: the value range only
    x, f = x.astype(np.float32).astype(np.float64), f.astype(np.float32).astype(np.float64)
    for cfg in (ScorerConfig(), ScorerConfig(error_window=300, short_window=5, long_window=1000, red_yellow=False,
                                             suppress_rows=0, spatial_tolerance=0.0, z_offset=3.0)):
        scorer = Scorer(cfg)
        want = np.array([scorer.step(a, b) for a, b in zip(x.tolist(), f.tolist())])
        got = _engine.scorer_scores(x, f, asdict(cfg))
        # float32 rings against float64 ones: 1e-6 at most, and the same detections.
        assert np.abs(got - want).max() < 1e-6
        assert ((got >= 0.5) == (want >= 0.5)).all()
        assert got[:50].max() == 0.0 and want.max() > 0.5  # the anomalies are found, by both


def test_stream_is_the_detector_schedule_and_finds_the_spike(detector):
    cfg, path, info = detector
    model = Model(path)
    settings = read_settings(model.metadata, path, model.n_channels)
    assert settings == {"stride": 2, "train_rows": 200, "scorer": asdict(cfg.scorer)}
    values = series()
    got = stream_scores(model, values)
    want = python_stream(model, values, settings)
    assert np.abs(got - want).max() < 1e-6
    assert (got[:200] == 0).all() and got[SPIKE] >= 0.5 and np.argmax(got) == SPIKE
    assert info["scheme"] == "int8" and info["train_rows"] == 200 and info["stride"] == 2


def test_stream_bits_do_not_depend_on_the_kernels(detector):
    _, path, _ = detector
    model = Model(path)
    settings = read_settings(model.metadata, path, 1)
    x = series().astype(np.float32)
    runs = [_engine.EngineInt8(model.config, model._tensors, tile_series=1, threads=1, isa=isa).stream_scores(x, settings)
            for isa in _engine.available_int8_isas()]
    for r in runs[1:]:
        assert r.tobytes() == runs[0].tobytes()


def test_refusals(detector, tmp_path):
    _, path, _ = detector
    model = Model(path)
    good = model.metadata["anomaly"]
    with pytest.raises(OfaError, match="not a detector's model file"):
        read_settings({}, "m.ofa", 1)
    with pytest.raises(OfaError, match="must hold stride, train_rows and scorer"):
        read_settings({"anomaly": json.dumps({"stride": 1})}, "m.ofa", 1)
    bad = json.loads(good)
    bad["scorer"]["error_window"] = 0
    with pytest.raises(OfaError, match="error_window"):
        read_settings({"anomaly": json.dumps(bad)}, "m.ofa", 1)
    with pytest.raises(OfaError, match="one channel"):
        read_settings({"anomaly": good}, "m.ofa", 3)
    with pytest.raises(OfaError, match="row 3: .* not a finite float32"):
        stream_scores(model, [1.0, 2.0, 3.0, math.inf])
    with pytest.raises(OfaError, match="row 1: .* not a finite float32"):
        stream_scores(model, [1.0, 1e39])
    settings = read_settings(model.metadata, path, 1)
    with pytest.raises(ValueError, match="stride must be between 1 and the model's horizon"):
        model.engine.stream_scores(np.zeros(10, np.float32), {**settings, "stride": 99})
    with pytest.raises(ValueError, match="train_rows must be at least the model's seq_len"):
        model.engine.stream_scores(np.zeros(10, np.float32), {**settings, "train_rows": 1})
    with pytest.raises(OfaError, match="constant"):
        export_detector(np.ones(400), str(tmp_path / "flat.ofa"),
                        DetectorConfig(train_rows=200, memory=400, forecaster=TINY))
    assert not (tmp_path / "flat.ofa").exists()


def test_cli_export_then_model(tmp_path, capsys):
    from ofa.cli import main

    data = tmp_path / "s.csv"
    values = series()
    pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=len(values), freq="5min"),
                  "value": values}).to_csv(data, index=False)
    det = tmp_path / "det.ofa"
    assert main(["detect", "--data", str(data), "--out", str(tmp_path / "py.csv"), "--train-fraction", "0.4",
                 "--retrain", "none", "--export", str(det), "--quiet"]) == 0
    assert main(["detect", "--data", str(data), "--out", str(tmp_path / "engine.csv"), "--model", str(det)]) == 0
    out = capsys.readouterr().out
    assert "the int8 engine after its 192 training rows" in out
    engine = pd.read_csv(tmp_path / "engine.csv")
    assert np.allclose(engine["anomaly_score"], stream_scores(str(det), values), atol=1e-9)
    assert engine["anomaly_score"].idxmax() == SPIKE
    assert main(["detect", "--data", str(data), "--out", str(tmp_path / "x.csv"), "--model", str(det),
                 "--train-fraction", "0.5"]) == 2
    assert "takes neither --train-fraction nor --export" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
