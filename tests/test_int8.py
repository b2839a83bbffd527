"""int8 post-training quantisation: the numpy reference equals the C++ engine bit for bit (every ISA),
accuracy stays near fp32, the CLI exports and scores int8 files, and bad input is refused by name."""
import json
import os

import numpy as np
import pytest
from conftest import shared_file
from test_infer import exported

import ofa
from ofa import _engine
from ofa.cli import main
from ofa.data import load_csv, make_splits
from ofa.errors import OfaError
from ofa.export.merge import quantize_model_file
from ofa.reference.int8_reference import Int8Forward
from ofa.modelfile import checksum, read_model_file


def int8_file(tmp_path, fp32_path, data, windows=32):
    out = str(tmp_path / "m8.ofa")
    quantize_model_file(fp32_path, out, data, windows)
    return out


def windows_of(path, data, n_windows=None):
    """Test windows of `data` in data units, as the engine reads them."""
    tensors, meta = read_model_file(path, schemes=("fp32", "int8"))
    cfg = json.loads(meta["config"])
    splits = make_splits(load_csv(data, json.loads(meta["target"])), cfg["seq_len"], cfg["horizon"])
    x, _ = splits.test.windows()
    if n_windows:
        x = x[np.linspace(0, len(x) - 1, n_windows).astype(int)]
    return np.ascontiguousarray(splits.scaler.inverse(x.reshape(-1, x.shape[2])).reshape(x.shape), np.float32)


def assert_bit_exact(path, x):
    tensors, meta = read_model_file(path, schemes=("int8",))
    cfg = json.loads(meta["config"])
    want = Int8Forward(cfg, tensors).run(x)
    for isa in _engine.available_int8_isas():
        got = _engine.EngineInt8(cfg, tensors, isa=isa, tile_series=5).run(x)
        assert np.array_equal(got.view(np.int32), want.view(np.int32)), isa
    return want


def relative_error(a, b):
    return float(np.abs(a - b).mean() / np.abs(b - b.mean()).mean())


@pytest.mark.parametrize("head_base,mode", [("zero", "lora+input"), ("random", "lora")])
def test_bert_layout_bit_exact_and_close(tmp_path, small_csv, head_base, mode):
    _, path = exported(tmp_path, small_csv, head_base=head_base, train=mode)
    path8 = int8_file(tmp_path, path, small_csv)
    x = windows_of(path8, small_csv)
    y8 = assert_bit_exact(path8, x)
    assert relative_error(y8, ofa.load(path).run(x)) < 0.1


@pytest.mark.parametrize("head_base", ["zero", "random"])
def test_gpt2_layout_bit_exact_and_close(tmp_path, small_csv, tiny_gpt2, head_base):
    _, path = exported(tmp_path, small_csv, backbone=tiny_gpt2, layers=3, head_base=head_base)
    path8 = int8_file(tmp_path, path, small_csv)
    x = windows_of(path8, small_csv)
    y8 = assert_bit_exact(path8, x)
    assert relative_error(y8, ofa.load(path).run(x)) < 0.1


def test_etth1_test_slice_bit_exact(tmp_path):
    """The real backbone (6 MiniLM blocks) at the published lengths, on a slice of the ETTh1 test split."""
    data = shared_file("ETT/ETTh1.csv")
    _, path = exported(tmp_path, data, layers=6, seq_len=336, horizon=96, perturb=False)
    path8 = int8_file(tmp_path, path, data, windows=64)
    x = windows_of(path8, data, n_windows=12)
    y8 = assert_bit_exact(path8, x)
    assert relative_error(y8, ofa.load(path).run(x)) < 0.1


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_gpt2):
    from conftest import sines, write_csv

    tmp = tmp_path_factory.mktemp("int8")
    data = write_csv(tmp / "d.csv", sines(), ["a", "b"])
    run, path = exported(tmp, data, backbone=tiny_gpt2, layers=1)
    return run, path, int8_file(tmp, path, data), data, tmp


def test_cli_export_int8_and_eval_both(files, capsys, tiny_gpt2):
    run, path, _, data, tmp = files
    out8 = str(tmp / "cli8.ofa")
    assert main(["export", "--checkpoint", run, "--int8", "--calibration-windows", "16", "--data", data,
                 "--out", out8, "--backbone", tiny_gpt2]) == 0
    assert "int8" in capsys.readouterr().out
    scores = {}
    for name, model in (("fp32", path), ("int8", out8), ("ckpt", None)):
        js = str(tmp / f"{name}.json")
        args = ["eval", "--data", data, "--json", js] + (["--model", model] if model else ["--checkpoint", run, "--backbone", tiny_gpt2])
        assert main(args) == 0
        scores[name] = json.load(open(js))
    assert set(scores["int8"]) == set(scores["ckpt"]) == set(scores["fp32"])
    assert scores["fp32"]["mse"] == pytest.approx(scores["ckpt"]["mse"], rel=1e-4)
    assert scores["int8"]["mse"] == pytest.approx(scores["fp32"]["mse"], rel=0.1)
    assert ofa.load(out8).scheme == "int8" and ofa.load(path).scheme == "fp32"
    assert os.path.getsize(out8) < 0.5 * os.path.getsize(path)  # tiny model: headers weigh in


