#!/usr/bin/env bash
# Build the engine's Python module with AddressSanitizer + UBSan (build/fuzz-asan) and run the model
# fuzzer against it. Extra arguments go to fuzz_models.py (default: a 300-case fixed-seed slice).
# Exit status non-zero on any crash, sanitizer report or error outside the contract.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build/fuzz-asan"
cmake -S "$ROOT" -B "$BUILD" -DOFA_BUILD_PYTHON=ON -DOFA_BUILD_TESTS=OFF -DOFA_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE="$(command -v python)" \
  -Dnanobind_DIR="$(python -c 'import nanobind; print(nanobind.cmake_dir())')" >/dev/null
cmake --build "$BUILD" -j"${JOBS:-2}" --target _engine
if [ "$#" -eq 0 ]; then set -- --cases 300 --seed 0; fi
python "$ROOT/tests/fuzz/fuzz_models.py" --asan "$BUILD" --workdir "$ROOT/build/fuzz" "$@"
