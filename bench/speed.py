"""Speed: the ofa engine against PyTorch, ONNX Runtime and LiteRT on the same merged model, one run.

    pip install '.[bench]'                 # onnx, onnxruntime, ai-edge-litert, litert-torch (optional)
    python bench/speed.py                  # 2 and 6 MiniLM blocks, batch 1 and 64, 1 and 2 threads
    python bench/speed.py --layers 2 --batches 1 --threads 1 --rounds 10    # a quick look

The model: MiniLM's first N blocks, seq_len 336, horizon 96, 7 channels, adapters non-zero, merged
into the fp32 model file the engine runs (and calibrated to int8 on a synthetic series for the int8
file). Every peer runs that same file: PyTorch eager runs the PEFT checkpoint it was merged from; ONNX
Runtime and LiteRT run `ofa.export.interop`'s conversions of the model file (ONNX fp32, ONNX dynamic
int8 (MatMulInteger), ONNX static QDQ int8 calibrated on the same windows; LiteRT fp32 and LiteRT
dynamic-range int8, both XNNPACK). A peer whose package is missing is skipped, and said so.

Timing: engines are interleaved, round by round, so a busy machine slows them alike; each figure is
the best call of its rounds. Threads: every engine gets the same count (torch.set_num_threads,
intra_op_num_threads, num_threads). Each output is checked against the ofa engine of the same precision
("max_abs_diff_vs_ofa") and the int8 ones also against ofa fp32 ("max_abs_diff_vs_fp32").

GEMM rates: "gops" is, for ofa, the rate inside its GEMMs (2 ops per multiply-add); for a peer, the
model's GEMM ops over its whole call (a lower bound on its GEMM rate). "peak_gops" is the best
1024^3 GEMM of that precision measured in this run (torch sgemm / bf16, torch._int_mm, ONNX Runtime
MatMulInteger, ofa's own), listed under "gemm_peaks".

Writes bench/results/speed.json: {"machine", "records": [{"engine", "precision", "layers", "batch",
"threads", "ms_per_call", "gops", "peak_gops", "max_abs_diff_vs_ofa", ...}], "gemm_peaks": [...]}.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import ofa  # noqa: E402
from ofa import _engine  # noqa: E402
from ofa.export import interop  # noqa: E402
from ofa.export.merge import export  # noqa: E402
from ofa.data import n_patches  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402
from ofa.training import checkpoint  # noqa: E402
from ofa.training.model import ModelConfig, build  # noqa: E402

SEQ_LEN, HORIZON, CHANNELS = 336, 96, 7


def fresh_checkpoint(directory: str, seed: int, layers: int) -> str:
    """MiniLM's first `layers` blocks, default preset otherwise, adapters non-zero (as after training)."""
    from ofa.training import backbone as backbones

    mc = ModelConfig(seq_len=SEQ_LEN, horizon=HORIZON, layers=layers)
    backbone = backbones.load(mc.backbone, mc.layers)
    fingerprint = backbones.fingerprint(backbone.model)
    model = build(mc, seed=seed, backbone=backbone)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_embedding_A" in name:
                p.normal_(0, 0.02)
            if "out_layer" in name and "base_layer.weight" in name:
                p.normal_(0, 0.002)  # a head that reads the hidden states, as a trained one does
    checkpoint.save(directory, model, {
        "model": mc.to_dict(), "data": {"channels": [f"c{i}" for i in range(CHANNELS)], "target": None,
                                        "name": "bench"},
        "scaler": {"mean": [0.0] * CHANNELS, "std": [1.0] * CHANNELS}, "backbone_fingerprint": fingerprint,
        "sizes": {}})
    return directory


def synthetic_series(rows: int = 4000) -> np.ndarray:
    """(rows, 7) daily and weekly sines with noise: calibration and benchmark windows."""
    t = np.arange(rows)[:, None]
    rng = np.random.default_rng(1)
    phase = rng.uniform(0, 6.3, CHANNELS)
    return (np.sin(2 * np.pi * t / 24 + phase) + 0.5 * np.sin(2 * np.pi * t / 168 + phase)
            + 0.2 * rng.standard_normal((rows, CHANNELS))).astype(np.float32)


def windows_of(series: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    return np.stack([series[start + i * 7:start + i * 7 + SEQ_LEN] for i in range(count)]).astype(np.float32)


def gemm_ops(config: dict, batch: int) -> float:
    """2 x multiply-adds of the model's GEMMs (projections, attention products, embedding, head)."""
    s = batch * config["n_channels"]
    n = n_patches(config["seq_len"], config["patch_len"], config["stride"])
    d, ff = config["d_model"], config["d_ff"]
    per_layer = n * (d * 3 * d + d * d + 2 * d * ff) + 2 * n * n * d
    macs = s * (config["n_layers"] * per_layer + n * config["patch_len"] * d + n * d * config["horizon"])
    if config.get("linear_path"):
        macs += s * config["seq_len"] * config["horizon"]
    return 2.0 * macs


# ---- contenders: name -> (precision, callable(x) -> y) ----------------------------------------------

def ofa_contender(path: str, threads: int):
    model = ofa.load(path, threads=threads)
    return lambda x: ofa.infer(model, x), model


def torch_contender(ckpt: str, threads: int):
    model, _ = checkpoint.load(ckpt)
    model.eval()

    def run(x):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    return run


def onnx_contender(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Its worker threads would otherwise spin after each call, taking the core from the engine timed next.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})[0]


