#!/usr/bin/env bash
# The whole test suite: Python (pytest) then C++ (ctest, plain and with ASan/UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q tests
bash tests/run_cpp.sh
