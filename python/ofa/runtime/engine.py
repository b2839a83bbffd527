"""Load an exported model file and run it in the C++ engine: `ofa.load`, `ofa.infer`.

Python reads and validates the file (ofa.modelfile); the C++ engine gets zero-copy views of the
arrays and checks names, shapes and finiteness again. Any problem is an OfaError (a ValueError) that names it.
"""
from __future__ import annotations

import os

import numpy as np

from ..data import Scaler
from ..errors import OfaError
from ..modelfile import metadata_json, read_model_file

TILE_SERIES = 16  # series per engine tile (the binding's default)
# A model file cannot make ofa.load reserve more scratch than this (all threads), unless the user says so:
# 2 GiB holds every model ofa exports with room to spare (the default model at seq_len 720: about 60 MB).
DEFAULT_MAX_ARENA_BYTES = 2 << 30
ARENA_CAP_ENV = "OFA_MAX_ARENA_BYTES"


def default_max_arena_bytes() -> int:
    raw = os.environ.get(ARENA_CAP_ENV)
    if raw is None:
        return DEFAULT_MAX_ARENA_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise OfaError(f"{ARENA_CAP_ENV}={raw!r} is not a number of bytes") from None
    if value <= 0:
        raise OfaError(f"{ARENA_CAP_ENV} must be positive, got {value}")
    return value

class Model:
    """An exported model loaded into the C++ engine. `run` works in the data's own units."""

    def __init__(self, path: str, threads: int = 1, max_arena_bytes: int | None = None):
        from .. import _engine

        if not isinstance(threads, int) or threads < 1:
            raise OfaError(f"threads must be a positive integer, got {threads!r}")
        tensors, metadata = read_model_file(path, schemes=("fp32", "int8"))
        self.config = metadata_json(metadata, "config", path, dict)
        self.channels = metadata_json(metadata, "channels", path, list)
        self.target = metadata_json(metadata, "target", path, str)
        self.split = metadata.get("split", "auto")  # the train / val / test cut it was trained with
        self.path, self.metadata = path, metadata
        self._tensors = tensors  # the engine holds views into these
        self.scheme = metadata["dtype"]
        engine_class = _engine.EngineInt8 if self.scheme == "int8" else _engine.Engine
        sizer = _engine.arena_bytes_int8 if self.scheme == "int8" else _engine.arena_bytes
        try:
            per_thread = sizer(self.config, TILE_SERIES)
        except (ValueError, TypeError) as exc:
            raise OfaError(f"{path}: {exc}") from None
        cap = max_arena_bytes if max_arena_bytes is not None else default_max_arena_bytes()
        if per_thread * threads > cap:
            raise OfaError(f"{path}: the model asks for {per_thread * threads:,} bytes of scratch arena "
                           f"({per_thread:,} per thread x {threads}), above the cap of {cap:,}; if you trust this "
                           f"file, raise it with ofa.load(..., max_arena_bytes=N) or {ARENA_CAP_ENV}=N")
        try:
            self.engine = engine_class(self.config, tensors, tile_series=TILE_SERIES, threads=threads)
        except ValueError as exc:
            raise OfaError(f"{path}: {exc}") from None
        self.scaler = Scaler(tensors["scaler.mean"], tensors["scaler.std"])  # for callers in scaled units
        self.task = self.config.get("task", "forecast")
        if self.task == "classify":
            self.classes = metadata_json(metadata, "classes", path, list)
            self.lengths = metadata.get("lengths")  # how a case becomes a window (ofa.runtime.classifying.windows)
            if len(self.classes) != self.config["n_classes"]:
                raise OfaError(f"{path}: {len(self.classes)} class names for a head of {self.config['n_classes']} "
                               f"classes")
            self.meta = {"model": {"seq_len": self.config["seq_len"], "classes": self.classes}}
        else:
            self.meta = {"model": {"seq_len": self.config["seq_len"], "horizon": self.config["horizon"]},
                         "target": self.target}
        # A panel model's validated combination with a benchmark (ofa.shortterm), as training recorded it.
        training = metadata_json(metadata, "training", path, dict, default={}) if "training" in metadata else {}
        self.combination = training.get("combination")

    @property
    def seq_len(self) -> int:
        return self.config["seq_len"]

    @property
    def horizon(self) -> int:
        if self.task == "classify":
            raise OfaError(f"{self.path} is a classifier: it has classes ({len(self.classes)}), not a horizon")
        return self.config["horizon"]

    @property
    def n_channels(self) -> int:
        return self.config["n_channels"]

    def run(self, x: np.ndarray) -> np.ndarray:
        """A forecaster: (B, seq_len, C) float32 -> (B, horizon, C) float32, data units. A classifier:
        (B, C, seq_len) float32, data units -> logits (B, K) float32. A window whose arithmetic
        overflows float32 (a finite input so large that its variance does not fit, or weights that
        overflow on it) is refused by name, never returned as NaN/inf; fp32 and int8 refuse alike."""
        y = self.engine.run(x)
        bad = ~np.isfinite(y)
        if bad.any():
            window = int(np.argwhere(bad)[0][0])
            peak = float(np.abs(x[window]).max())
            what = "logits" if self.task == "classify" else "forecasts"
            raise OfaError(f"window {window} overflows float32 in the engine (its largest |value| is {peak:.3g}); "
                           f"{what} would be NaN/inf: rescale the input (the model expects data like its "
                           f"training data)")
        return y

    def __repr__(self) -> str:
        c = self.config
        head = f"{c['n_classes']} classes" if self.task == "classify" else f"horizon {c['horizon']}"
        return (f"ofa.Model({self.path!r}: {self.scheme} {c['layout']} x{c['n_layers']}, d={c['d_model']}, seq_len {c['seq_len']}, "
                f"{head}, {c['n_channels']} channel(s))")


