"""Data-parallel training: two CPU processes (torchrun, gloo) give what one process gives with the same global
batch, to float rounding, when dropout is off (with dropout each rank draws its own masks)."""
import json
import os
import subprocess
import sys

import numpy as np
from conftest import noisy_sines, write_csv
from safetensors.numpy import load_file

SCRIPT = """
import sys
import ofa
from ofa.training.model import ModelConfig
from ofa.training.loop import TrainConfig
data, out, patience = sys.argv[1], sys.argv[2], int(sys.argv[3])
mc = ModelConfig(seq_len=64, horizon=16, layers=1, backbone_dropout=False, lora_dropout=0.0)
tc = TrainConfig(epochs=2, batch_size=30, max_train_windows=120, threads=1, progress=False, device="cpu",
                 patience=patience)
meta = ofa.train(data, out, mc, tc, log=lambda s: None)
assert meta["processes"] == int(__import__("os").environ.get("WORLD_SIZE", "1"))
"""


def run(tmp_path, out, processes):
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    launcher = [sys.executable] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([*launcher, str(script), str(tmp_path / "d.csv"), str(out), "3"], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.load(open(out / "ofa.json"))
    return meta, load_file(str(out / "resume.safetensors"))


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    write_csv(tmp_path / "d.csv", noisy_sines(0, rows=900), ["a", "b"])
    one, state_one = run(tmp_path, tmp_path / "one", 1)
    two, state_two = run(tmp_path, tmp_path / "two", 2)
    assert one["processes"] == 1 and two["processes"] == 2
    # 222 training series in batches of 30: the last batch (12) splits 6 / 6, every other 15 / 15.
    assert len(one["history"]) == len(two["history"]) == 2
    for a, b in zip(one["history"], two["history"]):
        assert abs(a["val_mse"] - b["val_mse"]) <= 1e-6 * a["val_mse"]
        assert abs(a["train_mse"] - b["train_mse"]) <= 1e-6 * a["train_mse"]
    params = [k for k in state_one if k.startswith("param.")]
    assert params and set(params) == {k for k in state_two if k.startswith("param.")}
    moved = 0.0
    for k in params:  # the trained tensors after the last epoch
        np.testing.assert_allclose(state_two[k], state_one[k], rtol=1e-5, atol=1e-6)
        moved = max(moved, float(np.abs(state_one[k]).max()))
    assert moved > 0  # the comparison is of trained tensors, not of zeros


def test_cuda_without_a_gpu_is_a_clean_error(tmp_path, capsys):
    import torch

    from ofa.cli import main

    if torch.cuda.is_available():
        import pytest

        pytest.skip("this machine has a GPU")
    data = write_csv(tmp_path / "d.csv", noisy_sines(0), ["a", "b"])
    code = main(["train", "--data", data, "--out", str(tmp_path / "o"), "--seq-len", "64", "--horizon", "16",
                 "--layers", "1", "--epochs", "1", "--quiet", "--device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "torch sees no CUDA device" in err and len(err.splitlines()) == 1
