"""`ofa` command line: train, eval, forecast, info, export, distill, demo.
User errors print one line and exit with status 2."""
from __future__ import annotations

import argparse
import math
import os
import sys

from .errors import OfaError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def lookback(text: str):
    return "auto" if text == "auto" else positive_int(text)


CLASSIFY_ONLY = ("val_fraction", "norm", "pool", "tokens", "refit", "mixup", "label_smoothing", "ema", "lengths")


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", choices=["forecast", "classify"], default="forecast",
                   help="classify: --data is a UEA/sktime .ts file of labelled cases; a linear class head replaces "
                        "the forecast head (README, \"Classification\")")
    p.add_argument("--data", required=True, help="CSV (date column, then numeric channels), or builtin:taylor or builtin:seatbelts (packaged series); with --task classify a .ts file")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--target", help="train on this one column instead of all channels")
    p.add_argument("--horizon", type=positive_int, default=96, help="steps to forecast")
    p.add_argument("--seq-len", type=lookback, help="input steps, or auto: the one of 336 / 512 / 720, with its own "
                   "ridge forecaster or the mean of those on its last 96, 192, ... steps, that validates best "
                   "(default: the preset's; auto for the default preset, 336 for paper; "
                   "--task classify: the window every case is resampled to, default the longest training case)")
    p.add_argument("--patch", type=positive_int, help="patch length (default: 16; --task classify: from the window "
                   "length, the largest power of two up to 1/6 of it, 2 to 16)")
    p.add_argument("--stride", type=positive_int, help="steps between patch starts (default: 8; --task classify: half "
                   "the patch)")
    p.add_argument("--backbone", default="minilm", help="minilm (bundled), gpt2, or a local model directory")
    p.add_argument("--layers", type=positive_int, help="keep the first N backbone blocks (default: the preset's)")
    p.add_argument("--preset", choices=["default", "paper"], default="default",
                   help="paper: only LoRA trains, frozen random head base (arXiv 2603.29756)")
    p.add_argument("--train-mode", choices=["lora", "lora+input", "lora+input+ln"], help="override the preset's trainable set")
    p.add_argument("--head-base", choices=["random", "zero"], help="override the preset's output-layer base")
    p.add_argument("--rank", type=positive_int, default=16, help="LoRA rank")
    p.add_argument("--alpha", type=float, default=16.0, help="LoRA alpha (rsLoRA scaling alpha / sqrt(rank))")
    add_loop_args(p, batch_size=None, lr=None, lr_type=learning_rate,
                  lr_help="peak learning rate, or auto (the default preset's: from the training budget, 2e-3 "
                          "at 657 steps down to 1e-4 at 8,980 steps and more; the paper preset's is 1e-4; "
                          "--task classify: 1e-3)", epochs=None, patience=None)
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="--task classify: the share of each class held out of --data for early stopping")
    p.add_argument("--norm", choices=["global", "instance", "instance+stats"], default="global",
                   help="--task classify: standardise every case by the training split's per-channel statistics "
                        "(global), per case and channel (instance), or that and its mean and std into the head")
    p.add_argument("--pool", choices=["flatten", "mean"], default="flatten",
                   help="--task classify: the head reads every patch state of every channel (flatten) or each "
                        "channel's mean over patches")
    p.add_argument("--tokens", choices=["channel", "joined"], default="channel",
                   help="--task classify: a sequence of patch tokens per channel (channel), or GPT4TS's one "
                        "sequence whose token n joins patch n of every channel (joined; JapaneseVowels' choice)")
    p.add_argument("--refit", action="store_true",
                   help="--task classify: after early stopping, train a fresh model on every case of --data for the "
                        "best epoch count (the checkpoint is that model)")
    p.add_argument("--mixup", type=float, default=0.0,
                   help="--task classify: train on batches mixed with a shuffled copy, weight ~ Beta(a, a) (0: off; "
                        "e.g. 0.2)")
    p.add_argument("--label-smoothing", type=float, default=0.0,
                   help="--task classify: cross-entropy against (1 - e) one-hot + e / classes (0: off)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="--task classify: validate and keep the moving average of the trained weights, this decay "
                        "per step (0: off; e.g. 0.95)")
    p.add_argument("--lengths", choices=["resample", "pad"], default="resample",
                   help="--task classify: bring every case to the window by linear resampling, or by repeating its "
                        "last value (longer cases cut)")
    # The classifier's own options, with the parser's defaults: a forecaster refuses any given another value.
    p.set_defaults(classify_only={dest: p.get_default(dest) for dest in CLASSIFY_ONLY})
    p.add_argument("--train-fraction", type=float, default=1.0, help="few-shot: first fraction of train data")
    p.add_argument("--single-lookback", action="store_true",
                   help="--seq-len auto: choose among the single lookbacks' ridge forecasters only, not also the mean "
                        "of those up to each (the default before it; README, \"Few-shot forecasting\")")
    p.add_argument("--split", default="auto", help=SPLIT_HELP)
    p.add_argument("--format", choices=["csv", "m4"], default="csv",
                   help="m4: a panel of many series, one per row (an id, then values; shorter series end in empty "
                        "fields), trained across its series; validation is each series' last --horizon values")
    p.add_argument("--loss", choices=["auto", "mse", "mae"], default="auto",
                   help="training loss, and the validation error early stopping follows (auto: mae for --format m4, "
                        "whose sMAPE and MASE are absolute errors; mse otherwise)")
    p.add_argument("--combine", choices=["auto", "none"], default="auto",
                   help="--format m4: auto combines the forecast with the benchmark (Naive2, seasonal naive or "
                        "Theta) and weight (1, 0.75, 0.5 or 0.25 on the model) of the best validation OWA, recorded in "
                        "the checkpoint and applied by ofa eval; none: the model alone")
    p.add_argument("--seasonality", type=positive_int, default=0,
                   help="--format m4: the seasonal period of MASE and the benchmarks (default: the M4 frequency's, "
                        "from ids or file name)")


