"""The merged model for other runtimes: ONNX (ONNX Runtime) and .tflite (LiteRT), fp32 and int8.

    ofa export --checkpoint runs/etth1-96 --format onnx   --out etth1.onnx
    ofa export --checkpoint runs/etth1-96 --format tflite --int8 --data ETTh1.csv --out etth1-int8.tflite

Both start from the fp32 model file the C++ engine runs (merged adapters, the dataset scaler), rebuilt
as a plain torch graph (`MergedGraph`: the ops of reference/float_forward.py, no transformers, no PEFT),
so every runtime sees the same weights and the same arithmetic up to float rounding. The graph takes
x (B, L, C) in data units and returns (B, H, C) in data units, as `ofa.infer` does.

What each int8 form is (none is the engine's bit-exact integer scheme):
- ONNX dynamic (`onnxruntime.quantization.quantize_dynamic`): int8 weights, activations quantised per
  call (MatMulInteger); layer norm, softmax and GELU stay float. Weights use 7 bits (reduce_range), as
  ONNX Runtime advises for x86 CPUs without VNNI.
- ONNX static (QDQ, `quantize_static`): activation ranges calibrated on training windows.
- LiteRT dynamic range (ai-edge-quantizer's `dynamic_wi8_afp32`): int8 weights, float activations
  quantised on the fly inside XNNPACK.
The converters are optional (`pip install .[bench]`); a missing one raises OfaError naming the package.
"""
from __future__ import annotations

import math
import os
import tempfile

import numpy as np

from ..errors import OfaError
from ..fileio import atomic_write_bytes
from ..modelfile import metadata_json, read_model_file

FORMATS = ("onnx", "tflite")
ONNX_OPSET = 18


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise OfaError(f"this export needs the optional package {package!r} (pip install '.[bench]'): {e}") from None


def merged_graph(model_file: str):
    """The fp32 model file as a torch nn.Module (eval mode, no gradients)."""
    tensors, metadata = read_model_file(model_file, schemes=("fp32",))
    config = metadata_json(metadata, "config", model_file, dict)
    return MergedGraph(config, tensors).eval(), config


