"""One-for-All classification: the forecaster's frozen backbone and rsLoRA adapters, with a linear class head.

    case (C, n) -> fixed window x (C, L): resampled onto L steps (or padded with its last value)
    -> per-channel norm: (x - m) / s with the training split's channel mean m and std s ("global"), or
       per case and channel ("instance", RevIN without the de-norm) -> C univariate series
    -> replication pad + patches (C, N, P) -> tokens: tokens "channel", C sequences of N tokens of P
       values; "joined" (GPT4TS), one sequence whose token n holds patch n of every channel, value p*C + c
    -> in_layer -> + positions (rsLoRA) -> first `layers` frozen blocks
    -> states h (S, N, d), S = C or 1 sequences -> f = h.ravel() (pool "flatten"; "mean": h.mean(N).ravel())
    -> head (one linear layer) -> class logits (K,)

The head is one plain linear layer on one flattened vector, so it exports as it is (README,
"Classification"): f[s*N*d + n*d + j] = h[s, n, j] for sequence s, patch n, width j. Pool "mean" is the
same linear map with the weight W[k, s*d + j] / N repeated over n, so it exports the same way. With norm
"instance+stats" 2C values follow the states: the C instance means (mu - m) / s, then the C log(sd / s).
Only the LoRA tensors on the position table, the input layer and the head train; the backbone is frozen.
Every choice here (lengths, norm, pooling, patch, lr, blocks) was made on a validation split of the
train file, never on its test file (README, "Classification"). The regularisers (mixup, label smoothing,
a moving average of the weights, keeping the schedule's last epoch) default to off, and tokens to
"channel"; JapaneseVowels' joined tokens came from 5-fold cross-validation of its train file
(bench/classification.py --cv), where they also beat every regulariser.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from . import backbone as backbones
from . import checkpoint
from ..classification import uea
from ..classification.uea import LENGTHS, UEAData, channel_stats, read_ts, relabel
from ..data import n_patches
from ..errors import OfaError
from ..runtime.classifying import accuracy_record
from .model import REVIN_EPS, with_adapters

TASK = "classify"
NORMS = ("instance", "instance+stats", "global")
POOLS = ("flatten", "mean")                   # all patch states to the head / their mean per channel
TOKENS = ("channel", "joined")                # a token per patch of each channel / per patch of all channels
MAX_TOKEN_WIDTH = 1 << 16                     # the engine's bound on a dimension (csrc/core/config.cpp)


def auto_patch(seq_len: int) -> tuple[int, int]:
    """Patch and stride from the window length: the largest power of two up to L/6 (2 to 16), stride half
    of it, so a window gives about 12 patches: L 26 (JapaneseVowels) -> 4/2, L 100 (BasicMotions) -> 16/8."""
    patch = 2 ** int(math.log2(max(seq_len / 6, 2)))
    patch = min(patch, 16)
    return patch, patch // 2


@dataclass
class ClassifierConfig:
    classes: list = field(default_factory=list)   # class names, in the train file's @classLabel order
    channels: int = 1
    seq_len: int = 0              # the window every case is brought to (0: the longest training case)
    backbone: str = "minilm"
    layers: int | None = 2
    patch: int = 0                # 0: auto_patch(seq_len)
    stride: int = 0
    rank: int = 16
    alpha: float = 16.0
    lora_dropout: float = 0.01
    lengths: str = "resample"     # JapaneseVowels validation: resample 100% (loss 0.015), pad 98.1% (0.306)
    norm: str = "global"          # global 100%, instance+stats 81.5%, instance 81.5% (README, "Classification")
    pool: str = "flatten"         # flatten 100%, mean 96.3% (BasicMotions validates mean: bench/classification.py)
    head_dropout: float = 0.1     # GPT4TS's dropout; not screened
    tokens: str = "channel"       # "joined": GPT4TS's token, patch n of every channel, index p*C + c
    backbone_dropout: bool = True

    def check(self) -> None:
        if len(self.classes) < 2:
            raise OfaError(f"a classifier needs at least two classes, got {len(self.classes)}")
        for label in ("channels", "seq_len", "patch", "stride", "rank"):
            value = getattr(self, label)
            if not isinstance(value, int) or value <= 0:
                raise OfaError(f"{label} must be a positive integer, got {value!r}")
        if self.patch > self.seq_len:
            raise OfaError(f"patch ({self.patch}) must not exceed the window of {self.seq_len} steps")
        for label, allowed in (("lengths", LENGTHS), ("norm", NORMS), ("pool", POOLS), ("tokens", TOKENS)):
            if getattr(self, label) not in allowed:
                raise OfaError(f"{label} must be one of {allowed}, got {getattr(self, label)!r}")
        if self.token_width > MAX_TOKEN_WIDTH:
            raise OfaError(f"a joined token of {self.patch} x {self.channels} values exceeds the engine's "
                           f"{MAX_TOKEN_WIDTH:,}; use --tokens channel or a shorter --patch")

    @property
    def n_patches(self) -> int:
        return n_patches(self.seq_len, self.patch, self.stride)

    @property
    def sequences(self) -> int:
        """Token sequences per case: one per channel, or one when joined (the engine's ofa_window_sequences)."""
        return 1 if self.tokens == "joined" else self.channels

    @property
    def token_width(self) -> int:
        """Values per token, the input layer's depth: P, or P*C when joined (the engine's ofa_token_width)."""
        return self.patch * (self.channels if self.tokens == "joined" else 1)


class Classifier(nn.Module):
    """The base model PEFT wraps: in_layer and head are its own; the rest is the frozen backbone."""

    def __init__(self, cfg: ClassifierConfig, backbone: backbones.Backbone, mean, std):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        if cfg.n_patches > backbone.max_positions:
            raise OfaError(f"{cfg.n_patches} patches exceed the {backbone.max_positions} positions of backbone "
                           f"{cfg.backbone!r}; use a larger --patch / --stride")
        d = backbone.d_model
        self.backbone = backbone.model
        self.in_layer = nn.Linear(cfg.token_width, d)
        tokens = cfg.n_patches if cfg.pool == "flatten" else 1
        features = cfg.sequences * tokens * d + (2 * cfg.channels if cfg.norm == "instance+stats" else 0)
        self.head = nn.Linear(features, len(cfg.classes))
        self.dropout = nn.Dropout(cfg.head_dropout)
        # The training cases' per-channel mean and std (checkpoint "scaler"), not trained.
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32), persistent=False)
        self.register_buffer("position_ids", torch.arange(cfg.n_patches), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, L) in the data's units -> the head's input f (B, F) (layout: module docstring)."""
        cfg, (batch, channels, _) = self.cfg, x.shape
        m, s = self.mean[:, None], self.std[:, None]
        if cfg.norm == "global":
            u = (x - m) / s
        else:
            mu = x.mean(dim=2, keepdim=True)
            sd = torch.sqrt(x.var(dim=2, keepdim=True, unbiased=False) + REVIN_EPS)
            u = (x - mu) / sd
        series = u.reshape(batch * channels, -1)
        padded = torch.cat([series, series[:, -1:].expand(-1, cfg.stride)], dim=1)
        patches = padded.unfold(dimension=1, size=cfg.patch, step=cfg.stride)          # (B*C, N, P)
        if cfg.tokens == "joined":   # (B, N, P*C), GPT4TS's rearrange 'b m n p -> b n (p m)'
            patches = patches.reshape(batch, channels, cfg.n_patches, cfg.patch).permute(0, 2, 3, 1)
            patches = patches.reshape(batch, cfg.n_patches, cfg.token_width)
        position_ids = self.position_ids.unsqueeze(0).expand(patches.shape[0], -1)
        h = self.backbone(inputs_embeds=self.in_layer(patches), position_ids=position_ids).last_hidden_state
        h = h.reshape(batch, -1, cfg.n_patches, h.shape[-1])   # (B, C or 1, N, d)
        if cfg.pool == "mean":
            h = h.mean(dim=2)
        f = h.reshape(batch, -1)
        if cfg.norm == "instance+stats":
            f = torch.cat([f, ((mu - m) / s).reshape(batch, -1), torch.log(sd / s).reshape(batch, -1)], dim=1)
        return f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, L) -> logits (B, K)."""
        return self.head(self.dropout(self.features(x)))