def add_loop_args(p: argparse.ArgumentParser, batch_size, lr, lr_type, lr_help: str, epochs=10, patience=3) -> None:
    """The training loop's options, shared by train and distill (which differ in their defaults only)."""
    p.add_argument("--epochs", type=positive_int, default=epochs, help="at most this many epochs (early stopping)"
                   + ("" if epochs else f" (default: 10; --task classify: {CLASSIFY_EPOCHS})"))
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="windows per step" + ("" if batch_size else " (default: the preset's; --task classify: "
                                              f"{CLASSIFY_BATCH} cases)"))
    p.add_argument("--lr", type=lr_type, default=lr, help=lr_help)
    p.add_argument("--patience", type=positive_int, default=patience,
                   help="stop after this many epochs without a better validation MSE"
                        + ("" if patience else f" (default: 3; --task classify: {CLASSIFY_PATIENCE}, on validation "
                                               "accuracy, then loss)"))
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocasts training matmuls (fast on AMX/AVX512-BF16 CPUs)")
    p.add_argument("--max-train-windows", type=non_negative_int, default=0,
                   help="use at most N evenly spaced training windows (0: all)")
    p.add_argument("--max-val-series", type=non_negative_int, default=0,
                   help="score at most N evenly spaced validation series per epoch (0: all; validation of a "
                        "large file can take longer than the epoch)")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation and batch order")
    p.add_argument("--threads", type=non_negative_int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: the GPU where torch sees one, else the CPU. Under torchrun each process takes "
                        "its share of every batch (DistributedDataParallel: gloo on CPU, NCCL on GPU)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args) -> int:
    from .training.model import ModelConfig
    from .training.loop import PRESETS, TrainConfig, train

    if args.task == "classify":
        return cmd_train_classifier(args)
    if args.data.endswith(".ts"):
        raise OfaError(f"{args.data} is a .ts classification file: train a classifier with --task classify")
    given = classify_only_flags(args)
    if given:
        raise OfaError(f"{given[0]} applies to --task classify only")
    preset = PRESETS[args.preset]
    mc = ModelConfig(backbone=args.backbone, horizon=args.horizon, patch=args.patch or 16,
                     stride=args.stride or 8, rank=args.rank, alpha=args.alpha, **preset["model"])
    for key, value in (("layers", args.layers), ("train", args.train_mode), ("head_base", args.head_base),
                       ("seq_len", args.seq_len)):
        if value is not None:
            setattr(mc, key, value)
    tc = TrainConfig(epochs=args.epochs or 10, batch_size=args.batch_size or preset["train"]["batch_size"],
                     lr=args.lr or preset["train"]["lr"],
                     patience=args.patience or 3, seed=args.seed, precision=args.precision,
                     max_train_windows=args.max_train_windows, max_val_series=args.max_val_series,
                     train_fraction=args.train_fraction, lookback_mean=not args.single_lookback,
                     device=args.device, split=args.split, data_format=args.format, loss=args.loss,
                     combine=args.combine,
                     seasonality=args.seasonality, threads=args.threads, progress=not args.quiet and sys.stderr.isatty())
    meta = train(args.data, args.out, mc, tc, target=args.target, resume=args.resume)
    sizes = meta["sizes"]
    if os.environ.get("RANK", "0") != "0":
        return 0  # one line per job under torchrun, from rank 0
    print(f"best val mse {meta['best_val_mse']:.4f}; checkpoint {args.out} "
          f"({sizes['trainable_params']:,} trainable parameters, {sizes['adapter_bytes']:,} adapter bytes)")
    return 0


def classify_only_flags(args) -> list[str]:
    """The --task classify options given a value other than their default (a forecaster would ignore them)."""
    return ["--" + dest.replace("_", "-") for dest, default in args.classify_only.items()
            if getattr(args, dest) != default]


# --task classify's loop defaults, chosen on a validation split of JapaneseVowels' train file (README,
# "Classification").
CLASSIFY_EPOCHS, CLASSIFY_BATCH, CLASSIFY_PATIENCE, CLASSIFY_LR = 40, 16, 10, 1e-3


def cmd_train_classifier(args) -> int:
    from .training.classifier import ClassifierConfig, ClassifyTrainConfig, train

    unused = [flag for flag, value in (("--target", args.target), ("--resume", args.resume),
                                       ("--format m4", args.format == "m4"), ("--preset paper", args.preset == "paper"),
                                       ("--train-mode", args.train_mode), ("--head-base", args.head_base),
                                       ("--precision bf16", args.precision == "bf16")) if value]
    if unused:
        raise OfaError(f"{unused[0]} does not apply to --task classify")
    if args.lr == "auto":
        raise OfaError("--task classify takes a fixed --lr (default 1e-3), not auto")
    if not 0.0 < args.val_fraction < 1.0:
        raise OfaError(f"--val-fraction must be between 0 and 1, got {args.val_fraction}")
    cfg = ClassifierConfig(backbone=args.backbone, layers=args.layers or 2, patch=args.patch or 0,
                           seq_len=args.seq_len if isinstance(args.seq_len, int) else 0,  # 0: the longest case
                           stride=args.stride or 0, rank=args.rank, alpha=args.alpha, norm=args.norm,
                           pool=args.pool, lengths=args.lengths, tokens=args.tokens)
    tc = ClassifyTrainConfig(epochs=args.epochs or CLASSIFY_EPOCHS, batch_size=args.batch_size or CLASSIFY_BATCH,
                             lr=args.lr or CLASSIFY_LR, patience=args.patience or CLASSIFY_PATIENCE,
                             val_fraction=args.val_fraction, seed=args.seed, threads=args.threads, device=args.device,
                             refit=args.refit, mixup=args.mixup, label_smoothing=args.label_smoothing,
                             ema=args.ema)
    meta = train(args.data, args.out, cfg, tc, log=lambda line: print(line, file=sys.stderr, flush=True)
                 if not args.quiet else None)
    refit = f", then refit on all {meta['refit']['cases']} cases" if "refit" in meta else ""
    print(f"best val accuracy {meta['best_val_accuracy']:.4f} (epoch {meta['best_epoch']}, "
          f"{meta['data']['val_cases']} validation cases{refit}); checkpoint {args.out} "
          f"({meta['sizes']['trainable_params']:,} trainable parameters)")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import evaluate

    r = None
    if args.checkpoint and os.path.isfile(os.path.join(args.checkpoint, "ofa.json")):
        from .training import classifier

        if classifier.is_checkpoint(args.checkpoint):
            r = classifier.evaluate(args.checkpoint, args.data, json_path=args.json, backbone=args.backbone,
                                    device=args.device)
    elif args.model and not args.checkpoint and is_classifier_file(args.model):
        from .runtime.classifying import evaluate as evaluate_classifier

        r = evaluate_classifier(args.model, args.data, json_path=args.json)
    if r is not None:
        one = r["longer_than_window"] == 1
        longer = (f"; {r['longer_than_window']} {'case' if one else 'cases'} longer than the {r['window']}-step "
                  f"window {'was' if one else 'were'} " + ("resampled onto it" if r["lengths"] == "resample"
                                                           else "cut to it")) \
            if r["longer_than_window"] else ""
        by = "PyTorch" if r["engine"] == "torch" else f"the {r['engine'][4:]} engine"
        print(f"{r['dataset']}: test accuracy {r['accuracy']:.4f} ({r['correct']} of {r['cases']} cases, "
              f"{by}){longer}")
        return 0
    if args.data.endswith(".ts"):
        raise OfaError(f"{args.data} is a .ts classification file: score it with a classifier checkpoint "
                       f"(ofa train --task classify)")

    if args.format == "m4":
        from .shortterm import evaluate_panel

        r = evaluate_panel(args.data, checkpoint_dir=args.checkpoint, model_file=args.model, train=args.train_data,
                           seasonality=args.seasonality, backbone=args.backbone,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
        if args.json:
            from .fileio import atomic_write_json

            atomic_write_json(args.json, r)
        print(f"{r['dataset']} horizon {r['horizon']}: sMAPE {r['smape']:.3f}  MASE {r['mase']:.3f}  OWA {r['owa']:.3f}  "
              f"({r['series']} series; Naive2 sMAPE {r['naive2_smape']:.3f}, MASE {r['naive2_mase']:.3f})")
        return 0
    result = evaluate(checkpoint_dir=args.checkpoint, model_file=args.model, data=args.data,
                      json_path=args.json, plot_path=args.plot, target=args.target,
                      backbone=args.backbone, log=lambda line: print(line, file=sys.stderr, flush=True),
                      device=args.device, split=args.split)
    print(f"{result['dataset']} horizon {result['horizon']}: test mse {result['mse']:.4f}  mae {result['mae']:.4f}  "
          f"({result['test_windows']} windows x {result['channels']} channels)")
    return 0


def is_classifier_file(path: str) -> bool:
    """Whether `path` is a model file whose config says task "classify" (read and checked like any load)."""
    from .modelfile import metadata_json, read_model_file

    if not os.path.isfile(path):
        return False
    _, metadata = read_model_file(path, schemes=("fp32", "int8"))
    return metadata_json(metadata, "config", path, dict).get("task") == "classify"


def cmd_forecast(args) -> int:
    from .runtime.forecasting import forecast

    result = forecast(args.model, args.data, out=args.out, plot=args.plot, threads=args.threads,
                      backbone=args.backbone)
    frame = result["frame"]
    span = f"{frame.iloc[0, 0]} to {frame.iloc[-1, 0]}"
    freq = f", one row per {result['frequency']}" if result["frequency"] else " (no date column: steps 1..)"
    print(f"wrote {args.out}: {len(frame)} rows x {frame.shape[1] - 1} channel(s), {span}{freq}; "
          f"from the last {result['rows_read']} rows of {args.data} by the {result['model']}"
          + (f"; plot {args.plot}" if args.plot else ""))
    if result["ignored_columns"]:
        print(f"note: column(s) the model was not trained on were ignored: {', '.join(result['ignored_columns'])}")
    if result["note"]:
        print(f"note: {result['note']}")
    return 0


def cmd_info(args) -> int:
    from .runtime.info import describe, format_info, info_json

    d = describe(args.model)
    print(info_json(d) if args.json else format_info(d))
    return 0


def cmd_export(args) -> int:
    if args.format != "ofa":
        from .export.interop import export_for_runtime

        info = export_for_runtime(args.checkpoint, args.out, args.format, int8=args.int8, int8_form=args.int8_form,
                                  data=args.data, calibration_windows=args.calibration_windows, batch=args.batch,
                                  backbone=args.backbone)
        print(f"wrote {args.out}: {info['format']} {info['precision']}, {info['bytes']:,} bytes")
        return 0
    from .export.merge import export

    info = export(args.checkpoint, args.out, int8=args.int8, data=args.data,
                  calibration_windows=args.calibration_windows, backbone=args.backbone)
    print(f"wrote {args.out}: {info['scheme']}, {info['bytes']:,} bytes, head {info['head']}")
    return 0


def cmd_distill(args) -> int:
    from .training.distill import StudentConfig, distill
    from .training.loop import TrainConfig

    sc = StudentConfig(width=args.width, layers=args.layers, heads=args.heads, ff=args.ff,
                       truth_weight=args.truth_weight)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                     seed=args.seed, precision=args.precision, max_train_windows=args.max_train_windows,
                     max_val_series=args.max_val_series, threads=args.threads, device=args.device,
                     progress=not args.quiet and sys.stderr.isatty())
    meta = distill(args.teacher, args.data, args.out, sc, tc, resume=args.resume,
                   teacher_backbone=args.teacher_backbone)
    print(f"best val mse {meta['best_val_mse']:.4f}; student checkpoint {args.out} "
          f"({meta['sizes']['trainable_params']:,} trainable parameters)")
    return 0


def cmd_demo(args) -> int:
    """Train briefly on the bundled Taylor series, score it, plot it, export it and run the engine."""
    from .demo import demo

    demo(args.out, epochs=args.epochs)
    return 0


def trained_members(r: dict) -> str:
    """`ofa detect`'s forecasters in words: "horizons 8 and 1, 3 trainings each, lookback 64"."""
    horizons, n = r["horizons"], len(r["fits"])
    return (f"horizon{'s' if len(horizons) > 1 else ''} " + " and ".join(map(str, horizons))
            + f", {n} training{'s' if n > 1 else ''}{' each' if len(horizons) > 1 else ''}, "
            f"lookback {r['fits'][0][1]['seq_len']}")


def cmd_detect(args) -> int:
    """Score every row of a series for anomalies, online, with a small forecaster (ofa.anomaly.detector)."""
    import torch

    from .anomaly.files import detect_file

    torch.set_num_threads(args.threads)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    r = detect_file(args.data, args.out, column=args.column, train_fraction=args.train_fraction,
                    strict=args.strict, retrain=args.retrain, stride=args.stride, log=log, export=args.export,
                    model=args.model, one_step=not args.single)
    for note in r["notes"]:
        print(f"note: {note}", file=sys.stderr)
    scores = r["scores"][r["train_rows"]:]
    how = (f"scored by {args.model} in the {r['engine']} engine after its {r['train_rows']} training rows"
           if args.model else f"trained on the first {r['train_rows']} (" + trained_members(r) + ")")
    print(f"wrote {args.out}: {r['rows']} rows of {r['column']!r}; {how}; scored {len(scores)} rows, "
          f"max score {scores.max():.3f}, {int((scores >= 0.5).sum())} at 0.5 or more")
    if r["exported"]:
        e = r["exported"]
        print(f"wrote {args.export}: the first model ({e['scheme']}, lookback {e['seq_len']}, horizon {e['horizon']}, "
              f"{e['bytes']:,} bytes) and its stream settings, for `ofa detect --model` and "
              f"tools/emit_header.py --anomaly")
    return 0


SPLIT_HELP = ("train/val/test: auto (the ETT borders for the ETT files, recognised by content; else 70/10/20), "
              "ett-hour, ett-minute, fractions such as 0.6,0.2,0.2, or rows:TRAIN,VAL,TEST")
BACKBONE_HELP = ("the checkpoint's backbone, when its ofa.json names one outside the checkpoint directory "
                 "(a path recorded in a file is not followed unless you name it here)")


def learning_rate(text: str):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number or auto, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number or auto, got {text!r}")
    return value


class HELP(argparse.HelpFormatter):
    """Every option's help ends with its default, where it has one worth saying."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if action.option_strings and default is not None and default is not False \
                and default != argparse.SUPPRESS and "(default" not in text:
            text += " (default: %(default)s)"
        return text


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ofa", description="One-for-All time-series forecasting")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train rsLoRA adapters on a frozen backbone", formatter_class=HELP)
    add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="score a checkpoint or an exported model on the test split",
                       formatter_class=HELP)
    p.add_argument("--checkpoint", help="checkpoint directory from `ofa train`")
    p.add_argument("--model", help="exported model file from `ofa export`")
    p.add_argument("--data", required=True, help="CSV with the model's channels (matched by name); for a "
                   "classifier (its checkpoint, or its exported model file) a .ts file, scored on accuracy")
    p.add_argument("--target", help="score this one column (default: the model's target, if it has one)")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--plot", help="write a PNG of forecasts vs truth here")
    p.add_argument("--backbone", help=BACKBONE_HELP)
    p.add_argument("--split", help="how to cut --data (default: the split the model was trained with). "
                   + SPLIT_HELP)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where a checkpoint runs (auto: the GPU where torch sees one); a model file runs in the "
                        "C++ engine")
    p.add_argument("--format", choices=["csv", "m4"], default="csv",
                   help="m4: --data is a panel's test file (one series per row); scores sMAPE, MASE and OWA "
                        "against Naive2")
    p.add_argument("--train-data", help="m4: the in-sample panel (default: the file the model trained on)")
    p.add_argument("--seasonality", type=positive_int,
                   help="m4: MASE's and Naive2's seasonal period (default: the M4 frequency's, from ids or file name)")
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("forecast", help="forecast the rows after the last row of a CSV, with their dates",
                       formatter_class=HELP)
    p.add_argument("--model", required=True,
                   help="exported model file (C++ engine, fp32 or int8) or checkpoint directory (PyTorch)")
    p.add_argument("--data", required=True,
                   help="CSV in the data's own units: a date column, then the model's channels by name")
    p.add_argument("--out", required=True, help="CSV to write: the date column, then one column per channel")
    p.add_argument("--plot", help="also write a PNG of the recent history and the forecast")
    p.add_argument("--threads", type=positive_int, default=1, help="engine threads")
    p.add_argument("--backbone", help=BACKBONE_HELP)
    p.set_defaults(func=cmd_forecast)
    p = sub.add_parser("info", help="say what a model file is: graph, sizes, channels, training, firmware fit",
                       formatter_class=HELP)
    p.add_argument("model", help="exported model file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("export", help="merge the adapters and write one model file for the C++ engine",
                       formatter_class=HELP)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory from `ofa train` or `ofa distill`")
    p.add_argument("--out", required=True, help="model file to write")
    p.add_argument("--int8", action="store_true",
                   help="post-training int8 quantisation, calibrated on training windows")
    p.add_argument("--data", help="calibration data for --int8 (required with it: a path recorded in the checkpoint is never used)")
    p.add_argument("--calibration-windows", type=positive_int, default=256,
                   help="training windows to calibrate on")
    p.add_argument("--backbone", help=BACKBONE_HELP)
    p.add_argument("--format", choices=("ofa", "onnx", "tflite"), default="ofa",
                   help="ofa: the C++ engine's model file (bit-exact int8); onnx / tflite: the same merged model "
                        "for ONNX Runtime / LiteRT (needs pip install '.[bench]'; their int8 is not ofa's scheme)")
    p.add_argument("--int8-form", choices=("dynamic", "static"), default="dynamic",
                   help="with --format onnx --int8: dynamic (MatMulInteger) or static QDQ (calibrated on --data)")
    p.add_argument("--batch", type=positive_int, default=1, help="with --format tflite: the fixed batch size")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("distill", help="train a small student on a trained model's forecasts (for firmware)",
                       formatter_class=HELP)
    p.add_argument("--teacher", required=True, help="checkpoint directory of the trained model")
    p.add_argument("--teacher-backbone", help=BACKBONE_HELP)
    p.add_argument("--data", required=True, help="the teacher's training data")
    p.add_argument("--out", required=True, help="student checkpoint directory to write")
    p.add_argument("--width", type=positive_int, default=128, help="student d_model")
    p.add_argument("--layers", type=positive_int, default=2, help="student blocks")
    p.add_argument("--heads", type=positive_int, default=4, help="student attention heads")
    p.add_argument("--ff", type=positive_int, default=256, help="student feed-forward width")
    p.add_argument("--truth-weight", type=float, default=0.0,
                   help="loss target = w * truth + (1 - w) * teacher forecast (0: the teacher only)")
    add_loop_args(p, batch_size=64, lr=1e-3, lr_type=learning_rate, lr_help="peak learning rate, or auto")
    p.set_defaults(func=cmd_distill)
    p = sub.add_parser("demo", help="train, score, plot and export on the bundled Taylor series",
                       formatter_class=HELP)
    p.add_argument("--out", default="runs/demo", help="directory for the demo's checkpoint, plot and model file")
    p.add_argument("--epochs", type=positive_int, default=2, help="training epochs")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("detect", help="anomaly score of every row of a series, online (the algorithm: "
                       "ofa.anomaly.detector)", formatter_class=HELP)
    p.add_argument("--data", required=True, help="CSV: a timestamp column first, then the value column")
    p.add_argument("--column", help="the value column (default: value, or the one numeric column)")
    p.add_argument("--out", required=True, help="CSV to write: timestamp,value,anomaly_score (atomically)")
    p.add_argument("--train-fraction", type=float,
                   help="train on the first fraction of the rows (default: NAB's probationary period, "
                        "min(15%%, 750 rows))")
    p.add_argument("--retrain", choices=["double", "none"], default="double",
                   help="double: train again each time the rows seen double (on the last 4,000); none: "
                        "keep the first model")
    p.add_argument("--stride", type=positive_int, default=1, help="rows between forecasts (at most the "
                   "horizon, 8)")
    p.add_argument("--strict", action="store_true",
                   help="refuse timestamps that repeat or go back (accepted by default, with a note)")
    p.add_argument("--single", action="store_true",
                   help="run the main forecaster alone, as the firmware does (half the training; by default a "
                        "second one, trained for the next row only, scores beside it and the larger score wins; "
                        "--stride above 1 implies --single)")
    p.add_argument("--export", metavar="MODEL.ofa",
                   help="also write the detector's first model (int8, the main forecaster's) and its stream "
                        "settings, for --model and the firmware (tools/emit_header.py --anomaly)")
    p.add_argument("--model", metavar="MODEL.ofa",
                   help="score with a detector written by --export, in the C++ engine, as the firmware does "
                        "(no training, no retraining)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_detect)
    return ap


# Import-time warnings of optional packages that transformers / PEFT probe for (torchao, which the
# bench extra's litert-torch brings, logs every prebuilt CUDA library it cannot load): not ofa's to report.
QUIET_LOGGERS = ("torchao", "torch.utils._pytree")


def main(argv=None) -> int:
    import logging

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except OfaError as exc:
        print(f"ofa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ofa {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
