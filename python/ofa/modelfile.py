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


MAX_JSON_DEPTH = 32  # metadata JSON nested deeper than this is refused (and never recursed into)


def parse_safetensors(data: bytes, torch_tensors: bool = False) -> tuple[dict, dict[str, str]]:
    """(tensors, string metadata) of safetensors bytes held in memory; ValueError names what is wrong.
    Tensors are numpy arrays, or torch tensors with `torch_tensors`."""
    if torch_tensors:
        from safetensors.torch import load
    else:
        from safetensors.numpy import load

    if len(data) < 8:
        raise ValueError("shorter than a safetensors header")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise ValueError(f"header length {size} exceeds the file")
    try:
        header = json_value(data[8:8 + size].decode("utf-8"), "header")
        tensors = load(data)  # checks offsets, dtypes and shapes against the data
    except UnicodeDecodeError:
        raise ValueError("header is not UTF-8") from None
    except Exception as exc:  # safetensors raises its own error types for bad headers / sizes
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ is not a map of strings")
    return tensors, metadata


def json_value(text: str, what: str, max_int_digits: int = 19):
    """json.loads that refuses deep nesting and huge numbers with ValueError instead of crashing later.
    Integers may have up to `max_int_digits` digits (19: every int64)."""
    import json

    depth = peak = 0
    in_string = escaped = False
    for ch in text:  # nesting depth, outside strings, before the parser recurses
        if in_string:
            escaped, in_string = (False, in_string) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            peak = max(peak, depth)
        elif ch in "]}":
            depth -= 1
    if peak > MAX_JSON_DEPTH:
        raise ValueError(f"{what}: JSON nested {peak} deep (at most {MAX_JSON_DEPTH})")
    try:
        return json.loads(text, parse_int=lambda digits: _bounded_int(digits, max_int_digits))
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{what}: bad JSON ({exc})") from None


def _bounded_int(text: str, max_digits: int) -> int:
    if len(text.lstrip("-")) > max_digits:
        raise ValueError(f"integer {text[:24]}... out of range")
    return int(text)


def metadata_json(metadata: dict, key: str, path, kind: type, default=None):
    """metadata[key] parsed as JSON of type `kind` (None allowed where default is None and absent)."""
    raw = metadata.get(key)
    if raw is None:
        if default is not None or kind is type(None):
            return default
        raise OfaError(f"{path}: metadata lacks {key!r}")
    try:
        value = json_value(raw, key)
    except ValueError as exc:
        raise OfaError(f"{path}: bad metadata {exc}") from None
    if value is not None and not isinstance(value, kind):
        raise OfaError(f"{path}: metadata {key!r} must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def read_model_file(path: str, schemes: tuple[str, ...] = ("fp32",)) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of a model file, after format, version, checksum and weight-scheme checks.

    `schemes`: the weight schemes (metadata dtype) the caller can run; fp32-only callers keep the
    default, so an int8 file reaching them is refused by name.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise OfaError(f"model file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()  # into memory: a file rewritten while mapped would kill the process (SIGBUS)
    except OSError as exc:
        raise OfaError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        tensors, metadata = parse_safetensors(data)
    except ValueError as exc:
        raise OfaError(f"{path}: not a readable model file ({exc})") from None
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
    from .reference.int8_ops import SHIFT_MAX, SHIFT_MIN

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
        elif name.endswith(".eps") and ((t < 0) | (t > 2 ** 62)).any():
            raise OfaError(f"{path}: {name}: must be in [0, 2^62] (the integer layer norm adds it in int64)")