def lora_config(cfg: ClassifierConfig, backbone: backbones.Backbone):
    """Gaussian rsLoRA on the position table (as the forecaster's); the input layer and the head train whole."""
    from peft import LoraConfig

    return LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, use_rslora=True, init_lora_weights="gaussian",
                      lora_dropout=cfg.lora_dropout, target_modules=[backbone.position_module.split(".")[-1]],
                      modules_to_save=["in_layer", "head"])


def build(cfg: ClassifierConfig, backbone: backbones.Backbone, mean, std, seed: int = 0):
    """The PEFT-wrapped classifier with fresh adapters; random initial values come from `seed`."""
    torch.manual_seed(seed)
    return with_adapters(Classifier(cfg, backbone, mean, std), lora_config(cfg, backbone), cfg.backbone_dropout)


def windows(data: UEAData, cfg: ClassifierConfig) -> np.ndarray:
    """Every case as a (C, seq_len) window, float32 (cases, C, seq_len) (uea.windows: the engine's rule too)."""
    return uea.windows(data, cfg.channels, cfg.seq_len, cfg.lengths)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) case indices: `fraction` of each class (at least one case; none of a class of one)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(labels):
        cases = rng.permutation(np.flatnonzero(labels == k))
        n = min(max(1, round(fraction * len(cases))), len(cases) - 1) if fraction > 0 else 0
        val.extend(cases[:n])
        train.extend(cases[n:])
    return np.sort(train), np.sort(val)


