"""ofa: One-for-All time-series forecasting — frozen pre-trained backbone, rsLoRA adapters, C++ edge engine.

Training and evaluation import torch lazily, so `import ofa` stays cheap for inference-only users.
"""
from .errors import OfaError

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Train adapters; see ofa.train.train."""
    from .train import train as _train

    return _train(*args, **kwargs)


def evaluate(*args, **kwargs):
    """Score a checkpoint or an exported model; see ofa.evaluate.evaluate."""
    from .evaluate import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def load(path, threads: int = 1, max_arena_bytes: int | None = None):
    """Load an exported model file into the C++ engine; see ofa.engine.load."""
    from .engine import load as _load

    return _load(path, threads=threads, max_arena_bytes=max_arena_bytes)


def infer(model, x):
    """Forecast with an exported model (path or loaded); see ofa.engine.infer."""
    from .engine import infer as _infer

    return _infer(model, x)


__all__ = ["OfaError", "train", "evaluate", "load", "infer", "__version__"]
