"""A checkpoint is a directory that rebuilds the trained forecaster exactly, offline.

    ofa.json                    the commit record: model config, backbone fingerprint, scaler, sizes,
                                metrics, and the names, sizes and sha256 of the two weight files below
    adapters-<g>.safetensors    PEFT's adapter state dict (LoRA tensors and trained module copies)
    frozen-<g>.safetensors      frozen non-backbone tensors a rebuild cannot recompute (random in_layer /
                                out_layer bases, the fitted linear path); absent when there are none
    resume.safetensors          optimiser and loop state of the last finished epoch (ofa.training.resume)

A save writes generation g+1's weight files, then replaces ofa.json (atomic, fsync'd), then deletes
older generations. A kill at any point leaves the previous finished checkpoint or the new one, never
a mix: ofa.json only ever names files that were complete before it was written. Weight file names in
ofa.json must match WEIGHT_FILE, so a crafted record cannot point outside the directory.
Format 1 (PEFT's adapter_model.safetensors + frozen.safetensors, no record) still loads.
"""
from __future__ import annotations

import hashlib
import json
import os
import re

import numpy as np
import torch
from safetensors.torch import load as deserialise
from safetensors.torch import save as serialise

from . import backbone as backbones
from ..data import Scaler
from ..errors import OfaError
from ..fileio import atomic_write, atomic_write_bytes, atomic_write_json  # noqa: F401 (re-exported)
from .model import ModelConfig, OneForAll, base_of, lora_config

FORMAT = "ofa-checkpoint/2"
FORMAT_1 = "ofa-checkpoint/1"
WEIGHT_FILE = re.compile(r"(adapters|frozen)-(\d{1,12})\.safetensors")
LEGACY_FILES = ("adapter_config.json", "adapter_model.safetensors", "frozen.safetensors")


def frozen_tensors(model) -> dict[str, torch.Tensor]:
    """Tensors outside the backbone and the adapters whose values a rebuild cannot recompute."""
    base = base_of(model)
    out = {}
    if base.cfg.train == "lora":
        out["in_layer.weight"] = in_layer_of(base).weight
        out["in_layer.bias"] = in_layer_of(base).bias
    if base.cfg.head_base == "random":
        out["out_layer.weight"] = base.out_layer.base_layer.weight
        out["out_layer.bias"] = base.out_layer.base_layer.bias
    if base.cfg.linear_path == "ridge":  # fitted before training, fixed since: not in PEFT's adapter file
        out["linear_path.weight"] = base.linear_path.weight
        out["linear_path.bias"] = base.linear_path.bias
    return {k: v.detach().cpu().contiguous().clone() for k, v in out.items()}


def in_layer_of(base: OneForAll) -> torch.nn.Linear:
    """The in_layer actually used: PEFT's trainable copy when it trains, else the plain module."""
    layer = base.in_layer
    return layer.modules_to_save["default"] if hasattr(layer, "modules_to_save") else layer


def _generation(directory: str) -> int:
    """One more than any weight file generation present (committed or left by a kill)."""
    found = [int(m[2]) for m in map(WEIGHT_FILE.fullmatch, os.listdir(directory)) if m]
    return max(found, default=0) + 1