@dataclass
class ClassifyTrainConfig:
    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10            # epochs without a better validation (accuracy, then loss) before stopping
    val_fraction: float = 0.2     # of each class, held out of the train file for early stopping
    seed: int = 0
    threads: int = 0
    device: str = "cpu"
    refit: bool = False           # then train a fresh model on every case for the best epoch count
    label_smoothing: float = 0.0  # cross-entropy against (1 - e) one-hot + e / K
    mixup: float = 0.0            # > 0: each batch is mixed with a shuffled copy of itself, weight ~ Beta(a, a)
    ema: float = 0.0              # > 0: validate and save the trained weights' moving average, this decay per step
    keep: str = "best"            # the checkpoint: the best validation epoch, or the last (the whole cosine schedule)
    progress: bool = False

    def check(self) -> None:
        if not 0 <= self.label_smoothing < 1 or not (math.isfinite(self.mixup) and self.mixup >= 0) \
                or not 0 <= self.ema < 1:
            raise OfaError(f"label smoothing and ema must be in [0, 1) and mixup >= 0, got {self.label_smoothing}, "
                           f"{self.ema} and {self.mixup}")
        if self.keep not in ("best", "last"):
            raise OfaError(f"keep must be 'best' or 'last', got {self.keep!r}")


def logits_of(model, x: np.ndarray, device, batch: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch):
            out.append(model(torch.from_numpy(x[start:start + batch]).to(device)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(model.get_base_model().cfg.classes)), np.float32)


def _score(model, x: np.ndarray, y: np.ndarray, device) -> dict:
    z = logits_of(model, x, device)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(y)).item()
    return {"accuracy": float(np.mean(z.argmax(1) == y)), "loss": float(loss)}


