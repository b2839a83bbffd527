"""The firmware's anomaly mode on QEMU: a NAB series streamed sample by sample through the int8 detector.

    python bench/firmware_anomaly.py                                   # nyc_taxi, Cortex-M4, stride 1 and 8
    python bench/firmware_anomaly.py --series realKnownCause/machine_temperature_system_failure.csv

Per stride: the detector's first model is trained on the series' probationary period and exported int8
(ofa.anomaly.device.export_detector, the default DetectorConfig but retrain "none" and that stride), the
whole series goes into ofa_stream.h (tools/emit_header.py --anomaly), the demo is built with OFA_MODE=anomaly
and run once on QEMU: every score compared bit for bit with the host engine's, and the instructions counted
per sample, per forecast and for the scorer alone (SysTick under -icount shift=0: instructions, not cycles).
Writes bench/results/firmware_anomaly.json: {"records": [{"target", "series", "rows", "stride", "seq_len",
"bit_exact", "instructions_per_sample", "instructions_per_forecast", "scorer_instructions_per_sample",
"scorer_instructions_max", "forecasts", "arena_bytes", "stream_state_bytes", "stack_peak", "flash_bytes",
"static_ram_bytes"}]}.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from ofa.anomaly import nab  # noqa: E402
from ofa.anomaly.detector import DetectorConfig  # noqa: E402
from ofa.anomaly.device import export_detector  # noqa: E402
from ofa.anomaly.files import read_stream  # noqa: E402
from ofa.errors import OfaError  # noqa: E402
from ofa.fileio import atomic_write_json  # noqa: E402
from ofa.firmware import build, elf_sizes, emit, run_qemu, toolchain_missing  # noqa: E402

DATA = os.environ.get("OFA_DATA", os.path.join(HERE, "..", "..", "shared", "data"))
FIRMWARE = os.path.join(HERE, "..", "firmware")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="realKnownCause/nyc_taxi.csv", help="a file under NAB/data")
    ap.add_argument("--nab", default=os.path.join(DATA, "NAB"))
    ap.add_argument("--strides", default="1,8")
    ap.add_argument("--targets", default="cortex-m4")
    ap.add_argument("--workdir", default="build/bench-firmware-anomaly")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "firmware_anomaly.json"))
    args = ap.parse_args(argv)
    missing = toolchain_missing()
    if missing:
        raise SystemExit(f"needs {', '.join(missing)} (see ../shared/notes/cortex-m-qemu.md)")
    import torch

    torch.set_num_threads(1)
    path = os.path.join(args.nab, "data", args.series)
    values = read_stream(path)["values"]
    train_rows = nab.probation_rows(len(values))
    records = []
    for stride in (int(s) for s in args.strides.split(",")):
        cfg = DetectorConfig(train_rows=train_rows, retrain="none", stride=stride)
        model = os.path.join(args.workdir, f"detector-s{stride}-int8.ofa")
        os.makedirs(args.workdir, exist_ok=True)
        t0 = time.perf_counter()
        info = export_detector(values, model, cfg)
        print(f"stride {stride}: trained and exported in {time.perf_counter() - t0:.1f} s: lookback "
              f"{info['seq_len']}, {info['bytes']:,} bytes", flush=True)
        for target in args.targets.split(","):
            hdr = os.path.join(args.workdir, f"hdr-{target}-s{stride}")
            emit(model, target, hdr, anomaly=path)
            elf = build(FIRMWARE, target, hdr, os.path.join(args.workdir, f"build-{target}-s{stride}"), mode="anomaly")
            t0 = time.perf_counter()
            status, report, fields = run_qemu(target, elf, timeout=3600)
            if status not in (0, 1):
                raise OfaError(f"{target}: the demo failed:\n{report[-2000:]}")
            sizes = elf_sizes(elf)
            rec = {"target": target, "series": args.series, "rows": len(values), "train_rows": train_rows,
                   "stride": stride, "seq_len": info["seq_len"], "horizon": info["horizon"],
                   "bit_exact": status == 0 and fields["mismatches"] == "0",
                   "mismatches": int(fields["mismatches"]), "forecasts": int(fields["forecasts"]),
                   "instructions_per_sample": int(fields["per_sample"]),
                   "instructions_per_forecast": int(fields["per_forecast"]),
                   "scorer_instructions_per_sample": int(fields["scorer_per_sample"]),
                   "scorer_instructions_max": int(fields["scorer_max"]),
                   "push_instructions_max": int(fields["push_max"]),
                   "arena_bytes": int(fields["arena_planned"]), "stream_state_bytes": int(fields["stream_state"]),
                   "stack_peak": int(fields["stack_peak"]), "flash_bytes": sizes["flash_bytes"],
                   "static_ram_bytes": sizes["static_ram_bytes"], "model_bytes": info["bytes"],
                   "qemu_seconds": round(time.perf_counter() - t0, 1)}
            records.append(rec)
            print(f"  {target}: {'bit-exact' if rec['bit_exact'] else 'DIFFERS'} over {rec['rows']:,} samples; "
                  f"{rec['instructions_per_sample']:,} instructions per sample ({rec['forecasts']:,} forecasts of "
                  f"{rec['instructions_per_forecast']:,}; scorer {rec['scorer_instructions_per_sample']:,} per sample, "
                  f"{rec['scorer_instructions_max']:,} at most); arena {rec['arena_bytes']:,} + stream "
                  f"{rec['stream_state_bytes']:,} bytes", flush=True)
    atomic_write_json(args.out, {"records": records, "machine": {"host": platform.platform(),
                                                                 "counter": "QEMU -icount shift=0 instructions"}})
    print(f"wrote {args.out}")
    return 0 if all(r["bit_exact"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
