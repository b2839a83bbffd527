"""The exported model file: safetensors tensors + string metadata, and the checks made on loading it.

Metadata: format ("ofa-model"), format_version, dtype (weight scheme), config (JSON of the engine's
config), backbone, channels, target, dataset, model (training config), checksum (sha256 over the
rest of the metadata and every tensor). No torch here: inference-only users do not import it.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from .errors import OfaError

FORMAT = "ofa-model"
SCHEMES = ("fp32", "int8")
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = {1}


def checksum(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> str:
    """sha256 over the metadata (but the checksum itself) and every tensor's name, dtype, shape and bytes.

    The loader recomputes it, so a flipped bit anywhere in the file, header included, is caught.
    """
    digest = hashlib.sha256()
    for key in sorted(k for k in metadata if k != "checksum"):
        digest.update(f"{key}={metadata[key]}\n".encode())
    for name in sorted(tensors):
        t = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{t.dtype.str}|{list(t.shape)}|".encode())
        digest.update(t.tobytes())
    return digest.hexdigest()


def read_model_file(path: str, schemes: tuple[str, ...] = ("fp32",)) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a model file, after format, version, checksum and weight-scheme checks.

    `schemes`: the weight schemes (metadata dtype) the caller can run; fp32-only callers keep the
    default, so an int8 file reaching them is refused by name.
    """
    from safetensors import safe_open

    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise OfaError(f"model file not found: {path}")
    try:
        with safe_open(path, "np") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers / sizes
        raise OfaError(f"{path}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if metadata.get("format") != FORMAT:
        raise OfaError(f"{path}: not an ofa model file (format {metadata.get('format')!r})")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise OfaError(f"{path}: bad format version {metadata.get('format_version')!r}") from None
    if version not in SUPPORTED_VERSIONS:
        raise OfaError(f"{path}: unknown format version {version} (this ofa reads {sorted(SUPPORTED_VERSIONS)})")
    if metadata.get("checksum") != checksum(tensors, metadata):
        raise OfaError(f"{path}: checksum mismatch: the file is damaged or was modified after export")
    scheme = metadata.get("dtype")
    if scheme not in SCHEMES:
        raise OfaError(f"{path}: unknown weight scheme {scheme!r} (this ofa reads {', '.join(SCHEMES)})")
    if scheme not in schemes:
        raise OfaError(f"{path}: is an {scheme} model file; this needs {' or '.join(schemes)} "
                       f"(ofa.load / ofa eval --model run int8 files in the int8 engine)")
    if scheme == "int8":
        check_int8_tensors(path, tensors)
    return tensors, metadata


def check_int8_tensors(path: str, tensors: dict[str, np.ndarray]) -> None:
    """Quantisation parameters in the ranges the integer kernels need, named when they are not.

    The C engine checks the same ranges (OFA_ERR_BAD_QUANT); this names the tensor.
    """
    from .int8_ops import SHIFT_MAX, SHIFT_MIN

    for name, t in tensors.items():
        if name.endswith((".requant", ".narrow")):
            if t.dtype != np.int32 or t.ndim != 2 or t.shape[0] != 3:
                raise OfaError(f"{path}: {name} must be an int32 (3, n) requantisation table, got {t.dtype} {t.shape}")
            mult, shift = t[0].astype(np.int64), t[1]
            ok = (mult == 0) | ((np.abs(mult) >= 2 ** 30) & (np.abs(mult) < 2 ** 31))
            if not ok.all():
                raise OfaError(f"{path}: {name}: multiplier {int(mult[~ok][0])} is not a normalised Q31 value "
                               f"(0 or |m| in [2^30, 2^31))")
            if ((shift < SHIFT_MIN) | (shift > SHIFT_MAX)).any():
                raise OfaError(f"{path}: {name}: shift out of range [{SHIFT_MIN}, {SHIFT_MAX}]")
        elif name == "patch.inv_scale" and not (np.isfinite(t).all() and (t > 0).all()):
            raise OfaError(f"{path}: {name}: scale must be finite and > 0, got {t.tolist()}")
        elif name == "head.out_scale" and not np.isfinite(t).all():
            raise OfaError(f"{path}: {name}: scales must be finite")
        elif name.endswith(".eps") and (t < 0).any():
            raise OfaError(f"{path}: {name}: must be >= 0")