def save(directory: str, model, meta: dict, frozen: dict | None = None) -> None:
    """Write the weight files of a new generation, then ofa.json naming them (the commit), then prune.
    `frozen`: the frozen tensors to keep (default: a forecaster's, frozen_tensors)."""
    from peft import get_peft_model_state_dict

    os.makedirs(directory, exist_ok=True)
    g = _generation(directory)  # atomic_write_bytes removes killed writers' temp files first
    weights = {"adapters": {k: v.detach().cpu().contiguous().clone()
                            for k, v in get_peft_model_state_dict(model).items()},
               "frozen": frozen_tensors(model) if frozen is None else frozen}
    files = {}
    for role, tensors in weights.items():
        if not tensors:
            continue
        name = f"{role}-{g}.safetensors"
        data = serialise(tensors)
        atomic_write_bytes(os.path.join(directory, name), data)
        files[role] = {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    atomic_write_json(os.path.join(directory, "ofa.json"), {"format": FORMAT, **meta, "files": files})
    keep = {f["name"] for f in files.values()}
    for name in os.listdir(directory):
        if (WEIGHT_FILE.fullmatch(name) and name not in keep) or name in LEGACY_FILES:
            os.unlink(os.path.join(directory, name))


def update_meta(directory: str, changes: dict) -> dict:
    """Rewrite a finished checkpoint's ofa.json with `changes` (not the weight record); returns it."""
    meta = read_meta(directory)
    if "files" in changes or "format" in changes:
        raise ValueError("update_meta cannot change the weight record")
    meta.update(changes)
    atomic_write_json(os.path.join(directory, "ofa.json"), meta)
    return meta


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()  # into memory, hashed and parsed from the same bytes (no map to SIGBUS)


def weight_tensors(directory: str, meta: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{"adapters": tensors, "frozen": tensors ({} when absent)}, each file checked against its record."""
    if meta["format"] == FORMAT_1:
        frozen = os.path.join(directory, "frozen.safetensors")
        return {"adapters": deserialise(_read(os.path.join(directory, "adapter_model.safetensors"))),
                "frozen": deserialise(_read(frozen)) if os.path.exists(frozen) else {}}
    record = meta.get("files")
    if not isinstance(record, dict) or "adapters" not in record or set(record) - {"adapters", "frozen"}:
        raise OfaError(f"{directory}/ofa.json: bad weight record {record!r}")
    out = {"frozen": {}}
    for role, entry in record.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        match = WEIGHT_FILE.fullmatch(name) if isinstance(name, str) else None
        if match is None or match[1] != role:
            raise OfaError(f"{directory}/ofa.json: {role} file {name!r} is not a weight file name of this format")
        path = os.path.join(directory, name)
        if not os.path.isfile(path) or os.path.islink(path):
            raise OfaError(f"{directory}: {name} named by ofa.json is missing")
        data = _read(path)
        if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise OfaError(f"{directory}: {name} does not match the size and sha256 ofa.json records for it")
        out[role] = deserialise(data)
    return out


def read_meta(directory: str) -> dict:
    path = os.path.join(directory, "ofa.json")
    if not os.path.isdir(directory):
        raise OfaError(f"checkpoint directory not found: {directory}")
    if not os.path.isfile(path):
        raise OfaError(f"{directory} is not a finished checkpoint (no ofa.json)")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise OfaError(f"unreadable checkpoint metadata {path}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, FORMAT_1):
        raise OfaError(f"{path}: not an ofa checkpoint of format {FORMAT} (or {FORMAT_1})")
    for key in ("model", "scaler", "backbone_fingerprint"):
        if key not in meta:
            raise OfaError(f"{path}: missing field {key!r}")
    return meta


def recorded_backbone(directory: str, meta: dict, cfg, backbone: str | None = None):
    """The backbone a checkpoint names (cfg.backbone, which must stay inside `directory`), or the one
    the caller gives; either way its fingerprint must be the one the checkpoint was trained with."""
    if backbone is None:
        backbones.check_recorded(cfg.backbone, directory)
    found = backbones.load(backbone or cfg.backbone, cfg.layers, root=directory)
    if backbones.fingerprint(found.model) != meta["backbone_fingerprint"]:
        raise OfaError(f"{directory}: backbone {cfg.backbone!r} found here differs from the one the checkpoint "
                       f"was trained with (fingerprint mismatch)")
    return found


def load(directory: str, backbone: str | None = None):
    """Rebuild (model, meta) from a checkpoint directory; the model is in eval mode.

    `backbone`: where to find the backbone, given by the user; by default the one ofa.json names, if
    it stays inside the directory (backbone.check_recorded). Either way its fingerprint must match."""
    import warnings

    from peft import get_peft_model

    meta = read_meta(directory)
    if meta.get("task", "forecast") != "forecast":
        raise OfaError(f"{directory} is a {meta['task']!r} checkpoint, not a forecaster (ofa eval scores it on "
                       f"its own kind of data)")
    try:
        cfg = ModelConfig(**meta["model"])
    except TypeError as exc:
        raise OfaError(f"{directory}: bad model config: {exc}") from None
    cfg.check()
    backbone = recorded_backbone(directory, meta, cfg, backbone)
    base = OneForAll(cfg, backbone)
    try:
        weights = weight_tensors(directory, meta)
        frozen = weights["frozen"]
        with torch.no_grad():
            for name, tensor in frozen.items():
                module, attr = name.split(".")
                target = getattr(getattr(base, module), attr)
                if target.shape != tensor.shape:
                    raise OfaError(f"{directory}: frozen tensor {name} has shape {tuple(tensor.shape)}, "
                                   f"the model needs {tuple(target.shape)}")
                target.copy_(tensor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PEFT warns that embedding LoRA ignores dropout: intended
            model = get_peft_model(base, lora_config(cfg, backbone))
        restore_adapters(model, weights["adapters"], directory)
    except OfaError:
        raise
    except Exception as exc:
        raise OfaError(f"{directory}: cannot load adapters: {exc}") from None
    model.eval()
    return model, meta


def restore_adapters(model, saved: dict, directory: str) -> None:
    """Put a checkpoint's adapter tensors into a fresh PEFT model: exactly the model's own tensors, none missing,
    none extra, each of its shape; the model is then frozen (for inference, as PeftModel.from_pretrained)."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    expected = get_peft_model_state_dict(model)
    if set(saved) != set(expected):
        odd = sorted(set(saved) ^ set(expected))
        raise OfaError(f"{directory}: adapter tensors do not match the model config (e.g. {odd[0]})")
    for key, tensor in saved.items():
        if tensor.shape != expected[key].shape:
            raise OfaError(f"{directory}: adapter tensor {key} has shape {tuple(tensor.shape)}, "
                           f"the model needs {tuple(expected[key].shape)}")
    set_peft_model_state_dict(model, saved)
    model.requires_grad_(False)


def scaler_from(meta: dict) -> Scaler:
    return Scaler(np.asarray(meta["scaler"]["mean"], dtype=np.float32),
                  np.asarray(meta["scaler"]["std"], dtype=np.float32))
