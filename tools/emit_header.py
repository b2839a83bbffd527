"""Write an int8 model file as C headers for the Cortex-M firmware (firmware/README in the main README).

    python tools/emit_header.py etth1-96-int8.ofa --target cortex-m4 --data ../shared/data/ETT/ETTh1.csv -o build/fw
    python tools/emit_header.py detector-int8.ofa --target cortex-m4 --anomaly series.csv --rows 1500 -o build/fw-anomaly

Writes ofa_model.h (weights in flash, config, OFA_ARENA_BYTES) and ofa_golden.h (real test windows and
the host engine's outputs for them) or, with --anomaly (a detector's model file, `ofa detect --export`),
ofa_stream.h (the series' samples and the host engine's anomaly score of each; firmware OFA_MODE=anomaly). Refuses, writing nothing, a model that does not fit the target.
Exit status 0 on success, 2 with a one-line message on bad input.
"""
from __future__ import annotations

import argparse
import os
import sys

try:
    import ofa._engine  # noqa: F401  the installed package (pip install .)
except ImportError:  # a checkout whose python/ofa holds a built _engine (development)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from ofa.errors import OfaError  # noqa: E402
from ofa.firmware import TARGETS, human, parse_size  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="emit_header.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="an int8 model file (ofa export --int8)")
    ap.add_argument("--target", required=True, help=f"one of: {', '.join(TARGETS)}")
    ap.add_argument("-o", "--out", required=True, help="output directory for ofa_model.h and ofa_golden.h")
    ap.add_argument("--data", help="CSV the model was trained on: golden windows come from its test split")
    ap.add_argument("--anomaly", metavar="SERIES_CSV",
                    help="anomaly mode: a timestamp,value CSV whose samples the firmware streams (instead of --data)")
    ap.add_argument("--rows", type=int, help="anomaly mode: stream the first ROWS samples (default: all)")
    ap.add_argument("--golden", type=int, default=3, help="number of golden windows (default 3)")
    ap.add_argument("--flash", help="override the target's flash budget (e.g. 2M)")
    ap.add_argument("--ram", help="override the target's RAM budget (e.g. 512K)")
    args = ap.parse_args(argv)
    try:
        from ofa.firmware import emit

        flash = parse_size(args.flash) if args.flash else None
        ram = parse_size(args.ram) if args.ram else None
        if args.data and args.anomaly:
            raise OfaError("give --data (forecasting golden windows) or --anomaly (a detector's stream), not both")
        info = emit(args.model, args.target, args.out, args.data, golden=args.golden, flash=flash, ram=ram,
                    anomaly=args.anomaly, rows=args.rows)
    except OfaError as exc:
        print(f"emit_header: error: {exc}", file=sys.stderr)
        return 2
    print(f"{info['target']}: weights {human(info['weight_bytes'])}, arena {human(info['arena_bytes'])}; "
          f"estimated flash {human(info['flash_estimate'])} of {human(info['flash_budget'])}, "
          f"RAM {human(info['ram_estimate'])} of {human(info['ram_budget'])}")
    what = "samples" if args.anomaly else "windows"
    print(f"wrote {os.path.join(args.out, 'ofa_model.h')} and {info['files'][-1]} ({info['golden']} {what} of "
          f"{info['golden_source']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
