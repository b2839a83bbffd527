"""From a trained checkpoint to a model file: the merged fp32 export (`merge`) and the int8 quantiser
(`quantize`). The file format itself is `ofa.modelfile`, which the runtime reads too."""
from .merge import export, quantize_model_file

__all__ = ["export", "quantize_model_file"]
