"""A checkpoint is a directory that rebuilds the trained forecaster exactly, offline.

    adapter_config.json, adapter_model.safetensors   PEFT's own files (PeftModel.from_pretrained loads them)
    frozen.safetensors                               frozen non-backbone tensors that are not recoverable
                                                     otherwise: random in_layer / out_layer bases
    ofa.json                                         model config, backbone fingerprint, scaler, sizes, metrics
    resume.safetensors                               optimiser and loop state of the last finished epoch
                                                     (ofa.resume: tensors + JSON, no pickle)

Every file is written to a temporary name and renamed; ofa.json goes last, so a directory without
it (or with a stale one) is never mistaken for a finished checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import backbone as backbones
from .data import Scaler
from .errors import OfaError
from .fileio import atomic_write, atomic_write_json  # noqa: F401  (re-exported for callers)
from .model import ModelConfig, OneForAll, base_of, lora_config

FORMAT = "ofa-checkpoint/1"


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
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def in_layer_of(base: OneForAll) -> torch.nn.Linear:
    """The in_layer actually used: PEFT's trainable copy when it trains, else the plain module."""
    layer = base.in_layer
    return layer.modules_to_save["default"] if hasattr(layer, "modules_to_save") else layer


def save(directory: str, model, meta: dict) -> None:
    """Write the adapters, frozen bases and ofa.json (last)."""
    os.makedirs(directory, exist_ok=True)
    staging = tempfile.mkdtemp(dir=directory, prefix=".adapter-")
    try:
        model.save_pretrained(staging)
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    frozen = frozen_tensors(model)
    frozen_path = os.path.join(directory, "frozen.safetensors")
    if frozen:
        atomic_write(frozen_path, lambda tmp: save_file(frozen, tmp))
    elif os.path.exists(frozen_path):
        os.unlink(frozen_path)
    atomic_write_json(os.path.join(directory, "ofa.json"), {"format": FORMAT, **meta})


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
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise OfaError(f"{path}: not an ofa checkpoint of format {FORMAT}")
    for key in ("model", "scaler", "backbone_fingerprint"):
        if key not in meta:
            raise OfaError(f"{path}: missing field {key!r}")
    return meta


def load(directory: str):
    """Rebuild (model, meta) from a checkpoint directory; the model is in eval mode."""
    import warnings

    from peft import PeftModel, get_peft_model_state_dict

    meta = read_meta(directory)
    try:
        cfg = ModelConfig(**meta["model"])
    except TypeError as exc:
        raise OfaError(f"{directory}: bad model config: {exc}") from None
    cfg.check()
    backbone = backbones.load(cfg.backbone, cfg.layers, root=directory)
    if backbones.fingerprint(backbone.model) != meta["backbone_fingerprint"]:
        raise OfaError(f"{directory}: backbone {cfg.backbone!r} found here differs from the one the checkpoint "
                       f"was trained with (fingerprint mismatch)")
    base = OneForAll(cfg, backbone)
    frozen_path = os.path.join(directory, "frozen.safetensors")
    try:
        frozen = load_file(frozen_path) if os.path.exists(frozen_path) else {}
        with torch.no_grad():
            for name, tensor in frozen.items():
                module, attr = name.split(".")
                target = getattr(getattr(base, module), attr)
                if target.shape != tensor.shape:
                    raise OfaError(f"{frozen_path}: {name} has shape {tuple(tensor.shape)}, "
                                   f"the model needs {tuple(target.shape)}")
                target.copy_(tensor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = PeftModel.from_pretrained(base, directory, config=lora_config(cfg, backbone))
            # from_pretrained tolerates missing keys; insist that the adapter file holds exactly our tensors.
            saved = load_file(os.path.join(directory, "adapter_model.safetensors"))
            expected = get_peft_model_state_dict(model)
            if set(saved) != set(expected):
                odd = sorted(set(saved) ^ set(expected))
                raise OfaError(f"{directory}: adapter tensors do not match the model config (e.g. {odd[0]})")
    except OfaError:
        raise
    except Exception as exc:
        raise OfaError(f"{directory}: cannot load adapters: {exc}") from None
    model.eval()
    return model, meta


def scaler_from(meta: dict) -> Scaler:
    return Scaler(np.asarray(meta["scaler"]["mean"], dtype=np.float32),
                  np.asarray(meta["scaler"]["std"], dtype=np.float32))
