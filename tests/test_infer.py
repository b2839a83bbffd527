"""The C++ engine through ofa.load / ofa.infer: parity with PyTorch, shapes, and bad input."""

import numpy as np
import pytest
import torch
from conftest import shared_file

import ofa
from ofa.training import checkpoint
from ofa.data import load_csv, make_splits
from ofa.errors import OfaError
from ofa.evaluation import predict_windows_torch
from ofa.export.merge import export
from ofa.training.model import ModelConfig
from ofa.training.loop import TrainConfig, train


def load_own(run):
    """checkpoint.load for a run this test wrote: its backbone (a temp-dir GPT-2) is trusted explicitly."""
    return checkpoint.load(run, backbone=checkpoint.read_meta(run)["model"]["backbone"])


def perturb_adapters(run):
    """Training one short epoch leaves some adapters near zero; make every update count."""
    model, _ = load_own(run)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(0.05 * torch.randn_like(p))
    checkpoint.save(run, model, {k: v for k, v in checkpoint.read_meta(run).items() if k != "format"})


def exported(tmp_path, data, backbone="minilm", layers=2, seq_len=64, horizon=16, perturb=True, **model):
    run = str(tmp_path / "run")
    mc = ModelConfig(backbone=backbone, layers=layers, seq_len=seq_len, horizon=horizon, **model)
    tc = TrainConfig(epochs=1, batch_size=64, progress=False, max_train_windows=60, max_val_series=256)
    train(data, run, mc, tc, log=lambda s: None)
    if perturb:
        perturb_adapters(run)
    export(run, str(tmp_path / "m.ofa"), backbone=backbone)
    return run, str(tmp_path / "m.ofa")


def parity(run, path, data, n_windows=None):
    """max |engine - torch| over test windows, in normalised (scaled) units."""
    model, meta = load_own(run)
    splits = make_splits(load_csv(data, meta["data"].get("target")), meta["model"]["seq_len"],
                         meta["model"]["horizon"])
    x, _ = splits.test.windows()
    if n_windows:
        x = x[np.linspace(0, len(x) - 1, n_windows).astype(int)]
    want = predict_windows_torch(model, x)
    raw = splits.scaler.inverse(x.reshape(-1, x.shape[2])).reshape(x.shape)
    got = ofa.infer(path, raw)
    got_scaled = splits.scaler.transform(got.reshape(-1, x.shape[2])).reshape(got.shape)
    return float(np.abs(got_scaled - want).max())


@pytest.mark.parametrize("head_base,mode", [("zero", "lora+input"), ("random", "lora")])
def test_parity_minilm(tmp_path, small_csv, head_base, mode):
    run, path = exported(tmp_path, small_csv, head_base=head_base, train=mode)
    assert parity(run, path, small_csv) <= 1e-4


@pytest.mark.parametrize("head_base", ["zero", "random"])
def test_parity_tiny_gpt2(tmp_path, small_csv, tiny_gpt2, head_base):
    run, path = exported(tmp_path, small_csv, backbone=tiny_gpt2, layers=3, head_base=head_base)
    assert parity(run, path, small_csv) <= 1e-4


def test_parity_etth1_test_slice(tmp_path):
    """The real backbone (6 MiniLM blocks) at the published lengths, on a slice of the ETTh1 test split."""
    data = shared_file("ETT/ETTh1.csv")
    run, path = exported(tmp_path, data, layers=6, seq_len=336, horizon=96, perturb=False)
    assert parity(run, path, data, n_windows=24) <= 1e-4


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_gpt2):
    from conftest import sines, write_csv

    tmp = tmp_path_factory.mktemp("infer")
    data = write_csv(tmp / "d.csv", sines(), ["a", "b"])
    _, path = exported(tmp, data, backbone=tiny_gpt2, layers=1)
    return path


def test_shapes(model_file):
    model = ofa.load(model_file)
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((5, 64, 2)).astype(np.float32)
    y = ofa.infer(model, batch)
    assert y.shape == (5, 16, 2) and y.dtype == np.float32
    np.testing.assert_array_equal(ofa.infer(model, batch[2]), y[2])
    np.testing.assert_array_equal(ofa.infer(model_file, batch[2]), y[2])
    with pytest.raises(OfaError, match="1-channel"):
        ofa.infer(model, batch[0, :, 0])


@pytest.mark.parametrize("x,needle", [
    (np.zeros((64, 2), np.float64), "float32"),
    (np.zeros((63, 2), np.float32), "needs"),
    (np.zeros((64, 3), np.float32), "needs"),
    (np.zeros((1, 1, 64, 2), np.float32), "dimensions"),
    ([[0.0] * 2] * 64, "numpy"),
])
def test_bad_input(model_file, x, needle):
    with pytest.raises(OfaError, match=needle):
        ofa.infer(model_file, x)


def test_non_finite_input(model_file):
    x = np.zeros((64, 2), np.float32)
    x[10, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ofa.infer(model_file, x)


def test_unknown_version_and_missing_file(tmp_path, model_file):
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    from ofa.modelfile import checksum

    with pytest.raises(OfaError, match="not found"):
        ofa.load(str(tmp_path / "nope.ofa"))
    tensors = load_file(model_file)
    with safe_open(model_file, "np") as f:
        meta = f.metadata()
    meta["format_version"] = "99"
    meta["checksum"] = checksum(tensors, meta)
    save_file(tensors, str(tmp_path / "v99.ofa"), metadata=meta)
    with pytest.raises(OfaError, match="unknown format version 99"):
        ofa.load(str(tmp_path / "v99.ofa"))


def test_truncations_and_bit_flips_are_clean_errors(tmp_path, model_file):
    """Random truncations and single-bit flips anywhere in a real model file: a ValueError, never a crash."""
    blob = open(model_file, "rb").read()
    rng = np.random.default_rng(7)
    header_len = int.from_bytes(blob[:8], "little") + 8
    cuts = list(rng.integers(0, len(blob), 30)) + [0, 7, 8, header_len - 1, header_len, len(blob) - 1]
    flips = list(rng.integers(0, header_len, 40)) + list(rng.integers(header_len, len(blob), 40))
    cases = [("cut", c) for c in cuts] + [("flip", f) for f in flips]
    for kind, where in cases:
        data = bytearray(blob[:where]) if kind == "cut" else bytearray(blob)
        if kind == "flip":
            data[where] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "bad.ofa"
        path.write_bytes(bytes(data))
        with pytest.raises(ValueError):
            ofa.load(str(path))