def load(path: str, threads: int = 1, max_arena_bytes: int | None = None) -> Model:
    """Load an exported model file into the engine. `max_arena_bytes` caps the scratch memory the file may
    ask for (default DEFAULT_MAX_ARENA_BYTES, or $OFA_MAX_ARENA_BYTES)."""
    return Model(path, threads=threads, max_arena_bytes=max_arena_bytes)


def infer(model: str | Model, x) -> np.ndarray:
    """Run an exported model. A forecaster: x (seq_len,), (seq_len, C) or (B, seq_len, C) float32 in data units;
    returns (horizon,), (horizon, C) or (B, horizon, C) in the same units. A classifier: x (C, seq_len) or
    (B, C, seq_len) float32, the fixed windows in data units (ofa.runtime.classifying.windows makes them from
    .ts cases); returns class logits (K,) or (B, K), class k named model.classes[k]
    (ofa.runtime.classifying.probabilities: their softmax)."""
    if not isinstance(model, Model):
        model = load(model)
    if not isinstance(x, np.ndarray):
        raise OfaError(f"x must be a numpy float32 array, got {type(x).__name__}")
    if x.dtype != np.float32:
        raise OfaError(f"x must be float32, got {x.dtype} (convert with x.astype(np.float32))")
    if model.task == "classify":
        return _classify(model, x)
    ndim = x.ndim
    if ndim == 1:
        if model.n_channels != 1:
            raise OfaError(f"x has shape {x.shape}: a 1-D window fits only a 1-channel model; this model has "
                           f"{model.n_channels} channels, pass (seq_len, {model.n_channels})")
        batch = x[None, :, None]
    elif ndim == 2:
        batch = x[None]
    elif ndim == 3:
        batch = x
    else:
        raise OfaError(f"x must have 1, 2 or 3 dimensions, got shape {x.shape}")
    if batch.shape[1:] != (model.seq_len, model.n_channels):
        raise OfaError(f"x has shape {x.shape}; this model needs (..., {model.seq_len}, {model.n_channels}) "
                       f"(seq_len, channels)")
    if not np.isfinite(batch).all():
        raise OfaError("x contains NaN or inf")
    y = model.run(np.ascontiguousarray(batch))
    if ndim == 1:
        return y[0, :, 0]
    return y[0] if ndim == 2 else y


def _classify(model: Model, x: np.ndarray) -> np.ndarray:
    if x.ndim not in (2, 3):
        raise OfaError(f"x must be one window (C, seq_len) or a batch (B, C, seq_len), got shape {x.shape}")
    batch = x[None] if x.ndim == 2 else x
    if batch.shape[1:] != (model.n_channels, model.seq_len) or len(batch) == 0:
        raise OfaError(f"x has shape {x.shape}; this classifier needs (..., {model.n_channels}, {model.seq_len}) "
                       f"(channels, seq_len)")
    if not np.isfinite(batch).all():
        raise OfaError("x contains NaN or inf")
    logits = model.run(np.ascontiguousarray(batch))
    return logits[0] if x.ndim == 2 else logits