def train(data: str, out: str, cfg: ClassifierConfig | None = None, tc: ClassifyTrainConfig | None = None,
          log=print, train_data: UEAData | None = None) -> dict:
    """Train on `data` (a .ts file), early-stopping on a stratified validation split of it; write a checkpoint
    to `out` and return its metadata. With tc.refit, a fresh model is then trained on every case of the file
    for the best epoch count and replaces it (best_val_* stay the validation run's). `train_data`: the file
    already read (the bench reads it once)."""
    from .distributed import resolve_device

    cfg, tc = cfg or ClassifierConfig(), tc or ClassifyTrainConfig()
    tc.check()
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    full = train_data or read_ts(data)
    tr, va = stratified_split(full.labels, tc.val_fraction, tc.seed)
    if len(va) == 0:
        raise OfaError(f"{data}: no validation cases (every class needs two cases, and --val-fraction > 0)")
    cfg.classes, cfg.channels = list(full.classes), full.dims
    cfg.seq_len = cfg.seq_len or int(full.lengths.max())
    if not cfg.patch:
        cfg.patch, cfg.stride = auto_patch(cfg.seq_len)
    cfg.stride = cfg.stride or max(1, cfg.patch // 2)
    cfg.check()
    mean, std = channel_stats(full.subset(tr))
    x = windows(full, cfg)
    x_tr, y_tr, x_va, y_va = x[tr], full.labels[tr], x[va], full.labels[va]
    backbone = backbones.load(cfg.backbone, cfg.layers, root=out)
    cfg.layers = len(backbone.blocks())
    fingerprint = backbones.fingerprint(backbone.model)  # before PEFT wraps the position table
    model = build(cfg, backbone, mean, std, seed=tc.seed).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    trainable = sum(p.numel() for p in params)
    meta = {"task": TASK, "model": asdict(cfg), "train": asdict(tc),
            "data": {"path": data, "name": full.name, "cases": full.cases, "train_cases": len(tr),
                     "val_cases": len(va), "lengths": [int(full.lengths.min()), int(full.lengths.max())]},
            "scaler": {"mean": mean.tolist(), "std": std.tolist()},
            "backbone_fingerprint": fingerprint, "backbone_layout": backbone.layout,
            "sizes": {"trainable_params": trainable, "adapter_bytes": 4 * trainable}}
    log(f"{full.name}: {full.cases} cases ({len(tr)} train, {len(va)} validation), {full.dims} channels, "
        f"{len(cfg.classes)} classes, lengths {meta['data']['lengths'][0]}-{meta['data']['lengths'][1]} -> "
        f"{cfg.lengths} to {cfg.seq_len} steps; patch {cfg.patch} stride {cfg.stride} ({cfg.n_patches} patches); "
        f"{cfg.backbone} x{cfg.layers} blocks; {trainable:,} trainable parameters")
    rng = np.random.default_rng(tc.seed)
    run = _Run(model, optimizer, tc, math.ceil(len(tr) / tc.batch_size) * tc.epochs, device)
    best, bad, history, seconds = None, 0, [], 0.0
    for epoch in range(1, tc.epochs + 1):
        t0 = time.perf_counter()
        loss = run.epoch(x_tr, y_tr, rng, epoch)
        seconds += time.perf_counter() - t0
        with run.averaged():
            val = _score(model, x_va, y_va, device)
        history.append({"epoch": epoch, "train_loss": loss, "val_accuracy": val["accuracy"],
                        "val_loss": val["loss"], "seconds": time.perf_counter() - t0})
        improved = best is None or (val["accuracy"], -val["loss"]) > (best["accuracy"], -best["loss"])
        if tc.keep == "last":  # validation is only reported; the model is the one at the schedule's end
            improved = epoch == tc.epochs
        log(f"epoch {epoch}: train loss {loss:.4f}  val accuracy {val['accuracy']:.4f}  "
            f"val loss {val['loss']:.4f}" + ("  *" if improved else ""))
        if improved:
            best, bad = val | {"epoch": epoch}, 0
            with run.averaged():
                checkpoint.save(out, model, meta | {"best_val_accuracy": val["accuracy"], "best_val_loss": val["loss"],
                                                    "best_epoch": epoch, "history": history, "train_seconds": seconds},
                                frozen={})
        else:
            bad += 1
            if bad >= tc.patience and tc.keep == "best":
                break
    meta = checkpoint.update_meta(out, {"history": history, "train_seconds": seconds})
    if not tc.refit:
        return meta
    # Refit: a fresh model on every case of the file (the scaler too) for the validated number of epochs.
    log(f"refit: {full.cases} cases, {best['epoch']} epochs (the validation run's best)")
    mean, std = channel_stats(full)
    backbone = backbones.load(cfg.backbone, cfg.layers, root=out)  # a fresh one: PEFT wrapped the first in place
    model = build(cfg, backbone, mean, std, seed=tc.seed).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    run = _Run(model, torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay), tc,
               math.ceil(full.cases / tc.batch_size) * best["epoch"], device)
    t0 = time.perf_counter()
    for epoch in range(1, best["epoch"] + 1):
        log(f"refit epoch {epoch}: train loss {run.epoch(x, full.labels, rng, epoch):.4f}")
    refit = {"epochs": best["epoch"], "cases": full.cases, "seconds": time.perf_counter() - t0}
    with run.averaged():
        checkpoint.save(out, model, meta | {"scaler": {"mean": mean.tolist(), "std": std.tolist()}, "refit": refit,
                                            "train_seconds": seconds + refit["seconds"]}, frozen={})
    return checkpoint.read_meta(out)


