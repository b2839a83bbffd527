"""Training throughput: series per second of the default model, one process vs DistributedDataParallel.

    python bench/train_speed.py                  # ETTh1 (../shared), CPU: 1 process x 2 threads, 2 x 1 thread
    python bench/train_speed.py --configs cpu-1x2,cpu-2x1,cuda-1x1

Each configuration trains one epoch of the same evenly spaced training windows with `ofa train`
(torchrun for several processes) and reads the epoch's training time from the checkpoint's history
(validation excluded). The global batch is the same in every configuration. Records
{"config", "device", "processes", "threads_per_process", "series", "seconds", "series_per_s", "machine"}
go to bench/results/train_speed.json (replaced per config). A configuration whose device is absent is
skipped with a line saying so.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from ofa.training.checkpoint import atomic_write_json  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


def run_config(name: str, data: str, windows: int, seq_len: int, batch: int, workdir: str) -> dict | None:
    device, shape = name.split("-")
    processes, threads = (int(v) for v in shape.split("x"))
    if device == "cuda":
        import torch

        if not torch.cuda.is_available() or torch.cuda.device_count() < processes:
            print(f"skip {name}: {processes} CUDA device(s) needed, torch sees {torch.cuda.device_count()}")
            return None
    out = os.path.join(workdir, name)
    args = ["train", "--data", data, "--out", out, "--seq-len", str(seq_len), "--horizon", "96",
            "--epochs", "1", "--batch-size", str(batch), "--max-train-windows", str(windows),
            "--max-val-series", "256", "--threads", str(threads), "--device", device, "--quiet",
            "--precision", "bf16" if device == "cuda" else "fp32"]
    launcher = [sys.executable, "-m", "ofa"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m", "ofa"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.run(launcher + args, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    meta = json.load(open(os.path.join(out, "ofa.json")))
    seconds = meta["history"][0]["seconds"]
    series = meta["data"]["train_series"]
    rec = {"config": name, "device": device, "processes": processes, "threads_per_process": threads,
           "series": series, "seconds": seconds, "series_per_s": series / seconds, "seq_len": seq_len,
           "batch": batch, "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    print(f"{name:10} {series:6,} series in {seconds:6.1f} s: {rec['series_per_s']:7.1f} series/s")
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(DATA, "ETT", "ETTh1.csv"))
    ap.add_argument("--configs", default="cpu-1x2,cpu-2x1", help="DEVICE-PROCESSESxTHREADS, comma-separated")
    ap.add_argument("--windows", type=int, default=200, help="training windows (x channels = series)")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64, help="global batch (series per step)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds over the configs, interleaved; best kept")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "train_speed.json"))
    args = ap.parse_args(argv)
    if not os.path.isfile(args.data):
        raise SystemExit(f"{args.data} not found (set OFA_DATA or pass --data)")
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ofa-train-speed-") as work:
        for _ in range(args.repeat):
            for name in args.configs.split(","):
                rec = run_config(name, args.data, args.windows, args.seq_len, args.batch, work)
                if rec and (name not in best or rec["seconds"] < best[name]["seconds"]):
                    best[name] = rec
    earlier = json.load(open(args.out)) if os.path.isfile(args.out) else []
    records = [r for r in earlier if r.get("config") not in best] + list(best.values())
    atomic_write_json(args.out, records)
    base = best.get("cpu-1x2")
    for r in best.values():
        ratio = f"  {r['series_per_s'] / base['series_per_s']:.2f}x cpu-1x2" if base else ""
        print(f"{r['config']:10} {r['series_per_s']:7.1f} series/s (best of {args.repeat}){ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
