"""Export a checkpoint (forecaster or classifier) as one model file for the C++ engine: low-rank updates
merged, layouts unified.

The file is safetensors: float32 tensors named as the engine expects (see csrc/ofa/ofa.h) plus string
metadata (format version, block layout, lengths, scaler, checksum). Merging uses PEFT's own
merge_and_unload, so the file computes exactly what the adapters compute:
- position table: the N rows the model uses, with scaling * (B @ A) added;
- output layer: stored dense (base + update) or, when its frozen base is zero and r*(N*d + H) is
  smaller than H*N*d, factored as head.a = A (r, N*d) and head.b = scaling * B (H, r);
- BERT's token-type row 0 (added to every token) is folded into the input-layer bias;
- GPT-2's Conv1D weights are transposed to the (out, in) layout of every other linear layer.
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict

import numpy as np
import torch

from ..training import checkpoint
from ..training.backbone import BERT, GPT2
from ..errors import OfaError
from ..fileio import atomic_write_bytes
from ..training.model import REVIN_EPS, base_of
from ..modelfile import FORMAT, FORMAT_VERSION, checksum

GELU_KINDS = {"gelu": "erf", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}


def as_np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())


def block_tensors(layout: str, block, prefix: str) -> dict[str, torch.Tensor]:
    """One frozen block in the engine's names, every weight (out, in)."""
    if layout == BERT:
        att = block.attention
        return {
            f"{prefix}.attn_qkv.weight": torch.cat([att.self.query.weight, att.self.key.weight, att.self.value.weight]),
            f"{prefix}.attn_qkv.bias": torch.cat([att.self.query.bias, att.self.key.bias, att.self.value.bias]),
            f"{prefix}.attn_out.weight": att.output.dense.weight, f"{prefix}.attn_out.bias": att.output.dense.bias,
            f"{prefix}.ln1.weight": att.output.LayerNorm.weight, f"{prefix}.ln1.bias": att.output.LayerNorm.bias,
            f"{prefix}.ff_in.weight": block.intermediate.dense.weight,
            f"{prefix}.ff_in.bias": block.intermediate.dense.bias,
            f"{prefix}.ff_out.weight": block.output.dense.weight, f"{prefix}.ff_out.bias": block.output.dense.bias,
            f"{prefix}.ln2.weight": block.output.LayerNorm.weight, f"{prefix}.ln2.bias": block.output.LayerNorm.bias,
        }
    return {  # GPT-2 Conv1D stores (in, out): transpose
        f"{prefix}.attn_qkv.weight": block.attn.c_attn.weight.T, f"{prefix}.attn_qkv.bias": block.attn.c_attn.bias,
        f"{prefix}.attn_out.weight": block.attn.c_proj.weight.T, f"{prefix}.attn_out.bias": block.attn.c_proj.bias,
        f"{prefix}.ln1.weight": block.ln_1.weight, f"{prefix}.ln1.bias": block.ln_1.bias,
        f"{prefix}.ff_in.weight": block.mlp.c_fc.weight.T, f"{prefix}.ff_in.bias": block.mlp.c_fc.bias,
        f"{prefix}.ff_out.weight": block.mlp.c_proj.weight.T, f"{prefix}.ff_out.bias": block.mlp.c_proj.bias,
        f"{prefix}.ln2.weight": block.ln_2.weight, f"{prefix}.ln2.bias": block.ln_2.bias,
    }


