#!/usr/bin/env bash
# The whole test suite: Python (pytest), C++ (ctest, plain and with ASan/UBSan), the fuzz slice (ASan/UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
# The C++ stages' prerequisites, checked before the long pytest stage, one line each.
missing=()
command -v cmake >/dev/null || missing+=("cmake (apt-get install cmake)")
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++ compiler (apt-get install g++)")
[ -f /usr/include/gtest/gtest.h ] || [ -f /usr/local/include/gtest/gtest.h ] \
  || missing+=("GoogleTest (apt-get install libgtest-dev)")
python -c "import nanobind" 2>/dev/null || missing+=("nanobind for the fuzz build (pip install '.[test]')")
if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do echo "tests/run.sh: missing $m" >&2; done
  exit 2
fi
python -m pytest -q tests
bash tests/run_cpp.sh
# The model-file fuzzer, a fixed-seed slice, against an ASan/UBSan build of the engine module.
bash tests/fuzz/run_asan.sh --cases 600 --seed 0
