"""Firmware: header emission (fit check, bad input, nothing half-written) and, where the Arm toolchain
and QEMU are installed, the demo built for Cortex-M4 and Cortex-M55 and run bit-exact with the host.

Without the toolchain the QEMU tests skip, unless OFA_REQUIRE_FIRMWARE=1 (CI sets it): then they fail.
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from ofa import _engine
from ofa.errors import OfaError
from ofa.export.merge import export, quantize_model_file
from ofa.firmware import build, elf_sizes, emit, run_qemu, toolchain_missing
from ofa.modelfile import read_model_file
from test_infer import exported

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIRMWARE = os.path.join(ROOT, "firmware")
EMIT = os.path.join(ROOT, "tools", "emit_header.py")


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_gpt2):
    """A tiny GPT-2-layout int8 model, and a BERT-layout student (int8) distilled from a GPT-2 teacher
    with a linear path, which the student inherits: the QEMU runs cover the graph with and without it."""
    from conftest import noisy_sines, write_csv
    from ofa.training.distill import StudentConfig, distill
    from ofa.training.loop import TrainConfig

    tmp = tmp_path_factory.mktemp("fw")
    data = write_csv(tmp / "d.csv", noisy_sines(1), ["a", "b"])
    run, fp32 = exported(tmp, data, backbone=tiny_gpt2, layers=2)
    gpt2_int8 = str(tmp / "gpt2-int8.ofa")
    quantize_model_file(fp32, gpt2_int8, data, 32)
    student = str(tmp / "student")
    (tmp / "lp").mkdir()
    run_lp, _ = exported(tmp / "lp", data, backbone=tiny_gpt2, layers=2, linear_path="ridge")
    distill(run_lp, data, student, StudentConfig(width=32, layers=2, heads=4, ff=64),
            TrainConfig(epochs=1, progress=False), log=lambda s: None, teacher_backbone=tiny_gpt2)
    student_int8 = str(tmp / "student-int8.ofa")
    export(student, student_int8, int8=True, data=data, calibration_windows=32)
    assert json.loads(read_model_file(student_int8, schemes=("int8",))[1]["config"])["linear_path"] == 1
    return {"data": data, "fp32": fp32, "gpt2": gpt2_int8, "student": student_int8, "tmp": tmp}


def test_header_holds_the_planner_arena_and_exact_goldens(models):
    out = models["tmp"] / "hdr"
    info = emit(models["gpt2"], "cortex-m4", str(out), models["data"], golden=2)
    tensors, meta = read_model_file(models["gpt2"], schemes=("int8",))
    cfg = json.loads(meta["config"])
    text = (out / "ofa_model.h").read_text()
    arena = int(re.search(r"#define OFA_ARENA_BYTES (\d+)u", text).group(1))
    assert arena == info["arena_bytes"] == _engine.arena_bytes_int8_mcu(cfg, 1) < _engine.arena_bytes_int8(cfg, 1)
    assert "static const ofa_model_int8 ofa_firmware_model" in text
    golden = (out / "ofa_golden.h").read_text()
    assert "#define OFA_GOLDEN_COUNT 2" in golden
    # The stored bit patterns are the host engine's outputs for the stored (hex-exact) inputs.
    xs = re.search(r"ofa_golden_x\[2\]\[\d+\] = \{(.*?)\n\};", golden, re.S).group(1)
    x = np.array([float.fromhex(v.rstrip("f")) for v in re.findall(r"-?(?:0x[0-9a-f.]+p[+-]\d+|0\.0)f", xs)], np.float32)
    x = x.reshape(2, cfg["seq_len"], cfg["n_channels"])
    y = _engine.EngineInt8(cfg, tensors, isa="scalar").run(x)
    ys = re.search(r"ofa_golden_y_bits\[2\]\[\d+\] = \{(.*?)\n\};", golden, re.S).group(1)
    bits = np.array([int(v) for v in re.findall(r"\d+", ys)], np.uint64).astype(np.uint32)
    assert np.array_equal(bits, y.reshape(-1).view(np.uint32))


@pytest.mark.parametrize("kwargs,needle", [
    (dict(target_name="cortex-m3"), "unknown target 'cortex-m3'"),
    (dict(flash=40 * 1024), "does not fit cortex-m4: flash: needs"),
    (dict(ram=8 * 1024), "RAM: needs"),
])
def test_refusals_write_nothing(models, kwargs, needle):
    out = models["tmp"] / "refused"
    args = dict(model_path=models["gpt2"], target_name="cortex-m4", out_dir=str(out), data=models["data"]) | kwargs
    with pytest.raises(OfaError, match=re.escape(needle)):
        emit(**args)
    assert not out.exists()


def test_too_big_says_by_how_much_and_what_to_change(models):
    with pytest.raises(OfaError) as info:
        emit(models["gpt2"], "cortex-m4", str(models["tmp"] / "x"), models["data"], flash=40 * 1024)
    assert "over by" in str(info.value) and "--layers" in str(info.value) and "ofa distill" in str(info.value)


def test_float_model_is_refused_for_int8_only_target(models):
    with pytest.raises(OfaError, match="runs int8 models only"):
        emit(models["fp32"], "cortex-m4", str(models["tmp"] / "f"), models["data"])


def test_unwritable_output_directory_keeps_old_headers(models, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OfaError, match="cannot write to output directory"):
        emit(models["gpt2"], "cortex-m4", str(blocker / "sub"), models["data"])
    # A write that fails part-way (disk full on the second header) leaves the previous pair intact
    # and no temporary files behind.
    out = tmp_path / "hdr"
    emit(models["gpt2"], "cortex-m4", str(out), models["data"])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import builtins

    import ofa.fileio

    calls = []

    def failing_open(path, mode="r", *args, **kwargs):  # the second header's temp file: disk full
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return builtins.open(path, mode, *args, **kwargs)

    monkeypatch.setattr(ofa.fileio, "open", failing_open, raising=False)
    with pytest.raises(OfaError, match="No space left on device"):
        emit(models["student"], "cortex-m4", str(out), models["data"])
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_cli_exit_status_and_one_line_error(models, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    bad = subprocess.run([sys.executable, EMIT, models["fp32"], "--target", "cortex-m4", "--data", models["data"],
                          "-o", str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "int8 models only" in bad.stderr
    good = subprocess.run([sys.executable, EMIT, models["gpt2"], "--target", "cortex-m55", "--data", models["data"],
                           "-o", str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "o" / "ofa_model.h").exists() and (tmp_path / "o" / "ofa_golden.h").exists()


# ---- on QEMU ------------------------------------------------------------------------------------

def need_toolchain():
    missing = toolchain_missing()
    if missing:
        if os.environ.get("OFA_REQUIRE_FIRMWARE") == "1":
            pytest.fail(f"OFA_REQUIRE_FIRMWARE=1 but {', '.join(missing)} not installed")
        pytest.skip(f"{', '.join(missing)} not installed")


with open(os.path.join(FIRMWARE, "instruction_budget.json")) as _f:
    INSTRUCTION_BUDGET = json.load(_f)["budgets"]


@pytest.mark.parametrize("target,which", [("cortex-m4", "student"), ("cortex-m7", "student"),
                                          ("cortex-m33", "student"), ("cortex-m33-nodsp", "student"),
                                          ("cortex-m55", "gpt2"), ("cortex-m55", "student")])
def test_demo_on_qemu_is_bit_exact(models, tmp_path, target, which):
    need_toolchain()
    hdr = tmp_path / "hdr"
    emit(models[which], target, str(hdr), models["data"], golden=3)
    elf = build(FIRMWARE, target, str(hdr), str(tmp_path / "build"))
    status, report, fields = run_qemu(target, elf, timeout=300)
    assert status == 0, report
    assert "PASS: 3/3 windows bit-exact" in report
    assert fields["pass"] == "1" and fields["mismatches"] == "0"
    assert 0 < int(fields["arena_used"]) <= int(fields["arena_planned"])
    assert int(fields["instructions"]) > 0
    assert abs(int(fields["counter_check"]) - 1_000_000) <= 64  # the counter measures instructions
    budget = INSTRUCTION_BUDGET.get(f"{target}/{which}")
    if budget:  # an instruction-count regression on the MCU fails here, not in a benchmark nobody runs
        limit = budget["instructions_per_inference"] * (1 + budget["allowed_rise"])
        assert int(fields["instructions"]) <= limit, (
            f"{target} {which}: {int(fields['instructions']):,} instructions per inference, budget "
            f"{budget['instructions_per_inference']:,} + {budget['allowed_rise']:.0%} (firmware/instruction_budget.json)")
    sizes = elf_sizes(elf)
    assert sizes["static_ram_bytes"] >= int(fields["arena_planned"])
    nm = subprocess.run(["arm-none-eabi-nm", elf], capture_output=True, text=True, check=True).stdout
    assert not re.search(r"\b(malloc|_malloc_r|_sbrk)\b", nm), "the firmware must not link a heap"


def test_demo_on_qemu_fails_on_one_flipped_output_bit(models, tmp_path):
    """The comparison can fail: flip the lowest bit of one golden output and the demo exits 1."""
    need_toolchain()
    hdr = tmp_path / "hdr"
    emit(models["student"], "cortex-m4", str(hdr), models["data"], golden=1)
    golden = (hdr / "ofa_golden.h").read_text()
    body_at = golden.index("ofa_golden_y_bits")
    first = re.compile(r"\{\s*\n\s*(\d+)").search(golden, body_at)
    value = int(first.group(1)) ^ 1
    (hdr / "ofa_golden.h").write_text(golden[:first.start(1)] + str(value) + golden[first.end(1):])
    elf = build(FIRMWARE, "cortex-m4", str(hdr), str(tmp_path / "build"))
    status, report, fields = run_qemu("cortex-m4", elf, timeout=300)
    assert status == 1, report
    assert "DIFFERS in 1 outputs" in report and fields["mismatches"] == "1"


def test_model_over_the_link_budget_fails_to_link(models, tmp_path):
    """The linker enforces the budget the header names, independently of the emitter's estimate."""
    need_toolchain()
    hdr = tmp_path / "hdr"
    emit(models["student"], "cortex-m4", str(hdr), models["data"])
    text = (hdr / "ofa_model.h").read_text()
    (hdr / "ofa_model.h").write_text(re.sub(r"#define OFA_TARGET_FLASH_BYTES \d+u",
                                            "#define OFA_TARGET_FLASH_BYTES 8192u", text))
    with pytest.raises(OfaError, match="firmware build failed"):
        build(FIRMWARE, "cortex-m4", str(hdr), str(tmp_path / "build"))


