"""ofa._engine against the numpy reference, plus its input validation."""
from __future__ import annotations

import numpy as np
import pytest

_engine = pytest.importorskip("ofa._engine")
from engine_reference import reference_forward  # noqa: E402
from ofa.data import n_patches  # noqa: E402


def make_config(layout: str, head_rank: int) -> dict:
    return {
        "layout": layout,
        "d_model": 24,
        "n_heads": 4,
        "d_ff": 40,
        "n_layers": 2,
        "seq_len": 30,
        "patch_len": 8,
        "stride": 4,
        "horizon": 9,
        "n_channels": 3,
        "head_rank": head_rank,
        "gelu": "erf" if layout == "bert" else "tanh",
        "ln_eps": 1e-12 if layout == "bert" else 1e-5,
        "revin_eps": 1e-5,
    }


def make_tensors(cfg: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    d, f, P, H, C = cfg["d_model"], cfg["d_ff"], cfg["patch_len"], cfg["horizon"], cfg["n_channels"]
    N = n_patches(cfg["seq_len"], P, cfg["stride"])

    def u(*shape, scale=0.3, center=0.0):
        return (center + scale * rng.uniform(-1, 1, size=shape)).astype(np.float32)

    t = {"in_layer.weight": u(d, P), "in_layer.bias": u(d, scale=0.1), "pos": u(N, d, scale=0.2)}
    ln = ("emb_ln" if cfg["layout"] == "bert" else "final_ln")
    t[f"{ln}.weight"], t[f"{ln}.bias"] = u(d, scale=0.2, center=1.0), u(d, scale=0.1)
    for i in range(cfg["n_layers"]):
        p = f"blocks.{i}."
        t[p + "attn_qkv.weight"], t[p + "attn_qkv.bias"] = u(3 * d, d, scale=d**-0.5), u(3 * d, scale=0.1)
        t[p + "attn_out.weight"], t[p + "attn_out.bias"] = u(d, d, scale=d**-0.5), u(d, scale=0.1)
        for n in ("ln1", "ln2"):
            t[p + n + ".weight"], t[p + n + ".bias"] = u(d, scale=0.2, center=1.0), u(d, scale=0.1)
        t[p + "ff_in.weight"], t[p + "ff_in.bias"] = u(f, d, scale=d**-0.5), u(f, scale=0.1)
        t[p + "ff_out.weight"], t[p + "ff_out.bias"] = u(d, f, scale=f**-0.5), u(d, scale=0.1)
    r = cfg["head_rank"]
    if r == 0:
        t["head.weight"] = u(H, N * d, scale=(N * d) ** -0.5)
    else:
        t["head.a"], t["head.b"] = u(r, N * d, scale=(N * d) ** -0.5), u(H, r, scale=0.5)
    t["head.bias"] = u(H, scale=0.1)
    t["scaler.mean"] = u(C, scale=2.0)
    t["scaler.std"] = u(C, scale=1.0, center=2.0)
    return t


def make_x(cfg: dict, batch: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, cfg["seq_len"], cfg["n_channels"])) * 3 + 1).astype(np.float32)


@pytest.mark.parametrize("layout", ["bert", "gpt2"])
@pytest.mark.parametrize("head_rank", [0, 5])
@pytest.mark.parametrize("isa", _engine.available_isas())
def test_run_matches_reference(layout, head_rank, isa):
    cfg = make_config(layout, head_rank)
    tensors = make_tensors(cfg)
    x = make_x(cfg, batch=4)
    want = reference_forward(cfg, tensors, x)
    for tile_series, threads in [(1, 1), (5, 1), (16, 3)]:
        eng = _engine.Engine(cfg, tensors, tile_series=tile_series, threads=threads, isa=isa)
        got = eng.run(x)
        assert got.shape == (4, cfg["horizon"], cfg["n_channels"]) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_properties_and_stats():
    cfg = make_config("gpt2", 0)
    eng = _engine.Engine(cfg, make_tensors(cfg))
    assert eng.simd == _engine.best_isa()
    assert eng.arena_bytes == _engine.arena_bytes(cfg, eng.tile_series) > 0
    assert eng.config["d_model"] == 24 and eng.config["layout"] == "gpt2"
    eng.run(make_x(cfg, 2))
    stats = eng.gemm_stats()
    assert stats["calls"] > 0 and stats["flops"] > 0 and stats["seconds"] > 0


