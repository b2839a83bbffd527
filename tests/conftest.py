"""Shared fixtures: a tiny random GPT-2 on disk, small CSV series, the shared benchmark data when present."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED_DATA = os.environ.get("OFA_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> str:
    """A randomly initialised 3-block GPT-2 (d=32) saved like a downloaded model directory."""
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-gpt2")
    GPT2Model(GPT2Config(n_layer=3, n_embd=32, n_head=4, n_positions=128, vocab_size=64)).save_pretrained(path)
    return str(path)


def write_csv(path, values: np.ndarray, columns=None) -> str:
    import pandas as pd

    columns = columns or [f"c{i}" for i in range(values.shape[1])]
    frame = pd.DataFrame(values, columns=columns)
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=len(values), freq="h").astype(str))
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def small_csv(tmp_path) -> str:
    """Two channels of noisy sines, 600 rows: enough for seq_len 64, horizon 16."""
    t = np.arange(600)
    rng = np.random.default_rng(0)
    values = np.stack([np.sin(t / 8) + 0.1 * rng.standard_normal(600), np.cos(t / 13) * 3 + 5], axis=1)
    return write_csv(tmp_path / "small.csv", values, ["a", "b"])


def shared_file(relative: str) -> str:
    path = os.path.join(SHARED_DATA, relative)
    if not os.path.isfile(path):
        pytest.skip(f"{path} not present (../shared/data is absent here)")
    return path
