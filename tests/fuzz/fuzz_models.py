"""Fuzz `ofa.load` + `Model.run` with mutated real model files (fp32 and int8).

    python tests/fuzz/fuzz_models.py --cases 300                     # in-process engine, quick
    bash tests/fuzz/run_asan.sh --cases 300                          # the same against an ASan/UBSan engine
    python tests/fuzz/fuzz_models.py --cases 10000 --asan build/fuzz-asan --json bench/results/fuzz.json

Seed files are exported from two tiny trained forecasters (GPT-2 layout with the linear path and a factored
head; BERT layout with a random dense head) and a tiny classifier (BERT layout, its head over every
channel), in both schemes. Each case mutates one seed:

    truncate, header-length lie, bit flips in the header or the data (the checksum catches these),
    duplicate tensor name, shape / dtype / offset lies in the header, and, most important, files whose
    checksum is valid again after the change: metadata numbers (every config field, the format
    version), tensor values (NaN, inf, float and integer extremes), a tensor dropped, added or resized.

A case passes when loading and running one window either forecasts (a classifier: gives logits) finite numbers
of the right shape or raises OfaError /
ValueError. Anything else fails: another exception type, a non-finite forecast, a crash (the worker
process dies; the harness records the case and restarts after it), or a sanitizer report on stderr.
Cases are numbered and seeded, so `--first N --cases 1` replays case N.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SANITIZER_REPORT = re.compile(r"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer")
KINDS = ("truncate", "header_length", "flip_header", "flip_data", "duplicate_name", "shape_lie", "dtype_lie",
         "offset_lie", "meta_number", "meta_number", "meta_number", "tensor_value", "tensor_value",
         "tensor_value", "tensor_value", "tensor_resize", "tensor_drop", "tensor_extra", "meta_drop")
INT_EXTREMES = (0, 1, -1, 2, 3, 7, 2**15, 2**16, 2**16 + 1, 2**24, 2**30, 2**31 - 1, 2**31, -2**31, 2**32,
                2**62, 2**63 - 1, -2**63)
FLOAT_EXTREMES = (np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e30, -1e30, 1e-45, 0.0, -0.0, 1e19)


# ---- seed files ------------------------------------------------------------------------------

def make_seeds(workdir: str) -> list[str]:
    """Export the seed model files into workdir (once); returns their paths."""
    names = ["gpt2-fp32.ofa", "gpt2-int8.ofa", "bert-fp32.ofa", "bert-int8.ofa", "cls-fp32.ofa", "cls-int8.ofa"]
    paths = [os.path.join(workdir, n) for n in names]
    if all(os.path.exists(p) for p in paths):
        return paths
    os.makedirs(workdir, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    from ofa.export.merge import export, quantize_model_file
    from ofa.training.model import ModelConfig
    from ofa.training.loop import TrainConfig, train

    rows = 700
    t = np.arange(rows)
    values = np.stack([np.sin(t / 8), np.cos(t / 5) + 2, 0.01 * t], axis=1)
    values += 0.05 * np.random.default_rng(0).standard_normal(values.shape)
    data = os.path.join(workdir, "seed.csv")
    with open(data, "w") as f:
        f.write("date,a,b,c\n")
        for i, row in enumerate(values):
            f.write(f"{i},{row[0]:.6f},{row[1]:.6f},{row[2]:.6f}\n")
    torch.manual_seed(0)
    gpt2 = os.path.join(workdir, "tiny-gpt2")
    GPT2Model(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=8)).save_pretrained(gpt2)
    bert = os.path.join(workdir, "tiny-bert")
    BertModel(BertConfig(hidden_size=24, num_hidden_layers=2, num_attention_heads=4, intermediate_size=40,
                         max_position_embeddings=64, vocab_size=8), add_pooling_layer=False).save_pretrained(bert)
    tc = TrainConfig(epochs=1, batch_size=32, progress=False, max_train_windows=40, max_val_series=64)
    for backbone, tag, extra in ((gpt2, "gpt2", dict(linear_path="ridge")),
                                 (bert, "bert", dict(linear_path="none", head_base="random", train="lora"))):
        run = os.path.join(workdir, f"run-{tag}")
        train(data, run, ModelConfig(backbone=backbone, layers=2, seq_len=64, horizon=12, **extra), tc,
              log=lambda s: None)
        fp32 = os.path.join(workdir, f"{tag}-fp32.ofa")
        export(run, fp32, backbone=backbone)
        quantize_model_file(fp32, os.path.join(workdir, f"{tag}-int8.ofa"), data, 16)
    make_classifier_seeds(workdir, bert)
    return paths


def make_classifier_seeds(workdir: str, backbone: str) -> None:
    """cls-fp32.ofa and cls-int8.ofa: a classifier of two classes of 3-channel cases, trained one epoch."""
    from ofa.export.merge import export
    from ofa.training import classifier

    rng = np.random.default_rng(1)
    data = os.path.join(workdir, "seed_TRAIN.ts")
    with open(data, "w") as f:
        f.write("@problemName Seed\n@dimensions 3\n@classLabel true a b\n@data\n")
        for i in range(16):
            n = int(rng.integers(12, 21))
            dims = [np.sin(np.arange(n) / (2.0 + i % 2) + c) + (i % 2) + 0.1 * rng.standard_normal(n) for c in range(3)]
            f.write(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{'ab'[i % 2]}\n")
    run = os.path.join(workdir, "run-cls")
    classifier.train(data, run, classifier.ClassifierConfig(backbone=backbone, layers=2),
                     classifier.ClassifyTrainConfig(epochs=1, val_fraction=0.25), log=lambda s: None)
    export(run, os.path.join(workdir, "cls-fp32.ofa"), backbone=backbone)
    export(run, os.path.join(workdir, "cls-int8.ofa"), int8=True, data=data, calibration_windows=16, backbone=backbone)


# ---- mutations -------------------------------------------------------------------------------

def split_file(data: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + size]), data[8 + size:]


def join_file(header_text: bytes, body: bytes) -> bytes:
    pad = (-len(header_text)) % 8
    header_text += b" " * pad
    return len(header_text).to_bytes(8, "little") + header_text + body


def resealed(data: bytes, change) -> bytes:
    """Parse, let `change(tensors, metadata, rng)` edit, recompute the checksum, serialise: a file that
    passes the integrity check and carries only the semantic change."""
    from safetensors.numpy import load, save

    from ofa.modelfile import checksum

    tensors = dict(load(data))
    header, _ = split_file(data)
    metadata = dict(header.get("__metadata__", {}))
    change(tensors, metadata)
    metadata["checksum"] = checksum(tensors, metadata)
    return save(tensors, metadata=metadata)


def mutate_number(value, rng):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return int(rng.choice(INT_EXTREMES))
    choice = rng.integers(6)
    if choice == 0:
        return int(rng.choice(INT_EXTREMES))
    if choice == 1:
        return value + int(rng.choice([-2, -1, 1, 2]))
    if choice == 2:
        return value * int(rng.choice([2, 4, 16, 1000]))
    if choice == 3:
        return -value
    if choice == 4:
        return float(rng.choice(FLOAT_EXTREMES)) if isinstance(value, float) else 0
    return int(rng.integers(0, 4 * max(1, abs(int(value))) + 4))


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    header, body = split_file(data)
    names = sorted(k for k in header if k != "__metadata__")
    size = int.from_bytes(data[:8], "little")
    if kind == "truncate":
        return data[:int(rng.integers(0, len(data)))]
    if kind == "header_length":
        lie = int(rng.choice([0, 1, 7, size - 8, size - 1, size + 1, size + 8, len(data), 2**32, 2**63, 2**64 - 1]))
        return (lie % 2**64).to_bytes(8, "little") + data[8:]
    if kind in ("flip_header", "flip_data"):
        out = bytearray(data)
        lo, hi = (8, 8 + size) if kind == "flip_header" else (8 + size, len(data))
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(lo, hi))
            out[i] ^= 1 << int(rng.integers(8))
        return bytes(out)
    if kind in ("duplicate_name", "shape_lie", "dtype_lie", "offset_lie"):
        name = str(rng.choice(names))
        entry = header[name]
        if kind == "duplicate_name":
            other = str(rng.choice(names))
            text = json.dumps(header)[:-1] + f', "{other}": ' + json.dumps(header[name]) + "}"
            return join_file(text.encode(), body)
        if kind == "shape_lie":
            shape = list(entry["shape"])
            op = rng.integers(4)
            if op == 0 and shape:
                shape[int(rng.integers(len(shape)))] += int(rng.choice([-1, 1, 2**31]))
            elif op == 1:
                shape = shape[::-1]
            elif op == 2:
                shape = shape + [1]
            else:
                shape = [int(np.prod(shape))] if shape else [1]
            entry["shape"] = shape
        elif kind == "dtype_lie":
            entry["dtype"] = str(rng.choice(["F32", "F16", "BF16", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL"]))
        else:
            a, b = entry["data_offsets"]
            entry["data_offsets"] = [a + int(rng.choice([-8, -4, 0, 4])), b + int(rng.choice([-4, 0, 4, 8, 2**40]))]
        return join_file(json.dumps(header).encode(), body)
    # ---- checksum-valid semantic changes ----
    if kind == "meta_number":
        def change(tensors, metadata):
            key = str(rng.choice(["config", "config", "config", "config", "format_version", "channels"]))
            if key == "config":
                config = json.loads(metadata["config"])
                field = str(rng.choice(sorted(config)))
                config[field] = mutate_number(config[field], rng)
                metadata["config"] = json.dumps(config)
            elif key == "format_version":
                metadata[key] = str(mutate_number(1, rng))
            else:
                channels = json.loads(metadata.get("channels", "[]"))
                metadata[key] = json.dumps(channels[:int(rng.integers(0, len(channels) + 1))] + ["x"] * int(rng.integers(2)))
        return resealed(data, change)
    if kind == "meta_drop":
        def change(tensors, metadata):
            key = str(rng.choice(sorted(k for k in metadata if k != "checksum")))
            if rng.integers(2):
                del metadata[key]
            else:
                metadata[key] = str(rng.choice(["", "null", "[]", "{}", "1e999", "-1", '"x"']))
        return resealed(data, change)

    def pick(tensors):
        return str(rng.choice(sorted(tensors)))

    if kind == "tensor_value":
        def change(tensors, metadata):
            name = pick(tensors)
            t = np.array(tensors[name])
            flat = t.reshape(-1)
            if flat.size == 0:
                return
            k = int(rng.choice([1, 1, 2, max(1, flat.size // 4), flat.size]))
            where = rng.choice(flat.size, size=min(k, flat.size), replace=False)
            if t.dtype.kind == "f":
                flat[where] = rng.choice(FLOAT_EXTREMES)
            else:
                info = np.iinfo(t.dtype)
                pool = [v for v in INT_EXTREMES if info.min <= v <= info.max] + [info.min, info.max]
                flat[where] = rng.choice(pool)
            tensors[name] = t
        return resealed(data, change)
    if kind == "tensor_resize":
        def change(tensors, metadata):
            name = pick(tensors)
            t = tensors[name]
            op = rng.integers(3)
            if op == 0 and t.ndim and t.shape[0] > 1:
                tensors[name] = np.ascontiguousarray(t[:-1])
            elif op == 1:
                tensors[name] = np.ascontiguousarray(np.concatenate([t, t[:1]])) if t.ndim else t
            else:
                tensors[name] = np.ascontiguousarray(t.reshape(-1))
        return resealed(data, change)
    if kind == "tensor_drop":
        return resealed(data, lambda tensors, metadata: tensors.pop(pick(tensors)))
    if kind == "tensor_extra":
        def change(tensors, metadata):
            name = pick(tensors)
            tensors[name + rng.choice(["", ".x", "_"])] = np.zeros(int(rng.integers(0, 5)), np.float32)
        return resealed(data, change)
    raise ValueError(kind)


# ---- worker: run cases in this process -------------------------------------------------------

def run_case(seed_paths: list[str], seed: int, case: int, tmpdir: str) -> dict:
    from ofa.runtime.engine import load
    from ofa.errors import OfaError

    rng = np.random.default_rng([seed, case])
    path = seed_paths[case % len(seed_paths)]
    kind = str(rng.choice(KINDS))
    with open(path, "rb") as f:
        original = f.read()
    try:
        data = mutate(original, kind, rng)
    except Exception as exc:  # the mutation itself did not apply (e.g. a dtype reshape): still test the original
        data, kind = original, f"{kind}-unapplied({type(exc).__name__})"
    target = os.path.join(tmpdir, "case.ofa")
    with open(target, "wb") as f:
        f.write(data)
    result = {"case": case, "seed_file": os.path.basename(path), "kind": kind}
    try:
        model = load(target, threads=int(rng.integers(1, 3)))
        classify = model.task == "classify"
        batch, length, channels = int(rng.integers(1, 3)), model.config["seq_len"], model.config["n_channels"]
        x = (rng.standard_normal((batch, channels, length) if classify else (batch, length, channels))
             * float(rng.choice([1.0, 1.0, 100.0, 1e6]))).astype(np.float32)
        y = model.run(x)
        shape = (batch, model.config["n_classes"]) if classify else (batch, model.config["horizon"], channels)
        ok = y.shape == shape and np.isfinite(y).all()
        result["outcome"] = ("classify" if classify else "forecast") if ok else "nonfinite-or-bad-shape"
    except OfaError as exc:
        result["outcome"], result["message"] = "OfaError", str(exc).split(": ", 1)[-1][:120]
    except ValueError as exc:
        result["outcome"], result["message"] = "ValueError", str(exc)[:120]
    except Exception as exc:  # outside the contract
        result["outcome"], result["message"] = type(exc).__name__, str(exc)[:200]
    return result


def worker(args) -> int:
    if args.asan:  # the sanitized extension stands in for ofa._engine before ofa.runtime.engine imports it
        import importlib.util
        so = next(os.path.join(args.asan, n) for n in os.listdir(args.asan) if n.startswith("_engine") and n.endswith(".so"))
        spec = importlib.util.spec_from_file_location("ofa._engine", so)
        module = importlib.util.module_from_spec(spec)
        import ofa

        sys.modules["ofa._engine"] = module
        spec.loader.exec_module(module)
        ofa._engine = module
    seeds = args.seed_files.split(",")
    with tempfile.TemporaryDirectory() as tmp, open(args.results, "a") as out:
        for case in range(args.first, args.first + args.cases):
            print(f"CASE {case}", file=sys.stderr, flush=True)
            out.write(json.dumps(run_case(seeds, args.seed, case, tmp)) + "\n")
            out.flush()
    return 0


# ---- driver ----------------------------------------------------------------------------------

def asan_env(build_dir: str) -> dict:
    env = dict(os.environ)
    libs = [subprocess.run(["g++", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
            for name in ("libasan.so", "libstdc++.so")]
    # libstdc++ preloaded too: otherwise ASan cannot intercept __cxa_throw (the binding's errors are
    # C++ exceptions) in a python binary that does not link libstdc++ itself.
    env["LD_PRELOAD"] = " ".join(libs)
    # Python itself leaks by design: leak checking off; any ASan error aborts; UBSan reports are counted.
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1"
    return env


def drive(args) -> dict:
    seeds = make_seeds(args.workdir)
    if args.scheme != "all":
        seeds = [p for p in seeds if p.endswith(f"-{args.scheme}.ofa")]
    env = asan_env(args.asan) if args.asan else dict(os.environ)
    results_path = os.path.join(args.workdir, "results.jsonl")
    if os.path.exists(results_path):
        os.unlink(results_path)
    crashes, reports = [], []
    case, end = args.first, args.first + args.cases
    t0 = time.perf_counter()
    while case < end:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--seed", str(args.seed), "--first", str(case),
               "--cases", str(end - case), "--seed-files", ",".join(seeds), "--results", results_path]
        if args.asan:
            cmd += ["--asan", args.asan]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        current = None
        for line in proc.stderr.splitlines():
            if line.startswith("CASE "):
                current = int(line.split()[1])
            elif SANITIZER_REPORT.search(line):
                reports.append({"case": current, "report": line.strip()[:300]})
        if proc.returncode == 0:
            break
        crashed = current if current is not None else case
        crashes.append({"case": crashed, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]})
        case = crashed + 1
    seconds = time.perf_counter() - t0
    with open(results_path) as f:
        results = [json.loads(line) for line in f]
    outcomes = collections.Counter(r["outcome"] for r in results)
    by_kind = collections.defaultdict(collections.Counter)
    for r in results:
        by_kind[r["kind"].split("-unapplied")[0]][r["outcome"]] += 1
    messages = collections.Counter(r.get("message", "")[:60] for r in results if r["outcome"] == "OfaError")
    bad = [r for r in results if r["outcome"] not in ("forecast", "classify", "OfaError", "ValueError")]
    summary = {
        "cases": args.cases, "first": args.first, "seed": args.seed, "scheme": args.scheme,
        "sanitized": bool(args.asan), "seconds": round(seconds, 1), "completed": len(results),
        "crashes": len(crashes), "sanitizer_reports": len(reports), "outside_contract": len(bad),
        "outcomes": dict(outcomes), "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "top_messages": messages.most_common(12),
        "crash_cases": crashes[:5], "report_cases": reports[:10], "outside_contract_cases": bad[:10],
    }
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--first", type=int, default=0, help="number of the first case (to replay one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scheme", choices=["fp32", "int8", "all"], default="all")
    ap.add_argument("--asan", help="build directory holding the ASan/UBSan _engine module (tests/fuzz/run_asan.sh)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "fuzz"))
    ap.add_argument("--json", help="write the summary here (e.g. bench/results/fuzz.json)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed-files", help=argparse.SUPPRESS)
    ap.add_argument("--results", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    summary = drive(args)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        from ofa.fileio import atomic_write_json

        atomic_write_json(args.json, summary)
    failed = summary["crashes"] or summary["sanitizer_reports"] or summary["outside_contract"] or \
        summary["completed"] != args.cases
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