def test_gemm_entry():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(37, 65)).astype(np.float32)
    w = rng.normal(size=(29, 65)).astype(np.float32)
    b = rng.normal(size=29).astype(np.float32)
    for isa in _engine.available_isas():
        np.testing.assert_allclose(_engine.gemm(a, w, b, isa=isa), a @ w.T + b, rtol=1e-4, atol=1e-4)
    c, secs = _engine.gemm_timed(a, w, None, repeat=2)
    np.testing.assert_allclose(c, a @ w.T, rtol=1e-4, atol=1e-4)
    assert secs > 0


def test_tensors_are_borrowed_not_copied():
    cfg = make_config("bert", 0)
    tensors = make_tensors(cfg)
    eng = _engine.Engine(cfg, tensors)
    x = make_x(cfg, 1)
    before = eng.run(x)
    tensors["head.bias"] += 1.0  # in place: the engine reads the caller's memory
    after = eng.run(x)
    assert not np.allclose(after, before)
    want = reference_forward(cfg, tensors, x)
    np.testing.assert_allclose(after, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_bad_inputs_raise_value_error():
    cfg = make_config("bert", 0)
    tensors = make_tensors(cfg)
    eng = _engine.Engine(cfg, tensors)
    x = make_x(cfg, 2)
    with pytest.raises(ValueError, match="shape"):
        eng.run(x[:, :-1])
    with pytest.raises(ValueError, match="3 dims"):
        eng.run(x[0])
    with pytest.raises(ValueError, match="float32"):
        eng.run(x.astype(np.float64))
    bad = x.copy()
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        eng.run(bad)
    with pytest.raises(ValueError, match="contiguous"):
        eng.run(np.asfortranarray(x))


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: t.pop("blocks.1.ff_in.bias"), "missing tensor 'blocks.1.ff_in.bias'"),
        (lambda t: t.__setitem__("pos", t["pos"][:-1]), "pos: expected shape"),
        (lambda t: t.__setitem__("in_layer.bias", t["in_layer.bias"].astype(np.float64)), "in_layer.bias: dtype"),
        (lambda t: t["blocks.0.attn_out.weight"].__setitem__((0, 0), np.inf), "blocks.0.attn_out.weight: contains non-finite"),
        (lambda t: t.__setitem__("head.a", t["head.weight"]), "unexpected tensor 'head.a'"),
        (lambda t: t.__setitem__("in_layer.weight", np.asfortranarray(t["in_layer.weight"])), "in_layer.weight: must be C-contiguous"),
    ],
)
def test_bad_tensors_raise_value_error(mutate, match):
    cfg = make_config("bert", 0)
    tensors = make_tensors(cfg)
    mutate(tensors)
    with pytest.raises(ValueError, match=match):
        _engine.Engine(cfg, tensors)


def test_bad_config_raises_value_error():
    cfg = make_config("bert", 0)
    tensors = make_tensors(cfg)
    with pytest.raises(ValueError, match="invalid config"):
        _engine.Engine({**cfg, "n_heads": 5}, tensors)
    with pytest.raises(ValueError, match="missing key 'd_ff'"):
        _engine.Engine({k: v for k, v in cfg.items() if k != "d_ff"}, tensors)
    with pytest.raises(ValueError, match="n_patches"):
        _engine.Engine({**cfg, "n_patches": 99}, tensors)
    _engine.Engine({**cfg, "n_patches": 7}, tensors)  # consistent value is accepted
    with pytest.raises(ValueError, match="layout"):
        _engine.Engine({**cfg, "layout": "t5"}, tensors)
