"""Distil a trained One-for-All model into a student small enough for a microcontroller.

The teacher's backbone (MiniLM, d=384, 1536-wide feed-forward: about 1.8 MB of int8 weights per block)
does not fit a Cortex-M4's 1 MB of flash. The student keeps the teacher's pipeline (instance norm,
patches, input layer, positions, post-LN blocks, rank-16 LoRA head) on a narrow BERT-layout backbone
that is randomly initialised and trained whole, on targets that blend the truth with the teacher's
forecasts. It is an ordinary checkpoint: its backbone is saved inside it (`./backbone`), so `ofa eval`,
`ofa export --int8` and tools/emit_header.py take it unchanged.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np

from . import checkpoint
from ..errors import OfaError
from ..fileio import fsync_directory, remove_stale, temp_path
from .model import ModelConfig


@dataclass
class StudentConfig:
    width: int = 128        # d_model
    layers: int = 2
    heads: int = 4
    ff: int = 256           # feed-forward width
    truth_weight: float = 0.0  # loss target: w * truth + (1 - w) * teacher forecast (0: measured best, README)

    def check(self) -> None:
        for label in ("width", "layers", "heads", "ff"):
            value = getattr(self, label)
            if not isinstance(value, int) or value <= 0:
                raise OfaError(f"student {label} must be a positive integer, got {value!r}")
        if self.width % self.heads:
            raise OfaError(f"student width {self.width} is not a multiple of its {self.heads} heads")
        if not 0.0 <= self.truth_weight <= 1.0:
            raise OfaError(f"--truth-weight must be in [0, 1], got {self.truth_weight}")


def write_student_backbone(directory: str, sc: StudentConfig, n_positions: int, seed: int) -> None:
    """A randomly initialised BERT of the student's shape, saved like a downloaded model (atomically)."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    config = BertConfig(hidden_size=sc.width, num_hidden_layers=sc.layers, num_attention_heads=sc.heads,
                        intermediate_size=sc.ff, max_position_embeddings=n_positions, vocab_size=2,
                        type_vocab_size=1, hidden_act="gelu")
    torch.manual_seed(seed)
    model = BertModel(config, add_pooling_layer=False)
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    remove_stale(parent)
    staging = temp_path(directory, directory=True)
    old = None
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Writing model shards" on every detector training is noise
    try:
        model.save_pretrained(staging)
        if os.path.isdir(directory):
            old = temp_path(directory, directory=True)
            os.replace(directory, old)
        os.replace(staging, directory)
        fsync_directory(parent)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        shutil.rmtree(staging, ignore_errors=True)
        if old:
            shutil.rmtree(old, ignore_errors=True)


def teacher_forecasts(teacher_dir: str, threads: int = 0, backbone: str | None = None):
    """A function windows -> the teacher's forecasts (S, H) of every series, for train().

    The teacher runs in the C++ engine (its exported fp32 file, equal to the PyTorch model within
    1e-4, bench/parity.py): several times faster than PyTorch eager on a CPU, and no OpenMP spinning.
    """
    import torch

    from ..runtime import engine
    from ..export.merge import export

    meta = checkpoint.read_meta(teacher_dir)
    scaler = checkpoint.scaler_from(meta)
    workdir = tempfile.mkdtemp(prefix="ofa-teacher-")
    path = os.path.join(workdir, "teacher.ofa")
    export(teacher_dir, path, backbone=backbone)
    model = engine.load(path, threads=max(1, threads or torch.get_num_threads()))
    shutil.rmtree(workdir, ignore_errors=True)  # the engine holds the arrays

    def forecast(windows) -> np.ndarray:
        # Series i is channel i % C of window i // C: run whole windows, all channels at once.
        n_windows, channels, horizon = len(windows.starts), windows.n_channels, windows.horizon
        out = np.empty((n_windows, channels, horizon), np.float32)
        offsets = np.arange(windows.seq_len)
        for start in range(0, n_windows, 1024):
            starts = windows.starts[start:start + 1024]
            scaled = windows.data[starts[:, None] + offsets[None, :]]  # (b, L, C)
            y = model.run(np.ascontiguousarray(scaler.inverse(scaled)))
            out[start:start + len(starts)] = scaler.transform(y).transpose(0, 2, 1)
        return out.reshape(n_windows * channels, horizon)

    return forecast


def distill(teacher_dir: str, data: str, out: str, student: StudentConfig | None = None, train_cfg=None,
            log=print, resume: bool = False, teacher_backbone: str | None = None) -> dict:
    """Train a student on `data` against the teacher in `teacher_dir`; write its checkpoint to `out`.

    teacher_backbone: the teacher's backbone, when its ofa.json names one outside its directory."""
    from .loop import TrainConfig, train

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank would write the student backbone
        raise OfaError("ofa distill runs in one process; start it without torchrun")
    sc = student or StudentConfig()
    sc.check()
    tc = train_cfg or TrainConfig()
    teacher_meta = checkpoint.read_meta(teacher_dir)
    tc.split = teacher_meta["data"].get("split", "auto")  # the teacher's train / val / test
    tm = teacher_meta["model"]
    target = teacher_meta["data"].get("target")
    mc = ModelConfig(backbone="./backbone", layers=sc.layers, seq_len=tm["seq_len"], horizon=tm["horizon"],
                     patch=tm["patch"], stride=tm["stride"], rank=tm["rank"], alpha=tm["alpha"],
                     train="all", head_base="zero", linear_path=tm.get("linear_path", "none"))
    mc.check()
    if os.path.abspath(out) == os.path.abspath(teacher_dir):
        raise OfaError("--out must differ from --teacher")
    if not resume:
        write_student_backbone(os.path.join(out, "backbone"), sc, mc.n_patches, tc.seed)
    elif not os.path.isdir(os.path.join(out, "backbone")):
        raise OfaError(f"--resume: {out} holds no student backbone")
    log(f"student: {sc.layers} block(s), width {sc.width}, {sc.heads} heads, feed-forward {sc.ff}; "
        f"target = {sc.truth_weight:g} truth + {1 - sc.truth_weight:g} teacher ({teacher_dir})")
    return train(data, out, mc, tc, target=target, resume=resume, log=log,
                 teacher=teacher_forecasts(teacher_dir, tc.threads, teacher_backbone), truth_weight=sc.truth_weight,
                 extra_meta={"distilled_from": {"teacher": os.path.abspath(teacher_dir),
                                                "truth_weight": sc.truth_weight,
                                                "student": {"width": sc.width, "layers": sc.layers,
                                                            "heads": sc.heads, "ff": sc.ff}}})
