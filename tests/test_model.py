import math

import numpy as np
import pytest
import torch

from ofa.training import checkpoint
from ofa.errors import OfaError
from ofa.training.model import ModelConfig, base_of, build, parameter_counts
from ofa.training.loop import PRESETS, TrainConfig, train

SMALL = dict(seq_len=64, horizon=16)


def lora_modules(model):
    return [m for m in model.modules() if hasattr(m, "scaling") and isinstance(m.scaling, dict)]


def step(model, seq_len=64, horizon=16, channels=2, lr=1e-2):
    torch.manual_seed(1)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    x, y = torch.randn(4, seq_len, channels), torch.randn(4, horizon, channels)
    model.train()
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def test_paper_trainable_count_minilm_336_96():
    """16*(512+384) for the position-table LoRA + 16*(384*42 + 96) for the head LoRA."""
    model = build(ModelConfig(train="lora", head_base="random", seq_len=336))
    assert parameter_counts(model)["trainable_params"] == 16 * (512 + 384) + 16 * (384 * 42 + 96) == 273_920


def test_paper_preset_with_a_gpt2_layout_trains_546304_parameters(tmp_path):
    """The paper's count for ETTh1-96: GPT-2 (d 768, 1024 positions), 6 blocks, LoRA only:
    16*(1024+768) on the position table + 16*(768*42 + 96) on the head = 546,304."""
    from transformers import GPT2Config, GPT2Model

    from ofa.training.loop import PRESETS

    torch.manual_seed(0)
    GPT2Model(GPT2Config(n_layer=6, n_embd=768, n_head=12, n_positions=1024, vocab_size=8)).save_pretrained(tmp_path)
    preset = PRESETS["paper"]
    model = build(ModelConfig(backbone=str(tmp_path), horizon=96, **preset["model"]))
    assert parameter_counts(model)["trainable_params"] == 16 * (1024 + 768) + 16 * (768 * 42 + 96) == 546_304
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    assert preset["train"] == {"lr": 1e-4, "batch_size": 256}


def test_default_trainable_count_adds_the_input_layer():
    """The default's linear path is fitted in closed form and then fixed: it adds no trainable parameter."""
    model = build(ModelConfig(seq_len=336))
    assert parameter_counts(model)["trainable_params"] == 273_920 + 16 * 384 + 384


@pytest.mark.parametrize("mode", ["lora", "lora+input"])
def test_only_adapters_train_and_backbone_stays_bit_identical(mode):
    model = build(ModelConfig(layers=2, train=mode, **SMALL))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    allowed = ("lora_",) if mode == "lora" else ("lora_", "in_layer.modules_to_save")
    assert trainable and all(any(a in n for a in allowed) for n in trainable)
    backbone = base_of(model).backbone
    before = {k: v.clone() for k, v in backbone.state_dict().items() if "lora_" not in k}
    lora_before = {k: v.clone() for k, v in model.state_dict().items() if "lora_" in k}
    step(model)
    after = backbone.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in lora_before.items())


def test_config_defaults_are_the_default_preset():
    """ofa.train(data, out) with no configs must train what `ofa train` (default preset) trains."""
    preset = PRESETS["default"]
    for key, value in preset["model"].items():
        assert getattr(ModelConfig(), key) == value, key
    for key, value in preset["train"].items():
        assert getattr(TrainConfig(), key) == value, key


def test_rslora_scaling_and_gaussian_init():
    model = build(ModelConfig(layers=1, **SMALL))
    modules = lora_modules(model)
    assert len(modules) == 2
    for m in modules:
        assert m.scaling["default"] == pytest.approx(16 / math.sqrt(16))  # alpha / sqrt(r), not alpha / r
    head = base_of(model).out_layer
    a, b = head.lora_A["default"].weight, head.lora_B["default"].weight
    assert torch.count_nonzero(b) == 0
    assert a.std().item() == pytest.approx(1 / 16, rel=0.05)  # PEFT "gaussian": A ~ N(0, sigma = 1/r)
    assert abs(a.mean().item()) < 0.01


def test_zero_head_base_forecasts_zero_before_training():
    model = build(ModelConfig(layers=1, head_base="zero", **SMALL)).eval()
    x = torch.randn(2, 64, 3) * 5 + 7
    with torch.no_grad():
        y = model(x)
    # zero head output de-normalises to the instance mean
    torch.testing.assert_close(y, x.mean(dim=1, keepdim=True).expand(-1, 16, -1), rtol=1e-5, atol=1e-5)


def test_tiny_gpt2_from_a_directory_loads_and_trains(tiny_gpt2):
    model = build(ModelConfig(backbone=tiny_gpt2, layers=2, **SMALL))
    assert base_of(model).layout == "gpt2" and len(base_of(model).backbone.h) == 2
    assert any("wpe" in n for n, p in model.named_parameters() if p.requires_grad)
    loss = step(model)
    assert math.isfinite(loss)


def test_unknown_backbone_and_bad_layers():
    with pytest.raises(OfaError, match="unknown backbone"):
        build(ModelConfig(backbone="no-such-model", **SMALL))
    with pytest.raises(OfaError, match="--layers must be between 1 and 6"):
        build(ModelConfig(layers=9, **SMALL))


def test_too_many_patches_for_the_position_table(tiny_gpt2):
    with pytest.raises(OfaError, match="patches exceed"):
        build(ModelConfig(backbone=tiny_gpt2, seq_len=4096, horizon=16))