def encoder_tensors(merged, layout: str, n: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The merged model's input layer, first n positions, blocks and embedding / final LN in the engine's names,
    and their config fields; the same for a forecaster and a classifier (both have .backbone and .in_layer)."""
    bb = merged.backbone
    bcfg = bb.config
    act = getattr(bcfg, "hidden_act", None) or getattr(bcfg, "activation_function", None)
    if act not in GELU_KINDS:
        raise OfaError(f"backbone activation {act!r} is not supported by the engine (gelu, gelu_new)")
    tensors: dict[str, torch.Tensor] = {}
    if layout == BERT:
        emb = bb.embeddings
        tensors["pos"] = emb.position_embeddings.weight[:n]
        tensors["in_layer.weight"] = merged.in_layer.weight
        tensors["in_layer.bias"] = merged.in_layer.bias + emb.token_type_embeddings.weight[0]
        tensors["emb_ln.weight"], tensors["emb_ln.bias"] = emb.LayerNorm.weight, emb.LayerNorm.bias
        blocks, ln_eps, n_heads = bb.encoder.layer, bcfg.layer_norm_eps, bcfg.num_attention_heads
        d_ff = bcfg.intermediate_size
    else:
        tensors["pos"] = bb.wpe.weight[:n]
        tensors["in_layer.weight"], tensors["in_layer.bias"] = merged.in_layer.weight, merged.in_layer.bias
        tensors["final_ln.weight"], tensors["final_ln.bias"] = bb.ln_f.weight, bb.ln_f.bias
        blocks, ln_eps, n_heads = bb.h, bcfg.layer_norm_epsilon, bcfg.n_head
        d_ff = bcfg.n_inner or 4 * bcfg.hidden_size
    for i, block in enumerate(blocks):
        tensors.update(block_tensors(layout, block, f"blocks.{i}"))
    return tensors, {"layout": layout, "n_heads": n_heads, "d_ff": d_ff, "n_layers": len(blocks),
                     "gelu": GELU_KINDS[act], "ln_eps": float(ln_eps)}


def finite_arrays(tensors: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    arrays = {k: as_np(v) for k, v in tensors.items()}
    for name, arr in arrays.items():
        if not np.isfinite(arr).all():
            raise OfaError(f"checkpoint has non-finite values in {name}; refusing to export")
    return arrays


def model_arrays(model, meta: dict) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of the exported model, from a loaded PEFT model and its checkpoint meta."""
    peft_model = model
    base = base_of(peft_model)
    cfg = base.cfg
    n = base.n_patches
    # Factored head: read the adapter before merging (merging folds it into the dense weight).
    head = base.out_layer
    rank = cfg.rank
    head_base_zero = bool(torch.count_nonzero(head.base_layer.weight) == 0)
    d = base.backbone.config.hidden_size
    factored = head_base_zero and rank * (n * d + cfg.horizon) < cfg.horizon * n * d
    tensors: dict[str, torch.Tensor] = {}
    if factored:
        tensors["head.a"] = head.lora_A["default"].weight
        tensors["head.b"] = head.lora_B["default"].weight * head.scaling["default"]
        tensors["head.bias"] = head.base_layer.bias
    merged = copy.deepcopy(peft_model).merge_and_unload()
    encoder, enc = encoder_tensors(merged, base.layout, n)
    tensors.update(encoder)
    if not factored:
        tensors["head.weight"], tensors["head.bias"] = merged.out_layer.weight, merged.out_layer.bias
    if cfg.linear_path != "none":
        tensors["linear.weight"], tensors["linear.bias"] = merged.linear_path.weight, merged.linear_path.bias
    scaler = checkpoint.scaler_from(meta)
    tensors["scaler.mean"], tensors["scaler.std"] = torch.from_numpy(scaler.mean), torch.from_numpy(scaler.std)
    arrays = finite_arrays(tensors)
    config = {
        "layout": enc["layout"], "d_model": d, "n_heads": enc["n_heads"], "d_ff": enc["d_ff"],
        "n_layers": enc["n_layers"], "seq_len": cfg.seq_len, "patch_len": cfg.patch, "stride": cfg.stride,
        "n_patches": n, "horizon": cfg.horizon, "n_channels": len(scaler.mean), "head_rank": rank if factored else 0,
        "gelu": enc["gelu"], "ln_eps": enc["ln_eps"], "revin_eps": REVIN_EPS,
        "linear_path": int(cfg.linear_path != "none"),
    }
    metadata = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "dtype": "fp32",
        "config": json.dumps(config), "backbone": cfg.backbone,
        "channels": json.dumps(meta["data"]["channels"]), "target": json.dumps(meta["data"].get("target")),
        "dataset": meta["data"].get("name", ""), "model": json.dumps(cfg.to_dict()),
        "training": json.dumps(training_record(meta)),
        "split": meta["data"].get("split", "auto"),
    }
    metadata["checksum"] = checksum(arrays, metadata)
    return arrays, metadata


