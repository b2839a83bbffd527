"""Firmware benchmark: a distilled int8 student on QEMU's Cortex-M boards, beside its teacher and DLinear.

    python bench/firmware.py --student runs/student/etth1-96-w128 --teacher runs/bench/ETTh1.csv-96-ofa-Lauto

For each target: tools/emit_header.py (fit check, golden windows), the firmware build (arm-none-eabi-gcc),
one QEMU run (bit-exact check, arena and instruction count), arm-none-eabi-size. In the same run, test MSE
at the student's horizon over the full test split of: the student (fp32 and int8, C++ engine; the int8
engine is bit-exact with the firmware, so its MSE is the firmware's), the teacher (fp32 engine), and
DLinear trained here exactly as bench/accuracy.py trains it (reduced protocol, learning rate and lookback
chosen on the validation split).
A second build per target times every kernel call (-DOFA_PROFILE=ON, firmware/profile.c): the GEMMs'
instructions (their requantisation epilogues included) per multiply-accumulate, and the split by kernel.
Writes bench/results/firmware.json: {"records": [{"target", "model", "flash_bytes", "static_ram_bytes",
"arena_bytes", "instructions_per_inference", "macs_per_inference", "instructions_per_mac",
"gemm_instructions_per_mac", "kernel_profile", "bit_exact", "mse", ...}], "reference": {...}}.
Instructions are counted by QEMU (-icount shift=0, SysTick), not cycles: QEMU does not model timing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))  # run from a checkout too
sys.path.insert(0, HERE)

from ofa.training.checkpoint import atomic_write_json  # noqa: E402
from ofa.data import load_series, make_splits  # noqa: E402
from ofa.errors import OfaError  # noqa: E402
from ofa.evaluation import scores  # noqa: E402
from ofa.firmware import (TARGETS, build, elf_sizes, emit, gemm_macs, kernel_profile, run_qemu,  # noqa: E402
                          toolchain_missing)
from ofa.modelfile import read_model_file  # noqa: E402

# TensorFlow Lite Micro's smallest arena for the student (seq_len 336, one series per call), from the
# Cortex-M issue; not re-measured here.
TFLM_ARENA_BYTES = 89_908
GEMM_KERNELS = ("gemm_s8", "gemm_s8_requant_s8", "gemm_s8_requant_add_s32")

DATA = os.environ.get("OFA_DATA", os.path.join(HERE, "..", "..", "shared", "data"))


def engine_mse(model_path: str, data: str, threads: int) -> dict:
    """Test MSE/MAE (normalised units, full split) of an exported model in the C++ engine."""
    import ofa

    model = ofa.load(model_path, threads=threads)
    splits = make_splits(load_series(data, model.target), model.seq_len, model.horizon)
    x, y = splits.test.windows()
    raw = splits.scaler.inverse(x)
    pred = ofa.infer(model, np.ascontiguousarray(raw))
    return scores(splits.scaler.transform(pred), y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", default="runs/student/etth1-96-w128", help="student checkpoint (ofa distill)")
    ap.add_argument("--teacher", default="runs/bench/ETTh1.csv-96-ofa-Lauto", help="teacher checkpoint")
    ap.add_argument("--data", default=os.path.join(DATA, "ETT", "ETTh1.csv"))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--calibration-windows", type=int, default=256)
    ap.add_argument("--workdir", default="build/bench-firmware")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "firmware.json"))
    args = ap.parse_args(argv)
    missing = toolchain_missing()
    if missing:
        raise SystemExit(f"bench/firmware.py needs {', '.join(missing)} (README, Firmware)")
    from accuracy import REDUCED_TRAIN_SERIES, dlinear_cell
    from ofa.export.merge import export

    os.makedirs(args.workdir, exist_ok=True)
    student8 = os.path.join(args.workdir, "student-int8.ofa")
    student32 = os.path.join(args.workdir, "student-fp32.ofa")
    teacher32 = os.path.join(args.workdir, "teacher-fp32.ofa")
    export(args.student, student8, int8=True, data=args.data, calibration_windows=args.calibration_windows)
    export(args.student, student32)
    export(args.teacher, teacher32)
    meta = json.load(open(os.path.join(args.student, "ofa.json")))
    reference = {
        "student_int8": engine_mse(student8, args.data, args.threads),
        "student_fp32": engine_mse(student32, args.data, args.threads),
        "teacher_fp32": engine_mse(teacher32, args.data, args.threads),
    }
    tm = meta["model"]
    horizon = tm["horizon"]
    dataset = os.path.splitext(os.path.basename(args.data))[0]
    dlinear = dlinear_cell("dlinear", dataset, args.data, horizon, "auto",
                           argparse.Namespace(full=False, train_series=REDUCED_TRAIN_SERIES, seed=0, screen=1,
                                              test_every=1))  # every test window, as the engine MSEs above
    reference["dlinear"] = {k: dlinear[k] for k in ("mse", "mae", "seq_len", "lr")}
    student_desc = meta.get("distilled_from", {}).get("student", {})
    model_name = (f"student d={student_desc.get('width')} x{student_desc.get('layers')} "
                  f"ff={student_desc.get('ff')} int8")
    for name, s in reference.items():
        print(f"{name:14s} {dataset}-{horizon} test mse {s['mse']:.4f}  mae {s['mae']:.4f}")

    macs = gemm_macs(json.loads(read_model_file(student8, schemes=("int8",))[1]["config"]))
    records = []
    for target in args.targets.split(","):
        t0 = time.perf_counter()
        hdr = os.path.join(args.workdir, target, "model")
        try:
            info = emit(student8, target, hdr, args.data, golden=3)
            elf = build(os.path.join(HERE, "..", "firmware"), target, hdr, os.path.join(args.workdir, target, "build"))
        except OfaError as exc:  # e.g. the model outgrows what this QEMU board maps: a record, not a crash
            overflow = [line.strip() for line in str(exc).splitlines() if "overflowed" in line or "exceeds" in line]
            records.append({"target": target, "board": TARGETS[target].board, "model": model_name, "dataset": dataset,
                            "horizon": horizon, "fits": False, "bit_exact": None,
                            "error": (overflow[0] if overflow else str(exc).splitlines()[0])[:300]})
            print(f"{target:11s} not built: {records[-1]['error']}")
            continue
        status, report, fields = run_qemu(target, elf)
        sizes = elf_sizes(elf)
        profiled_elf = build(os.path.join(HERE, "..", "firmware"), target, hdr,
                             os.path.join(args.workdir, target, "build-profile"), profile=True)
        p_status, p_report, p_fields = run_qemu(target, profiled_elf)
        profile = kernel_profile(p_report)
        gemm_instructions = sum(profile[k]["instructions"] for k in GEMM_KERNELS if k in profile)
        instructions = int(fields.get("instructions", 0))
        rec = {
            "target": target, "board": TARGETS[target].board, "model": model_name, "dataset": dataset, "horizon": horizon,
            "flash_bytes": sizes["flash_bytes"], "static_ram_bytes": sizes["static_ram_bytes"],
            "flash_budget": TARGETS[target].flash, "ram_budget": TARGETS[target].ram,
            "fits": sizes["flash_bytes"] <= TARGETS[target].flash and sizes["static_ram_bytes"] <= TARGETS[target].ram,
            "arena_bytes": int(fields.get("arena_planned", info["arena_bytes"])),
            "arena_used_bytes": int(fields.get("arena_used", 0)), "stack_peak_bytes": int(fields.get("stack_peak", 0)),
            "weight_bytes": info["weight_bytes"],
            "instructions_per_inference": instructions,
            "macs_per_inference": macs["total"], "instructions_per_mac": round(instructions / macs["total"], 3),
            "gemm_instructions": gemm_instructions,
            "gemm_instructions_per_mac": round(gemm_instructions / macs["total"], 3),
            "kernel_profile": profile, "profiled_bit_exact": p_status == 0 and p_fields.get("pass") == "1",
            "profiled_instructions_per_inference": int(p_fields.get("instructions", 0)),
            "arena_vs_tflm_smallest": round(int(fields.get("arena_planned", info["arena_bytes"])) / TFLM_ARENA_BYTES, 3),
            "instruction_counter_check": int(fields.get("counter_check", 0)),
            "bit_exact": status == 0 and fields.get("pass") == "1", "golden_windows": int(fields.get("windows", 0)),
            "mse": reference["student_int8"]["mse"], "mae": reference["student_int8"]["mae"],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        records.append(rec)
        print(report.strip().splitlines()[-3])
        print(f"{target:11s} flash {rec['flash_bytes']:>8,} B  RAM {rec['static_ram_bytes']:>8,} B  "
              f"arena {rec['arena_bytes']:>7,} B  {rec['instructions_per_inference']:>12,} instructions/inference  "
              f"bit-exact {rec['bit_exact']}  fits {rec['fits']}")
        print(f"{'':11s} {rec['instructions_per_mac']:.3f} instructions per MAC ({macs['total']:,} MACs); GEMMs "
              f"{rec['gemm_instructions_per_mac']:.3f} per MAC with their epilogues; arena "
              f"{rec['arena_vs_tflm_smallest']:.3f}x TFLM's smallest ({TFLM_ARENA_BYTES:,} B)")
        for name, k in sorted(profile.items(), key=lambda kv: -kv[1]["instructions"]):
            print(f"{'':13s}{name:24s} {k['instructions']:>12,} instructions in {k['calls']:>5} calls")
    import subprocess

    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    gcc = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    result = {"machine": f"host {platform.machine()} ({os.cpu_count()} cores); {qemu}; {gcc}",
              "command": "python bench/firmware.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "student": args.student, "teacher": args.teacher, "reference": reference,
              "macs_per_inference": macs, "records": records}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    ratio = reference["student_int8"]["mse"] / reference["dlinear"]["mse"]
    print(f"student int8 / DLinear MSE: {ratio:.3f}x")
    return 0 if all(r["bit_exact"] and r["profiled_bit_exact"] for r in records if r["bit_exact"] is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
