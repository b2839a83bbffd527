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


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CSV (date column, then numeric channels), or builtin:taylor or builtin:seatbelts (packaged series)")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--target", help="train on this one column instead of all channels")
    p.add_argument("--horizon", type=positive_int, default=96, help="steps to forecast")
    p.add_argument("--seq-len", type=lookback, help="input steps, or auto: the one of 336 / 512 / 720 whose ridge "
                   "forecaster validates best (default: the preset's; auto for the default preset, 336 for paper)")
    p.add_argument("--patch", type=positive_int, default=16, help="patch length")
    p.add_argument("--stride", type=positive_int, default=8, help="steps between patch starts")
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
                          "at 657 steps down to 1e-4 at 8,980 steps and more; the paper preset's is 1e-4)")
    p.add_argument("--train-fraction", type=float, default=1.0, help="few-shot: first fraction of train data")
    p.add_argument("--split", default="auto", help=SPLIT_HELP)
    p.add_argument("--format", choices=["csv", "m4"], default="csv",
                   help="m4: a panel of many series, one per row (an id, then values; shorter series end in empty "
                        "fields), trained across its series; validation is each series' last --horizon values")
    p.add_argument("--loss", choices=["auto", "mse", "mae"], default="auto",
                   help="training loss, and the validation error early stopping follows (auto: mae for --format m4, "
                        "whose sMAPE and MASE are absolute errors; mse otherwise)")


def add_loop_args(p: argparse.ArgumentParser, batch_size, lr, lr_type, lr_help: str) -> None:
    """The training loop's options, shared by train and distill (which differ in their defaults only)."""
    p.add_argument("--epochs", type=positive_int, default=10, help="at most this many epochs (early stopping)")
    p.add_argument("--batch-size", type=positive_int, default=batch_size,
                   help="windows per step" + ("" if batch_size else " (default: the preset's)"))
    p.add_argument("--lr", type=lr_type, default=lr, help=lr_help)
    p.add_argument("--patience", type=positive_int, default=3,
                   help="stop after this many epochs without a better validation MSE")
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

    preset = PRESETS[args.preset]
    mc = ModelConfig(backbone=args.backbone, horizon=args.horizon, patch=args.patch,
                     stride=args.stride, rank=args.rank, alpha=args.alpha, **preset["model"])
    for key, value in (("layers", args.layers), ("train", args.train_mode), ("head_base", args.head_base),
                       ("seq_len", args.seq_len)):
        if value is not None:
            setattr(mc, key, value)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size or preset["train"]["batch_size"],
                     lr=args.lr or preset["train"]["lr"],
                     patience=args.patience, seed=args.seed, precision=args.precision,
                     max_train_windows=args.max_train_windows, max_val_series=args.max_val_series,
                     train_fraction=args.train_fraction, device=args.device, split=args.split,
                     data_format=args.format, loss=args.loss, threads=args.threads, progress=not args.quiet and sys.stderr.isatty())
    meta = train(args.data, args.out, mc, tc, target=args.target, resume=args.resume)
    sizes = meta["sizes"]
    if os.environ.get("RANK", "0") != "0":
        return 0  # one line per job under torchrun, from rank 0
    print(f"best val mse {meta['best_val_mse']:.4f}; checkpoint {args.out} "
          f"({sizes['trainable_params']:,} trainable parameters, {sizes['adapter_bytes']:,} adapter bytes)")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import evaluate

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
    p.add_argument("--data", required=True, help="CSV with the model's channels (matched by name)")
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
    return ap


def main(argv=None) -> int:
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
