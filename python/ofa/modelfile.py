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


def read_model_file(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a model file, after format, version and checksum checks."""
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
    if metadata.get("dtype") != "fp32":
        raise OfaError(f"{path}: weight scheme {metadata.get('dtype')!r} is not supported by this engine (fp32)")
    return tensors, metadata
