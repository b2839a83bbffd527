"""The detector as the engine and the firmware run it: one exported model file, one score per sample.

    det = export_detector(values, "det-int8.ofa")          # train on the first train_rows, export int8
    scores = stream_scores("det-int8.ofa", values)           # the C++ engine + ofa_anomaly.h's stream

`export_detector` trains the detector's first model (its first member's, DetectorConfig.members) exactly as
`Detector` does (ofa.anomaly.forecaster, on rows 0..train_rows-1) and exports it, int8 by default (calibrated
on those rows), with the stream's settings in the file's metadata under "anomaly": {"stride", "train_rows",
"scorer": ScorerConfig's fields}. `stream_scores` pushes the samples one at a time through the C core's
ofa_stream (csrc/ofa/ofa_anomaly.h): the same schedule as Detector with retrain "none" (the model is fixed;
the firmware cannot retrain), in float32 samples and double arithmetic with the core's own exp/log/erfc, so
a Cortex-M running the same file gives the same bits (tools/emit_header.py --anomaly; tests/test_firmware.py).

What differs from `ofa detect` (Python, retrain "double" by default): one member (no one-step forecaster
beside it, which would double the device's forecasts and flash), no retraining, forecasts from the engine
(int8: quantised), samples rounded to float32 and rings of float32 (scores agree with the Python scorer to
about 1e-8 given the same forecasts: tests/test_anomaly_device.py).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict

import numpy as np

from ..errors import OfaError
from .detector import DetectorConfig, ScorerConfig
from .forecaster import fit_forecaster

METADATA_KEY = "anomaly"


def stream_settings(cfg: DetectorConfig) -> dict:
    """What the engine's stream needs besides the model: the metadata "anomaly" record."""
    return {"stride": cfg.stride, "train_rows": cfg.train_rows, "scorer": asdict(cfg.scorer)}


def export_detector(values, out: str, cfg: DetectorConfig | None = None, int8: bool = True,
                    calibration_windows: int = 256, log=None) -> dict:
    """Train the detector's first model on values[:train_rows] and write it to `out` with its stream
    settings. Returns {"bytes", "scheme", "seq_len", "horizon", "train_rows", "stride"}."""
    from ..export.merge import int8_arrays, model_arrays, write_model_file
    from ..modelfile import checksum
    from ..training import checkpoint

    cfg = cfg or DetectorConfig()
    cfg.check()
    if not out or out.endswith("/"):
        raise OfaError(f"the detector's model file must be a file name, got {out!r}")
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) < cfg.train_rows:
        raise OfaError(f"{len(values)} rows: the detector trains on the first {cfg.train_rows} rows and needs them")
    train = values[:cfg.train_rows]
    if not np.isfinite(train).all():
        raise OfaError("the training rows hold a non-finite value")
    work = tempfile.mkdtemp(prefix="ofa-detector-export-")
    try:
        kept = os.path.join(work, "checkpoint")
        model = fit_forecaster(train, cfg.forecaster, log=log, keep=kept)
        if model.info.get("persistence"):
            raise OfaError("the training rows are constant: the detector forecasts persistence, which has no "
                           "model to export")
        torch_model, meta = checkpoint.load(kept)
        arrays, metadata = model_arrays(torch_model, meta)
        if int8:
            arrays, metadata = int8_arrays(arrays, metadata, os.path.join(kept, "train.csv"), calibration_windows)
        metadata[METADATA_KEY] = json.dumps(stream_settings(cfg), sort_keys=True)
        metadata["checksum"] = checksum(arrays, metadata)
        write_model_file(out, arrays, metadata)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    config = json.loads(metadata["config"])
    return {"bytes": os.path.getsize(out), "scheme": metadata["dtype"], "seq_len": config["seq_len"],
            "horizon": config["horizon"], "train_rows": cfg.train_rows, "stride": cfg.stride}


def read_settings(metadata: dict, path: str, n_channels: int) -> dict:
    """The "anomaly" record of a model file's metadata, checked; OfaError if the file has none."""
    from ..modelfile import json_value

    raw = metadata.get(METADATA_KEY)
    if raw is None:
        raise OfaError(f"{path}: not a detector's model file (no \"{METADATA_KEY}\" metadata; write one with "
                       f"`ofa detect --export`)")
    try:
        settings = json_value(raw, METADATA_KEY)
    except ValueError as exc:
        raise OfaError(f"{path}: metadata {METADATA_KEY!r}: {exc}") from None
    if not isinstance(settings, dict) or set(settings) != {"stride", "train_rows", "scorer"} \
            or not isinstance(settings["scorer"], dict):
        raise OfaError(f"{path}: metadata {METADATA_KEY!r} must hold stride, train_rows and scorer")
    try:
        scorer = ScorerConfig(**settings["scorer"])
    except TypeError as exc:
        raise OfaError(f"{path}: metadata {METADATA_KEY!r}: scorer: {exc}") from None
    scorer.check()
    for key in ("stride", "train_rows"):
        if not isinstance(settings[key], int) or isinstance(settings[key], bool) or settings[key] < 1:
            raise OfaError(f"{path}: metadata {METADATA_KEY!r}: {key} must be a positive integer")
    if n_channels != 1:
        raise OfaError(f"{path}: a detector's model has one channel, this one has {n_channels}")
    return {"stride": settings["stride"], "train_rows": settings["train_rows"], "scorer": asdict(scorer)}


def float32_samples(values) -> np.ndarray:
    """values as the float32 samples a sensor node holds; OfaError names a row that is not finite there."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(x32))
    if bad.size:
        raise OfaError(f"row {int(bad[0])}: value {x[bad[0]]} is not a finite float32")
    return x32


def stream_scores(model, values) -> np.ndarray:
    """float64 (n,) scores of `values` (rounded to float32, as a sensor node holds them) from a detector's
    model file (a path or ofa.load's Model), pushed one sample at a time through the engine's stream."""
    from ..runtime.engine import Model

    if not isinstance(model, Model):
        model = Model(model)
    settings = read_settings(model.metadata, model.path, model.n_channels)
    try:
        return model.engine.stream_scores(float32_samples(values), settings)
    except ValueError as exc:
        raise OfaError(f"{model.path}: {exc}") from None
