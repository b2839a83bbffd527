"""`ofa forecast` and `ofa info`: the future after the last row, with dates and names; what a model file is."""
import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import noisy_sines, shared_file, write_csv
from test_infer import exported

import ofa
from ofa.cli import main
from ofa.data import n_patches
from ofa.export.merge import quantize_model_file

SEQ_LEN, HORIZON = 64, 16


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_gpt2):
    """A tiny GPT-2-layout model on an hourly 2-channel CSV: its checkpoint, fp32 and int8 files, and an
    int8 student distilled from it."""
    from ofa.training.distill import StudentConfig, distill
    from ofa.export.merge import export
    from ofa.training.loop import TrainConfig

    tmp = tmp_path_factory.mktemp("forecast")
    data = write_csv(tmp / "d.csv", noisy_sines(3), ["a", "b"])
    run, fp32 = exported(tmp, data, backbone=tiny_gpt2, layers=1, seq_len=SEQ_LEN, horizon=HORIZON)
    int8 = str(tmp / "m-int8.ofa")
    quantize_model_file(fp32, int8, data, 32)
    student = str(tmp / "student")
    distill(run, data, student, StudentConfig(width=32, layers=1, heads=4, ff=64),
            TrainConfig(epochs=1, progress=False, max_train_windows=40), log=lambda s: None,
            teacher_backbone=tiny_gpt2)
    student_int8 = str(tmp / "student-int8.ofa")
    export(student, student_int8, int8=True, data=data, calibration_windows=32)
    return {"data": data, "run": run, "fp32": fp32, "int8": int8, "student": student_int8, "tmp": tmp,
            "backbone": tiny_gpt2}


def cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def last_rows(path, n=SEQ_LEN, columns=("a", "b")):
    frame = pd.read_csv(path)
    return frame[list(columns)].to_numpy(np.float32)[-n:], pd.to_datetime(frame.iloc[:, 0])


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_forecast_continues_the_dates_with_the_names_and_the_engine_values(models, capsys, kind):
    out = models["tmp"] / f"f-{kind}.csv"
    code, stdout, err = cli(capsys, "forecast", "--model", models[kind], "--data", models["data"],
                            "--out", str(out))
    assert code == 0, err
    got = pd.read_csv(out)
    assert list(got.columns) == ["date", "a", "b"] and len(got) == HORIZON
    x, dates = last_rows(models["data"])
    want_dates = pd.date_range(dates.iloc[-1], periods=HORIZON + 1, freq="h")[1:]
    assert (pd.to_datetime(got["date"]) == want_dates).all()
    want = ofa.infer(ofa.load(models[kind]), x)
    np.testing.assert_allclose(got[["a", "b"]].to_numpy(np.float32), want, rtol=1e-6, atol=1e-6)
    assert "16 rows x 2 channel(s)" in stdout and "1 hour" in stdout


def test_forecast_matches_channels_by_name_and_refuses_a_missing_one(models, capsys, tmp_path):
    frame = pd.read_csv(models["data"])
    shuffled = tmp_path / "shuffled.csv"
    frame[["date", "b", "a"]].assign(extra=1.0).to_csv(shuffled, index=False)
    by_name = ofa.forecast(models["fp32"], str(shuffled))
    plain = ofa.forecast(models["fp32"], models["data"])
    pd.testing.assert_frame_equal(by_name["frame"], plain["frame"])
    assert by_name["ignored_columns"] == ["extra"]
    lacking = tmp_path / "lacking.csv"
    frame[["date", "a"]].to_csv(lacking, index=False)
    out = tmp_path / "never.csv"
    code, _, err = cli(capsys, "forecast", "--model", models["fp32"], "--data", str(lacking), "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1 and "lacks the model's channel(s) 'b'" in err
    assert sorted(os.listdir(tmp_path)) == ["lacking.csv", "shuffled.csv"]  # no output, no temp file


def test_forecast_from_a_checkpoint_agrees_with_the_file(models):
    torch_run = ofa.forecast(models["run"], models["data"], backbone=models["backbone"])
    engine = ofa.forecast(models["fp32"], models["data"])
    assert torch_run["model"].startswith("checkpoint")
    a, b = torch_run["frame"][["a", "b"]].to_numpy(), engine["frame"][["a", "b"]].to_numpy()
    np.testing.assert_allclose(a, b, atol=1e-4 * float(np.abs(b).max()))
    assert (torch_run["frame"]["date"] == engine["frame"]["date"]).all()


def test_forecast_dates_irregular_absent_or_unsorted(models, tmp_path, capsys):
    frame = pd.read_csv(models["data"])
    dates = pd.to_datetime(frame["date"])
    irregular = frame.copy()
    irregular["date"] = (dates + pd.to_timedelta(np.where(np.arange(len(frame)) % 7 == 3, 10, 0), "min")).astype(str)
    path = tmp_path / "irregular.csv"
    irregular.to_csv(path, index=False)
    result = ofa.forecast(models["fp32"], str(path))
    assert "irregular" in result["note"] and "most common step, 1 hour" in result["note"]
    assert (pd.to_datetime(result["frame"]["date"]).diff().dropna() == pd.Timedelta("1h")).all()
    numbered = frame.assign(date=np.arange(len(frame)))
    path = tmp_path / "numbered.csv"
    numbered.to_csv(path, index=False)
    result = ofa.forecast(models["fp32"], str(path))
    assert list(result["frame"]["step"]) == list(range(1, HORIZON + 1))
    unsorted = frame.copy()
    unsorted.loc[len(frame) - 5, "date"] = unsorted.loc[len(frame) - 30, "date"]
    path = tmp_path / "unsorted.csv"
    unsorted.to_csv(path, index=False)
    code, _, err = cli(capsys, "forecast", "--model", models["fp32"], "--data", str(path),
                       "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "dates do not increase" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("content,needle", [
    ("date,a,b\n" + "".join(f"2020-01-01 {i % 24:02d}:00,1,2\n" for i in range(10)), "10 rows, the model reads the last 64"),
    ("date,a,b\n" + "".join(f"2020-01-{1 + i // 24:02d} {i % 24:02d}:00,1,{'nan' if i == 70 else 2}\n"
                            for i in range(80)), "column 'b' at line 72"),
])
def test_forecast_bad_input_is_one_line(models, tmp_path, capsys, content, needle):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, _, err = cli(capsys, "forecast", "--model", models["fp32"], "--data", str(path),
                       "--out", str(tmp_path / "x.csv"))
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.csv").exists()


