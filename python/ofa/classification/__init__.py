"""Time-series classification data: the UEA / sktime `.ts` reader (`uea`), torch-free.

The classifier itself (frozen backbone, rsLoRA, linear head) is ofa.training.classifier."""
from .uea import UEAData, read_ts

__all__ = ["UEAData", "read_ts"]
