#!/usr/bin/env bash
# The whole test suite: Python (pytest), C++ (ctest, plain and with ASan/UBSan), the fuzz slice (ASan/UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q tests
bash tests/run_cpp.sh
# The model-file fuzzer, a fixed-seed slice, against an ASan/UBSan build of the engine module.
bash tests/fuzz/run_asan.sh --cases 600 --seed 0
