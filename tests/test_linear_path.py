"""The linear path: the closed-form ridge fit, the model that starts at it, and the engines that run it
(fp32 parity with PyTorch, int8 bit-exact with the numpy reference, the firmware struct)."""
import json

import numpy as np
import pytest
import torch
from conftest import write_csv
from test_infer import exported, parity
from test_int8 import assert_bit_exact, int8_file, relative_error, windows_of

import ofa
from ofa.training import checkpoint
from ofa.training import linear_path
from ofa.data import WindowSet
from ofa.errors import OfaError
from ofa.firmware import model_struct
from ofa.training.model import ModelConfig, build
from ofa.modelfile import read_model_file


def test_ridge_recovers_an_exact_linear_rule():
    """y_t = x_{t-1} - x_{t-3}: the rule is linear in the centred window, so the fit is exact."""
    rng = np.random.default_rng(0)
    series = np.cumsum(rng.standard_normal((3000, 1)), axis=0).astype(np.float32)
    for t in range(3, len(series)):
        series[t] = 0.5 * series[t - 1] + 0.3 * series[t - 3] + 0.2 * series[t - 2]
        series[t] += 0.01 * rng.standard_normal()
    train, val = WindowSet(series[:2000], 24, 1), WindowSet(series[2000:], 24, 1)
    weight, bias, info = linear_path.fit(train, val)
    x, y = val.batch(np.arange(len(val)))
    mse = np.mean((linear_path.predict(weight, bias, x) - y) ** 2)
    assert mse < 2e-4, mse
    assert info["ridge"] in linear_path.RIDGE_GRID and len(info["grid_val_mse"]) == len(linear_path.RIDGE_GRID)
    assert info["val_mse"] == min(info["grid_val_mse"])


def test_ridge_strength_is_chosen_on_validation():
    """Noise-only targets: the strongest ridge wins on validation; a clean rule: the weakest."""
    rng = np.random.default_rng(1)
    noise = rng.standard_normal((4000, 1)).astype(np.float32)
    train, val = WindowSet(noise[:3000], 64, 4), WindowSet(noise[3000:], 64, 4)
    assert linear_path.fit(train, val)[2]["ridge"] == max(linear_path.RIDGE_GRID)


def test_model_starts_at_the_ridge_forecast(tmp_path, small_csv):
    run, _ = exported(tmp_path, small_csv, linear_path="ridge", perturb=False)
    model, meta = checkpoint.load(run)  # minilm: no explicit backbone needed
    assert meta["linear_path"]["ridge"] in linear_path.RIDGE_GRID
    base = model.get_base_model()
    assert not base.linear_path.weight.requires_grad  # "ridge": fitted, then fixed
    # Zero the transformer head: what is left is exactly the ridge forecast.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "out_layer" in name and "lora_B" in name:
                p.zero_()
    from ofa.data import load_csv, make_splits
    splits = make_splits(load_csv(small_csv), 64, 16)
    x, y = splits.val.batch(np.arange(50))
    with torch.no_grad():
        got = model(torch.from_numpy(x).unsqueeze(-1)).squeeze(-1).numpy()
    want = linear_path.predict(base.linear_path.weight.numpy(), base.linear_path.bias.numpy(), x)
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.parametrize("mode", ["ridge", "ridge+train"])
def test_fp32_engine_matches_pytorch(tmp_path, small_csv, mode):
    run, path = exported(tmp_path, small_csv, linear_path=mode)
    tensors, meta = read_model_file(path)
    assert json.loads(meta["config"])["linear_path"] == 1
    assert tensors["linear.weight"].shape == (16, 64)
    assert parity(run, path, small_csv) <= 1e-4


def test_fp32_engine_matches_pytorch_gpt2_dense_head(tmp_path, small_csv, tiny_gpt2):
    run, path = exported(tmp_path, small_csv, backbone=tiny_gpt2, layers=3, head_base="random",
                         linear_path="ridge")
    assert json.loads(read_model_file(path)[1]["config"])["head_rank"] == 0
    assert parity(run, path, small_csv) <= 1e-4


