"""Opening a stranger's file runs no code: no pickle anywhere, and --resume refuses a pickled state."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import tokenize

import numpy as np
import pytest

from ofa.errors import OfaError
from ofa.training.model import ModelConfig
from ofa.training.loop import TrainConfig, train

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


def interrupted_after_one_epoch(out, data, backbone):
    """A run of two epochs stopped after the first: its resume state is on disk. (configs, for --resume)"""
    mc = lambda: ModelConfig(backbone=backbone, layers=1, **SMALL)  # noqa: E731
    tc = TrainConfig(epochs=2, progress=False, patience=5)

    def interrupt(entry):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(data, str(out), mc(), tc, log=lambda s: None, on_epoch=interrupt)
    return mc, tc


def test_a_legitimate_resume_state_round_trips(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "run"
    mc, tc = interrupted_after_one_epoch(out, small_csv, tiny_gpt2)
    assert (out / "resume.safetensors").is_file() and not (out / "resume.pt").exists()
    with open(out / "resume.safetensors", "rb") as f:
        assert f.read(2) != b"\x80\x04"  # not a pickle stream
    meta = train(small_csv, str(out), mc(), tc, resume=True, log=lambda s: None)
    assert len(meta["history"]) == 2


def test_truncated_resume_state_is_an_error(tmp_path, small_csv, tiny_gpt2):
    out = tmp_path / "run"
    mc, tc = interrupted_after_one_epoch(out, small_csv, tiny_gpt2)
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


def test_generated_c_strings_and_comments_cannot_be_escaped():
    from ofa.firmware import c_comment, c_ident, c_string

    evil = 'm".ofa\n#include "/etc/passwd"\nint pwn = 1; /* */ \\ ??= é'
    literal = c_string(evil)
    body = literal[1:-1]
    assert literal.startswith('"') and literal.endswith('"')
    assert '"' not in body.replace('\\042', '') and "\n" not in literal and "?" not in body
    assert all(0x20 <= ord(ch) < 0x7F for ch in literal)
    # decoding the C escapes gives the original bytes back
    decoded = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), body).encode("latin-1")
    assert decoded == evil.encode("utf-8")
    comment = c_comment(evil)
    assert "*/" not in comment and "/*" not in comment and "\n" not in comment
    assert c_ident("blocks.0.é-x") == "ofa_t_blocks_0___x"


def test_header_injection_through_the_model_file_name(tmp_path, small_csv, tiny_gpt2):
    """A model file named with a quote and a newline: the emitted header compiles to the same string."""
    import shutil

    from test_infer import exported

    from ofa.export.merge import quantize_model_file
    from ofa.firmware import emit

    _, path = exported(tmp_path, small_csv, backbone=tiny_gpt2, layers=1, linear_path="none", seq_len=64)
    evil = tmp_path / 'x".ofa\n#error injected\n"'
    quantize_model_file(path, str(evil), small_csv, 16)
    out = tmp_path / "hdr"
    out.mkdir()
    emit(str(evil), "cortex-m4", str(out), small_csv, golden=1)
    text = (out / "ofa_model.h").read_text()
    define = [line for line in text.splitlines() if line.startswith("#define OFA_MODEL_NAME")]
    assert len(define) == 1 and not any(line.lstrip().startswith("#error") for line in text.splitlines())
    if shutil.which("cc"):  # the literal is valid C and decodes to the file name
        probe = tmp_path / "probe.c"
        probe.write_text(define[0] + '\n#include <stdio.h>\nint main(void){fputs(OFA_MODEL_NAME, stdout);return 0;}\n')
        subprocess.run(["cc", str(probe), "-o", str(tmp_path / "probe")], check=True)
        got = subprocess.run([str(tmp_path / "probe")], capture_output=True).stdout
        assert got == os.path.basename(str(evil)).encode()


# ---- paths recorded in files stay inside their directory ---------------------------------------

@pytest.fixture(scope="module")
def gpt2_run(tmp_path_factory, tiny_gpt2):
    """A finished checkpoint whose ofa.json names a backbone by absolute path (the user's GPT-2 dir)."""
    from conftest import sines, write_csv

    tmp = tmp_path_factory.mktemp("paths")
    data = write_csv(tmp / "d.csv", sines(), ["a", "b"])
    run = tmp / "run"
    mc = ModelConfig(backbone=tiny_gpt2, layers=1, linear_path="none", **SMALL)
    train(data, str(run), mc, TrainConfig(epochs=1, progress=False, max_train_windows=40), log=lambda s: None)
    return run, data


def _recorded_backbone(run, dst, name):
    """A copy of checkpoint `run` whose ofa.json names backbone `name`."""
    import shutil

    shutil.copytree(run, dst)
    meta = json.loads((dst / "ofa.json").read_text())
    meta["model"]["backbone"] = name
    (dst / "ofa.json").write_text(json.dumps(meta))
    return dst


def test_a_recorded_absolute_backbone_path_needs_the_user(gpt2_run, tiny_gpt2):
    from ofa.training import checkpoint

    run, _ = gpt2_run
    with pytest.raises(OfaError, match="outside the checkpoint directory.*--backbone"):
        checkpoint.load(str(run))
    model, meta = checkpoint.load(str(run), backbone=tiny_gpt2)  # named by the user: followed
    assert meta["model"]["backbone"] == tiny_gpt2


@pytest.mark.parametrize("escape", ["dotdot", "symlink", "dotdot-inside"])
def test_a_recorded_relative_backbone_cannot_leave_the_directory(gpt2_run, tiny_gpt2, tmp_path, escape):
    from ofa.training import checkpoint

    run, _ = gpt2_run
    ckpt = tmp_path / "ckpt"
    if escape == "dotdot":
        name = "./../" + os.path.relpath(tiny_gpt2, tmp_path)
    elif escape == "dotdot-inside":
        name = "./sub/../../ckpt/backbone"  # ends inside, but ".." is never followed
    else:
        name = "./backbone"
    _recorded_backbone(run, ckpt, name)
    if escape == "symlink":
        os.symlink(tiny_gpt2, ckpt / "backbone")
    with pytest.raises(OfaError, match="leaves the checkpoint directory"):
        checkpoint.load(str(ckpt))


def test_a_backbone_inside_the_directory_is_followed(gpt2_run, tiny_gpt2, tmp_path):
    import shutil

    from ofa.training import checkpoint

    run, _ = gpt2_run
    ckpt = _recorded_backbone(run, tmp_path / "ckpt", "./backbone")
    shutil.copytree(tiny_gpt2, ckpt / "backbone")
    model, meta = checkpoint.load(str(ckpt))
    assert meta["model"]["backbone"] == "./backbone"


def test_a_hub_name_that_is_also_a_path_here_is_refused(tmp_path, monkeypatch):
    from ofa.training.backbone import check_recorded

    monkeypatch.chdir(tmp_path)
    check_recorded("gpt2", str(tmp_path / "ckpt"))  # no such path: the offline Hugging Face cache only
    check_recorded("openai-community/gpt2", str(tmp_path / "ckpt"))
    (tmp_path / "gpt2").mkdir()  # now transformers would read ./gpt2 from the working directory
    with pytest.raises(OfaError, match="outside the checkpoint directory"):
        check_recorded("gpt2", str(tmp_path / "ckpt"))
    for name in ("/etc", "~/x", "a/../b", "a/b/c", "", "./", 7):
        with pytest.raises(OfaError):
            check_recorded(name, str(tmp_path / "ckpt"))


def test_cli_names_the_recorded_path_and_the_flag(gpt2_run, tiny_gpt2, tmp_path):
    run, data = gpt2_run
    for cmd in (["eval", "--checkpoint", str(run), "--data", data],
                ["export", "--checkpoint", str(run), "--out", str(tmp_path / "m.ofa")]):
        proc = subprocess.run([sys.executable, "-m", "ofa", *cmd], capture_output=True, text=True)
        assert proc.returncode == 2 and "--backbone" in proc.stderr and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert not (tmp_path / "m.ofa").exists()
    proc = subprocess.run([sys.executable, "-m", "ofa", "export", "--checkpoint", str(run), "--out",
                           str(tmp_path / "m.ofa"), "--backbone", tiny_gpt2], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# ---- model files: malformed metadata, memory caps, in-memory reads ----------------------------------

@pytest.fixture(scope="module")
def fp32_file(tmp_path_factory, tiny_gpt2):
    from conftest import sines, write_csv
    from test_infer import exported

    tmp = tmp_path_factory.mktemp("safety")
    data = write_csv(tmp / "d.csv", sines(), ["a", "b"])
    _, path = exported(tmp, data, backbone=tiny_gpt2, layers=1, seq_len=64, linear_path="ridge")
    return path, data


def rewrite(src, dst, change_meta=None, change_tensors=None) -> str:
    """A copy of model file `src` with edited metadata / tensors and a valid checksum (a crafted file)."""
    from safetensors.numpy import save_file

    from ofa.modelfile import checksum, read_model_file

    tensors, meta = read_model_file(src, schemes=("fp32", "int8"))
    tensors, meta = dict(tensors), dict(meta)
    if change_meta:
        change_meta(meta)
    if change_tensors:
        change_tensors(tensors)
    meta["checksum"] = checksum(tensors, meta)
    save_file(tensors, str(dst), metadata=meta)
    return str(dst)


@pytest.mark.parametrize("config,needle", [
    ("[1, 2]", "must be a JSON dict"),
    ('{"layout": "bert", "d_model": 123456789012345678901234567890}', "out of range"),
    ("[" * 100000 + "]" * 100000, "nested"),
    ("{not json", "bad JSON"),
])
def test_malformed_config_is_a_clean_error(fp32_file, tmp_path, config, needle):
    import ofa

    path = rewrite(fp32_file[0], tmp_path / "bad.ofa", lambda m: m.update(config=config))
    with pytest.raises(OfaError, match=needle):
        ofa.load(path)


def test_huge_int_inside_the_range_json_allows_is_refused_by_the_engine(fp32_file, tmp_path):
    import ofa

    def edit(meta):
        cfg = json.loads(meta["config"])
        cfg["horizon"] = 2 ** 63
        meta["config"] = json.dumps(cfg)
    path = rewrite(fp32_file[0], tmp_path / "bad.ofa", edit)
    with pytest.raises(OfaError, match="out of range"):
        ofa.load(path)


def test_cli_and_emitter_answer_one_line(fp32_file, tmp_path):
    path = rewrite(fp32_file[0], tmp_path / "bad.ofa", lambda m: m.update(config="[" * 5000 + "]" * 5000))
    for argv in ([sys.executable, "-m", "ofa", "eval", "--model", path, "--data", fp32_file[1]],
                 [sys.executable, os.path.join(ROOT, "tools", "emit_header.py"), path, "--target", "cortex-m4",
                  "--data", fp32_file[1], "-o", str(tmp_path / "hdr")]):
        proc = subprocess.run(argv, capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_arena_cap_names_itself_and_how_to_raise_it(fp32_file, monkeypatch):
    import ofa
    from ofa.runtime import engine

    small = ofa.load(fp32_file[0])
    with pytest.raises(OfaError, match=r"above the cap of 1,000.*max_arena_bytes"):
        ofa.load(fp32_file[0], max_arena_bytes=1000)
    with pytest.raises(OfaError, match="2 per thread|per thread x 2"):
        ofa.load(fp32_file[0], threads=2, max_arena_bytes=small.engine.arena_bytes + 1)
    monkeypatch.setenv(engine.ARENA_CAP_ENV, "1000")
    with pytest.raises(OfaError, match="cap of 1,000"):
        ofa.load(fp32_file[0])


def test_a_tiny_file_cannot_ask_for_a_huge_arena(fp32_file, tmp_path):
    """d_model 1, patch 1, stride 1 and a long window: every check passes but the attention area is
    n_patches^2 per series of a tile. The cap refuses it at load, before any allocation."""
    import ofa
    from ofa import _engine

    def edit(seq_len):
        def change(meta):
            cfg = json.loads(meta["config"])
            cfg.update(d_model=4, n_heads=1, d_ff=4, patch_len=1, stride=1, seq_len=seq_len, linear_path=0)
            cfg.pop("n_patches")
            meta["config"] = json.dumps(cfg)
            return cfg
        return change
    cfg = edit(7000)({"config": json.dumps(json.loads(ofa.load(fp32_file[0]).metadata["config"]))})
    assert _engine.arena_bytes(cfg, 16) > 2 << 30  # what it would have reserved per thread
    path = rewrite(fp32_file[0], tmp_path / "huge.ofa", edit(7000))
    assert os.path.getsize(path) < 1 << 20
    with pytest.raises(OfaError, match="above the cap"):
        ofa.load(path)
    # Past the C core's own build-time cap (4 GiB per plan on 64-bit hosts) the planner itself refuses.
    path = rewrite(fp32_file[0], tmp_path / "huger.ofa", edit(40000))
    with pytest.raises(OfaError, match="OFA_MAX_ARENA_BYTES"):
        ofa.load(path, max_arena_bytes=1 << 40)


def test_model_file_is_read_into_memory_not_mapped(fp32_file, tmp_path, monkeypatch):
    """A file rewritten in place while it is loaded cannot SIGBUS the process: nothing maps it."""
    import mmap
    import shutil

    import safetensors

    import ofa

    copy = tmp_path / "m.ofa"
    shutil.copy(fp32_file[0], copy)

    def refuse(*args, **kwargs):
        raise AssertionError("the model file was memory-mapped")
    monkeypatch.setattr(mmap, "mmap", refuse)
    monkeypatch.setattr(safetensors, "safe_open", refuse)
    model = ofa.load(str(copy))
    with open(copy, "r+b") as f:  # what `cp new old` does to the open file: truncate, then write
        f.truncate(0)
    x = np.random.default_rng(0).standard_normal((2, model.seq_len, model.n_channels)).astype(np.float32)
    assert np.isfinite(model.run(x)).all()


def test_int8_layer_norm_eps_above_2_62_is_refused(fp32_file, tmp_path):
    import ofa
    from ofa.export.merge import quantize_model_file

    path8 = str(tmp_path / "m8.ofa")
    quantize_model_file(fp32_file[0], path8, fp32_file[1], 16)
    assert ofa.load(path8)

    def edit(tensors):
        name = next(n for n in tensors if n.endswith(".eps"))
        tensors[name] = np.array([np.iinfo(np.int64).max], np.int64)
    bad = rewrite(path8, tmp_path / "bad8.ofa", change_tensors=edit)
    with pytest.raises(OfaError, match="eps|quantisation parameter"):
        ofa.load(bad)


def test_failed_thread_start_is_not_an_abort(fp32_file):
    """Under an address-space limit that leaves no room for thread stacks, threads=4 still forecasts
    (the chunks without a thread run on the caller's) instead of std::terminate."""
    script = f"""
import resource, numpy as np, ofa
one = ofa.load({fp32_file[0]!r}, threads=1)
m = ofa.load({fp32_file[0]!r}, threads=4)  # no thread exists until run(): no cached stacks either
x = np.random.default_rng(0).standard_normal((8, m.seq_len, m.n_channels)).astype(np.float32)
want = one.run(x)
used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (used + (4 << 20), resource.RLIM_INFINITY))
import threading
try:  # the limit does refuse new threads (an 8 MB stack does not fit)
    threading.Thread(target=lambda: None).start()
    raise SystemExit("thread started: the limit does not test anything")
except RuntimeError:
    pass
got = m.run(x)
print("same" if np.array_equal(got, want) else "different")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "same"


@pytest.mark.parametrize("scheme", ["fp32", "int8"])
def test_inputs_that_overflow_are_refused_not_nan(fp32_file, tmp_path, scheme):
    import ofa
    from ofa.export.merge import quantize_model_file

    path = fp32_file[0]
    if scheme == "int8":
        path = str(tmp_path / "m8.ofa")
        quantize_model_file(fp32_file[0], path, fp32_file[1], 16)
    model = ofa.load(path)
    rng = np.random.default_rng(0)
    base = rng.standard_normal((model.seq_len, model.n_channels)).astype(np.float32)
    spike = base.copy()
    spike[5, 0] = 1e25
    for x in (base * np.float32(1e19), spike, np.full_like(base, 1e30)):
        with pytest.raises(OfaError, match="overflows float32"):
            ofa.infer(model, x)
    for scale in (1.0, 1e6, 1e12):  # large but representable: finite forecasts
        assert np.isfinite(ofa.infer(model, base * np.float32(scale))).all()


# ---- kill -9 during `ofa train`: the previous checkpoint or the new one, never a mix -------------

_KILLER = r"""
import atexit, os, signal, sys
fn, n = sys.argv[1], int(sys.argv[2])      # SIGKILL this process at the n-th call of os.<fn>
calls = [0]
real = getattr(os, fn)
def hooked(*a, **k):
    calls[0] += 1
    if calls[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
setattr(os, fn, hooked)
atexit.register(lambda: print("CALLS", calls[0]))
from ofa.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _train_argv(data, out, backbone, *extra):
    return ["train", "--data", data, "--out", str(out), "--backbone", backbone, "--layers", "1",
            "--seq-len", "64", "--horizon", "16", "--epochs", "3", "--patience", "5", "--lr", "3e-3",
            "--batch-size", "16", "--quiet", *extra]


def _run_killed(tmp_path, fn, n, argv):
    script = tmp_path / "killer.py"
    script.write_text(_KILLER)
    return subprocess.run([sys.executable, str(script), fn, str(n), *argv], capture_output=True, text=True)


def _assert_consistent(out, data, backbone):
    """ofa.json's weights are whole, and they are the weights whose validation MSE it records."""
    from ofa.training import checkpoint
    from ofa.data import load_series, make_splits
    from ofa.training.loop import val_mse

    model, meta = checkpoint.load(str(out), backbone=backbone)
    splits = make_splits(load_series(data, None), 64, 16)
    tc = meta["train"]
    got = val_mse(model, splits.val, tc["max_val_series"], tc["precision"])
    assert got == pytest.approx(meta["best_val_mse"], rel=1e-5), "weights and metadata of different epochs"
    named = {f["name"] for f in meta["files"].values()}
    return named


def test_kill_9_at_any_point_of_train_leaves_a_whole_checkpoint(tmp_path, tiny_gpt2):
    from conftest import sines, write_csv

    data = write_csv(tmp_path / "d.csv", sines(500) + 0.05 * np.random.default_rng(0).standard_normal((500, 2)),
                     ["a", "b"])
    straight = _run_killed(tmp_path, "replace", 10**9, _train_argv(data, tmp_path / "straight", tiny_gpt2))
    assert straight.returncode == 0, straight.stderr
    renames = int(straight.stdout.split("CALLS")[-1])
    want = json.loads((tmp_path / "straight" / "ofa.json").read_text())
    # Kill before several renames (between one file and the next of a save) and inside writes (fsync:
    # the temp file is complete, not yet renamed), through the epoch-0 and later checkpoints.
    points = [("replace", n) for n in sorted({2, renames // 2, renames})] + [("fsync", 5)]
    finished_before_kill = 0
    for fn, n in points:
        out = tmp_path / f"killed-{fn}-{n}"
        proc = _run_killed(tmp_path, fn, n, _train_argv(data, out, tiny_gpt2))
        assert proc.returncode == -9, (fn, n, proc.returncode, proc.stderr[-500:])
        if (out / "ofa.json").exists():
            finished_before_kill += 1
            _assert_consistent(out, data, tiny_gpt2)
        resume = ["--resume"] if (out / "resume.safetensors").exists() else []
        again = subprocess.run([sys.executable, "-m", "ofa", *_train_argv(data, out, tiny_gpt2, *resume)],
                               capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        named = _assert_consistent(out, data, tiny_gpt2)
        meta = json.loads((out / "ofa.json").read_text())
        assert [h["val_mse"] for h in meta["history"]] == [h["val_mse"] for h in want["history"]]
        left = {p.name for p in out.iterdir()} - named - {"ofa.json", "resume.safetensors"}
        assert not left, f"stale files after the next run: {left}"
    assert finished_before_kill >= 2  # some kills did land after a first checkpoint was committed


def test_written_files_keep_the_users_permissions(fp32_file, tmp_path):
    from ofa.export.merge import quantize_model_file

    path, data = fp32_file
    old = os.umask(0o027)
    try:
        quantize_model_file(path, str(tmp_path / "q.ofa"), data, 8)
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "q.ofa").st_mode & 0o777) == 0o640


def test_stale_temp_files_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    from ofa.fileio import atomic_write_bytes

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = [f".m.ofa.ofa{dead}-abc123.tmp", ".m.ofa.k2j3h4g5.tmp", ".resume.pt.a1b2c3d4.tmp"]
    live = f".m.ofa.ofa{os.getppid()}-zz.tmp"  # a live process's temp file stays
    for name in [*stale, live]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".adapter-q1w2e3r4").mkdir()
    atomic_write_bytes(str(tmp_path / "m.ofa"), b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.ofa", live])


def test_int8_calibration_data_never_comes_from_the_checkpoint(gpt2_run, tiny_gpt2, tmp_path):
    """ofa.json records the training data's path; --int8 without --data is refused, not fed from it."""
    run, data = gpt2_run
    assert json.loads((run / "ofa.json").read_text())["data"]["path"] == data  # a readable file is recorded
    out = tmp_path / "m8.ofa"
    proc = subprocess.run([sys.executable, "-m", "ofa", "export", "--checkpoint", str(run), "--int8", "--out", str(out),
                           "--backbone", tiny_gpt2], capture_output=True, text=True)
    assert proc.returncode == 2 and "needs calibration data" in proc.stderr and "--data" in proc.stderr, proc.stderr
    assert not out.exists()
