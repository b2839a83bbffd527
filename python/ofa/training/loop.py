"""Train the adapters: AdamW, per-step cosine schedule, early stopping on validation MSE.

Only tensors PEFT marks trainable (LoRA, plus the input layer in "lora+input" mode) get gradients;
the backbone is frozen. The best epoch's adapters are the checkpoint; resume.safetensors holds the loop
state of the last finished epoch, so `resume=True` continues an interrupted run.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from . import backbone as backbones
from . import checkpoint
from . import linear_path
from . import resume as resume_state
from ..data import Splits, WindowSet, describe_split, load_series, make_splits, resolved_split
from .distributed import Context, autocast
from .distributed import setup as setup_processes
from ..errors import OfaError, SeriesTooShort
from ..evaluation import predict_windowset
from .model import ModelConfig, build, parameter_counts

PRESETS = {
    # The paper's setting: only the LoRA tensors train, the output layer keeps a frozen random base,
    # six blocks (all of MiniLM's; GPT-2's first six).
    # The paper's code: lr 1e-4, batch 256 (README, "Presets", lists what still differs).
    "paper": dict(model=dict(train="lora", head_base="random", layers=6, seq_len=336, linear_path="none"),
                  train=dict(lr=1e-4, batch_size=256)),
    # Our default, chosen with bench/accuracy.py (README, "Accuracy"): the input layer trains too, the
    # output layer's base is zero (an exact rank-16 head), two blocks, smaller batches. lr 1e-4 is for
    # the full budget `ofa train` runs (all windows, up to 10 epochs): ETTh1 full protocol 1e-4 / 1e-3 /
    # 2e-3 gave test MSE 0.3951 / 0.4199 / 0.4383, with validation in the same order.
    # The linear path (ridge, then fixed) and the lookback chosen on validation: README, "Accuracy".
    "default": dict(model=dict(train="lora+input", head_base="zero", layers=2, linear_path="ridge", seq_len="auto"),
                    train=dict(lr="auto", batch_size=64)),
}
# Peak lr for short budgets (a few hundred steps: the benchmark's reduced protocol, the demo), where
# 1e-4 undertrains: best of 3e-4 / 1e-3 / 2e-3 / 3e-3 on ETTh1's reduced protocol, on two seeds.
SHORT_BUDGET_LR = 2e-3
# lr "auto" follows the training budget (optimiser steps = batches per epoch x epochs) between two
# points where the rate was chosen on validation (README, "Accuracy"): 657 steps (the reduced protocol)
# -> 2e-3; 8,980 steps (all of ETTh1 for 10 epochs) -> 1e-4. In between, log-linear; outside, clamped.
AUTO_LR_POINTS = ((657, SHORT_BUDGET_LR), (8980, 1e-4))


def auto_lr(total_steps: int) -> float:
    (s0, lr0), (s1, lr1) = AUTO_LR_POINTS
    t = (math.log(max(total_steps, 1)) - math.log(s0)) / (math.log(s1) - math.log(s0))
    t = min(max(t, 0.0), 1.0)
    return float(f"{math.exp(math.log(lr0) + t * (math.log(lr1) - math.log(lr0))):.3g}")


DATA_FORMATS = ("csv", "m4")  # csv: a date column and channels; m4: one series per row (ofa.panel)
# The training loss, and the validation error early stopping follows. "auto": the absolute error for
# panels, whose scores (sMAPE, MASE) are absolute errors, the squared error otherwise (the long-term
# tables' MSE).
LOSSES = {"mse": torch.nn.functional.mse_loss, "mae": torch.nn.functional.l1_loss}
# Panels: after training, "auto" chooses the combination of the best checkpoint's forecast with one of the
# competitions' benchmarks (Naive2, seasonal naive, Theta) and its weight by validation OWA
# (ofa.shortterm.choose_combination; the weight 1, the model alone, is among the choices); "none" does not.
COMBINE = ("auto", "none")


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float | str = "auto"         # "auto": from the training budget (auto_lr); the default preset's
    weight_decay: float = 0.0
    patience: int = 3
    seed: int = 0
    precision: str = "fp32"          # "bf16": autocast matmuls to bfloat16 (AMX / AVX512-BF16 CPUs, GPUs)
    device: str = "auto"             # "auto": this process's GPU where torch sees one, else the CPU
    max_train_windows: int = 0       # 0: all; else evenly spaced window starts (reduced protocol)
    max_val_series: int = 0          # 0: all; else evenly spaced validation series
    train_fraction: float = 1.0      # few-shot (TSLib percent rule)
    lookback_mean: bool = True       # seq_len "auto" also tries the mean of the ridge fits up to each lookback
    split: str = "auto"              # how the file is cut into train / val / test (data.split_borders)
    data_format: str = "csv"         # "m4": a panel of many series, one per row (ofa.panel)
    loss: str = "auto"               # "mse" | "mae" | "auto": mae for panels, mse otherwise (LOSSES)
    combine: str = "auto"            # panels: "auto" validates a combination with a benchmark (ofa.shortterm); "none"
    seasonality: int = 0             # panels: the period of MASE and the benchmarks (0: the M4 frequency's, by ids or name)
    threads: int = 0                 # 0: torch's default
    progress: bool = True

    def check(self) -> None:
        for label in ("epochs", "batch_size"):
            if not isinstance(getattr(self, label), int) or getattr(self, label) <= 0:
                raise OfaError(f"{label} must be a positive integer, got {getattr(self, label)!r}")
        if self.lr != "auto" and not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise OfaError(f"lr must be positive or 'auto', got {self.lr!r}")
        if self.precision not in ("fp32", "bf16"):
            raise OfaError(f"precision must be fp32 or bf16, got {self.precision!r}")
        if self.loss not in ("auto", *LOSSES):
            raise OfaError(f"loss must be auto, {' or '.join(LOSSES)}, got {self.loss!r}")
        if self.data_format not in DATA_FORMATS:
            raise OfaError(f"unknown data format {self.data_format!r}; known: {', '.join(DATA_FORMATS)}")
        if self.combine not in COMBINE:
            raise OfaError(f"combine must be {' or '.join(COMBINE)}, got {self.combine!r}")
        if not isinstance(self.seasonality, int) or self.seasonality < 0:
            raise OfaError(f"seasonality must be a whole number >= 0 (0: from the panel's ids or name), got "
                           f"{self.seasonality!r}")
        if self.patience < 1:
            raise OfaError(f"patience must be at least 1, got {self.patience}")
        if not isinstance(self.lookback_mean, bool):
            raise OfaError(f"lookback_mean must be true or false, got {self.lookback_mean!r}")
        for label in ("max_train_windows", "max_val_series"):
            if not isinstance(getattr(self, label), int) or getattr(self, label) < 0:
                raise OfaError(f"{label} must be a whole number >= 0 (0: all), got {getattr(self, label)!r}")


def settings(train_config: dict) -> dict:
    """The train settings that must match for a resume (progress bar, threads and device may differ)."""
    return {k: v for k, v in train_config.items() if k not in ("progress", "threads", "device")}


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def every_for(n_windows: int, cap: int) -> int:
    """The stride that keeps at most `cap` of `n_windows` (every one for cap 0): training windows, and
    the validation series that early stopping scores."""
    return 1 if cap <= 0 or n_windows <= cap else math.ceil(n_windows / cap)


def cosine_lr(base: float, step: int, total: int) -> float:
    return base * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def val_errors(model, windows: WindowSet, max_series: int, precision: str, ctx: Context = Context()) -> dict:
    """{"mse", "mae"} over the (evenly strided) validation series; under torchrun each rank scores its
    share and the sums are added, so every rank gets the same figures."""
    indices = np.arange(0, len(windows), every_for(len(windows), max_series))
    mine = np.array_split(indices, ctx.world)[ctx.rank]
    sq, ab, count = 0.0, 0.0, 0
    if len(mine):
        pred, truth = predict_windowset(model, windows, mine, precision=precision, device=ctx.device)
        err = pred.astype(np.float64) - truth
        sq, ab, count = float(np.sum(err ** 2)), float(np.sum(np.abs(err))), pred.size
    total_sq, total_ab, total = ctx.sum([sq, ab, count])
    return {"mse": float(total_sq / total), "mae": float(total_ab / total)}


def val_mse(model, windows: WindowSet, max_series: int, precision: str, ctx: Context = Context()) -> float:
    return val_errors(model, windows, max_series, precision, ctx)["mse"]


def run_epoch(model, optimizer, windows: WindowSet, tc: TrainConfig, rng: np.random.Generator,
              step: int, total_steps: int, epoch: int, soft: np.ndarray | None = None,
              truth_weight: float = 1.0, ctx: Context = Context()) -> tuple[float, int]:
    """One pass over the training series in a seeded order; returns (mean training loss, step)."""
    from tqdm import tqdm

    model.train()
    order = rng.permutation(len(windows))  # the same order on every rank: the seed is shared
    batches = range(0, len(order), tc.batch_size)
    bar = tqdm(batches, desc=f"epoch {epoch + 1}/{tc.epochs}", disable=not (tc.progress and ctx.main),
               leave=False, unit="batch", dynamic_ncols=True)
    sq_sum, count = 0.0, 0
    for start in bar:
        index, weight = ctx.share(order[start:start + tc.batch_size])  # this rank's part of the global batch
        x, y = windows.batch(index)
        if soft is not None:
            y = (truth_weight * y + (1.0 - truth_weight) * soft[index]).astype(np.float32)
        x = torch.from_numpy(x).unsqueeze(-1).to(ctx.device)
        y = torch.from_numpy(y).unsqueeze(-1).to(ctx.device)
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(tc.lr, step, total_steps)
        with autocast(ctx.device, tc.precision):
            pred = model(x)
        loss = LOSSES[tc.loss](pred.float(), y)
        if not torch.isfinite(loss):
            raise OfaError(f"training diverged (loss {loss.item()}) at epoch {epoch + 1}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        (loss * weight).backward()  # DDP averages over ranks: weight makes that the global batch's mean
        optimizer.step()
        step += 1
        sq_sum += loss.item() * len(index) * (weight > 0)
        count += len(index) * (weight > 0)
        bar.set_postfix(loss=f"{sq_sum / max(count, 1):.4f}")
    total_sq, total = ctx.sum([sq_sum, count])
    return float(total_sq / total), step


def choose_lookback(series, horizon: int, tc: TrainConfig) -> tuple[int, dict, tuple]:
    """`--seq-len auto`: the lookback, and linear path (its own ridge fit or the mean of the fits at the
    ENSEMBLE_MEMBERS up to it), that validates best (ofa/linear_path.py); (seq_len, info, that fit)."""
    def splits_for(seq_len):
        try:
            probe = make_splits(series, seq_len, horizon, tc.train_fraction)
            every = every_for(len(probe.train.starts), tc.max_train_windows)
            return make_splits(series, seq_len, horizon, tc.train_fraction, train_every=every)
        except SeriesTooShort:  # too short for this lookback; any other problem is the user's to see
            return None

    return linear_path.choose_lookback(splits_for, members=linear_path.ENSEMBLE_MEMBERS if tc.lookback_mean else ())


def fit_linear_path(model, splits: Splits, fitted: tuple | None = None) -> dict:
    """Fit the linear path in closed form (ofa/linear_path.py), unless `fitted` (W, b, info) already holds
    the fit on these splits, and write it into the model."""
    from .model import base_of

    weight, bias, info = fitted if fitted is not None else linear_path.fit(splits.train, splits.val)
    module = base_of(model).linear_path
    copies = [module.original_module, *module.modules_to_save.values()] if hasattr(module, "modules_to_save") \
        else [module]
    with torch.no_grad():
        for copy in copies:
            copy.weight.copy_(torch.from_numpy(weight))
            copy.bias.copy_(torch.from_numpy(bias))
    return info


def train(data: str, out: str, model_cfg: ModelConfig | None = None, train_cfg: TrainConfig | None = None,
          target: str | None = None, resume: bool = False, log=print, on_epoch=None, teacher=None,
          truth_weight: float = 1.0, extra_meta: dict | None = None,
          linear_fit: tuple | None = None) -> dict:
    """Train on the train split of `data`, early-stop on its val split, write a checkpoint to `out`.

    Returns the checkpoint's metadata (config, sizes, per-epoch history, best validation MSE).
    `on_epoch(history_entry)` runs after each epoch's checkpoint and resume state are on disk.
    Distillation: `teacher(windows) -> (len(windows), H)` forecasts of the training series; the loss
    target is then truth_weight * truth + (1 - truth_weight) * teacher (the same minimiser as the
    weighted sum of both squared errors). Validation and early stopping stay on the truth.
    linear_fit: the linear path's (W, b, info), already fitted on these splits by a caller that chose its own
    lookback and linear path (ofa.anomaly.forecaster); by default it is fitted here.
    """
    mc = model_cfg or ModelConfig()
    tc = train_cfg or TrainConfig()
    tc.check()
    if tc.threads:
        torch.set_num_threads(tc.threads)
    ctx = setup_processes(tc.device)
    try:
        return _train(ctx, data, out, mc, tc, target, resume, log if ctx.main else (lambda s: None),
                      on_epoch if ctx.main else None, teacher, truth_weight, extra_meta, linear_fit)
    finally:
        ctx.close()


def _log_lookback(log, seq_len: int, lookback: dict) -> None:
    log(f"lookback: seq_len {seq_len}, linear path {lookback.get('linear_path', seq_len)} (ridge validation mse "
        + ", ".join(f"{k}: {v:.4f}" for k, v in lookback["val_mse"].items()) + ")")


def _panel_splits(data: str, mc: ModelConfig, tc: TrainConfig, log):
    """A panel (--format m4): training across its series, validation on each series' last horizon. Under
    --seq-len auto the lookback is the one of 1, 2, 4 and 8 horizons (GPT4TS's M4 setting is 2) whose ridge
    forecaster validates best; the validation targets are the same values, on the same scale, for each.
    A lookback shorter than the patch shrinks the patch to it (stride half of it): short yearly series."""
    from ..panel import panel_splits, read_m4

    ids, panel = read_m4(data)
    short = [(i, len(v)) for i, v in zip(ids, panel) if len(v) <= mc.horizon]
    if short:
        raise OfaError(f"{data}: series {short[0][0]!r} has {short[0][1]} values, not more than the horizon "
                       f"{mc.horizon}: nothing is left to forecast from once its last horizon is held out "
                       f"for validation ({len(short)} such series)")
    def strided(seq_len):  # the splits at this lookback, training windows strided to --max-train-windows
        probe = panel_splits(panel, seq_len, mc.horizon)
        every = every_for(len(probe.train.starts), tc.max_train_windows)
        return panel_splits(panel, seq_len, mc.horizon, train_every=every), every

    lookback = lookback_fit = None
    if mc.seq_len == "auto":
        candidates = tuple(k * mc.horizon for k in (1, 2, 4, 8))
        mc.seq_len, lookback, lookback_fit = linear_path.choose_lookback(lambda n: strided(n)[0], candidates)
        _log_lookback(log, mc.seq_len, lookback)
        if mc.patch > mc.seq_len:
            mc.patch, mc.stride = mc.seq_len, max(1, mc.seq_len // 2)
            log(f"patch {mc.patch}, stride {mc.stride}: the lookback is shorter than the default patch")
    mc.check()
    splits, every = strided(mc.seq_len)
    lengths = [len(v) for v in panel]
    log(f"panel {os.path.basename(data)}: {len(panel):,} series of {min(lengths)} to {max(lengths)} values, "
        f"lookback {mc.seq_len}; validation: each series' last {mc.horizon} values; series shorter than "
        f"{mc.seq_len + 2 * mc.horizon} are left-padded with their first value")
    splits.series.name = os.path.splitext(os.path.basename(data))[0]
    splits.series.split = "panel: last horizon of each series"
    return splits.series, splits, every, lookback, lookback_fit


def _panel_combination(out: str, data: str, splits: Splits, mc: ModelConfig, tc: TrainConfig, log) -> dict | None:
    """The best checkpoint's validated combination with a benchmark (ofa.shortterm.choose_combination): its
    forecasts of the validation hold-out (each series' last horizon) against the benchmarks' from the values
    before it. None, logged, where the seasonal period is unknown (neither ids, name nor --seasonality say)."""
    from ..panel import read_m4
    from ..shortterm import choose_combination, frequency_period

    ids, panel = read_m4(data)
    m = tc.seasonality or frequency_period(ids, data)[1]
    if m is None:
        log("no combination: the seasonal period is not known from the ids or the file name; give --seasonality")
        return None
    model, _ = checkpoint.load(out)
    pred, _ = predict_windowset(model, splits.val, precision=tc.precision)
    forecasts = pred.astype(np.float64) * splits.val.scale[:, None]
    h = mc.horizon
    combo = choose_combination([v[:-h] for v in panel], [v[-h:] for v in panel], forecasts, m)
    log(f"combination: validation OWA of the model alone {combo['model_val_owa']:.4f}; best "
        + (f"{combo['model_weight']:g} x model + {1 - combo['model_weight']:g} x {combo['benchmark']}"
           if combo["benchmark"] else "the model alone") + f" ({combo['val_owa']:.4f}); "
        + "; ".join(f"{b}: " + " ".join(f"{o:.4f}" for o in row) for b, row in combo["table"].items())
        + f" (model weights {' '.join(f'{w:g}' for w in combo['weights'])})")
    return combo


def _splits(data: str, target, mc: ModelConfig, tc: TrainConfig, log):
    """The series, its splits and the window stride; under --seq-len auto the lookback is chosen first
    (mc.seq_len is set) and its ridge fit kept, so the linear path need not be fitted again."""
    if tc.data_format == "m4":
        return _panel_splits(data, mc, tc, log)
    series = load_series(data, target, tc.split)
    lookback = lookback_fit = None
    if mc.seq_len == "auto":
        mc.seq_len, lookback, lookback_fit = choose_lookback(series, mc.horizon, tc)
        _log_lookback(log, mc.seq_len, lookback)
    mc.check()
    probe = make_splits(series, mc.seq_len, mc.horizon, tc.train_fraction)
    every = every_for(len(probe.train.starts), tc.max_train_windows)
    splits = make_splits(series, mc.seq_len, mc.horizon, tc.train_fraction, train_every=every)
    log(describe_split(splits))
    return series, splits, every, lookback, lookback_fit


def _teacher_targets(teacher, truth_weight: float, train: WindowSet, horizon: int, log):
    """Distillation: the teacher's forecasts of every training series, checked; None without a teacher."""
    if teacher is None:
        return None
    if not 0.0 <= truth_weight <= 1.0:
        raise OfaError(f"truth weight must be in [0, 1], got {truth_weight}")
    log(f"teacher forecasts for {len(train):,} training series ...")
    soft = np.asarray(teacher(train), dtype=np.float32)
    if soft.shape != (len(train), horizon) or not np.isfinite(soft).all():
        raise OfaError(f"teacher forecasts have shape {soft.shape} or non-finite values; "
                       f"expected ({len(train)}, {horizon})")
    return soft


def _checkpoint_meta(mc: ModelConfig, tc: TrainConfig, data: str, target, series, splits: Splits, every: int,
                     backbone, fingerprint: str, counts: dict, ctx: Context, linear_info, lookback,
                     extra_meta) -> dict:
    """What every checkpoint of this run records (ofa.json), besides its scores and history."""
    return {
        "model": mc.to_dict(),
        "train": asdict(tc),
        "data": {"path": data, "format": tc.data_format, "name": series.name, "channels": series.channels,
                 "target": target,
                 "split": resolved_split(series),
                 "train_windows_every": every, "train_series": len(splits.train)},
        "scaler": {"mean": splits.scaler.mean.tolist(), "std": splits.scaler.std.tolist()},
        "backbone_fingerprint": fingerprint,
        "backbone_layout": backbone.layout,
        "sizes": counts,
        "processes": ctx.world, "device": ctx.device.type,
        **({"linear_path": linear_info} if linear_info else {}),
        **({"lookback": lookback} if lookback else {}),
        **(extra_meta or {}),
    }


def _train(ctx: Context, data, out, mc: ModelConfig, tc: TrainConfig, target, resume, log, on_epoch, teacher,
           truth_weight, extra_meta, linear_fit) -> dict:
    # Setup: data, model, distillation targets, linear path, optimiser, resume state, metadata.
    series, splits, every, lookback, lookback_fit = _splits(data, target, mc, tc, log)
    lookback_fit = linear_fit if linear_fit is not None else lookback_fit
    backbone = backbones.load(mc.backbone, mc.layers, root=out)
    fingerprint = backbones.fingerprint(backbone.model)  # before PEFT wraps the position table
    model = build(mc, seed=tc.seed, backbone=backbone)
    soft = _teacher_targets(teacher, truth_weight, splits.train, mc.horizon, log)
    linear_info = None
    if mc.linear_path != "none":
        linear_info = fit_linear_path(model, splits, lookback_fit)  # the same splits as the choice
        log(f"linear path: {linear_path.describe(linear_info)} (validation mse {linear_info['val_mse']:.4f})")
    model.to(ctx.device)
    net = ctx.wrap(model)  # DistributedDataParallel under torchrun; the model itself otherwise
    params = trainable_parameters(model)
    steps_per_epoch = math.ceil(len(splits.train) / tc.batch_size)
    total_steps = steps_per_epoch * tc.epochs
    if tc.lr == "auto":  # resolved on a copy: the caller's config stays "auto" for its next run
        tc = replace(tc, lr=auto_lr(total_steps))
        log(f"lr auto: {tc.lr:g} for {total_steps:,} steps ({tc.epochs} epochs of {steps_per_epoch:,})")
    if tc.loss == "auto":
        tc = replace(tc, loss="mae" if tc.data_format == "m4" else "mse")
    crit = tc.loss  # the validation error that picks the best epoch
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    counts = parameter_counts(model)
    rng = np.random.default_rng(tc.seed)
    state = {"epoch": 0, "step": 0, "best_val": math.inf, "bad_epochs": 0, "history": [], "train_seconds": 0.0}
    resume_path = resume_state.path_in(out)
    if resume:
        state = resume_state.restore(out, params, optimizer, rng,
                                     lambda info: info.get("model_config") == mc.to_dict() and
                                     settings(info.get("train_config") or {}) == settings(asdict(tc)))
        log(f"resuming {out} after epoch {state['epoch']}")
    meta = _checkpoint_meta(mc, tc, data, target, series, splits, every, backbone, fingerprint, counts, ctx,
                            linear_info, lookback, extra_meta)
    log(f"{mc.backbone} x{mc.layers} blocks, {mc.n_patches} patches, train={mc.train}, head base={mc.head_base}: "
        f"{counts['trainable_params']:,} trainable / {counts['frozen_params']:,} frozen parameters, "
        f"adapter {counts['adapter_bytes'] / 1024:.1f} KiB")
    scored = len(range(0, len(splits.val), every_for(len(splits.val), tc.max_val_series)))
    log(f"{len(splits.train):,} training series (every {every} window), {len(splits.val):,} validation series"
        + (f" ({scored:,} evenly spaced of them scored: --max-val-series)" if scored < len(splits.val) else ""))

    # The loop: epoch 0 is the linear path alone, then train, validate, keep the best, stop on patience.
    if linear_info is not None and not resume:
        # Epoch 0: the linear path alone (the head starts at zero) is the first candidate checkpoint.
        errs = val_errors(model, splits.val, tc.max_val_series, tc.precision, ctx)
        state["best_val"] = errs[crit]
        log(f"epoch 0: val mse {errs['mse']:.4f}" + (f"  val mae {errs['mae']:.4f}" if crit == "mae" else "")
            + " (linear path alone)  *")
        if ctx.main:
            checkpoint.save(out, model, meta | {"best_val_mse": errs["mse"], "best_val_mae": errs["mae"],
                                                "history": [], "train_seconds": 0.0})

    while state["epoch"] < tc.epochs and state["bad_epochs"] < tc.patience:
        t0 = time.perf_counter()
        loss, state["step"] = run_epoch(net, optimizer, splits.train, tc, rng, state["step"], total_steps,
                                        state["epoch"], soft, truth_weight, ctx)
        seconds = time.perf_counter() - t0
        errs = val_errors(model, splits.val, tc.max_val_series, tc.precision, ctx)
        val = errs[crit]
        val_seconds = time.perf_counter() - t0 - seconds
        state["train_seconds"] += seconds
        state["epoch"] += 1
        improved = val < state["best_val"]
        state["history"].append({"epoch": state["epoch"], f"train_{tc.loss}": loss, "val_mse": errs["mse"],
                                 "val_mae": errs["mae"], "seconds": seconds,
                                 "val_seconds": val_seconds})
        log(f"epoch {state['epoch']}: train {tc.loss} {loss:.4f}  val mse {errs['mse']:.4f}"
            + (f"  val mae {errs['mae']:.4f}" if crit == "mae" else "")
            + f"  ({seconds:.0f} s training + {val_seconds:.0f} s validation)" + ("  *" if improved else ""))
        if improved:
            state["best_val"], state["bad_epochs"] = val, 0
        else:
            state["bad_epochs"] += 1
        if ctx.main:  # every rank holds the same state; one writes it
            if improved:
                checkpoint.save(out, model, meta | {"best_val_mse": errs["mse"], "best_val_mae": errs["mae"],
                                                    "history": state["history"],
                                                    "train_seconds": state["train_seconds"]})
            resume_state.save_state(resume_path, params, optimizer, torch.get_rng_state(),
                                    {"model_config": mc.to_dict(), "train_config": asdict(tc), "state": state,
                                     "rng": rng.bit_generator.state})
        if on_epoch is not None:
            on_epoch(state["history"][-1])
    # The best epoch's checkpoint records the final history too, and a panel's validated combination.
    if ctx.main:
        changes = {"history": state["history"], "train_seconds": state["train_seconds"]}
        if tc.data_format == "m4" and tc.combine == "auto":
            changes["combination"] = _panel_combination(out, data, splits, mc, tc, log)
        checkpoint.update_meta(out, changes)
    ctx.barrier()  # the other ranks return what rank 0 wrote
    final = checkpoint.read_meta(out)
    final.pop("format", None)
    return final