def test_int8_bit_exact_and_close(tmp_path, small_csv):
    _, path = exported(tmp_path, small_csv, linear_path="ridge")
    path8 = int8_file(tmp_path, path, small_csv)
    tensors, _ = read_model_file(path8, schemes=("int8",))
    assert tensors["linear.weight"].dtype == np.int8
    x = windows_of(path8, small_csv)
    y8 = assert_bit_exact(path8, x)
    assert relative_error(y8, ofa.load(path).run(x)) < 0.05


def test_uneven_last_patch_and_long_lookback(tmp_path):
    """seq_len 100, patch 16, stride 12: the last steps come from the padded last patch."""
    t = np.arange(900)
    values = np.stack([np.sin(t / 7) + 0.05 * np.cos(t / 3), np.cos(t / 11)], axis=1)
    data = write_csv(tmp_path / "s.csv", values)
    run, path = exported(tmp_path, data, seq_len=100, horizon=12, linear_path="ridge", stride=12)
    assert parity(run, path, data) <= 1e-4
    path8 = int8_file(tmp_path, path, data)
    assert_bit_exact(path8, windows_of(path8, data))


def test_stride_beyond_patch_is_refused():
    with pytest.raises(OfaError, match="stride"):
        ModelConfig(seq_len=64, horizon=8, stride=20, linear_path="ridge").check()


def test_firmware_struct_names_its_fields(tmp_path, small_csv):
    _, path = exported(tmp_path, small_csv, linear_path="ridge")
    tensors, meta = read_model_file(int8_file(tmp_path, path, small_csv), schemes=("int8",))
    text = model_struct(json.loads(meta["config"]), tensors)
    for field in (".config = {.layout = ", ".linear_path = 1", ".linear = {.w = ofa_t_linear_weight}",
                  ".linear_out_scale = ofa_t_linear_out_scale", ".linear_bias = ofa_t_linear_bias", ".head_a = ",
                  ".qkv = {.w = ofa_t_blocks_0_attn_qkv_weight, .b = ofa_t_blocks_0_attn_qkv_bias, .out = {.table = ",
                  ".gelu_lut = ofa_t_blocks_0_gelu_lut", ".ln2 = {.eps = ofa_t_blocks_0_ln2_eps"):
        assert field in text, field


def test_linear_path_is_the_default_and_can_be_left_out():
    assert build(ModelConfig(seq_len=64, horizon=8, layers=1)).get_base_model().linear_path is not None
    assert build(ModelConfig(seq_len=64, horizon=8, layers=1, linear_path="none")).get_base_model().linear_path is None
    with pytest.raises(OfaError, match="auto"):
        build(ModelConfig(horizon=8, layers=1))  # "auto" is resolved by ofa.train, not by build


def test_auto_lookback_picks_one_that_fits_and_keeps_its_fit(tmp_path, tiny_gpt2):
    """1,000 rows (700 in train): 336 and 512 fit the splits, 720 does not; each is tried with its own ridge
    fit and with the mean of the fits at the members up to it; the linear path is the chosen one's fit."""
    from ofa.training.loop import TrainConfig, train

    t = np.arange(1000)
    data = write_csv(tmp_path / "s.csv", np.stack([np.sin(t / 9) + 0.1 * np.cos(t / 2), np.cos(t / 13)], axis=1))
    mc = ModelConfig(backbone=tiny_gpt2, layers=1, horizon=16)
    meta = train(data, str(tmp_path / "run"), mc, TrainConfig(epochs=1, progress=False), log=lambda s: None)
    scores = meta["lookback"]["val_mse"]
    assert set(scores) == {"336", "512", "96+192+336", "96+192+336+512"}
    best = min(scores, key=scores.get)
    assert meta["lookback"]["linear_path"] == best
    assert meta["model"]["seq_len"] == meta["lookback"]["chosen"] == int(best.split("+")[-1])
    assert meta["linear_path"]["val_mse"] == scores[best]


def test_a_shorter_forecaster_on_the_whole_window_forecasts_the_same():
    rng = np.random.default_rng(3)
    weight, bias = rng.standard_normal((8, 24)), rng.standard_normal(8)
    x = rng.standard_normal((5, 64)) * 3 + 10
    whole = linear_path.on_window(weight, 64)
    np.testing.assert_allclose(linear_path.predict(whole, bias, x), linear_path.predict(weight, bias, x[:, -24:]),
                               rtol=1e-10, atol=1e-9)
    fits = {24: (weight, bias, {}), 64: (rng.standard_normal((8, 64)), rng.standard_normal(8), {})}
    w, b = linear_path.mean_forecaster(fits, 64)
    want = (linear_path.predict(*fits[24][:2], x[:, -24:]) + linear_path.predict(*fits[64][:2], x)) / 2
    np.testing.assert_allclose(linear_path.predict(w, b, x), want, rtol=1e-10, atol=1e-9)