def _graph_class():
    import torch
    from torch import nn

    class Graph(nn.Module):
        """x (B, L, C) data units -> (B, H, C): the engine's forward as torch ops (static shapes)."""

        def __init__(self, config: dict, tensors: dict):
            super().__init__()
            from ..data import n_patches

            self.c = c = dict(config)
            self.gpt2 = c["layout"] in ("gpt2", 1)
            self.gelu_kind = c.get("gelu", "tanh" if self.gpt2 else "erf")
            self.linear_path = bool(c.get("linear_path", 0))
            self.low_rank = c.get("head_rank", 0) != 0
            for name, value in tensors.items():
                self.register_buffer(name.replace(".", "__"), torch.from_numpy(np.asarray(value, np.float32).copy()))
            length, p, s = c["seq_len"], c["patch_len"], c["stride"]
            n = n_patches(length, p, s)
            idx = np.minimum(np.arange(n)[:, None] * s + np.arange(p)[None, :], length - 1)
            self.register_buffer("patch_index", torch.from_numpy(idx.reshape(-1).astype(np.int64)))
            steps = np.arange(length)
            first = np.minimum(steps // s, n - 1)
            self.register_buffer("window_index", torch.from_numpy((first * p + steps - first * s).astype(np.int64)))
            self.n, self.p = n, p
            causal = torch.triu(torch.full((n, n), float("-inf")), diagonal=1)
            self.register_buffer("causal", causal)

        def t(self, name: str):
            return getattr(self, name.replace(".", "__"))

        def lin(self, x, name):
            return nn.functional.linear(x, self.t(f"{name}.weight"), self.t(f"{name}.bias"))

        def ln(self, x, name):
            return nn.functional.layer_norm(x, (self.c["d_model"],), self.t(f"{name}.weight"), self.t(f"{name}.bias"),
                                            self.c["ln_eps"])

        def attention(self, h, i):
            d, heads = self.c["d_model"], self.c["n_heads"]
            hd = d // heads
            s, n, _ = h.shape
            qkv = self.lin(h, f"blocks.{i}.attn_qkv").reshape(s, n, 3, heads, hd).permute(2, 0, 3, 1, 4)
            scores = torch.matmul(qkv[0], qkv[1].transpose(-1, -2)) * (1.0 / math.sqrt(hd))
            if self.gpt2:
                scores = scores + self.causal
            ctx = torch.matmul(torch.softmax(scores, dim=-1), qkv[2]).permute(0, 2, 1, 3).reshape(s, n, d)
            return self.lin(ctx, f"blocks.{i}.attn_out")

        def feed_forward(self, h, i):
            pre = self.lin(h, f"blocks.{i}.ff_in")
            return self.lin(nn.functional.gelu(pre, approximate=self.gelu_kind.replace("erf", "none")),
                            f"blocks.{i}.ff_out")

        def forward(self, x):
            c = self.c
            b, length, ch = x.shape
            z = (x - self.t("scaler.mean")) / self.t("scaler.std")
            series = z.permute(0, 2, 1).reshape(b * ch, length)
            mu = series.mean(dim=1, keepdim=True)
            sd = torch.sqrt(((series - mu) ** 2).mean(dim=1, keepdim=True) + c["revin_eps"])
            u = (series - mu) / sd
            patches = torch.index_select(u, 1, self.patch_index).reshape(b * ch, self.n, self.p)
            h = self.lin(patches, "in_layer") + self.t("pos")
            if not self.gpt2:
                h = self.ln(h, "emb_ln")
            for i in range(c["n_layers"]):
                if self.gpt2:
                    h = h + self.attention(self.ln(h, f"blocks.{i}.ln1"), i)
                    h = h + self.feed_forward(self.ln(h, f"blocks.{i}.ln2"), i)
                else:
                    h = self.ln(h + self.attention(h, i), f"blocks.{i}.ln1")
                    h = self.ln(h + self.feed_forward(h, i), f"blocks.{i}.ln2")
            if self.gpt2:
                h = self.ln(h, "final_ln")
            flat = h.reshape(b * ch, -1)
            if self.low_rank:
                y = nn.functional.linear(nn.functional.linear(flat, self.t("head.a")), self.t("head.b"),
                                         self.t("head.bias"))
            else:
                y = self.lin(flat, "head")
            if self.linear_path:
                window = torch.index_select(patches.reshape(b * ch, -1), 1, self.window_index)
                y = (y + nn.functional.linear(window, self.t("linear.weight"))) * sd + mu + self.t("linear.bias")
            else:
                y = y * sd + mu
            y = y.reshape(b, ch, -1).permute(0, 2, 1)
            return y * self.t("scaler.std") + self.t("scaler.mean")

    return Graph


def MergedGraph(config: dict, tensors: dict):  # noqa: N802 - a class, built lazily so torch stays optional
    return _graph_class()(config, tensors)


def _example(config: dict, batch: int):
    import torch

    return torch.zeros(batch, config["seq_len"], config["n_channels"])


def to_onnx(model_file: str, out: str, int8: str | None = None, calibration: np.ndarray | None = None) -> dict:
    """Write the model as ONNX. int8: None (fp32), "dynamic" or "static" (QDQ, needs calibration windows
    (W, L, C) in data units). The batch axis is dynamic."""
    import torch

    _require("onnx", "onnx")
    graph, config = merged_graph(model_file)
    with tempfile.TemporaryDirectory(prefix="ofa-onnx-") as work:
        fp32 = os.path.join(work, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(graph, (_example(config, 1),), fp32, input_names=["x"], output_names=["forecast"],
                              dynamic_axes={"x": {0: "batch"}, "forecast": {0: "batch"}}, opset_version=ONNX_OPSET,
                              dynamo=False)
        path = fp32
        if int8 is not None:
            quant = _require("onnxruntime.quantization", "onnxruntime")
            path = os.path.join(work, "model-int8.onnx")
            if int8 == "dynamic":
                # 7-bit weights (reduce_range), which ONNX Runtime documents for x86 CPUs without VNNI (their
                # u8 x s8 kernels can saturate with full-range weights). On an AVX2 CPU, tests/test_interop.py's
                # model went from relative RMS 0.32 against the engine to within 0.10 (not every model
                # gains: README, "On an AVX2-only CPU").
                quant.quantize_dynamic(fp32, path, weight_type=quant.QuantType.QInt8, reduce_range=True)
            elif int8 == "static":
                if calibration is None or len(calibration) == 0:
                    raise OfaError("static int8 ONNX needs calibration windows (--data)")
                quant.quantize_static(fp32, path, _Calibration(calibration), quant_format=quant.QuantFormat.QDQ,
                                      activation_type=quant.QuantType.QInt8, weight_type=quant.QuantType.QInt8,
                                      per_channel=True, reduce_range=True)  # as above
            else:
                raise OfaError(f"ONNX int8 form must be 'dynamic' or 'static', got {int8!r}")
        with open(path, "rb") as f:
            data = f.read()
    atomic_write_bytes(out, data)
    return {"format": "onnx", "precision": int8 or "fp32", "bytes": len(data)}


class _Calibration:
    """onnxruntime's CalibrationDataReader over windows (W, L, C), one at a time."""

    def __init__(self, windows: np.ndarray):
        self.windows = iter(np.asarray(windows, np.float32)[:, None])

    def get_next(self):
        window = next(self.windows, None)
        return None if window is None else {"x": window}


def to_tflite(model_file: str, out: str, int8: bool = False, batch: int = 1) -> dict:
    """Write the model as .tflite (LiteRT) for a fixed batch; int8 is dynamic-range (int8 weights)."""
    litert_torch = _require("litert_torch", "litert-torch")
    graph, config = merged_graph(model_file)
    edge = litert_torch.convert(graph, (_example(config, batch),))
    with tempfile.TemporaryDirectory(prefix="ofa-tflite-") as work:
        path = os.path.join(work, "model.tflite")
        edge.export(path)
        if int8:
            quantizer = _require("ai_edge_quantizer", "ai-edge-quantizer")
            q = quantizer.Quantizer(path)
            q.load_quantization_recipe(quantizer.recipe.dynamic_wi8_afp32())
            result = q.quantize()
            path = os.path.join(work, "model-int8.tflite")
            result.export_model(path)
        with open(path, "rb") as f:
            data = f.read()
    atomic_write_bytes(out, data)
    return {"format": "tflite", "precision": "int8-dynamic" if int8 else "fp32", "bytes": len(data), "batch": batch}


def export_for_runtime(checkpoint_dir: str, out: str, fmt: str, int8: bool = False, int8_form: str = "dynamic",
                       data: str | None = None, calibration_windows: int = 256, batch: int = 1,
                       backbone: str | None = None) -> dict:
    """`ofa export --format onnx|tflite`: merge the checkpoint into an fp32 model file (kept only in a
    temporary directory), then convert it. int8_form (ONNX): "dynamic" or "static" (QDQ, calibrated on
    `calibration_windows` training windows of `data`). LiteRT's int8 is dynamic-range only."""
    from .merge import export, model_calibration_windows

    if fmt not in FORMATS:
        raise OfaError(f"--format must be one of ofa, {', '.join(FORMATS)}; got {fmt!r}")
    if not out or out.endswith("/"):
        raise OfaError(f"--out must name a file, got {out!r}")
    if int8 and fmt == "onnx" and int8_form not in ("dynamic", "static"):
        raise OfaError(f"--int8-form must be dynamic or static, got {int8_form!r}")
    if int8 and fmt == "onnx" and int8_form == "static" and not data:
        raise OfaError("static int8 ONNX needs calibration data: pass --data (training windows of it calibrate "
                       "the activation ranges)")
    if not isinstance(batch, int) or batch <= 0:
        raise OfaError(f"--batch must be a positive integer, got {batch!r}")
    with tempfile.TemporaryDirectory(prefix="ofa-export-") as work:
        model_file = os.path.join(work, "model.ofa")
        export(checkpoint_dir, model_file, backbone=backbone)
        if fmt == "onnx":
            windows = None
            if int8 and int8_form == "static":
                arrays, metadata = read_model_file(model_file)
                windows = model_calibration_windows(arrays, metadata, data, calibration_windows)
            return to_onnx(model_file, out, int8=int8_form if int8 else None, calibration=windows)
        return to_tflite(model_file, out, int8=int8, batch=batch)