class _Run:
    """The optimiser steps of one training run: AdamW under a per-step cosine schedule over `steps` steps."""

    def __init__(self, model, optimizer, tc: ClassifyTrainConfig, steps: int, device):
        self.model, self.optimizer, self.tc, self.steps, self.step, self.device = model, optimizer, tc, steps, 0, device
        # The average covers exactly what the optimiser steps.
        self.trained = [p for group in optimizer.param_groups for p in group["params"]] if tc.ema > 0 else []
        self.average = [p.detach().clone() for p in self.trained] if tc.ema > 0 else None

    @contextlib.contextmanager
    def averaged(self):
        """The model with its exponential moving average of the trained weights in place (tc.ema > 0; otherwise
        as it is), for validation and saving; the raw weights are back afterwards."""
        if self.average is None:
            yield
            return
        raw = [p.detach().clone() for p in self.trained]
        with torch.no_grad():
            for p, a in zip(self.trained, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.trained, raw):
                    p.copy_(r)

    def epoch(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, epoch: int) -> float:
        """One pass over (x, y) in a seeded order; the mean training loss."""
        from .loop import cosine_lr

        self.model.train()
        order, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(order), self.tc.batch_size):
            index = order[start:start + self.tc.batch_size]
            for group in self.optimizer.param_groups:
                group["lr"] = cosine_lr(self.tc.lr, self.step, self.steps)
            xb, yb = torch.from_numpy(x[index]).to(self.device), torch.from_numpy(y[index]).to(self.device)
            loss = self.loss(xb, yb, rng)
            if not torch.isfinite(loss):
                raise OfaError(f"training diverged (loss {loss.item()}) at epoch {epoch}; lower --lr")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            if self.average is not None:
                with torch.no_grad():
                    for a, p in zip(self.average, self.trained):
                        a.lerp_(p, 1.0 - self.tc.ema)
            total += loss.item() * len(index)
        return total / len(x)

    def loss(self, xb: torch.Tensor, yb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Cross-entropy of one batch; with mixup, of the batch mixed with a shuffled copy (Zhang et al., 2018).
        Windows are mixed in the data's units (with norm "global", the same mix in normalised units)."""
        ce = lambda z, t: torch.nn.functional.cross_entropy(z, t, label_smoothing=self.tc.label_smoothing)  # noqa: E731
        if self.tc.mixup <= 0:
            return ce(self.model(xb), yb)
        lam = float(rng.beta(self.tc.mixup, self.tc.mixup))
        partner = torch.from_numpy(rng.permutation(len(xb))).to(self.device)
        z = self.model(lam * xb + (1 - lam) * xb[partner])
        return lam * ce(z, yb) + (1 - lam) * ce(z, yb[partner])


def load(directory: str, backbone: str | None = None):
    """Rebuild (model, meta) from a classifier checkpoint; no code runs from the files (safetensors, JSON)."""
    meta = checkpoint.read_meta(directory)
    if meta.get("task") != TASK:
        raise OfaError(f"{directory} is not a classifier checkpoint (ofa train --task classify writes one)")
    try:
        cfg = ClassifierConfig(**meta["model"])
        mean, std = (np.asarray(meta["scaler"][k], dtype=np.float32) for k in ("mean", "std"))
    except (TypeError, KeyError) as exc:
        raise OfaError(f"{directory}: bad classifier config: {exc}") from None
    cfg.check()
    if mean.shape != (cfg.channels,) or std.shape != (cfg.channels,) or not (std > 0).all():
        raise OfaError(f"{directory}: the scaler does not fit {cfg.channels} channels")
    found = checkpoint.recorded_backbone(directory, meta, cfg, backbone)
    model = build(cfg, found, mean, std)
    try:
        checkpoint.restore_adapters(model, checkpoint.weight_tensors(directory, meta)["adapters"], directory)
    except OfaError:
        raise
    except Exception as exc:
        raise OfaError(f"{directory}: cannot load adapters: {exc}") from None
    model.eval()
    return model, meta


def evaluate(checkpoint_dir: str, data: str, json_path: str | None = None, backbone: str | None = None,
             device: str = "cpu") -> dict:
    """Accuracy of a classifier checkpoint on a .ts file (its test part); `json_path` gets it, written atomically."""
    from .distributed import resolve_device

    model, meta = load(checkpoint_dir, backbone)
    cfg = model.get_base_model().cfg
    test = read_ts(data)
    truth = relabel(test, cfg.classes)
    dev = resolve_device(device)
    model.to(dev)
    pred = logits_of(model, windows(test, cfg), dev).argmax(1)
    result = {"task": TASK, "data": data, "checkpoint": checkpoint_dir, "engine": "torch"} | \
        accuracy_record(test, truth, pred, cfg.classes, cfg.seq_len, cfg.lengths)
    if json_path:
        from ..fileio import atomic_write_json

        atomic_write_json(json_path, result)
    return result


def is_checkpoint(directory: str) -> bool:
    """Whether `directory` holds a classifier checkpoint (its ofa.json says task "classify")."""
    try:
        return checkpoint.read_meta(directory).get("task") == TASK
    except OfaError:
        return False