def quick(out, data, seed=0, epochs=1, backbone="minilm", **model):
    mc = ModelConfig(backbone=backbone, layers=1, **(SMALL | model))
    tc = TrainConfig(epochs=epochs, batch_size=64, seed=seed, progress=False)
    return train(data, str(out), mc, tc, log=lambda s: None)


@pytest.mark.parametrize("head_base", ["zero", "random"])
def test_checkpoint_roundtrip_reproduces_predictions(tmp_path, small_csv, head_base):
    from ofa.data import load_csv, make_splits
    from ofa.evaluation import predict_windows_torch

    quick(tmp_path / "run", small_csv, head_base=head_base, train="lora" if head_base == "random" else "lora+input")
    model, meta = checkpoint.load(str(tmp_path / "run"))
    splits = make_splits(load_csv(small_csv), 64, 16)
    x, _ = splits.test.windows()
    first = predict_windows_torch(model, x)
    again, _ = checkpoint.load(str(tmp_path / "run"))
    np.testing.assert_array_equal(first, predict_windows_torch(again, x))
    assert meta["sizes"]["trainable_params"] > 0 and meta["backbone_layout"] == "bert"


def test_same_seed_same_result(tmp_path, small_csv, tiny_gpt2):
    a = quick(tmp_path / "a", small_csv, seed=3, backbone=tiny_gpt2)
    b = quick(tmp_path / "b", small_csv, seed=3, backbone=tiny_gpt2)
    c = quick(tmp_path / "c", small_csv, seed=4, backbone=tiny_gpt2)
    timeless = lambda hist: [{k: v for k, v in h.items() if k not in ("seconds", "val_seconds")} for h in hist]  # noqa: E731
    assert timeless(a["history"]) == timeless(b["history"])
    assert a["best_val_mse"] == b["best_val_mse"]
    assert [h["val_mse"] for h in a["history"]] != [h["val_mse"] for h in c["history"]]  # the seed matters


def test_resume_continues_to_the_same_result(tmp_path, small_csv, tiny_gpt2):
    mc = lambda: ModelConfig(backbone=tiny_gpt2, layers=1, **SMALL)  # noqa: E731
    tc = TrainConfig(epochs=3, batch_size=64, seed=0, progress=False, patience=5)
    straight = train(small_csv, str(tmp_path / "straight"), mc(), tc, log=lambda s: None)

    def interrupt(entry):
        if entry["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_csv, str(tmp_path / "resumed"), mc(), tc, log=lambda s: None, on_epoch=interrupt)
    resumed = train(small_csv, str(tmp_path / "resumed"), mc(), tc, resume=True, log=lambda s: None)
    assert len(resumed["history"]) == 3
    assert [h["val_mse"] for h in resumed["history"]] == [h["val_mse"] for h in straight["history"]]
    with pytest.raises(OfaError, match="different settings"):
        train(small_csv, str(tmp_path / "resumed"), mc(), TrainConfig(epochs=4, progress=False), resume=True,
              log=lambda s: None)


def test_mismatched_or_broken_checkpoint(tmp_path, small_csv, tiny_gpt2):
    quick(tmp_path / "run", small_csv)
    with pytest.raises(OfaError, match="not found"):
        checkpoint.load(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(OfaError, match="no ofa.json"):
        checkpoint.load(str(tmp_path / "empty"))
    meta = (tmp_path / "run" / "ofa.json").read_text()
    (tmp_path / "run" / "ofa.json").write_text(meta[: len(meta) // 2])
    with pytest.raises(OfaError, match="unreadable"):
        checkpoint.load(str(tmp_path / "run"))
    quick(tmp_path / "run2", small_csv)
    import json
    name = json.loads((tmp_path / "run2" / "ofa.json").read_text())["files"]["adapters"]["name"]
    data = (tmp_path / "run2" / name).read_bytes()
    (tmp_path / "run2" / name).write_bytes(data[:100])
    with pytest.raises(OfaError, match="does not match the size and sha256"):
        checkpoint.load(str(tmp_path / "run2"))
    import json
    quick(tmp_path / "run3", small_csv)
    meta = json.loads((tmp_path / "run3" / "ofa.json").read_text())
    meta["backbone_fingerprint"] = "0" * 64
    (tmp_path / "run3" / "ofa.json").write_text(json.dumps(meta))
    with pytest.raises(OfaError, match="fingerprint mismatch"):
        checkpoint.load(str(tmp_path / "run3"))


def test_auto_lr_follows_the_training_budget(tmp_path, small_csv):
    from ofa.training.loop import AUTO_LR_POINTS, auto_lr

    (short, lr_short), (long, lr_long) = AUTO_LR_POINTS
    assert auto_lr(short) == lr_short and auto_lr(long) == lr_long
    assert auto_lr(10) == lr_short and auto_lr(10**6) == lr_long  # clamped outside the measured points
    assert lr_long < auto_lr(2000) < lr_short
    tc = TrainConfig(epochs=1, batch_size=64, progress=False)
    assert tc.lr == "auto"
    meta = train(small_csv, str(tmp_path / "run"), ModelConfig(layers=1, **SMALL), tc, log=lambda s: None)
    steps = math.ceil(meta["data"]["train_series"] / 64)
    assert meta["train"]["lr"] == auto_lr(steps) and tc.lr == "auto"  # recorded resolved; the caller's untouched