def test_forecast_plot_is_written(models, tmp_path):
    png = tmp_path / "f.png"
    ofa.forecast(models["int8"], models["data"], out=str(tmp_path / "f.csv"), plot=str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_forecast_etth1_continues_its_hourly_dates(tmp_path):
    """ETTh1 ends at 2018-06-26 19:00: the forecast starts an hour later, with ETTh1's column names."""
    data = shared_file("ETT/ETTh1.csv")
    _, path = exported(tmp_path, data, layers=1, seq_len=96, horizon=24, perturb=False)
    result = ofa.forecast(path, data, out=str(tmp_path / "f.csv"))
    got = pd.read_csv(tmp_path / "f.csv")
    assert list(got.columns) == ["date", "HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert got["date"].iloc[0] == "2018-06-26 20:00:00" and got["date"].iloc[-1] == "2018-06-27 19:00:00"
    x, _ = last_rows(data, 96, got.columns[1:])
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(np.float32), ofa.infer(path, x), rtol=1e-6, atol=1e-6)
    assert result["frequency"] == "1 hour"


def test_info_describes_fp32_int8_and_student_files(models, capsys):
    texts = {}
    for kind in ("fp32", "int8", "student"):
        code, out, err = cli(capsys, "info", models[kind])
        assert code == 0, err
        texts[kind] = out
        code, out, _ = cli(capsys, "info", models[kind], "--json")
        d = json.loads(out)
        assert d["channels"] == ["a", "b"] and d["seq_len"] == SEQ_LEN and d["horizon"] == HORIZON
        assert d["patches"] == n_patches(SEQ_LEN, 16, 8) and d["training"]["dataset"] == "d"
        assert set(d["firmware"]) == {"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m33-nodsp", "cortex-m55"}
    assert "fp32" in texts["fp32"] and "gpt2 layout" in texts["fp32"] and "1 block(s)" in texts["fp32"]
    assert "firmware runs int8 model files" in texts["fp32"]
    assert "int8 per-channel weights" in texts["int8"] and "cortex-m4 fits" in texts["int8"]
    assert "student   of run" in texts["student"] and "bert layout" in texts["student"]
    assert "channels  2: a (mean" in texts["student"] and "best validation MSE" in texts["student"]


def test_info_refuses_a_damaged_file(models, tmp_path, capsys):
    bad = tmp_path / "bad.ofa"
    data = bytearray(open(models["int8"], "rb").read())
    data[-3] ^= 0xFF
    bad.write_bytes(bytes(data))
    code, _, err = cli(capsys, "info", str(bad))
    assert code == 2 and "checksum mismatch" in err


def test_eval_model_refuses_other_channels(models, tmp_path, capsys):
    frame = pd.read_csv(models["data"])
    renamed = tmp_path / "renamed.csv"
    frame.rename(columns={"a": "x", "b": "y"}).to_csv(renamed, index=False)
    code, _, err = cli(capsys, "eval", "--model", models["fp32"], "--data", str(renamed))
    assert code == 2 and "differ from the model file's ['a', 'b']" in err and len(err.splitlines()) == 1


def test_inference_never_imports_torch(models, tmp_path):
    """The README's boundary: ofa.runtime (loading, inferring, forecasting from a model file, ofa info),
    the numpy references and header emission work where torch cannot be imported."""
    import subprocess
    import sys

    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
import numpy as np
import ofa
import ofa.reference.int8_reference, ofa.runtime.forecasting  # the runtime package and the numpy oracles
from ofa.runtime.info import describe
from ofa.firmware import emit
model = ofa.runtime.load({models['int8']!r})
x = np.ones((model.seq_len, model.n_channels), np.float32)
assert ofa.infer(model, x).shape == (model.horizon, model.n_channels)
assert len(ofa.forecast({models['fp32']!r}, {models['data']!r})["frame"]) == model.horizon
assert describe({models['student']!r})["scheme"] == "int8"
emit({models['student']!r}, "cortex-m4", {str(tmp_path / 'hdr')!r}, {models['data']!r}, golden=1)
assert "torch" not in sys.modules
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
