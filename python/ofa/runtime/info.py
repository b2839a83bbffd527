"""What a model file is: `ofa info MODEL [--json]`.

Everything comes from the file itself (read and checked like any load: format, checksum, int8 ranges):
the graph's shape, the weight scheme and sizes, the channels and scaler, how it was trained (files
exported before the "training" record existed say "not recorded"), and whether it fits each firmware
target profile. No torch: it runs where the engine runs.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..errors import OfaError
from ..modelfile import metadata_json, read_model_file


def firmware_fit(tensors: dict, config: dict, scheme: str) -> dict:
    """{target: {"fits", "flash_bytes", "ram_bytes", "flash_budget", "ram_budget", "problem"}} per profile."""
    from ..firmware import TARGETS, fit_problems, footprint

    if config.get("task") == "classify":
        return {name: {"fits": False, "problem": "the firmware runs forecasters; a classifier runs in the host engine"}
                for name in TARGETS}
    if scheme != "int8":
        return {name: {"fits": False, "problem": "the firmware runs int8 model files: ofa export --int8"}
                for name in TARGETS}
    fp = footprint(tensors, config)
    out = {}
    for name, target in TARGETS.items():
        problem = "; ".join(fit_problems(fp, target)) or None
        out[name] = {"fits": problem is None, "flash_bytes": fp.flash_bytes, "ram_bytes": fp.ram_bytes,
                     "flash_budget": target.flash, "ram_budget": target.ram, "problem": problem}
    return out


def describe(path: str) -> dict:
    """A JSON-ready description of the model file at `path`."""
    from .. import _engine

    tensors, metadata = read_model_file(path, schemes=("fp32", "int8"))
    config = metadata_json(metadata, "config", path, dict)
    scheme = metadata["dtype"]
    channels = metadata_json(metadata, "channels", path, list)
    training = metadata_json(metadata, "training", path, dict, default={}) if "training" in metadata else None
    sizer = _engine.arena_bytes_int8 if scheme == "int8" else _engine.arena_bytes
    try:
        host_arena = sizer(config, 16)
    except (ValueError, TypeError) as exc:
        raise OfaError(f"{path}: {exc}") from None
    model_tensors = {k: t for k, t in tensors.items() if not k.startswith("scaler.")}
    mean, std = tensors["scaler.mean"], tensors["scaler.std"]
    classify = config.get("task") == "classify"
    head = f"factored, rank {config['head_rank']}" if config.get("head_rank") else "dense"
    if classify:
        over = "all channels' states" if config.get("tokens", "channel") == "channel" else \
            (f"one sequence of joined tokens ({config['patch_len'] * config['n_channels']} values: patch n of every "
             f"channel)")
        head = f"linear over {over}, {config['n_classes']} classes, norm {config.get('norm')}"
    return {
        "task": config.get("task", "forecast"),
        "classes": metadata_json(metadata, "classes", path, list) if classify else None,
        "file": os.path.basename(path), "bytes": os.path.getsize(path), "scheme": scheme,
        "format_version": int(metadata["format_version"]),
        "backbone": metadata.get("backbone", ""), "layout": config["layout"], "blocks": config["n_layers"],
        "d_model": config["d_model"], "heads": config["n_heads"], "d_ff": config["d_ff"],
        "seq_len": config["seq_len"], "horizon": config.get("horizon"), "patch": config["patch_len"],
        "stride": config["stride"], "patches": config["n_patches"], "head": head,
        "linear_path": bool(config.get("linear_path")), "gelu": config.get("gelu"),
        "parameters": int(sum(t.size for t in model_tensors.values())),
        "weight_bytes": int(sum(t.nbytes for t in model_tensors.values())),
        "host_arena_bytes_per_thread": int(host_arena),
        "channels": channels, "target": metadata_json(metadata, "target", path, str),
        "scaler": {"mean": mean.astype(float).tolist(), "std": std.astype(float).tolist()},
        "dataset": metadata.get("dataset", ""), "training": training,
        "int8": config.get("int8") and {k: v for k, v in config["int8"].items() if k != "block_grids"},
        "firmware": firmware_fit(tensors, config, scheme),
    }


def _kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):,.2f} MiB"


def _num(v, fmt: str = ".4f") -> str:
    return "not recorded" if v is None else format(v, fmt)


def format_info(d: dict) -> str:
    """The description as the lines `ofa info` prints."""
    lines = [
        f"{d['file']}: ofa model file, format {d['format_version']}, {d['scheme']}, {d['bytes']:,} bytes",
        f"  graph     {d['layout']} layout ({d['backbone'] or 'backbone not named'}), {d['blocks']} block(s), "
        f"d_model {d['d_model']}, {d['heads']} heads, feed-forward {d['d_ff']}, GELU {d['gelu']}",
        f"  window    seq_len {d['seq_len']} -> "
        + (f"classes {', '.join(map(str, d['classes']))}" if d["task"] == "classify" else f"horizon {d['horizon']}")
        + f"; patch {d['patch']}, stride {d['stride']}, {d['patches']} patches; head {d['head']}; "
        f"linear path {'yes' if d['linear_path'] else 'no'}",
        f"  size      {d['parameters']:,} parameters, {_kib(d['weight_bytes'])} of weights; host engine arena "
        f"{_kib(d['host_arena_bytes_per_thread'])} per thread",
    ]
    if d["int8"]:
        lines.append(f"  int8      {d['int8'].get('scheme')}; calibrated on {d['int8'].get('calibration_windows')} windows")
    names = d["channels"] or [f"#{i}" for i in range(len(d["scaler"]["mean"]))]
    lines.append(f"  channels  {len(names)}: " + ", ".join(
        f"{c} (mean {m:.4g}, std {s:.4g})" for c, m, s in zip(names, d["scaler"]["mean"], d["scaler"]["std"])))
    if d["target"]:
        lines.append(f"  target    {d['target']}")
    t = d["training"]
    if t is None:
        lines.append(f"  trained   on {d['dataset'] or 'unknown data'}; details not recorded (exported before ofa "
                     f"recorded them)")
    elif d["task"] == "classify":
        lines.append(f"  trained   on {t.get('dataset') or d['dataset']}: {t.get('train_cases') or 0:,} cases, "
                     f"{t.get('trainable_params') or 0:,} trained parameters, {_num(t.get('train_seconds'), '.0f')} s; "
                     f"best validation accuracy {_num(t.get('best_val_accuracy'))} (epoch {t.get('best_epoch')} of "
                     f"{t.get('epochs_run')})" + (", then refit on every case" if t.get("refit") else ""))
    else:
        epoch = "epoch 0, the linear path alone" if t.get("best_epoch") == 0 and t.get("epochs_run") else \
            f"epoch {t.get('best_epoch')} of {t.get('epochs_run')}"
        lines.append(f"  trained   on {t.get('dataset') or d['dataset']}: {t.get('train_series') or 0:,} series, "
                     f"{t.get('trainable_params') or 0:,} trained parameters, {_num(t.get('train_seconds'), '.0f')} s; "
                     f"best validation MSE {_num(t.get('best_val_mse'))} ({epoch})")
        if t.get("distilled_from"):
            s = t["distilled_from"]
            lines.append(f"  student   of {s.get('teacher')} (loss target {s.get('truth_weight')} truth)")
    lines.append("  test      not recorded in the file: ofa eval --model FILE --data "
                 + ("TEST.ts" if d["task"] == "classify" else "CSV"))
    for name, f in d["firmware"].items():
        label = f"  {name:<10}" if len(name) < 10 else f"  {name} "  # the column, or one space past a long name
        if f["fits"]:
            lines.append(f"{label}fits: flash {_kib(f['flash_bytes'])} of {_kib(f['flash_budget'])}, "
                         f"RAM {_kib(f['ram_bytes'])} of {_kib(f['ram_budget'])}")
        else:
            lines.append(f"{label}does not fit: {f['problem']}")
    return "\n".join(lines)


def info_json(d: dict) -> str:
    def plain(v):
        return v.item() if isinstance(v, np.generic) else str(v)

    return json.dumps(d, indent=1, default=plain)
