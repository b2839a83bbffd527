"""A fixed-seed slice of the model-file fuzzer (tests/fuzz/fuzz_models.py) against the installed engine.

tests/run.sh runs another slice against an ASan/UBSan build (tests/fuzz/run_asan.sh)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

HARNESS = os.path.join(os.path.dirname(__file__), "fuzz", "fuzz_models.py")


def test_mutated_model_files_forecast_classify_or_raise_ofa_errors(tmp_path):
    proc = subprocess.run([sys.executable, HARNESS, "--cases", "400", "--seed", "7", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0, json.dumps({k: summary[k] for k in ("crash_cases", "outside_contract_cases")})
    assert summary["completed"] == 400 and summary["crashes"] == summary["outside_contract"] == 0
    # The slice reaches both outcomes and every mutation kind: it tests something.
    assert summary["outcomes"].get("forecast", 0) > 20 and summary["outcomes"].get("OfaError", 0) > 200
    assert summary["outcomes"].get("classify", 0) > 5  # the classifier seeds run too
    assert {"truncate", "meta_number", "tensor_value", "shape_lie", "tensor_drop"} <= set(summary["by_kind"])
