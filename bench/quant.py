"""int8 post-training quantisation: accuracy, speed and size against fp32, in one run.

    python bench/quant.py                                   # ETTh1, ETTm1, Weather at horizon 96
    python bench/quant.py --datasets ETTh1 --report         # plus the per-block error report
    python bench/quant.py --max-test-windows 2000           # evenly spaced subset (recorded as such)

For each dataset it takes a trained fp32 checkpoint (--checkpoint NAME=DIR, else the first of
runs/bench/<file>-96-ofa or runs/screen/<file>-96-ofa, whichever exists), exports it fp32 and
int8 (`ofa export [--int8]`, calibrated on --calibration-windows training windows) and scores both
files through the C++ engine on the test split, exactly as `ofa eval --model` does. PyTorch dynamic
int8 (torch.ao.quantization.quantize_dynamic on the PEFT model's nn.Linear layers) is scored and
timed the same way. Speed: best ms per call at batch 1 and 64 windows, same thread count for all.
Writes bench/results/quant.json: records {"dataset", "horizon", "scheme", "mse", "mae", "model_bytes",
"ms_per_call_b1", "ms_per_call_b64", "test_windows"}, plus "report" (per-block error) with --report.

    python bench/quant.py --datasets ETTh1 --no-torch --bit-exact --out /tmp/quant.json

--bit-exact also runs the numpy int8 reference (python/ofa/int8_reference.py) over every scored window
and compares its float32 outputs with the engine's bit for bit; the int8 record gets "reference_*" fields
and bench/results/int8_bitexact.json (--bit-exact-out) gets {"dataset", "windows", "outputs",
"differing_outputs", "max_abs_diff", "bit_exact", "reference_seconds", "engine_simd"} per dataset.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/timing.py
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import ofa  # noqa: E402
from timing import best_ms  # noqa: E402
from ofa.training import checkpoint
from ofa.training.checkpoint import atomic_write_json  # noqa: E402
from ofa.data import evenly_spaced, load_series, make_splits  # noqa: E402
from ofa.evaluation import predict_windows_torch, scores  # noqa: E402
from ofa.export.merge import export  # noqa: E402

DATA = os.path.abspath(os.path.join(HERE, "..", "..", "shared", "data"))
DATASETS = {"ETTh1": "ETT/ETTh1.csv", "ETTm1": "ETT/ETTm1.csv", "Weather": "weather/weather.csv"}
# checkpoints that bench/accuracy.py trains
RUNS = [os.path.abspath(os.path.join(HERE, "..", "runs", d)) for d in ("bench", "screen")]


def find_checkpoint(name: str, given: dict) -> str | None:
    if name in given:
        return given[name]
    leaf = os.path.basename(DATASETS[name]) + "-96-ofa"
    for root in RUNS:
        path = os.path.join(root, leaf)
        if os.path.isfile(os.path.join(path, "ofa.json")):
            return path
    return None


def test_windows(data: str, seq_len: int, horizon: int, limit: int | None):
    splits = make_splits(load_series(data), seq_len, horizon)
    x, y = splits.test.windows()
    if limit and limit < len(x):
        pick = evenly_spaced(len(x), limit)
        x, y = x[pick], y[pick]
    raw = splits.scaler.inverse(x)
    return np.ascontiguousarray(raw, np.float32), x, y, splits.scaler


def engine_record(path: str, raw, y, scaler, timing_x, bit_exact: bool = False) -> dict:
    model = ofa.load(path)
    pred = np.concatenate([model.run(raw[i:i + 256]) for i in range(0, len(raw), 256)])
    extra = {}
    if bit_exact:  # the numpy reference over every scored window
        from ofa.reference.int8_reference import Int8Forward
        from ofa.modelfile import read_model_file

        tensors, meta = read_model_file(path, schemes=("int8",))
        t0 = time.perf_counter()
        want = Int8Forward(json.loads(meta["config"]), tensors).run(raw)
        extra["reference_seconds"] = time.perf_counter() - t0
        extra["reference_bit_exact"] = bool(np.array_equal(want.view(np.int32), pred.view(np.int32)))
        extra["reference_windows"] = int(len(raw))
        extra["reference_outputs"] = int(pred.size)
        extra["reference_differing_outputs"] = int(np.count_nonzero(want.view(np.int32) != pred.view(np.int32)))
        extra["reference_max_abs_diff"] = float(np.abs(want.astype(np.float64) - pred.astype(np.float64)).max())
    pred = scaler.transform(pred)
    rec = scores(pred, y)
    rec["ms_per_call_b1"] = best_ms(lambda: model.run(timing_x[:1]))
    rec["ms_per_call_b64"] = best_ms(lambda: model.run(timing_x[:64]), repeats=2, min_seconds=0.0)
    rec["model_bytes"] = os.path.getsize(path)
    rec["simd"] = model.engine.simd
    return rec | extra


def torch_dynamic_record(ckpt: str, x_scaled, y, threads: int) -> dict:
    torch.set_num_threads(threads)
    import warnings

    model, _ = checkpoint.load(ckpt)
    # PEFT's LoRA wrappers read lora_A.weight.dtype, which a quantised Linear no longer has: merge the
    # adapters first (the same function) so every layer is a plain nn.Linear.
    model = model.merge_and_unload().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notices
        qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    pred = predict_windows_torch(qmodel, x_scaled)
    rec = scores(pred, y)
    xt = torch.from_numpy(np.ascontiguousarray(x_scaled[:64]))

    def call(batch):
        with torch.inference_mode():
            qmodel(xt[:batch])

    rec["ms_per_call_b1"] = best_ms(lambda: call(1))
    rec["ms_per_call_b64"] = best_ms(lambda: call(64), repeats=2, min_seconds=0.0)
    buf = io.BytesIO()
    torch.save(qmodel.state_dict(), buf)
    rec["model_bytes"] = buf.tell()
    return rec


def block_report(fp32_path: str, int8_path: str, raw) -> list[dict]:
    """Per block: cosine and relative L2 error of the int8 block output against fp32 (same windows)."""
    from ofa.reference.float_forward import FloatForward
    from ofa.reference.int8_reference import Int8Forward
    from ofa.modelfile import read_model_file

    t32, m32 = read_model_file(fp32_path)
    t8, m8 = read_model_file(int8_path, schemes=("int8",))
    ff = FloatForward(json.loads(m32["config"]), t32)
    i8 = Int8Forward(json.loads(m8["config"]), t8)
    b32, b8 = [], []
    y32 = ff.run(raw, blocks=b32, chunk=10 ** 9)
    y8 = i8.run(raw, blocks=b8, chunk=10 ** 9)
    rows = []
    for i, (a, b) in enumerate(list(zip(b32, b8)) + [(y32, y8)]):
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        rel = float(np.linalg.norm(a - b) / np.linalg.norm(a))
        rows.append({"block": i if i < len(b32) else "output", "cosine": cos, "relative_l2": rel})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--calibration-windows", type=int, default=256)
    ap.add_argument("--max-test-windows", type=int, default=0, help="0: the full test split")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch dynamic int8")
    ap.add_argument("--report", action="store_true", help="per-block int8 vs fp32 error report")
    ap.add_argument("--report-windows", type=int, default=16)
    ap.add_argument("--bit-exact", action="store_true",
                    help="also run the numpy int8 reference on every scored window and compare bits")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "quant.json"))
    ap.add_argument("--bit-exact-out", default=os.path.join(HERE, "results", "int8_bitexact.json"))
    args = ap.parse_args()
    given = dict(item.split("=", 1) for item in args.checkpoint)
    torch.set_num_threads(args.threads)
    records, reports, skipped = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            ckpt = find_checkpoint(name, given)
            data = os.path.join(DATA, DATASETS[name])
            if ckpt is None or not os.path.isfile(data):
                skipped.append(name)
                print(f"{name}: no trained checkpoint or data here; skipped", flush=True)
                continue
            meta = checkpoint.read_meta(ckpt)
            seq_len, horizon = meta["model"]["seq_len"], meta["model"]["horizon"]
            f32, i8 = os.path.join(tmp, f"{name}-fp32.ofa"), os.path.join(tmp, f"{name}-int8.ofa")
            export(ckpt, f32)
            t0 = time.perf_counter()
            export(ckpt, i8, int8=True, data=data, calibration_windows=args.calibration_windows)
            quant_s = time.perf_counter() - t0
            raw, x_scaled, y, scaler = test_windows(data, seq_len, horizon, args.max_test_windows)
            common = {"dataset": name, "horizon": horizon, "test_windows": int(len(raw)), "checkpoint": ckpt,
                      "threads": args.threads}
            for scheme, path in (("fp32", f32), ("int8", i8)):
                rec = common | {"scheme": scheme} | engine_record(path, raw, y, scaler, raw,
                                                                  bit_exact=args.bit_exact and scheme == "int8")
                if scheme == "int8":
                    rec["export_seconds"] = quant_s
                    rec["calibration_windows"] = args.calibration_windows
                records.append(rec)
                print(json.dumps(rec), flush=True)
            if not args.no_torch:
                rec = common | {"scheme": "torch-dynamic-int8"} | torch_dynamic_record(ckpt, x_scaled, y, args.threads)
                records.append(rec)
                print(json.dumps(rec), flush=True)
            if args.report:
                pick = np.linspace(0, len(raw) - 1, args.report_windows).astype(int)
                reports[name] = block_report(f32, i8, raw[pick])
                for row in reports[name]:
                    print(f"  {name} block {row['block']}: cosine {row['cosine']:.6f}  "
                          f"relative L2 {row['relative_l2']:.4f}", flush=True)
    by = {(r["dataset"], r["scheme"]): r for r in records}
    for name in args.datasets:
        if (name, "fp32") in by and (name, "int8") in by:
            a, b = by[(name, "fp32")], by[(name, "int8")]
            print(f"{name}: int8 mse {b['mse']:.4f} vs fp32 {a['mse']:.4f} ({100 * (b['mse'] / a['mse'] - 1):+.2f}%), "
                  f"batch-1 speed-up {a['ms_per_call_b1'] / b['ms_per_call_b1']:.2f}x, "
                  f"size {a['model_bytes'] / b['model_bytes']:.2f}x smaller")
    out = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "torch": torch.__version__},
           "records": records, "skipped": skipped}
    if reports:
        out["report"] = reports
    atomic_write_json(args.out, out)
    print(f"wrote {args.out}")
    if args.bit_exact:
        exact = [{"dataset": r["dataset"], "horizon": r["horizon"], "checkpoint": r["checkpoint"],
                  "windows": r["reference_windows"], "outputs": r["reference_outputs"],
                  "differing_outputs": r["reference_differing_outputs"], "max_abs_diff": r["reference_max_abs_diff"],
                  "bit_exact": r["reference_bit_exact"], "reference_seconds": r["reference_seconds"],
                  "engine_simd": r["simd"], "calibration_windows": r["calibration_windows"]}
                 for r in records if r["scheme"] == "int8"]
        for e in exact:
            print(f"{e['dataset']}: reference vs engine over {e['windows']} windows ({e['outputs']} outputs): "
                  f"{e['differing_outputs']} differ, max |diff| {e['max_abs_diff']:g} "
                  f"(reference {e['reference_seconds']:.0f} s)")
        atomic_write_json(args.bit_exact_out, {"machine": out["machine"], "records": exact})
        print(f"wrote {args.bit_exact_out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
