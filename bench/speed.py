"""Speed: ofa.infer (C++ engine) vs PyTorch eager on the same model and thread count.

    python bench/speed.py                      # MiniLM 6 blocks, seq_len 336, horizon 96, 7 channels
    python bench/speed.py --layers 2           # the default 2-block model
    python bench/speed.py --checkpoint runs/etth1-96   # a trained checkpoint instead of fresh adapters

The PyTorch side is the model `ofa eval` runs (PEFT-wrapped OneForAll, eval mode, inference_mode);
the engine runs the file `ofa export` writes from it. Both get the same windows at batch 1 and 64 and
the same torch / engine thread count. The machine's sgemm peak is torch.mm at 1024^3 in the same run,
and the engine reports the FLOPs and seconds spent inside its GEMMs. Writes bench/results/speed.json:
records {"engine", "batch", "threads", "ms_per_call", "gflops", "peak_gflops"}; for PyTorch "gflops"
is the same GEMM FLOP count divided by its whole call time.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bench/timing.py
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

import ofa  # noqa: E402
from timing import best_ms  # noqa: E402
from ofa.training import checkpoint
from ofa.training.checkpoint import atomic_write_json  # noqa: E402
from ofa.export.merge import export  # noqa: E402
from ofa.training.model import ModelConfig, build  # noqa: E402


def sgemm_peak(threads: int) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    ms = best_ms(lambda: torch.mm(a, b), 10)
    return 2 * 1024 ** 3 / (ms * 1e-3) * 1e-9


def fresh_checkpoint(directory: str, seed: int, layers: int) -> str:
    """MiniLM's first `layers` blocks, default preset otherwise, adapters non-zero (as after training)."""
    from ofa.training import backbone as backbones

    mc = ModelConfig(seq_len=336, horizon=96, layers=layers)
    backbone = backbones.load(mc.backbone, mc.layers)
    fingerprint = backbones.fingerprint(backbone.model)
    model = build(mc, seed=seed, backbone=backbone)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_embedding_A" in name:
                p.normal_(0, 0.02)
    checkpoint.save(directory, model, {
        "model": mc.to_dict(), "data": {"channels": [f"c{i}" for i in range(7)], "target": None, "name": "bench"},
        "scaler": {"mean": [0.0] * 7, "std": [1.0] * 7}, "backbone_fingerprint": fingerprint, "sizes": {}})
    return directory


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="trained checkpoint (default: fresh MiniLM adapters, 7 channels)")
    ap.add_argument("--layers", type=int, default=6, help="MiniLM blocks of the fresh model (default 6)")
    ap.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "speed.json"))
    args = ap.parse_args(argv)

    work = tempfile.mkdtemp(prefix="ofa-speed-")
    ckpt = args.checkpoint or fresh_checkpoint(os.path.join(work, "ckpt"), seed=0, layers=args.layers)
    model_file = os.path.join(work, "model.ofa")
    export(ckpt, model_file)
    torch_model, meta = checkpoint.load(ckpt)
    c = len(meta["scaler"]["mean"])
    seq_len = meta["model"]["seq_len"]
    rng = np.random.default_rng(0)
    records, lines = [], []
    for threads in [int(t) for t in args.threads.split(",")]:
        peak = sgemm_peak(threads)
        engine = ofa.load(model_file, threads=threads)
        for batch in [int(b) for b in args.batches.split(",")]:
            x = rng.standard_normal((batch, seq_len, c)).astype(np.float32)
            xt = torch.from_numpy(x)
            torch.set_num_threads(threads)

            def run_torch():
                with torch.inference_mode():
                    torch_model(xt)

            torch_ms = best_ms(run_torch, args.repeats)
            engine_ms = best_ms(lambda: ofa.infer(engine, x), args.repeats)
            stats = engine.engine.gemm_stats()
            gemm_gflops = stats["gflops_per_s"]
            flops = stats["flops"]
            for name, ms, gflops in (("pytorch-eager", torch_ms, flops / (torch_ms * 1e-3) * 1e-9),
                                     ("ofa-engine", engine_ms, gemm_gflops)):
                records.append({"engine": name, "batch": batch, "threads": threads, "layers": meta["model"]["layers"],
                                "ms_per_call": ms,
                                "gflops": gflops, "peak_gflops": peak, "simd": engine.engine.simd})
            lines.append(f"threads {threads} batch {batch:3d}: pytorch {torch_ms:8.2f} ms  engine {engine_ms:8.2f} ms  "
                         f"speedup {torch_ms / engine_ms:4.2f}x  engine GEMMs {gemm_gflops:6.1f} GFLOP/s = "
                         f"{gemm_gflops / peak:4.0%} of sgemm peak {peak:6.1f}  "
                         f"(GEMM time {stats['seconds'] * 1e3 / max(1, threads):.1f} of {engine_ms:.1f} ms)")
            print(lines[-1], flush=True)
    atomic_write_json(args.out, records)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"engine ISA {records[-1]['simd']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
