"""Inference from an exported model file: the C++ engine (`engine`), forecasts after a CSV's last row
(`forecasting`) and what a file is (`info`). No torch: a test imports this package with torch made
unimportable (a checkpoint directory given to `forecast` is the one path that loads torch, lazily)."""
from .engine import Model, infer, load

__all__ = ["Model", "infer", "load"]