def classifier_arrays(model, meta: dict) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """(tensors, metadata) of an exported classifier (ofa.training.classifier) from its loaded PEFT model.

    The head is one dense (K, C*N*d) layer over each window's states, feature c*N*d + n*d + j (channel c,
    patch n, width j; joined tokens: (K, N*d), one sequence): pool "flatten" as trained; pool "mean" as the
    same map with W[k, c*d + j] / N repeated over n. Norm "global" keeps the training scaler; "instance" gets
    the identity scaler, so the engine's instance norm sees the raw case. Norm "instance+stats" (2C more head
    inputs) has no engine path: refused.
    """
    base = model.get_base_model()
    cfg = base.cfg
    if cfg.norm not in ("global", "instance"):
        raise OfaError(f"a classifier with norm {cfg.norm!r} cannot be exported: the engine has no path for the "
                       f"{2 * cfg.channels} instance statistics its head reads; train with --norm global or instance")
    layout = meta.get("backbone_layout")
    if layout not in (BERT, GPT2):
        raise OfaError(f"checkpoint records backbone layout {layout!r}; expected {BERT!r} or {GPT2!r}")
    n, d, C = cfg.n_patches, base.backbone.config.hidden_size, cfg.channels
    merged = copy.deepcopy(model).merge_and_unload()
    tensors, enc = encoder_tensors(merged, layout, n)
    w, K = merged.head.weight.detach(), len(cfg.classes)
    sequences = cfg.sequences
    if cfg.pool == "mean":  # the mean over patches as a flatten weight
        w = (w.reshape(K, sequences, 1, d) / n).expand(K, sequences, n, d).reshape(K, sequences * n * d)
    tensors["head.weight"], tensors["head.bias"] = w, merged.head.bias
    if cfg.norm == "global":
        tensors["scaler.mean"] = torch.tensor(meta["scaler"]["mean"], dtype=torch.float32)
        tensors["scaler.std"] = torch.tensor(meta["scaler"]["std"], dtype=torch.float32)
    else:
        tensors["scaler.mean"], tensors["scaler.std"] = torch.zeros(C), torch.ones(C)
    arrays = finite_arrays(tensors)
    config = {"layout": layout, "d_model": d, "n_heads": enc["n_heads"], "d_ff": enc["d_ff"],
              "n_layers": enc["n_layers"], "seq_len": cfg.seq_len, "patch_len": cfg.patch, "stride": cfg.stride,
              "n_patches": n, "task": "classify", "n_classes": K, "norm": cfg.norm, "tokens": cfg.tokens,
              "n_channels": C, "head_rank": 0,
              "gelu": enc["gelu"], "ln_eps": enc["ln_eps"], "revin_eps": REVIN_EPS, "linear_path": 0}
    history = meta.get("history") or []
    training = {"dataset": meta["data"].get("name", ""), "train_cases": meta["data"].get("train_cases"),
                "best_val_accuracy": meta.get("best_val_accuracy"), "best_epoch": meta.get("best_epoch"),
                "epochs_run": len(history), "train_seconds": meta.get("train_seconds"),
                "lr": (meta.get("train") or {}).get("lr"),
                "trainable_params": (meta.get("sizes") or {}).get("trainable_params"),
                "refit": meta.get("refit")}
    metadata = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "dtype": "fp32", "config": json.dumps(config),
        "backbone": cfg.backbone, "channels": "null", "target": "null", "dataset": meta["data"].get("name", ""),
        "model": json.dumps(asdict(cfg)), "training": json.dumps(training),
        "classes": json.dumps(list(cfg.classes)), "lengths": cfg.lengths,
    }
    metadata["checksum"] = checksum(arrays, metadata)
    return arrays, metadata


def training_record(meta: dict) -> dict:
    """What `ofa info` says about how the model was made: its data, budget and validation score.
    Names only, never paths: a model file does not carry the trainer's directory layout."""
    history = meta.get("history") or []
    record = {"dataset": meta["data"].get("name", ""), "train_series": meta["data"].get("train_series"),
              "best_val_mse": meta.get("best_val_mse"), "epochs_run": len(history),
              "best_epoch": min(history, key=lambda h: h["val_mse"])["epoch"] if history else 0,
              "train_seconds": meta.get("train_seconds"), "lr": (meta.get("train") or {}).get("lr"),
              "trainable_params": (meta.get("sizes") or {}).get("trainable_params"),
              "lookback_val_mse": (meta.get("lookback") or {}).get("val_mse")}
    if meta.get("combination"):  # a panel model's validated combination (ofa.shortterm), applied when scoring
        record["combination"] = meta["combination"]
    if record["best_val_mse"] is not None and history and record["best_val_mse"] < min(h["val_mse"] for h in history):
        record["best_epoch"] = 0  # the linear path alone (epoch 0) validated best
    distilled = meta.get("distilled_from")
    if distilled:
        record["distilled_from"] = {"teacher": os.path.basename(str(distilled.get("teacher", ""))),
                                    "truth_weight": distilled.get("truth_weight"),
                                    "student": distilled.get("student")}
    return record


def calibration_windows(data: str, meta_model: dict, target, n_windows: int, scaler_mean, scaler_std,
                        split: str = "auto") -> np.ndarray:
    """n_windows evenly spaced training windows of `data`, in data units (what the engine reads)."""
    from ..data import Scaler, evenly_spaced, load_series, make_splits

    if not isinstance(n_windows, int) or n_windows <= 0:
        raise OfaError(f"--calibration-windows must be a positive integer, got {n_windows!r}")
    splits = make_splits(load_series(data, target, split), meta_model["seq_len"], meta_model["horizon"])
    x, _ = splits.train.windows()
    return Scaler(scaler_mean, scaler_std).inverse(x[evenly_spaced(len(x), n_windows)])  # the model file's scaler


