"""The `ofa` command line: bad input gives one line naming the problem, exit 2, nothing half-written."""
import json
import os
import subprocess
import sys

import numpy as np

import pytest
from conftest import write_csv

from ofa.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def train_args(data, out, *extra):
    return ["train", "--data", data, "--out", str(out), "--seq-len", "64", "--horizon", "16", "--layers", "1",
            "--epochs", "1", "--quiet", *extra]


@pytest.mark.parametrize("content,needle", [
    (None, "data file not found"),
    ("date,a\n2020,1\n2021,x\n", "non-numeric column"),
    ("date,a\n2020,1\n2021,nan\n", "non-finite value"),
    ("date,a\n" + "".join(f"{i},{i}\n" for i in range(30)), "shorter than seq_len + horizon"),
])
def test_train_rejects_bad_data(tmp_path, capsys, content, needle):
    data = tmp_path / "d.csv"
    if content is not None:
        data.write_text(content)
    code, err = run(capsys, *train_args(str(data), tmp_path / "out"))
    assert code == 2 and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "ofa.json").exists()


def test_train_rejects_missing_target_and_unknown_backbone(tmp_path, capsys, small_csv):
    code, err = run(capsys, *train_args(small_csv, tmp_path / "o1", "--target", "nope"))
    assert code == 2 and "no column named 'nope'" in err
    code, err = run(capsys, *train_args(small_csv, tmp_path / "o2", "--backbone", "nonexistent-model"))
    assert code == 2 and "unknown backbone" in err
    assert not os.path.exists(tmp_path / "o2" / "ofa.json")


@pytest.mark.parametrize("flag,value", [("--lr", "0"), ("--lr", "nan"), ("--lr", "fast")])
def test_bad_learning_rate_exits_2(tmp_path, capsys, small_csv, flag, value):
    with pytest.raises(SystemExit) as exc:
        main([*train_args(small_csv, tmp_path / "o"), flag, value])
    assert exc.value.code == 2 and "positive number or auto" in capsys.readouterr().err


@pytest.mark.parametrize("flag,value", [("--horizon", "0"), ("--seq-len", "-5"), ("--layers", "0")])
def test_nonpositive_lengths_exit_2(tmp_path, capsys, small_csv, flag, value):
    with pytest.raises(SystemExit) as exc:
        main([*train_args(small_csv, tmp_path / "o"), flag, value])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


def test_train_then_eval_writes_json_and_plot(tmp_path, capsys, small_csv):
    out = tmp_path / "run"
    code, _ = run(capsys, *train_args(small_csv, out, "--target", "b"))
    meta = json.loads((out / "ofa.json").read_text())
    assert code == 0 and (out / meta["files"]["adapters"]["name"]).exists()
    code, err = run(capsys, "eval", "--checkpoint", str(out), "--data", small_csv, "--json", str(tmp_path / "s.json"),
                    "--plot", str(tmp_path / "f.png"))
    assert code == 0, err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["channels"] == 1 and np.isfinite(scores["mse"]) and scores["mse"] > 0
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_rejects_bad_checkpoint_and_mismatched_data(tmp_path, capsys, small_csv):
    code, err = run(capsys, "eval", "--checkpoint", str(tmp_path / "none"), "--data", small_csv)
    assert code == 2 and "checkpoint directory not found" in err
    out = tmp_path / "run"
    assert run(capsys, *train_args(small_csv, out))[0] == 0
    other = write_csv(tmp_path / "other.csv", np.random.default_rng(0).standard_normal((600, 3)))
    code, err = run(capsys, "eval", "--checkpoint", str(out), "--data", other)
    assert code == 2 and "channels" in err


def test_installed_entry_point_reports_errors():
    proc = subprocess.run([sys.executable, "-m", "ofa.cli", "eval", "--checkpoint", "/nonexistent", "--data", "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("ofa eval: error:")


def test_package_functions_survive_importing_every_submodule(tmp_path, small_csv):
    """The README's "From Python" path: ofa.train / ofa.evaluate stay functions after the submodules load."""
    import importlib
    import pkgutil

    import ofa

    for info in pkgutil.iter_modules(ofa.__path__):
        if not info.name.startswith("_") and info.name != "__main__":
            importlib.import_module(f"ofa.{info.name}")
    assert callable(ofa.train) and callable(ofa.evaluate) and callable(ofa.load) and callable(ofa.infer)
    assert callable(ofa.forecast)
    out = str(tmp_path / "run")
    meta = ofa.train(small_csv, out, ofa.ModelConfig(horizon=8, seq_len=32, layers=1),
                     ofa.TrainConfig(epochs=1, progress=False, max_train_windows=30), log=lambda s: None)
    scores = ofa.evaluate(out, small_csv)
    assert meta["sizes"]["trainable_params"] > 0 and scores["mse"] > 0


def test_negative_counts_are_refused(capsys, small_csv, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(train_args(small_csv, tmp_path / "out", "--max-train-windows", "-1"))
    assert exc.value.code == 2 and "expected a whole number >= 0, got -1" in capsys.readouterr().err


def test_help_shows_defaults_and_every_option_says_what_it_does():
    from ofa.cli import parser

    for name, sub in parser()._subparsers._group_actions[0].choices.items():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"ofa {name} {action.option_strings[0]} has no help"
    text = parser()._subparsers._group_actions[0].choices["distill"].format_help()
    assert "(default: 0.0)" in text and "(default: 128)" in text


def test_the_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's "From Python" block as written, but for its data file and budget (a small CSV, seq_len 32,
    one block, one short epoch): an API it names that drifts fails here."""
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    block = re.search(r"From Python[^\n]*\n\n```python\n(.*?)```", readme, re.S).group(1)
    from conftest import noisy_sines

    data = write_csv(tmp_path / "d.csv", noisy_sines(0, rows=1500), ["a", "b"])  # val split >= 32 + 96 rows
    swaps = {'"ETTh1.csv"': repr(data), "ModelConfig(horizon=96)": "ModelConfig(horizon=96, seq_len=32, layers=1)",
             "TrainConfig(epochs=10)": "TrainConfig(epochs=1, progress=False, max_train_windows=30)"}
    for old, new in swaps.items():
        assert old in block, f"the README example no longer contains {old}"
        block = block.replace(old, new)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["y"].shape == (96, 2) and len(scope["future"]) == 96 and scope["scores"]["mse"] > 0
