"""An int8 model file as C for the firmware: the header writer.

`emit(model_path, target, out_dir, data=...)` writes two headers into out_dir:

    ofa_model.h    config macros, OFA_ARENA_BYTES (the host planner's figure for one series at a
                   time), the weights as aligned const arrays (flash) and one `ofa_firmware_model` struct
                   over them, ready for ofa_forward_int8()
    ofa_golden.h   a few real input windows (data units) and the host engine's outputs for them,
                   stored as float bit patterns: the firmware compares bit for bit

Both are written to temporary names and renamed, so a failed run leaves no half-written header.
No torch here: the emitter needs numpy, safetensors and the engine module only.
"""
from __future__ import annotations

import json
import os

import numpy as np

from ..errors import OfaError
from ..fileio import atomic_write_texts
from ..modelfile import metadata_json, read_model_file
from .targets import TILE_SERIES, Footprint, Target, check_fit, footprint, target_profile

INT_C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}


# ---- C text -----------------------------------------------------------------------------------

def c_ident(name: str) -> str:
    return "ofa_t_" + "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name)


def c_string(text: str) -> str:
    """A C string literal of `text`: printable ASCII as is (but \\, " and ?, which could end the literal or
    form a trigraph), every other byte of its UTF-8 as a three-digit octal escape. Nothing a file name or a
    model file's metadata holds can leave the literal."""
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        ch = chr(byte)
        out.append(ch if 0x20 <= byte < 0x7F and ch not in '\\"?' else f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """`text` made safe inside a /* */ comment on one line: printable ASCII only, no comment delimiters."""
    safe = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    return safe.replace("*/", "*?").replace("/*", "?*")


def c_float(v: float) -> str:
    """Exact C literal of a float32 value (hex float: no decimal rounding on either side)."""
    v = float(np.float32(v))
    return f"{v.hex()}f" if v != 0.0 else ("-0.0f" if np.signbit(v) else "0.0f")


def c_values(a: np.ndarray) -> str:
    flat = a.reshape(-1)
    if flat.dtype == np.float32:
        items = [c_float(v) for v in flat]
    elif flat.dtype == np.int64:
        items = [f"INT64_C({int(v)})" for v in flat]
    elif flat.dtype == np.int32:
        # INT32_MIN cannot be written as a plain literal of type int
        items = ["INT32_MIN" if v == -2**31 else str(int(v)) for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    per_line = 8 if flat.dtype in (np.float32, np.int64) else 24
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "\n  " + ",\n  ".join(lines) + "\n"


def c_array(name: str, a: np.ndarray) -> str:
    ctype = "float" if a.dtype == np.float32 else INT_C_TYPES.get(a.dtype)
    if ctype is None:
        raise OfaError(f"tensor {name!r} has dtype {a.dtype}, which the firmware does not take")
    return (f"/* {name} {a.dtype} {tuple(a.shape)} */\n"
            f"static const {ctype} {c_ident(name)}[{a.size}] OFA_FLASH_ALIGN = {{{c_values(a)}}};\n")


def model_struct(config: dict, tensors: dict[str, np.ndarray]) -> str:
    """The ofa_model_int8 initialiser, naming the arrays above (same tensor names as the host binding)."""
    def t(name):
        if name not in tensors:
            raise OfaError(f"model file lacks tensor {name!r} for this config")
        return c_ident(name)

    # Designated initialisers throughout: the structs' field order in ofa_int8.h can change without a
    # silent mix-up, and a field left out is zero (NULL), which ofa_validate_model_int8 refuses.
    def requant(name):
        return f"{{.table = {t(name)}, .count = {tensors[name].shape[1]}}}"

    def linear(prefix, with_requant=True):
        out = f", .out = {requant(prefix + '.requant')}" if with_requant else ""
        return f"{{.w = {t(prefix + '.weight')}, .b = {t(prefix + '.bias')}{out}}}"

    def layer_norm(prefix):
        return (f"{{.eps = {t(prefix + '.eps')}, .out = {requant(prefix + '.requant')}, "
                f".narrow = {requant(prefix + '.narrow')}}}")

    none_ln, none_linear = "{0}", "{0}"
    bert = config["layout"] == "bert"
    layers = []
    for i in range(config["n_layers"]):
        p = f"blocks.{i}."
        layers.append(
            f"  {{ /* block {i} */\n"
            f"    .qkv = {linear(p + 'attn_qkv')},\n    .scores = {requant(p + 'scores.requant')},\n"
            f"    .context = {requant(p + 'context.requant')},\n    .attn_out = {linear(p + 'attn_out')},\n"
            f"    .ln1 = {layer_norm(p + 'ln1')},\n    .ln2 = {layer_norm(p + 'ln2')},\n"
            f"    .ff_in = {linear(p + 'ff_in')},\n    .gelu_lut = {t(p + 'gelu.lut')},\n"
            f"    .ff_out = {linear(p + 'ff_out')}\n  }}")
    rank = config.get("head_rank", 0)
    gelu = "OFA_GELU_TANH" if config.get("gelu") == "tanh" else "OFA_GELU_ERF"
    linear_path = int(config.get("linear_path", 0))
    cfg = (f"{{.layout = {'OFA_LAYOUT_BERT' if bert else 'OFA_LAYOUT_GPT2'}, .d_model = {config['d_model']}, "
           f".n_heads = {config['n_heads']}, .d_ff = {config['d_ff']}, .n_layers = {config['n_layers']}, "
           f".seq_len = {config['seq_len']}, .patch_len = {config['patch_len']}, .stride = {config['stride']}, "
           f".horizon = {config['horizon']}, .n_channels = {config['n_channels']}, .head_rank = {rank}, "
           f".gelu = {gelu}, .ln_eps = {c_float(config['ln_eps'])}, .revin_eps = {c_float(config['revin_eps'])}, "
           f".linear_path = {linear_path}}}")
    fields = [
        ("config", cfg),
        ("patch_inv_scale", t("patch.inv_scale")),
        ("in_layer", linear("in_layer")),
        ("pos", t("pos")),
        ("emb_ln", layer_norm("emb_ln") if bert else none_ln),
        ("layers", "ofa_model_layers"),
        ("final_ln", none_ln if bert else layer_norm("final_ln")),
        ("head", linear("head", False) if rank == 0 else none_linear),
        ("head_a", linear("head.a") if rank else none_linear),
        ("head_b", linear("head.b", False) if rank else none_linear),
        ("head_out_scale", t("head.out_scale")),
        ("scaler_mean", t("scaler.mean")),
        ("scaler_std", t("scaler.std")),
    ]
    if linear_path:
        fields += [("linear", f"{{.w = {t('linear.weight')}}}"),
                   ("linear_out_scale", t("linear.out_scale")), ("linear_bias", t("linear.bias"))]
    return (
        f"static const ofa_layer_int8 ofa_model_layers[{max(1, config['n_layers'])}] = {{\n"
        + ",\n".join(layers) + "\n};\n\n"
        "static const ofa_model_int8 ofa_firmware_model = {\n"
        + ",\n".join(f"  .{name} = {value}" for name, value in fields) + "\n};\n")


def model_header(model_path: str, metadata: dict, config: dict, tensors: dict[str, np.ndarray],
                 target: Target, fp: Footprint) -> str:
    arrays = "\n".join(c_array(name, tensors[name]) for name in sorted(tensors))
    desc = c_comment(json.dumps({k: metadata.get(k) for k in ("dataset", "backbone")}))
    return f"""/* ofa_model.h - generated by tools/emit_header.py from {c_comment(os.path.basename(model_path))}; do not edit.
 * {desc}
 * Include in exactly one C file: everything here is static. Weights are const, so they stay in flash.
 */
#ifndef OFA_MODEL_H
#define OFA_MODEL_H

#include <stdint.h>

#include "ofa/ofa_int8.h"

#define OFA_MODEL_NAME {c_string(os.path.basename(model_path))}
#define OFA_MODEL_CHECKSUM {c_string(str(metadata.get('checksum', '')))}
#define OFA_TARGET_NAME {c_string(target.name)}
#define OFA_TARGET_FLASH_BYTES {target.flash}u
#define OFA_TARGET_RAM_BYTES {target.ram}u
#define OFA_SEQ_LEN {config['seq_len']}
#define OFA_HORIZON {config['horizon']}
#define OFA_N_CHANNELS {config['n_channels']}
#define OFA_TILE_SERIES {TILE_SERIES}
/* ofa_arena_bytes_int8_for(&config, OFA_TILE_SERIES, OFA_ARENA_MCU) on the host: what this target's build of
 * the planner asks for (main.c checks it). */
#define OFA_ARENA_BYTES {fp.arena_bytes}u
#define OFA_WEIGHT_BYTES {fp.weight_bytes}u

#ifndef OFA_FLASH_ALIGN
#define OFA_FLASH_ALIGN __attribute__((aligned(16)))
#endif

{arrays}
{model_struct(config, tensors)}
#endif /* OFA_MODEL_H */
"""


def golden_header(model_path: str, x: np.ndarray, y: np.ndarray, source: str) -> str:
    count, seq_len, channels = x.shape
    horizon = y.shape[1]
    bits = np.ascontiguousarray(y, dtype=np.float32).view(np.uint32)
    ys = ",\n".join("  {" + c_values(b.astype(np.uint64)).rstrip() + "}" for b in bits)
    xs = ",\n".join("  {" + c_values(w).rstrip() + "}" for w in x)
    return f"""/* ofa_golden.h - generated by tools/emit_header.py; do not edit.
 * {count} input window(s) of {c_comment(source)} (data units) and the host int8 engine's outputs for them, as
 * float bit patterns, for a bit-for-bit comparison on the target.
 */
#ifndef OFA_GOLDEN_H
#define OFA_GOLDEN_H

#include <stdint.h>

#define OFA_GOLDEN_COUNT {count}
static const float ofa_golden_x[{count}][{seq_len * channels}] = {{
{xs}
}};
static const uint32_t ofa_golden_y_bits[{count}][{horizon * channels}] = {{
{ys}
}};

#endif /* OFA_GOLDEN_H */
"""


def golden_windows(data: str, config: dict, target_col: str | None, count: int,
                   split: str = "auto") -> tuple[np.ndarray, str]:
    """`count` evenly spaced windows of the data's test split, in data units, (count, L, C)."""
    from ..data import evenly_spaced, load_series, make_splits

    if count <= 0:
        raise OfaError(f"--golden must be a positive integer, got {count}")
    series = load_series(data, target_col, split)
    if series.values.shape[1] != config["n_channels"]:
        raise OfaError(f"{data}: has {series.values.shape[1]} channel(s), the model takes {config['n_channels']}")
    splits = make_splits(series, config["seq_len"], config["horizon"])
    x, _ = splits.test.windows()
    picks = evenly_spaced(len(x), count)
    return np.ascontiguousarray(splits.scaler.inverse(x[picks]), dtype=np.float32), \
        f"{series.name} test split (windows {picks.tolist()})"


def emit(model_path: str, target_name: str, out_dir: str, data: str | None = None, golden: int = 3,
         flash: int | None = None, ram: int | None = None, anomaly: str | None = None,
         rows: int | None = None) -> dict:
    """Check the model against the target and write ofa_model.h plus ofa_golden.h (forecasting: golden
    windows of `data`'s test split) or, with `anomaly` (a series CSV, ofa.anomaly.files.read_stream),
    ofa_stream.h (its first `rows` samples and their scores: ofa.firmware.stream_header) into out_dir.

    Returns a summary (sizes, the golden data's source). Raises OfaError, writing nothing, on any problem.
    """
    from .. import _engine

    target = target_profile(target_name, flash, ram)
    tensors, metadata = read_model_file(model_path, schemes=("fp32", "int8"))
    config = metadata_json(metadata, "config", model_path, dict)
    if config.get("task") == "classify":
        raise OfaError(f"{model_path}: is a classifier; the firmware demo runs forecasters (a classifier runs in "
                       f"the host engine: ofa.load)")
    if metadata["dtype"] != "int8":
        raise OfaError(f"{model_path}: is an {metadata['dtype']} model; {target.name} firmware runs int8 models "
                       f"only (export one with: ofa export --int8)")
    fp = footprint(tensors, config)

    def host_engine():  # made once the model is known to fit: the fit check refuses first
        # The firmware uses the portable scalar kernels; the host's SIMD kernels give the same bits (tested).
        return _engine.EngineInt8(config, tensors, tile_series=TILE_SERIES, threads=1, isa="scalar")

    if anomaly is None:
        if not data:
            raise OfaError("--data is required (golden windows come from its test split), or --anomaly for a "
                           "detector's stream")
        check_fit(fp, target, config)
        x, source = golden_windows(data, config, metadata_json(metadata, "target", model_path, str), golden,
                                   metadata.get("split", "auto"))
        y = host_engine().run(x)
        if not np.isfinite(y).all():
            raise OfaError(f"{model_path}: the host engine's golden outputs are not finite")
        extra = {"ofa_golden.h": golden_header(model_path, x, y, source)}
        golden_count = len(x)
    else:
        fp, extra, source, golden_count = _stream_part(model_path, metadata, config, host_engine, fp, target, anomaly,
                                                       rows)
    try:
        os.makedirs(out_dir, exist_ok=True)
        texts = {os.path.join(out_dir, "ofa_model.h"): model_header(model_path, metadata, config, tensors, target, fp)}
        texts.update({os.path.join(out_dir, name): text for name, text in extra.items()})
        atomic_write_texts(texts)
    except OSError as exc:
        raise OfaError(f"cannot write to output directory {out_dir}: {exc.strerror or exc}") from None
    return {"target": target.name, "weight_bytes": fp.weight_bytes, "arena_bytes": fp.arena_bytes,
            "flash_estimate": fp.flash_bytes, "ram_estimate": fp.ram_bytes, "flash_budget": target.flash,
            "ram_budget": target.ram, "golden": golden_count, "golden_source": source, "board": target.board,
            "files": sorted(["ofa_model.h", *extra])}


def _stream_part(model_path, metadata, config, host_engine, fp, target, series: str, rows):
    """The anomaly mode's ofa_stream.h, the footprint with the stream's state and samples added."""
    from dataclasses import replace

    from .. import _engine
    from ..anomaly.device import float32_samples, read_settings
    from ..anomaly.files import read_stream
    from .stream_header import stream_header

    settings = read_settings(metadata, model_path, config["n_channels"])
    values = read_stream(series)["values"]
    if rows is None:
        rows = len(values)
    if not isinstance(rows, int) or not 1 <= rows <= len(values):
        raise OfaError(f"--rows must be between 1 and the series' {len(values)} rows, got {rows!r}")
    x = float32_samples(values[:rows])
    state = _engine.stream_bytes(settings, config["seq_len"], config["horizon"])
    fp = replace(fp, ram_bytes=fp.ram_bytes + state, flash_bytes=fp.flash_bytes + 12 * rows)
    check_fit(fp, target, config)
    try:
        scores = host_engine().stream_scores(x, settings)
    except ValueError as exc:
        raise OfaError(f"{model_path}: {exc}") from None
    source = f"{os.path.basename(series)} (rows 0-{rows - 1})"
    text = stream_header(os.path.basename(model_path), settings, config, state, x, scores, source)
    return fp, {"ofa_stream.h": text}, source, rows