def litert_contender(path: str, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    i, o = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run(x):
        interpreter.set_tensor(i, x)
        interpreter.invoke()
        return interpreter.get_tensor(o).copy()
    return run


def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class Files:
    """The model files of one layer count: ofa fp32/int8, the checkpoint, ONNX forms, .tflite per batch."""

    def __init__(self, work: str, layers: int, calibration: np.ndarray, skip: set):
        self.dir = os.path.join(work, f"L{layers}")
        os.makedirs(self.dir, exist_ok=True)
        self.ckpt = fresh_checkpoint(os.path.join(self.dir, "ckpt"), seed=0, layers=layers)
        self.fp32 = self.path("model.ofa")
        export(self.ckpt, self.fp32)
        csv = self.path("calibration.csv")
        import pandas as pd

        frame = pd.DataFrame(calibration, columns=[f"c{i}" for i in range(CHANNELS)])
        frame.insert(0, "date", pd.date_range("2020-01-01", periods=len(frame), freq="h").astype(str))
        frame.to_csv(csv, index=False)
        self.int8 = self.path("model-int8.ofa")
        export(self.ckpt, self.int8, int8=True, data=csv, calibration_windows=256)
        self.config = ofa.load(self.fp32).config
        self.onnx = {}
        if "onnxruntime" not in skip:
            self.onnx["fp32"] = self.path("model.onnx")
            interop.to_onnx(self.fp32, self.onnx["fp32"])
            self.onnx["int8-dynamic"] = self.path("model-dyn.onnx")
            interop.to_onnx(self.fp32, self.onnx["int8-dynamic"], int8="dynamic")
            self.onnx["int8-static"] = self.path("model-qdq.onnx")
            interop.to_onnx(self.fp32, self.onnx["int8-static"], int8="static",
                            calibration=windows_of(calibration, 64))
        self.skip = skip
        self.tflite = {}

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def tflite_for(self, batch: int) -> dict:
        if "litert" in self.skip:
            return {}
        if batch not in self.tflite:
            forms = {}
            for precision, int8 in (("fp32", False), ("int8-dynamic", True)):
                forms[precision] = self.path(f"model-{precision}-b{batch}.tflite")
                interop.to_tflite(self.fp32, forms[precision], int8=int8, batch=batch)
            self.tflite[batch] = forms
        return self.tflite[batch]


def contenders(files: Files, batch: int, threads: int) -> dict:
    out = {}
    run, model = ofa_contender(files.fp32, threads)
    out[("ofa", "fp32")] = (run, model)
    run, model = ofa_contender(files.int8, threads)
    out[("ofa", "int8")] = (run, model)
    out[("pytorch-eager", "fp32")] = (torch_contender(files.ckpt, threads), None)
    for precision, path in files.onnx.items():
        out[("onnxruntime", precision)] = (onnx_contender(path, threads), None)
    for precision, path in files.tflite_for(batch).items():
        out[("litert-xnnpack", precision)] = (litert_contender(path, threads), None)
    return out


def interleaved_best_ms(fns: dict, x: np.ndarray, rounds: int, pause: float = 0.003) -> tuple[dict, dict]:
    """Each fn once per round, in turn; the best call per fn (ms), and each fn's output. A short pause
    before each call lets a runtime's spinning worker threads (XNNPACK's pool) go idle first."""
    outputs = {key: fn(x) for key, fn in fns.items()}  # warm-up, and the output to check
    best = {key: float("inf") for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            time.sleep(pause)
            t0 = time.perf_counter()
            fn(x)
            best[key] = min(best[key], (time.perf_counter() - t0) * 1e3)
    return best, outputs


# ---- GEMM peaks, 1024^3, one thread count --------------------------------------------------------

def best_seconds(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_peaks(threads: int, skip: set) -> list[dict]:
    n = 1024
    ops = 2.0 * n ** 3
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    peaks = []

    def add(engine, precision, seconds):
        peaks.append({"engine": engine, "precision": precision, "threads": threads, "gops": ops / seconds * 1e-9})

    a, b = torch.randn(n, n), torch.randn(n, n)
    add("torch.mm (MKL sgemm)", "fp32", best_seconds(lambda: torch.mm(a, b)))
    ab, bb = a.bfloat16(), b.bfloat16()
    add("torch.mm bf16 (oneDNN)", "bf16", best_seconds(lambda: torch.mm(ab, bb)))
    a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    b8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    add("torch._int_mm", "int8", best_seconds(lambda: torch._int_mm(a8, b8)))
    if threads == 1:  # ofa's GEMM kernels run on the calling thread (the engine splits series, not GEMMs)
        af, wf = rng.standard_normal((n, n)).astype(np.float32), rng.standard_normal((n, n)).astype(np.float32)
        add(f"ofa gemm ({_engine.best_isa()}, W packed)", "fp32",
            best_seconds(lambda: _engine.gemm(af, wf, prepack=True)))
        as8, ws8 = a8.numpy(), b8.numpy()
        isa = _engine.available_int8_isas()[-1]
        try:  # a table without a packed form (pack_w) packs its panels inside each call
            _engine.gemm_s8(as8[:8], ws8[:8], prepack=True)
            packed = True
        except ValueError:
            packed = False
        add(f"ofa gemm_s8 ({isa}, W {'packed' if packed else 'unpacked'})", "int8",
            best_seconds(lambda: _engine.gemm_s8(as8, ws8, prepack=packed)))
    if "onnxruntime" not in skip:
        add("onnxruntime MatMulInteger u8s8 (MLAS)", "int8", onnx_matmul_integer_seconds(n, threads))
    return peaks


def onnx_matmul_integer_seconds(n: int, threads: int) -> float:
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).integers(-128, 127, (n, n)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["c"])], "mmi",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(1).integers(0, 255, (n, n)).astype(np.uint8)
    assert onnx.__version__
    return best_seconds(lambda: session.run(None, {"a": a}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="2,6", help="comma-separated MiniLM block counts")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--rounds", type=int, default=0, help="timed calls per engine (default: 30 at batch 1, "
                                                         "4 at batch 64)")
    ap.add_argument("--skip", default="", help="peers to leave out: onnxruntime, litert, pytorch")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "speed.json"))
    args = ap.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    for module, name in (("onnxruntime", "onnxruntime"), ("ai_edge_litert", "litert"), ("litert_torch", "litert")):
        if name not in skip and not available(module):
            print(f"skipping {name}: {module} is not installed (pip install '.[bench]')")
            skip.add(name)

    series = synthetic_series()
    work = tempfile.mkdtemp(prefix="ofa-speed-")
    records, peaks = [], []
    thread_counts = [int(t) for t in args.threads.split(",")]
    for threads in thread_counts:
        peaks += gemm_peaks(threads, skip)
    for p in peaks:
        print(f"GEMM 1024^3 {p['threads']} thread(s): {p['engine']:40s} {p['precision']:5s} {p['gops']:7.1f} GOP/s")
    for layers in [int(v) for v in args.layers.split(",")]:
        files = Files(work, layers, series, skip)
        for batch in [int(b) for b in args.batches.split(",")]:
            x = windows_of(series, batch, start=500)
            ops = gemm_ops(files.config, batch)
            for threads in thread_counts:
                peak = {prec: max([p["gops"] for p in peaks if p["threads"] == threads and p["precision"] == prec])
                        for prec in ("fp32", "int8")}
                found = contenders(files, batch, threads)
                if "pytorch" in skip:
                    found.pop(("pytorch-eager", "fp32"))
                fns = {key: fn for key, (fn, _) in found.items()}
                rounds = args.rounds or (30 if batch == 1 else 4)
                best, outputs = interleaved_best_ms(fns, x, rounds)
                for (engine, precision), ms in best.items():
                    scheme = "int8" if precision.startswith("int8") else "fp32"
                    reference = outputs[("ofa", scheme)]
                    record = {"engine": engine, "precision": precision, "layers": layers, "batch": batch,
                              "threads": threads, "ms_per_call": round(ms, 3),
                              "gops": round(ops / (ms * 1e-3) * 1e-9, 1), "peak_gops": round(peak[scheme], 1),
                              "max_abs_diff_vs_ofa": float(np.abs(outputs[(engine, precision)] - reference).max()),
                              "max_abs_diff_vs_fp32": float(np.abs(outputs[(engine, precision)]
                                                                   - outputs[("ofa", "fp32")]).max())}
                    model = found[(engine, precision)][1]
                    if model is not None:  # ofa: the rate inside its own GEMMs
                        stats = model.engine.gemm_stats()
                        record["gops"] = round(stats["gflops_per_s"], 1)
                        record["isa"] = model.engine.isa
                    records.append(record)
                    print(f"L{layers} batch {batch:3d} threads {threads}: {engine:15s} {precision:13s} "
                          f"{ms:9.2f} ms  {record['gops']:7.1f} GOP/s  diff vs ofa {record['max_abs_diff_vs_ofa']:.2e}",
                          flush=True)
    machine = {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "torch": torch.__version__, "engine_isa": _engine.best_isa(),
               "engine_int8_isa": _engine.available_int8_isas()[-1]}
    for module in ("onnxruntime", "ai_edge_litert"):
        if available(module):
            import importlib.metadata as md

            machine[module] = md.version(module.replace("_", "-"))
    atomic_write_json(args.out, {"machine": machine, "records": records, "gemm_peaks": peaks})
    print(f"\n{machine}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