# ---- Anomaly mode: a detector's stream, one score per sample (firmware/main_anomaly.c) ----------------

def nab_or_synthetic(source: str, rows: int = 600) -> tuple[str, np.ndarray]:
    """A timestamp,value CSV of `rows` rows: the head of a NAB series, or a noisy sine with a spike."""
    from ofa.anomaly.files import read_stream

    if source == "nab":
        from conftest import shared_file

        path = shared_file("NAB/data/realKnownCause/nyc_taxi.csv")
        return path, read_stream(path)["values"][:rows]
    t = np.arange(rows)
    values = 10 + np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).uniform(-1, 1, rows)
    values[500] += 4.0
    return "", values


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    """Per source, a detector's int8 model file (a tiny student, trained on the first 400 rows) and its CSV."""
    import pandas as pd
    import torch
    from ofa.anomaly.detector import DetectorConfig
    from ofa.anomaly.device import export_detector
    from ofa.anomaly.forecaster import ForecasterConfig

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("anomaly")
    cfg = DetectorConfig(train_rows=400, retrain="none", stride=1, memory=400,
                         forecaster=ForecasterConfig(width=16, heads=2, ff=32, lookbacks=(16, 32), horizon=4,
                                                     patch=8, stride=4, epochs=2))
    made = {}

    def get(source):
        if source not in made:
            path, values = nab_or_synthetic(source)
            if not path:
                path = str(tmp / "synthetic.csv")
                pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=len(values), freq="5min"),
                              "value": values}).to_csv(path, index=False)
            model = str(tmp / f"{source}-int8.ofa")
            export_detector(values, model, cfg)
            made[source] = (model, path)
        return made[source]
    return get


