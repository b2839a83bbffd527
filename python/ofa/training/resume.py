"""The resume state of a training run: one safetensors file, no pickle.

    resume.safetensors   tensors: trainable parameters ("param.{i}"), optimiser state ("opt.{i}.{key}"),
                         torch's RNG state ("torch_rng"); metadata "resume": JSON of everything else
                         (loop state, configs, the optimiser's param groups, numpy's RNG state)

Opening it is as safe as opening any safetensors file: tensors are data and the rest is JSON, so a
stranger's checkpoint directory cannot run code through `--resume`. Written atomically (one file, so
the tensors and their metadata can never disagree).
"""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import save

from ..errors import OfaError
from ..fileio import atomic_write_bytes
from ..modelfile import json_value, parse_safetensors

FILENAME = "resume.safetensors"
FORMAT = "ofa-resume/1"
LEGACY = "resume.pt"  # the pickle-based format of ofa <= 0.1; never opened


def path_in(directory: str) -> str:
    return os.path.join(directory, FILENAME)


def save_state(path: str, params: list[torch.Tensor], optimizer: torch.optim.Optimizer, torch_rng: torch.Tensor,
               info: dict) -> None:
    """Write the trainable tensors, the optimiser and both RNGs; `info` must be JSON-serialisable."""
    opt = optimizer.state_dict()
    tensors = {f"param.{i}": p.detach().cpu().contiguous().clone() for i, p in enumerate(params)}
    scalars: dict[str, dict] = {}
    for index, entry in opt["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"opt.{index}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors["torch_rng"] = torch_rng.contiguous().clone()
    header = {"format": FORMAT, "n_params": len(params), "param_groups": opt["param_groups"],
              "opt_scalars": scalars, **info}
    metadata = {"resume": json.dumps(header)}
    data = save(tensors, metadata=metadata)
    atomic_write_bytes(path, data)


def load_state(path: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(info, tensors) from a resume file; OfaError for anything malformed."""
    try:
        with open(path, "rb") as f:
            data = f.read()  # read whole: a file rewritten while mapped would SIGBUS
        tensors, metadata = parse_safetensors(data, torch_tensors=True)
        info = json_value(metadata["resume"], "resume", max_int_digits=40)  # numpy's RNG state: 128-bit ints
    except (OSError, ValueError, KeyError) as exc:
        raise OfaError(f"--resume: unreadable resume state {path}: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise OfaError(f"--resume: {path} is not an ofa resume file of format {FORMAT}")
    return info, tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, info: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Load the optimiser state that save_state wrote, refusing one that does not fit `optimizer`."""
    state: dict[int, dict] = {}
    for name, tensor in tensors.items():
        if name.startswith("opt."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = tensor
    for index, entry in (info.get("opt_scalars") or {}).items():
        state.setdefault(int(index), {}).update(entry)
    groups = info.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise OfaError("--resume: the saved optimiser state does not match this model")
    for group in groups:
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError) as exc:
        raise OfaError(f"--resume: the saved optimiser state does not match this model: {exc}") from None


def restore(directory: str, params: list[torch.Tensor], optimizer: torch.optim.Optimizer, rng, same_settings) -> dict:
    """Continue a run from the resume state in `directory`: parameters, optimiser and both RNGs are set;
    returns the loop state. `same_settings(info)` says whether the saved configs match this run's."""
    path = path_in(directory)
    if not os.path.isfile(path):
        legacy = os.path.isfile(os.path.join(directory, LEGACY))
        raise OfaError(f"--resume: no resume state in {directory}" + (
            f" ({LEGACY} is the old pickle format, which ofa never opens: it could run code; start a new --out)"
            if legacy else ""))
    info, tensors = load_state(path)
    if not same_settings(info):
        raise OfaError(f"--resume: {directory} was started with different settings; start a new --out")
    saved = [tensors.get(f"param.{i}") for i in range(len(params))]
    if info.get("n_params") != len(params) or any(
            v is None or v.shape != p.shape or v.dtype != p.dtype for v, p in zip(saved, params)):
        raise OfaError(f"--resume: the saved parameters in {path} do not match this model")
    with torch.no_grad():
        for p, v in zip(params, saved):
            p.copy_(v)
    restore_optimizer(optimizer, info, tensors)
    try:
        rng.bit_generator.state = info["rng"]
        torch.set_rng_state(tensors["torch_rng"])
        return dict(info["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise OfaError(f"--resume: bad loop state in {path}: {exc}") from None