def test_the_mean_of_lookbacks_wins_where_it_validates_better():
    """A level that shifts now and then: the short member follows the shift, the long one the season,
    and their mean validates better than either; its reported MSE is the mean forecaster's own."""
    from ofa.data import Series, make_splits

    rng = np.random.default_rng(4)
    t = np.arange(6000)
    level = np.repeat(rng.standard_normal(60) * 2, 100)
    values = (level + np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(6000))[:, None].astype(np.float32)
    series = Series("shifts", values, ["v"])
    splits_for = lambda n: make_splits(series, n, 24)  # noqa: E731
    seq_len, info, (weight, bias, fit_info) = linear_path.choose_lookback(splits_for, (192,), members=(48, 192))
    assert info["linear_path"] == "48+192" and seq_len == 192 and fit_info["members"] == [48, 192]
    assert info["val_mse"]["48+192"] < info["val_mse"]["192"]
    assert fit_info["val_mse"] == pytest.approx(linear_path.val_mse(weight, bias, splits_for(192).val), rel=1e-5)
    assert weight.shape == (24, 192) and "mean of the ridge forecasters on the last 48, 192 steps" in \
        linear_path.describe(fit_info)


def test_short_series_choose_from_the_short_lookbacks():
    """Auto lookback on a series too short for 336/512/720: the short candidates that fit, on validation;
    a problem other than length is raised, not taken for "too short"."""
    from ofa.data import Series, make_splits
    from ofa.errors import SeriesTooShort
    from ofa.training.loop import TrainConfig, choose_lookback

    rng = np.random.default_rng(2)
    t = np.arange(200)
    values = np.stack([np.sin(t / 5) + 0.05 * rng.standard_normal(200), np.zeros(200)], axis=1)
    values[150:, 1] = 1.0  # an indicator that changes only after the train split: scaled by 1
    series = Series("short", values.astype(np.float32), ["wave", "flag"])
    seq_len, info, _ = choose_lookback(series, 12, TrainConfig())
    assert seq_len in linear_path.SHORT_LOOKBACKS and seq_len <= 96
    assert set(map(int, info["val_mse"])) <= set(linear_path.SHORT_LOOKBACKS)
    assert make_splits(series, seq_len, 12).scaler.std[1] == 1.0
    with pytest.raises(SeriesTooShort):
        make_splits(series, 336, 12)

    def broken(seq_len):
        raise OfaError("column 'x' is broken")

    with pytest.raises(OfaError, match="broken"):
        linear_path.choose_lookback(broken)
    with pytest.raises(OfaError, match="too few rows"):
        linear_path.choose_lookback(lambda seq_len: None)


def test_single_lookback_leaves_the_means_out():
    """TrainConfig(lookback_mean=False) (`ofa train --single-lookback`): the three single lookbacks only, with
    the same validation MSEs as when the means are tried beside them."""
    from ofa.data import Series
    from ofa.training.loop import TrainConfig, choose_lookback

    rng = np.random.default_rng(5)
    t = np.arange(4000)
    values = (np.repeat(rng.standard_normal(40), 100) + np.sin(2 * np.pi * t / 24)
              + 0.3 * rng.standard_normal(4000))[:, None].astype(np.float32)
    series = Series("shifts", values, ["v"])
    _, with_means, _ = choose_lookback(series, 24, TrainConfig())
    _, singles, _ = choose_lookback(series, 24, TrainConfig(lookback_mean=False))
    assert set(singles["val_mse"]) == {"336", "512", "720"}
    assert {"96+192+336", "96+192+336+512", "96+192+336+512+720"} <= set(with_means["val_mse"])
    assert all(with_means["val_mse"][k] == v for k, v in singles["val_mse"].items())
    with pytest.raises(OfaError, match="lookback_mean"):
        TrainConfig(lookback_mean="yes").check()
