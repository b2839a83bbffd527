#!/usr/bin/env bash
# Configure, build and run the C++ tests: plain (build/cpp) and with
# AddressSanitizer + UBSan (build/cpp-asan). Non-zero exit on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${JOBS:-2}"

run() {
  local dir="$1"; shift
  cmake -S "$ROOT" -B "$ROOT/$dir" -DOFA_BUILD_TESTS=ON -DOFA_BUILD_PYTHON=OFF "$@"
  cmake --build "$ROOT/$dir" -j"$JOBS"
  ctest --test-dir "$ROOT/$dir" --output-on-failure -j"$JOBS"
}

run build/cpp -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run build/cpp-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOFA_SANITIZE=ON
echo "C++ tests passed (plain and sanitized)"
