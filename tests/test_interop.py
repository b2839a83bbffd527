"""`ofa export --format onnx|tflite`: the same merged model for ONNX Runtime and LiteRT, checked against the
ofa engine on the test split's windows. Skips where the optional converters (pip install '.[bench]') are absent.

Tolerances: fp32 forms within 1e-4 of the engine's output (float rounding of a different op order);
int8 forms (dynamic-range weights, not ofa's integer scheme) within 10% relative RMS of the fp32 engine.
"""
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import ofa
import ofa.cli
from ofa.data import load_csv, make_splits
from ofa.errors import OfaError

HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
HAVE_LITERT = (importlib.util.find_spec("ai_edge_litert") is not None
               and importlib.util.find_spec("litert_torch") is not None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from conftest import noisy_sines, write_csv
    from ofa.training.loop import TrainConfig, train
    from ofa.training.model import ModelConfig

    tmp = tmp_path_factory.mktemp("interop")
    data = write_csv(tmp / "d.csv", noisy_sines(0, rows=900), ["a", "b"])
    out = tmp / "run"
    train(data, str(out), ModelConfig(layers=1, seq_len=64, horizon=16),
          TrainConfig(epochs=1, batch_size=64, progress=False), log=lambda s: None)
    splits = make_splits(load_csv(data), 64, 16)
    x, _ = splits.test.windows()
    raw = splits.scaler.inverse(x[:8].reshape(-1, 2)).reshape(8, 64, 2).astype(np.float32)
    ofa.cli.main(["export", "--checkpoint", str(out), "--out", str(tmp / "m.ofa")])
    return {"dir": tmp, "ckpt": str(out), "data": data, "x": raw, "want": ofa.infer(str(tmp / "m.ofa"), raw)}


def rel_rms(got, want):
    return float(np.sqrt(np.mean((got - want) ** 2)) / np.sqrt(np.mean((want - want.mean()) ** 2)))


@pytest.mark.skipif(not HAVE_ORT, reason="onnx / onnxruntime not installed (pip install '.[bench]')")
@pytest.mark.parametrize("int8_args", [[], ["--int8"], ["--int8", "--int8-form", "static", "--data"]])
def test_onnx_matches_the_engine(run, int8_args):
    import onnxruntime as ort

    out = run["dir"] / f"m{len(int8_args)}.onnx"
    args = int8_args + ([run["data"]] if "--data" in int8_args else [])
    assert ofa.cli.main(["export", "--checkpoint", run["ckpt"], "--format", "onnx", "--out", str(out), *args]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": run["x"]})[0]
    assert got.shape == run["want"].shape
    if int8_args:
        assert rel_rms(got, run["want"]) < 0.10
    else:
        np.testing.assert_allclose(got, run["want"], atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not HAVE_LITERT, reason="ai-edge-litert / litert-torch not installed (pip install '.[bench]')")
@pytest.mark.parametrize("int8", [False, True])
def test_tflite_matches_the_engine(run, int8):
    from ai_edge_litert.interpreter import Interpreter

    out = run["dir"] / f"m{int(int8)}.tflite"
    batch = len(run["x"])
    assert ofa.cli.main(["export", "--checkpoint", run["ckpt"], "--format", "tflite", "--batch", str(batch),
                         "--out", str(out)] + (["--int8"] if int8 else [])) == 0
    interpreter = Interpreter(model_path=str(out), num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], run["x"])
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    if int8:
        assert rel_rms(got, run["want"]) < 0.10
    else:
        np.testing.assert_allclose(got, run["want"], atol=1e-4, rtol=1e-4)


def test_export_format_errors_are_one_line_exit_2(run, tmp_path):
    base = [sys.executable, "-m", "ofa", "export", "--checkpoint", run["ckpt"]]
    bad = subprocess.run(base + ["--format", "pb", "--out", str(tmp_path / "m.pb")], capture_output=True, text=True)
    assert bad.returncode == 2 and "--format" in bad.stderr
    from ofa.export.interop import export_for_runtime

    with pytest.raises(OfaError, match="static int8 ONNX needs calibration data"):
        export_for_runtime(run["ckpt"], str(tmp_path / "m.onnx"), "onnx", int8=True, int8_form="static")
    with pytest.raises(OfaError, match="--out must name a file"):
        export_for_runtime(run["ckpt"], str(tmp_path) + "/", "onnx")
    assert not list(tmp_path.iterdir())
