"""ofa: One-for-All time-series forecasting — frozen pre-trained backbone, rsLoRA adapters, C++ edge engine.

Training and evaluation import torch lazily, so `import ofa` stays cheap for inference-only users.
"""
from .errors import OfaError

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Train adapters; see ofa.training.loop.train."""
    from .training.loop import train as _train

    return _train(*args, **kwargs)


def evaluate(*args, **kwargs):
    """Score a checkpoint or an exported model; see ofa.evaluation.evaluate."""
    from .evaluation import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def load(path, threads: int = 1, max_arena_bytes: int | None = None):
    """Load an exported model file into the C++ engine; see ofa.runtime.engine.load."""
    from .runtime.engine import load as _load

    return _load(path, threads=threads, max_arena_bytes=max_arena_bytes)


def infer(model, x):
    """Forecast with an exported model (path or loaded); see ofa.runtime.engine.infer."""
    from .runtime.engine import infer as _infer

    return _infer(model, x)


def forecast(*args, **kwargs):
    """Forecast the rows after the last row of a CSV, with dates; see ofa.runtime.forecasting.forecast."""
    from .runtime.forecasting import forecast as _forecast

    return _forecast(*args, **kwargs)


def __getattr__(name):
    """ModelConfig and TrainConfig at the package level, imported (with torch) only when asked for."""
    if name == "ModelConfig":
        from .training.model import ModelConfig
        return ModelConfig
    if name == "TrainConfig":
        from .training.loop import TrainConfig
        return TrainConfig
    raise AttributeError(f"module 'ofa' has no attribute {name!r}")


# The functions train / evaluate / forecast live in modules named training / evaluation / forecasting:
# a submodule named like a package attribute replaces that attribute when it is imported
# (`from ofa.train import ...` used to turn ofa.train into a module).
__all__ = ["OfaError", "train", "evaluate", "forecast", "load", "infer", "ModelConfig", "TrainConfig", "__version__"]