def test_calibration_data_with_nan_or_constant_channel(files):
    from ofa.export.quantize import quantize_arrays

    _, path, _, _, _ = files
    arrays, meta = read_model_file(path)
    x = np.random.default_rng(0).standard_normal((8, 64, 2)).astype(np.float32)
    bad = x.copy()
    bad[3, 5, 1] = np.nan
    with pytest.raises(OfaError, match="NaN"):
        quantize_arrays(arrays, meta, bad)
    const = x.copy()
    const[:, :, 0] = 4.0
    with pytest.raises(OfaError, match="channel a is constant"):
        quantize_arrays(arrays, meta, const)


def rewrite(path, out, edit):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(path, "np") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    edit(tensors)
    meta["checksum"] = checksum(tensors, meta)
    save_file(tensors, out, metadata=meta)
    return out


@pytest.mark.parametrize("name,value,needle", [
    ("patch.inv_scale", 0.0, "scale must be finite and > 0"),
    ("patch.inv_scale", -2.0, "scale must be finite and > 0"),
    ("patch.inv_scale", np.inf, "scale must be finite and > 0"),
    ("head.out_scale", np.nan, "head.out_scale: scales must be finite"),
    ("blocks.0.ff_in.requant", ("mult", 12345), "not a normalised Q31"),
    ("blocks.0.attn_qkv.requant", ("shift", 31), "shift out of range"),
    ("emb_ln.narrow", ("shift", -40), "shift out of range"),
])
def test_out_of_range_quantisation_is_named(files, tmp_path, name, value, needle):
    _, _, path8, _, _ = files

    def edit(t):
        if isinstance(value, tuple):
            row = {"mult": 0, "shift": 1}[value[0]]
            if name in t:
                t[name][row, 0] = value[1]
            else:  # tiny GPT-2: no embedding LN; its final LN has the same table
                t["final_ln.narrow"][row, 0] = value[1]
        else:
            t[name][...] = value

    bad = rewrite(path8, str(tmp_path / "bad.ofa"), edit)
    with pytest.raises(OfaError, match=needle):
        ofa.load(bad)


def test_engine_refuses_bad_scale_with_status(files):
    """The C API's own check (OFA_ERR_BAD_QUANT), reached without the Python loader."""
    _, _, path8, _, _ = files
    tensors, meta = read_model_file(path8, schemes=("int8",))
    cfg = json.loads(meta["config"])
    tensors = dict(tensors)
    tensors["patch.inv_scale"] = np.array([0.0], np.float32)
    with pytest.raises(ValueError, match="quantisation parameter out of range"):
        _engine.EngineInt8(cfg, tensors)
    table = tensors["blocks.0.ff_in.requant"].copy()
    table[1, 0] = 99
    tensors["patch.inv_scale"] = np.array([1.0], np.float32)
    tensors["blocks.0.ff_in.requant"] = table
    with pytest.raises(ValueError, match="quantisation parameter out of range"):
        _engine.EngineInt8(cfg, tensors)


def test_int8_file_on_fp32_only_paths(files, tmp_path):
    _, _, path8, data, _ = files
    with pytest.raises(OfaError, match="is an int8 model file; this needs fp32"):
        read_model_file(path8)
    with pytest.raises(OfaError, match="is an int8 model file"):
        quantize_model_file(path8, str(tmp_path / "again.ofa"), data)
    tensors, meta = read_model_file(path8, schemes=("int8",))
    with pytest.raises(ValueError, match="dtype must be float32"):
        _engine.Engine(json.loads(meta["config"]), tensors)


def test_unknown_scheme_is_refused(files, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    _, path, _, _, _ = files
    with safe_open(path, "np") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["dtype"] = "int4"
    meta["checksum"] = checksum(tensors, meta)
    save_file(tensors, str(tmp_path / "int4.ofa"), metadata=meta)
    with pytest.raises(OfaError, match="unknown weight scheme 'int4'"):
        ofa.load(str(tmp_path / "int4.ofa"))