@pytest.mark.parametrize("target,source", [("cortex-m4", "synthetic"), ("cortex-m4", "nab"),
                                           ("cortex-m55", "synthetic")])
def test_anomaly_mode_on_qemu_is_bit_exact(detectors, tmp_path, target, source):
    """The firmware streams 600 samples through ofa_stream in its arena: every score equals the host's
    (the M4 in soft-float double, the M55 with its double FPU and its own compiler workaround)."""
    need_toolchain()
    model, csv = detectors(source)
    hdr = tmp_path / "hdr"
    info = emit(model, target, str(hdr), anomaly=csv, rows=600)
    assert info["files"] == ["ofa_model.h", "ofa_stream.h"] and not (hdr / "ofa_golden.h").exists()
    elf = build(FIRMWARE, target, str(hdr), str(tmp_path / "build"), mode="anomaly")
    status, report, fields = run_qemu(target, elf, timeout=300)
    assert status == 0, report
    assert "PASS: 600 scores bit-exact with the host" in report
    assert fields["mode"] == "anomaly" and fields["mismatches"] == "0" and fields["scored_rows"] == "200"
    seq_len = json.loads(read_model_file(model, schemes=("int8",))[1]["config"])["seq_len"]
    assert int(fields["forecasts"]) == 600 - seq_len  # stride 1: one per sample from seq_len on
    assert 0 < int(fields["per_forecast"]) < int(fields["per_sample"]) * 2
    assert abs(int(fields["counter_check"]) - 1_000_000) <= 64
    budget = INSTRUCTION_BUDGET.get(f"{target}/anomaly")
    if budget and source == "synthetic":  # a slower scorer or forecast on the MCU fails here
        for key in ("scorer_per_sample", "per_forecast"):
            assert int(fields[key]) <= budget[key] * (1 + budget["allowed_rise"]), (
                f"{target} anomaly {key}: {fields[key]} instructions, budget {budget[key]} "
                f"(+{budget['allowed_rise']:.0%}) in firmware/instruction_budget.json")


