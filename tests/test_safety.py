"""Opening a stranger's file runs no code: no pickle anywhere, and --resume refuses a pickled state."""
from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
import sys
import tokenize

import pytest

from ofa.errors import OfaError
from ofa.model import ModelConfig
from ofa.train import TrainConfig, train

ROOT = os.path.join(os.path.dirname(__file__), "..")
SMALL = dict(seq_len=64, horizon=16, patch=16, stride=8)


class _Payload:
    """Unpickling this runs a shell command that writes `marker`: what a crafted resume.pt did."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _plant(directory, marker) -> None:
    state = {"model_config": _Payload(str(marker)), "train_config": {}, "state": {}}
    for name in ("resume.pt", "resume.safetensors"):
        with open(directory / name, "wb") as f:
            pickle.dump(state, f)


def test_pickled_resume_state_is_refused_without_running_it(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "shared-run"
    out.mkdir()
    marker = tmp_path / "pwned"
    _plant(out, marker)
    mc = ModelConfig(backbone=tiny_gpt2, layers=1, **SMALL)
    with pytest.raises(OfaError, match="resume"):
        train(small_csv, str(out), mc, TrainConfig(epochs=1, progress=False), resume=True, log=lambda s: None)
    assert not marker.exists(), "the pickled payload ran"


def test_pickled_resume_state_via_cli(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "shared-run"
    out.mkdir()
    marker = tmp_path / "pwned"
    _plant(out, marker)
    os.unlink(out / "resume.safetensors")  # only the legacy pickle: named in the message
    proc = subprocess.run([sys.executable, "-m", "ofa", "train", "--data", small_csv, "--out", str(out),
                           "--backbone", tiny_gpt2, "--layers", "1", "--seq-len", "64", "--horizon", "16",
                           "--epochs", "1", "--resume"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "resume.pt" in proc.stderr and "pickle" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists(), "the pickled payload ran"


def test_a_legitimate_resume_state_round_trips(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "run"
    mc = lambda: ModelConfig(backbone=tiny_gpt2, layers=1, **SMALL)  # noqa: E731
    tc = TrainConfig(epochs=2, progress=False, patience=5)

    def interrupt(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_csv, str(out), mc(), tc, log=lambda s: None, on_epoch=interrupt)
    assert (out / "resume.safetensors").is_file() and not (out / "resume.pt").exists()
    with open(out / "resume.safetensors", "rb") as f:
        assert f.read(2) != b"\x80\x04"  # not a pickle stream
    meta = train(small_csv, str(out), mc(), tc, resume=True, log=lambda s: None)
    assert len(meta["history"]) == 2


def test_truncated_resume_state_is_an_error(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "run"
    mc = lambda: ModelConfig(backbone=tiny_gpt2, layers=1, **SMALL)  # noqa: E731
    tc = TrainConfig(epochs=2, progress=False, patience=5)

    def interrupt(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(small_csv, str(out), mc(), tc, log=lambda s: None, on_epoch=interrupt)
    data = (out / "resume.safetensors").read_bytes()
    (out / "resume.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OfaError, match="unreadable resume state"):
        train(small_csv, str(out), mc(), tc, resume=True, log=lambda s: None)


# The loaders that can run code. Each pattern is what a line must not contain in python/ or tools/.
FORBIDDEN = [
    (re.compile(r"\b(import|from)\s+(c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b", re.IGNORECASE),
     "a pickle-family module"),
    (re.compile(r"\bpickle\."), "pickle"),
    (re.compile(r"allow_pickle\s*=\s*True"), "allow_pickle=True"),
    (re.compile(r"(?<![\w.])(eval|exec)\s*\("), "eval/exec"),
    (re.compile(r"\bdf\.to_pickle|read_pickle\s*\("), "pandas pickle"),
]


def _sources():
    for top in ("python", "tools"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.join(dirpath, name)


def _code_only(text: str) -> str:
    """The source with comments dropped and string literals emptied (prose may say "pickle")."""
    lines = text.splitlines(keepends=True)
    out = [list(line) for line in lines]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in (tokenize.STRING, tokenize.COMMENT):
            (r0, c0), (r1, c1) = tok.start, tok.end
            for row in range(r0, r1 + 1):
                line = out[row - 1]
                start = c0 if row == r0 else 0
                stop = c1 if row == r1 else len(line) - 1
                for i in range(start, stop):
                    if line[i] != "\n":
                        line[i] = " "
    return "".join("".join(line) for line in out)


def test_no_code_executing_loader_in_the_package():
    offences = []
    for path in _sources():
        with open(path) as f:
            text = _code_only(f.read())
        for number, code in enumerate(text.splitlines(), 1):
            for pattern, what in FORBIDDEN:
                if pattern.search(code):
                    offences.append(f"{os.path.relpath(path, ROOT)}:{number}: {what}: {code.strip()}")
        # torch.load is allowed only with weights_only=True in the same call.
        for match in re.finditer(r"torch\.load\s*\(", text):
            depth, end = 0, match.end() - 1
            for end in range(match.end() - 1, len(text)):
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            call = text[match.start():end + 1]
            if not re.search(r"weights_only\s*=\s*True", call):
                offences.append(f"{os.path.relpath(path, ROOT)}: torch.load without weights_only=True: {call}")
    assert not offences, "\n".join(offences)


def test_the_guard_catches_what_it_looks_for():
    bad = ["import pickle", "x = pickle.loads(b)", "np.load(p, allow_pickle=True)", "eval(s)",
           "from cPickle import loads"]
    for line in bad:
        assert any(p.search(line) for p, _ in FORBIDDEN), line
    assert not any(p.search("model.eval()") for p, _ in FORBIDDEN)
    assert "pickle" not in _code_only('x = 1  # pickle.loads\ns = "no pickle.load here"\n')
    assert "pickle.loads" in _code_only("y = pickle.loads(b)  # comment\n")
