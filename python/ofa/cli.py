"""`ofa` command line: train, eval, export, distill, demo. User errors print one line and exit with status 2."""
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


def lookback(text: str):
    return "auto" if text == "auto" else positive_int(text)


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="CSV (date column, then numeric channels) or builtin:taylor")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--target", help="train on this one column instead of all channels")
    p.add_argument("--horizon", type=positive_int, default=96)
    p.add_argument("--seq-len", type=lookback, help="input steps, or auto: the one of 336 / 512 / 720 whose ridge "
                   "forecaster validates best (default: the preset's; auto for the default preset, 336 for paper)")
    p.add_argument("--patch", type=positive_int, default=16)
    p.add_argument("--stride", type=positive_int, default=8)
    p.add_argument("--backbone", default="minilm", help="minilm (bundled), gpt2, or a local model directory")
    p.add_argument("--layers", type=positive_int, help="keep the first N backbone blocks (default: the preset's)")
    p.add_argument("--preset", choices=["default", "paper"], default="default",
                   help="paper: only LoRA trains, frozen random head base (arXiv 2603.29756)")
    p.add_argument("--train-mode", choices=["lora", "lora+input", "lora+input+ln"], help="override the preset's trainable set")
    p.add_argument("--head-base", choices=["random", "zero"], help="override the preset's output-layer base")
    p.add_argument("--rank", type=positive_int, default=16)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, help="windows per step (default: the preset's)")
    p.add_argument("--lr", type=learning_rate,
                   help="peak learning rate, or auto (the default preset's: from the training budget, 2e-3 at "
                        "657 steps down to 1e-4 at 8,980 steps and more; the paper preset's is 1e-4)")
    p.add_argument("--patience", type=positive_int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 autocasts training matmuls (fast on AMX/AVX512-BF16 CPUs)")
    p.add_argument("--max-train-windows", type=int, default=0, help="use at most N evenly spaced windows")
    p.add_argument("--train-fraction", type=float, default=1.0, help="few-shot: first fraction of train data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args) -> int:
    from .model import ModelConfig
    from .training import PRESETS, TrainConfig, train

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
                     max_train_windows=args.max_train_windows, train_fraction=args.train_fraction,
                     threads=args.threads, progress=not args.quiet and sys.stderr.isatty())
    meta = train(args.data, args.out, mc, tc, target=args.target, resume=args.resume)
    sizes = meta["sizes"]
    print(f"best val mse {meta['best_val_mse']:.4f}; checkpoint {args.out} "
          f"({sizes['trainable_params']:,} trainable parameters, {sizes['adapter_bytes']:,} adapter bytes)")
    return 0


def cmd_eval(args) -> int:
    from .evaluation import evaluate

    result = evaluate(checkpoint_dir=args.checkpoint, model_file=args.model, data=args.data,
                      json_path=args.json, plot_path=args.plot, target=args.target,
                      backbone=args.backbone)
    print(f"{result['dataset']} horizon {result['horizon']}: test mse {result['mse']:.4f}  mae {result['mae']:.4f}  "
          f"({result['test_windows']} windows x {result['channels']} channels)")
    return 0


def cmd_export(args) -> int:
    from .export import export

    info = export(args.checkpoint, args.out, int8=args.int8, data=args.data,
                  calibration_windows=args.calibration_windows, backbone=args.backbone)
    print(f"wrote {args.out}: {info['scheme']}, {info['bytes']:,} bytes, head {info['head']}")
    return 0


def cmd_distill(args) -> int:
    from .distill import StudentConfig, distill
    from .training import TrainConfig

    sc = StudentConfig(width=args.width, layers=args.layers, heads=args.heads, ff=args.ff,
                       truth_weight=args.truth_weight)
    tc = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, patience=args.patience,
                     seed=args.seed, precision=args.precision, max_train_windows=args.max_train_windows,
                     threads=args.threads, progress=not args.quiet and sys.stderr.isatty())
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


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ofa", description="One-for-All time-series forecasting")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train rsLoRA adapters on a frozen backbone")
    add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("eval", help="score a checkpoint or an exported model on the test split")
    p.add_argument("--checkpoint", help="checkpoint directory from `ofa train`")
    p.add_argument("--model", help="exported model file from `ofa export`")
    p.add_argument("--data", required=True)
    p.add_argument("--target")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--plot", help="write a PNG of forecasts vs truth here")
    p.add_argument("--backbone", help=BACKBONE_HELP)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("export", help="merge the adapters and write one model file for the C++ engine")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--int8", action="store_true",
                   help="post-training int8 quantisation, calibrated on training windows")
    p.add_argument("--data", help="calibration data for --int8 (required with it: a path recorded in the checkpoint is never used)")
    p.add_argument("--calibration-windows", type=positive_int, default=256,
                   help="training windows to calibrate on (default 256)")
    p.add_argument("--backbone", help=BACKBONE_HELP)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("distill", help="train a small student on a trained model's forecasts (for firmware)")
    p.add_argument("--teacher", required=True, help="checkpoint directory of the trained model")
    p.add_argument("--teacher-backbone", help=BACKBONE_HELP)
    p.add_argument("--data", required=True, help="the teacher's training data")
    p.add_argument("--out", required=True, help="student checkpoint directory to write")
    p.add_argument("--width", type=positive_int, default=128, help="student d_model (default 128)")
    p.add_argument("--layers", type=positive_int, default=2, help="student blocks (default 2)")
    p.add_argument("--heads", type=positive_int, default=4)
    p.add_argument("--ff", type=positive_int, default=256, help="student feed-forward width (default 256)")
    p.add_argument("--truth-weight", type=float, default=0.0,
                   help="loss target = w * truth + (1 - w) * teacher forecast (default 0: the teacher only)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--patience", type=positive_int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--max-train-windows", type=int, default=0, help="use at most N evenly spaced windows")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_distill)
    p = sub.add_parser("demo", help="train, score, plot and export on the bundled Taylor series")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--epochs", type=positive_int, default=2)
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
