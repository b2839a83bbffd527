"""Export merges the adapters exactly: the numpy reference forward of the file equals the PyTorch model."""
import json

import numpy as np
import pytest
import torch
from engine_reference import reference_forward
from safetensors import safe_open
from safetensors.numpy import load_file

from ofa.training import checkpoint
from ofa.data import load_csv, make_splits
from ofa.errors import OfaError
from ofa.evaluation import predict_windows_torch
from ofa.export.merge import checksum, export
from ofa.training.model import ModelConfig
from ofa.training.loop import TrainConfig, train


def trained(tmp_path, data, backbone, **model):
    out = tmp_path / "run"
    mc = ModelConfig(backbone=backbone, layers=2, seq_len=64, horizon=16, **model)
    train(data, str(out), mc, TrainConfig(epochs=1, batch_size=64, progress=False), log=lambda s: None)
    # make the adapters non-trivial everywhere (B of the position LoRA starts random, A at zero)
    model_, _ = checkpoint.load(str(out), backbone=backbone)
    with torch.no_grad():
        for name, p in model_.named_parameters():
            if "lora_" in name:
                p.add_(0.05 * torch.randn_like(p))
    checkpoint.save(str(out), model_, {k: v for k, v in checkpoint.read_meta(str(out)).items() if k != "format"})
    return str(out)


def read_model(path):
    with safe_open(path, "np") as f:
        meta = f.metadata()
    return json.loads(meta["config"]), load_file(path), meta


@pytest.mark.parametrize("backbone,head_base,train_mode", [
    ("minilm", "zero", "lora+input"), ("minilm", "random", "lora"), ("gpt2", "zero", "lora+input"),
    ("gpt2", "random", "lora")])
def test_export_matches_pytorch(tmp_path, small_csv, tiny_gpt2, backbone, head_base, train_mode):
    backbone = tiny_gpt2 if backbone == "gpt2" else backbone
    run = trained(tmp_path, small_csv, backbone, head_base=head_base, train=train_mode)
    info = export(run, str(tmp_path / "m.ofa"), backbone=backbone)
    config, tensors, meta = read_model(str(tmp_path / "m.ofa"))
    assert meta["format"] == "ofa-model" and meta["format_version"] == "1"
    assert meta["checksum"] == checksum(tensors, meta)
    assert (config["head_rank"] > 0) == (head_base == "zero" and "factored" in info["head"])
    model, _ = checkpoint.load(run, backbone=backbone)
    splits = make_splits(load_csv(small_csv), 64, 16)
    x, _ = splits.test.windows()
    x = x[:6]
    torch_pred = predict_windows_torch(model, x)
    raw = splits.scaler.inverse(x.reshape(-1, 2)).reshape(x.shape)
    ref = reference_forward(config, tensors, raw)
    ref_scaled = splits.scaler.transform(ref.reshape(-1, 2)).reshape(ref.shape)
    np.testing.assert_allclose(ref_scaled, torch_pred, atol=2e-5)
    # The calibration forward (float32, batched) computes the same graph (docs/architecture.md).
    from ofa.reference.float_forward import FloatForward

    calib = FloatForward(config, tensors).run(raw)
    np.testing.assert_allclose(splits.scaler.transform(calib.reshape(-1, 2)).reshape(calib.shape), torch_pred,
                               atol=1e-4)


def test_export_refuses_bad_checkpoint_and_leaves_no_file(tmp_path):
    with pytest.raises(OfaError, match="not found"):
        export(str(tmp_path / "none"), str(tmp_path / "m.ofa"))
    assert not (tmp_path / "m.ofa").exists()