def test_anomaly_mode_on_qemu_fails_on_one_flipped_score_bit(detectors, tmp_path):
    need_toolchain()
    model, csv = detectors("synthetic")
    hdr = tmp_path / "hdr"
    emit(model, "cortex-m4", str(hdr), anomaly=csv, rows=600)
    text = (hdr / "ofa_stream.h").read_text()
    # Row 500's score (the spike's): flip its lowest mantissa bit.
    bits = re.findall(r"UINT64_C\(0x([0-9a-f]{16})\)", text)
    assert len(bits) == 600 and int(bits[500], 16) != 0
    old = f"UINT64_C(0x{bits[500]})"
    new = f"UINT64_C(0x{int(bits[500], 16) ^ 1:016x})"
    pos = [m.start() for m in re.finditer(r"UINT64_C\(0x", text)][500]  # the 501st literal (values repeat)
    (hdr / "ofa_stream.h").write_text(text[:pos] + new + text[pos + len(old):])
    elf = build(FIRMWARE, "cortex-m4", str(hdr), str(tmp_path / "build"), mode="anomaly")
    status, report, fields = run_qemu("cortex-m4", elf, timeout=300)
    assert status == 1, report
    assert "FAIL: 1 scores differ from the host's, the first at row 500" in report and fields["mismatches"] == "1"


def test_anomaly_emit_refusals(detectors, models, tmp_path):
    model, csv = detectors("synthetic")
    with pytest.raises(OfaError, match="not a detector's model file"):
        emit(models["student"], "cortex-m4", str(tmp_path / "a"), anomaly=csv)
    with pytest.raises(OfaError, match="--rows must be between 1 and the series' 600 rows"):
        emit(model, "cortex-m4", str(tmp_path / "b"), anomaly=csv, rows=601)
    with pytest.raises(OfaError, match="--data is required"):
        emit(model, "cortex-m4", str(tmp_path / "c"))
    assert not any((tmp_path / d).exists() for d in "abc")
    proc = subprocess.run([sys.executable, EMIT, model, "--target", "cortex-m4", "--anomaly", csv, "--data", csv,
                           "-o", str(tmp_path / "d")], capture_output=True, text=True)
    assert proc.returncode == 2 and "not both" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