def classifier_calibration_windows(metadata: dict, data: str, n_windows: int) -> np.ndarray:
    """n_windows evenly spaced cases of a .ts file (the training file) as a classifier's windows (W, C, L)."""
    from ..classification import uea
    from ..data import evenly_spaced

    if not isinstance(n_windows, int) or n_windows <= 0:
        raise OfaError(f"--calibration-windows must be a positive integer, got {n_windows!r}")
    config = json.loads(metadata["config"])
    cases = uea.read_ts(data)
    x = uea.windows(cases, config["n_channels"], config["seq_len"], metadata["lengths"])
    return x[evenly_spaced(len(x), n_windows)]


def model_calibration_windows(arrays: dict, metadata: dict, data: str, n_windows: int) -> np.ndarray:
    """A model file's calibration windows (W, L, C) from `data`, in data units, its channels checked; a
    classifier's (W, C, L) from a .ts file."""
    config = json.loads(metadata["config"])
    if config.get("task") == "classify":
        return classifier_calibration_windows(metadata, data, n_windows)
    target = json.loads(metadata.get("target", "null"))
    x = calibration_windows(data, config, target, n_windows, arrays["scaler.mean"], arrays["scaler.std"],
                            metadata.get("split", "auto"))
    channels = json.loads(metadata.get("channels", "null"))
    if channels is not None and x.shape[2] != len(channels):
        raise OfaError(f"{data}: {x.shape[2]} channels, the model has {len(channels)}")
    return x


def int8_arrays(arrays: dict, metadata: dict, data: str, n_windows: int) -> tuple[dict, dict]:
    """Quantise fp32 model arrays, calibrated on `data`'s training windows."""
    from .quantize import quantize_arrays

    x = model_calibration_windows(arrays, metadata, data, n_windows)
    q_arrays, q_meta = quantize_arrays(arrays, metadata, x)
    q_meta["checksum"] = checksum(q_arrays, q_meta)
    return q_arrays, q_meta


def write_model_file(out: str, arrays: dict, metadata: dict) -> None:
    from safetensors.numpy import save

    try:  # serialised in memory: safetensors' own save_file leaves a temp file of its naming after a kill
        atomic_write_bytes(out, save(arrays, metadata=metadata))
    except OSError as exc:
        raise OfaError(f"cannot write {out}: {exc.strerror or exc}") from None


def quantize_model_file(model_file: str, out: str, data: str, calibration_windows: int = 256) -> dict:
    """An int8 model file from an exported fp32 one (which must be fp32: int8 files are refused)."""
    from ..modelfile import read_model_file

    if not out or out.endswith("/"):
        raise OfaError(f"--out must name a file, got {out!r}")
    arrays, metadata = read_model_file(model_file)
    q_arrays, q_meta = int8_arrays(arrays, metadata, data, calibration_windows)
    write_model_file(out, q_arrays, q_meta)
    return {"bytes": os.path.getsize(out), "tensors": len(q_arrays), "scheme": "int8"}


def export(checkpoint_dir: str, out: str, int8: bool = False, data: str | None = None,
           calibration_windows: int = 256, backbone: str | None = None) -> dict:
    """Write `out` atomically from a checkpoint; returns {"bytes", "head", "tensors", "scheme"}.

    int8: quantise after merging, calibrated on `calibration_windows` training windows of `data`
    (required: a checkpoint never chooses which file is read); a classifier's: cases of its training .ts file.
    backbone: the checkpoint's backbone, when ofa.json names one outside its directory (checkpoint.load).
    """
    if not out or out.endswith("/"):
        raise OfaError(f"--out must name a file, got {out!r}")
    from ..training import classifier

    if classifier.is_checkpoint(checkpoint_dir):
        model, meta = classifier.load(checkpoint_dir, backbone=backbone)
        arrays, metadata = classifier_arrays(model, meta)
    else:
        model, meta = checkpoint.load(checkpoint_dir, backbone=backbone)
        arrays, metadata = model_arrays(model, meta)
    if int8:
        if not data:  # never the path recorded in ofa.json: a checkpoint from elsewhere must not choose files
            raise OfaError("int8 export needs calibration data: pass --data (training windows of it calibrate the "
                           "activation ranges)")
        arrays, metadata = int8_arrays(arrays, metadata, data, calibration_windows)
    write_model_file(out, arrays, metadata)
    config = json.loads(metadata["config"])
    head_rank = config["head_rank"]
    head = f"linear, {config['n_classes']} classes" if config.get("task") == "classify" else \
        f"factored rank {head_rank}" if head_rank else "dense"
    return {"bytes": os.path.getsize(out), "head": head, "tensors": len(arrays), "scheme": metadata["dtype"]}
