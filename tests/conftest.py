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


def sines(rows: int = 600) -> np.ndarray:
    """Two clean sinusoid channels (rows, 2)."""
    t = np.arange(rows)
    return np.stack([np.sin(t / 8), np.cos(t / 5) + 2], axis=1)


def noisy_sines(seed: int, rows: int = 600) -> np.ndarray:
    """Two channels (rows, 2): a sine with N(0, 0.1^2) noise from `seed`, and an offset cosine."""
    t = np.arange(rows)
    rng = np.random.default_rng(seed)
    return np.stack([np.sin(t / 8) + 0.1 * rng.standard_normal(rows), np.cos(t / 13) * 3 + 5], axis=1)


@pytest.fixture
def small_csv(tmp_path) -> str:
    """Two channels of noisy sines, 600 rows: enough for seq_len 64, horizon 16."""
    return write_csv(tmp_path / "small.csv", noisy_sines(0), ["a", "b"])


def shared_file(relative: str) -> str:
    path = os.path.join(SHARED_DATA, relative)
    if not os.path.isfile(path):
        pytest.skip(f"{path} not present (../shared/data is absent here)")
    return path
