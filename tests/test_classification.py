"""Classification: the .ts reader (good files and each bad input, through the CLI too), the 1-NN baseline,
and a train + eval round trip of the classifier on a tiny random GPT-2."""
import json
import math
import os

import numpy as np
import pytest
from conftest import shared_file

from ofa.classification import read_ts
from ofa.classification.uea import pad, resample
from ofa.cli import main
from ofa.errors import OfaError

HEADER = "@problemName Toy\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength false\n"


def write(tmp_path, text, name="toy_TRAIN.ts"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def toy(tmp_path, rows=("1,2,3:4,5,6:a", "7,8:9,10:b"), classes="a b", header=HEADER, name="toy_TRAIN.ts"):
    return write(tmp_path, "# a comment\n" + header + f"@classLabel true {classes}\n@data\n" + "\n".join(rows) + "\n",
                 name)


def test_reader_keeps_unequal_lengths_with_zeros_after_each_case(tmp_path):
    d = read_ts(toy(tmp_path))
    assert d.values.dtype == np.float32 and d.values.shape == (2, 2, 3)
    assert d.lengths.tolist() == [3, 2] and d.labels.tolist() == [0, 1] and d.classes == ["a", "b"]
    assert d.values[1].tolist() == [[7, 8, 0], [9, 10, 0]] and d.values[0, 1].tolist() == [4, 5, 6]
    assert d.name == "Toy"


def test_labels_follow_the_declared_order_not_the_order_of_appearance(tmp_path):
    d = read_ts(toy(tmp_path, rows=("1:b", "2:a", "3:b"), classes="b a", header="@dimensions 1\n"))
    assert d.classes == ["b", "a"] and d.labels.tolist() == [0, 1, 0]


BAD = [
    ("@problemName Toy\n@dimensions 1\n@data\n1,2:a\n", "no @classLabel line before @data (line 3)"),
    (HEADER + "@classLabel true a b\n@data\n1,2:3,4:a\n5,6:7,8:c\n",
     "line 9: class label 'c' is not declared in @classLabel (line 6: a b)"),
    (HEADER.replace("@dimensions 2\n", "") + "@classLabel true a\n@data\n1,2:3,4:a\n1,2:a\n",
     "line 8: ragged dimensions: the case has 1 dimensions, the first case (line 7) has 2"),
    (HEADER + "@classLabel true a\n@data\n1,2:3,x4:a\n", "line 8, dimension 2: non-numeric value 'x4'"),
    (HEADER + "@classLabel true a\n@data\n1,2:3,nan:a\n", "non-finite value 'nan'"),
    (HEADER + "@classLabel true a\n@data\n1,?:3,4:a\n", "missing value '?'"),
    ("", "empty file"),
    ("\n\n# only a comment\n", "empty file"),
    (HEADER + "@classLabel true a\n@data\n", "no cases after @data (line 7)"),
    (HEADER + "@classLabel false\n@data\n1,2:3,4\n", "@classLabel false"),
    (HEADER + "@classLabel true a\n@data\n1,2:3,4:5,6:a\n", "the case has 3 dimensions, @dimensions (line 4) declares 2"),
    (HEADER + "@classLabel true a\n@data\n1,2:3,4,5:a\n", "different lengths (2, 3)"),
    ("1,2:a\n", "line 1: expected a header line"),
    (HEADER + "@timeStamps true\n@classLabel true a\n@data\n(0,1):a\n", "(@timeStamps true) are not supported"),
]


@pytest.mark.parametrize("text,needle", BAD)
def test_bad_files_are_refused_naming_file_and_line(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(OfaError) as exc:
        read_ts(path)
    assert needle in str(exc.value) and path in str(exc.value)


@pytest.mark.parametrize("text,needle", BAD[:4] + BAD[6:7])
def test_cli_train_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, text, needle):
    path = write(tmp_path, text)
    code = main(["train", "--task", "classify", "--data", path, "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1 and err.startswith("ofa train: error:")
    assert not (tmp_path / "run").exists()


def test_missing_file_and_a_ts_file_given_to_the_forecaster(tmp_path, capsys):
    code = main(["train", "--task", "classify", "--data", str(tmp_path / "nope.ts"), "--out", str(tmp_path / "r")])
    assert code == 2 and "data file not found" in capsys.readouterr().err
    code = main(["train", "--data", toy(tmp_path), "--out", str(tmp_path / "r")])
    assert code == 2 and "--task classify" in capsys.readouterr().err


def test_resample_and_pad_make_fixed_windows():
    values = np.zeros((2, 1, 5), np.float32)
    values[0, 0, :3] = [0, 1, 2]
    values[1, 0] = [5, 6, 7, 8, 9]
    lengths = np.array([3, 5])
    assert resample(values, lengths, 5)[0, 0].tolist() == [0, 0.5, 1, 1.5, 2]  # a ramp stays a ramp
    assert resample(values, lengths, 5)[1, 0].tolist() == [5, 6, 7, 8, 9]
    assert pad(values, lengths, 4)[:, 0].tolist() == [[0, 1, 2, 2], [5, 6, 7, 8]]  # last value repeated; cut


def test_auto_patch_and_stratified_split():
    from ofa.training.classifier import auto_patch, stratified_split

    assert auto_patch(26) == (4, 2) and auto_patch(100) == (16, 8) and auto_patch(7) == (2, 1)
    assert auto_patch(1000) == (16, 8)
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(17)) and not set(tr) & set(va)
    assert np.bincount(labels[va]).tolist() == [2, 1, 1]  # each class in validation, never all of one


def test_dtw_matches_the_textbook_recursion():
    from ofa.classification.baseline import dtw_to_all

    def naive(a, b):
        D = np.full((a.shape[1] + 1, b.shape[1] + 1), np.inf)
        D[0, 0] = 0
        for i in range(a.shape[1]):
            for j in range(b.shape[1]):
                D[i + 1, j + 1] = ((a[:, i] - b[:, j]) ** 2).sum() + min(D[i, j], D[i, j + 1], D[i + 1, j])
        return D[-1, -1]

    rng = np.random.default_rng(0)
    q, refs, lengths = rng.normal(size=(3, 7)), rng.normal(size=(4, 3, 9)), np.array([9, 5, 1, 7])
    want = [naive(q, refs[k, :, :lengths[k]]) for k in range(4)]
    assert np.allclose(dtw_to_all(q, refs, lengths), want)
    # A shifted copy is close under DTW, far under the Euclidean distance.
    t = np.linspace(0, 6, 30)
    a, b = np.sin(t)[None], np.sin(t - 0.6)[None]
    assert dtw_to_all(a, b[None], np.array([30]))[0] < 0.2 * ((a - b) ** 2).sum()


def toy_set(rng, cases, name, longest=16):
    """Two classes of 3-channel noisy sines of 10 to `longest` steps: class b sits 2 higher and is faster."""
    rows = []
    for i in range(cases):
        label = "ab"[i % 2]
        n = int(rng.integers(10, longest + 1))
        t = np.arange(n)
        dims = [np.sin(t / (2.0 if label == "a" else 0.8) + c) + (2.0 if label == "b" else 0.0)
                + 0.1 * rng.standard_normal(n) for c in range(3)]
        rows.append(":".join(",".join(f"{v:.4f}" for v in d) for d in dims) + f":{label}")
    return rows


def test_nearest_neighbour_separates_an_easy_set(tmp_path):
    from ofa.classification.baseline import accuracy

    rng = np.random.default_rng(1)
    header = HEADER.replace("@dimensions 2", "@dimensions 3")
    train = read_ts(toy(tmp_path, toy_set(rng, 20, "t"), header=header))
    test = read_ts(toy(tmp_path, toy_set(rng, 20, "t"), header=header, name="toy_TEST.ts"))
    assert accuracy(train, test, "euclidean") >= 0.9 and accuracy(train, test, "dtw") >= 0.9


def test_train_eval_round_trip_on_a_tiny_gpt2(tmp_path, capsys, tiny_gpt2):
    import torch

    from ofa.training import backbone as backbones
    from ofa.training import checkpoint, classifier

    rng = np.random.default_rng(0)
    header = HEADER.replace("@dimensions 2", "@dimensions 3")
    train = toy(tmp_path, toy_set(rng, 40, "t"), header=header)
    test = toy(tmp_path, toy_set(rng, 20, "t", longest=20), header=header, name="toy_TEST.ts")
    out = tmp_path / "run"
    code = main(["train", "--task", "classify", "--data", train, "--out", str(out), "--backbone", tiny_gpt2,
                 "--layers", "1", "--epochs", "4", "--lr", "0.003", "--quiet", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    assert "best val accuracy" in capsys.readouterr().out
    meta = json.loads((out / "ofa.json").read_text())
    assert meta["task"] == "classify" and meta["model"]["patch"] == 2 and meta["model"]["seq_len"] == 16
    assert sorted(os.listdir(out)) == sorted(["ofa.json", meta["files"]["adapters"]["name"]])  # safetensors only
    code = main(["eval", "--checkpoint", str(out), "--backbone", tiny_gpt2, "--data", test, "--json", str(tmp_path / "s.json")])
    assert code == 0, capsys.readouterr().err
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["cases"] == 20 and scores["accuracy"] >= 0.9  # the classes differ in level: learnt in 4 epochs
    assert scores["longer_than_window"] > 0  # test cases up to 20 steps, resampled onto the 16-step window
    assert "test accuracy" in capsys.readouterr().out

    # Only the position LoRA, the input layer and the head train; a reload predicts the same logits.
    model, _ = classifier.load(str(out), backbone=tiny_gpt2)
    fresh = classifier.build(model.get_base_model().cfg, backbones.load(tiny_gpt2, 1), [0, 0, 0], [1, 1, 1])
    names = {n for n, p in fresh.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n or ".in_layer." in n or ".head." in n for n in names)
    data = read_ts(test)
    x = classifier.windows(data, model.get_base_model().cfg)
    again, _ = classifier.load(str(out), backbone=tiny_gpt2)
    assert np.array_equal(classifier.logits_of(model, x, torch.device("cpu")),
                          classifier.logits_of(again, x, torch.device("cpu")))

    # The forecaster refuses the classifier's checkpoint, and the classifier a file of other classes or widths.
    with pytest.raises(OfaError, match="'classify' checkpoint, not a forecaster"):
        checkpoint.load(str(out), backbone=tiny_gpt2)
    other = toy(tmp_path, ["1,2:3,4:5,6:z"], classes="a z", header=header, name="other_TEST.ts")
    code = main(["eval", "--checkpoint", str(out), "--backbone", tiny_gpt2, "--data", other])
    assert code == 2 and "class 'z' is not one of the 2 classes the model was trained on" in capsys.readouterr().err
    narrow = toy(tmp_path, ["1,2:3,4:a"], header=HEADER, name="narrow_TEST.ts")
    code = main(["eval", "--checkpoint", str(out), "--backbone", tiny_gpt2, "--data", narrow])
    assert code == 2 and "cases have 2 dimensions, the classifier was trained on 3" in capsys.readouterr().err
    code = main(["eval", "--checkpoint", str(out), "--backbone", tiny_gpt2, "--data", write(tmp_path, "", "empty_TEST.ts")])
    assert code == 2 and "empty file" in capsys.readouterr().err
    # A backbone path recorded in ofa.json is not followed unless the user names it.
    code = main(["eval", "--checkpoint", str(out), "--data", test])
    assert code == 2 and "a path outside the checkpoint directory" in capsys.readouterr().err
    # A tampered weight file is refused (the checkpoint's sha256 record), not loaded.
    weights = out / meta["files"]["adapters"]["name"]
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    code = main(["eval", "--checkpoint", str(out), "--backbone", tiny_gpt2, "--data", test])
    assert code == 2 and "does not match the size and sha256" in capsys.readouterr().err


def test_the_shared_uea_files_read_as_documented():
    d = read_ts(shared_file("UEA/JapaneseVowels/JapaneseVowels_TRAIN.ts"))
    assert d.values.shape == (270, 12, 26) and d.classes == [str(k) for k in range(1, 10)]
    assert (d.lengths.min(), d.lengths.max()) == (7, 26) and np.bincount(d.labels).tolist() == [30] * 9
    t = read_ts(shared_file("UEA/JapaneseVowels/JapaneseVowels_TEST.ts"))
    assert t.cases == 370 and t.lengths.max() == 29
    b = read_ts(shared_file("UEA/BasicMotions/BasicMotions_TEST.ts"))
    assert b.values.shape == (40, 6, 100) and b.classes == ["Standing", "Running", "Walking", "Badminton"]


def test_dtw_baseline_on_basic_motions():
    from ofa.classification.baseline import accuracy

    train = read_ts(shared_file("UEA/BasicMotions/BasicMotions_TRAIN.ts"))
    test = read_ts(shared_file("UEA/BasicMotions/BasicMotions_TEST.ts"))
    assert accuracy(train, test, "dtw") == pytest.approx(0.975)  # 39 of 40 (bench/results/classification.json)


def test_refit_trains_on_every_case_for_the_best_epoch_count(tmp_path, capsys, tiny_gpt2):
    from ofa.classification.uea import channel_stats

    rng = np.random.default_rng(2)
    header = HEADER.replace("@dimensions 2", "@dimensions 3")
    train = toy(tmp_path, toy_set(rng, 20, "t"), header=header)
    out = tmp_path / "run"
    code = main(["train", "--task", "classify", "--data", train, "--out", str(out), "--backbone", tiny_gpt2,
                 "--layers", "1", "--epochs", "3", "--lr", "0.003", "--quiet", "--threads", "1", "--refit"])
    assert code == 0, capsys.readouterr().err
    assert "then refit on all 20 cases" in capsys.readouterr().out
    meta = json.loads((out / "ofa.json").read_text())
    assert meta["refit"]["cases"] == 20 and meta["refit"]["epochs"] == meta["best_epoch"]
    mean, _ = channel_stats(read_ts(train))  # the refit's scaler is every case's, not the 16 training cases'
    assert np.allclose(meta["scaler"]["mean"], mean) and meta["data"]["train_cases"] == 16
    assert len([f for f in os.listdir(out) if f.endswith(".safetensors")]) == 1


# ---- the classifier in the C++ engine (fp32 and int8) --------------------------------------------------

def classifier_run(tmp_path, backbone, norm="global", pool="flatten", seed=3, tokens="channel"):
    """A tiny classifier on the toy set, trained briefly, its adapters then perturbed so every exported tensor
    carries a trained update; returns (run, train .ts, test .ts)."""
    import torch

    from ofa.training import checkpoint, classifier

    rng = np.random.default_rng(seed)
    header = HEADER.replace("@dimensions 2", "@dimensions 3")
    train = toy(tmp_path, toy_set(rng, 40, "t"), header=header)
    test = toy(tmp_path, toy_set(rng, 24, "t", longest=20), header=header, name="toy_TEST.ts")
    out = str(tmp_path / "run")
    classifier.train(train, out, classifier.ClassifierConfig(backbone=backbone, layers=1, norm=norm, pool=pool,
                                                             tokens=tokens),
                     classifier.ClassifyTrainConfig(epochs=3, lr=3e-3, threads=1), log=lambda line: None)
    model, meta = classifier.load(out, backbone=backbone)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.add_(0.05 * torch.randn_like(p))
    checkpoint.save(out, model, {k: v for k, v in meta.items() if k != "format"}, frozen={})
    return out, train, test


@pytest.mark.parametrize("backbone,norm,pool,tokens", [
    ("gpt2", "global", "flatten", "channel"), ("gpt2", "instance", "mean", "channel"),
    ("minilm", "global", "mean", "channel"), ("gpt2", "global", "flatten", "joined"),
    ("minilm", "instance", "mean", "joined")])
def test_exported_classifier_matches_pytorch_and_the_references(tmp_path, capsys, tiny_gpt2, backbone, norm, pool,
                                                                tokens):
    import torch

    import ofa
    from ofa import _engine
    from ofa.modelfile import read_model_file
    from ofa.reference.float_forward import FloatForward
    from ofa.reference.int8_reference import Int8Forward
    from ofa.runtime.classifying import probabilities, windows
    from ofa.training import classifier

    backbone = tiny_gpt2 if backbone == "gpt2" else backbone
    run, train, test = classifier_run(tmp_path, backbone, norm, pool, tokens=tokens)
    m32, m8 = str(tmp_path / "c.ofa"), str(tmp_path / "c8.ofa")
    assert main(["export", "--checkpoint", run, "--backbone", backbone, "--out", m32]) == 0
    assert main(["export", "--checkpoint", run, "--backbone", backbone, "--int8", "--data", train, "--out", m8]) == 0
    assert "linear, 2 classes" in capsys.readouterr().out
    engine, engine8 = ofa.load(m32), ofa.load(m8)
    assert engine.classes == ["a", "b"] and engine.task == "classify" and engine.lengths == "resample"
    x = windows(engine, test)
    assert x.shape == (24, 3, 16)
    torch_model, _ = classifier.load(run, backbone=backbone)
    want = classifier.logits_of(torch_model, x, torch.device("cpu"))
    z = ofa.infer(engine, x)
    assert z.shape == (24, 2) and want.std() > 0.01  # logits that vary: a comparison that can fail
    # fp32: the merged file computes what PyTorch does (float32 sums in another order: 1e-4 of the range).
    np.testing.assert_allclose(z, want, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    tensors, meta = read_model_file(m32)
    config = json.loads(meta["config"])
    assert config["task"] == "classify" and config["norm"] == norm and "horizon" not in config
    assert config["tokens"] == tokens and tensors["in_layer.weight"].shape[1] == 2 * (3 if tokens == "joined" else 1)
    assert main(["info", m32]) == 0
    described = "one sequence of joined tokens (6 values" if tokens == "joined" else "over all channels' states"
    assert described in capsys.readouterr().out
    np.testing.assert_allclose(FloatForward(config, tensors).run(x), z, atol=1e-5 * max(1.0, float(np.abs(z).max())))
    # int8: the numpy reference's bits on every ISA and tiling; its classes mostly those of fp32.
    tensors8, meta8 = read_model_file(m8, schemes=("int8",))
    config8 = json.loads(meta8["config"])
    want8 = Int8Forward(config8, tensors8).run(x)
    for isa in _engine.available_int8_isas():
        for tile in (1, 5, 16):
            got = _engine.EngineInt8(config8, tensors8, isa=isa, tile_series=tile).run(x)
            assert np.array_equal(got.view(np.int32), want8.view(np.int32)), (isa, tile)
    assert np.array_equal(ofa.infer(engine8, x).view(np.int32), want8.view(np.int32))
    assert np.mean(want8.argmax(1) == z.argmax(1)) >= 0.9
    # One window, probabilities, and cases given as arrays: the same windows as from the file.
    assert np.array_equal(ofa.infer(engine, x[3]), z[3])
    p = probabilities(z)
    assert np.allclose(p.sum(1), 1) and np.array_equal(p.argmax(1), z.argmax(1))
    data = read_ts(test)
    cases = [data.values[i, :, :data.lengths[i]] for i in range(data.cases)]
    assert np.array_equal(windows(engine, cases), x)
    # ofa eval: the engine's accuracy from the file, PyTorch's from the checkpoint, in one format.
    for args, engine_name in ((["--model", m8], "ofa-int8"), (["--model", m32], "ofa-fp32"),
                              (["--checkpoint", run, "--backbone", backbone], "torch")):
        assert main(["eval", *args, "--data", test, "--json", str(tmp_path / "s.json")]) == 0
        scores = json.loads((tmp_path / "s.json").read_text())
        logits = {"ofa-int8": want8, "ofa-fp32": z, "torch": want}[engine_name]
        assert scores["engine"] == engine_name and scores["cases"] == 24
        assert scores["correct"] == int(np.sum(logits.argmax(1) == data.labels))  # the file's classes are a, b too
    assert "test accuracy" in capsys.readouterr().out


def test_engine_classifier_refuses_bad_input_and_inconsistent_files(tmp_path, capsys, tiny_gpt2):
    from test_safety import rewrite

    import ofa
    from ofa.runtime.classifying import windows
    from ofa.training import classifier

    run, train, test = classifier_run(tmp_path, tiny_gpt2)
    path = str(tmp_path / "c.ofa")
    assert main(["export", "--checkpoint", run, "--backbone", tiny_gpt2, "--out", path]) == 0
    model = ofa.load(path)
    x = windows(model, test)
    for bad, needle in ((x.transpose(0, 2, 1).copy(), "needs \\(..., 3, 16\\)"), (x[:, :2], "needs"),
                        (x[0, 0], "one window \\(C, seq_len\\)"), (x.astype(np.float64), "float32"),
                        (np.full_like(x, np.nan), "NaN")):
        with pytest.raises(OfaError, match=needle):
            ofa.infer(model, bad)
    narrow = toy(tmp_path, ["1,2:3,4:a"], header=HEADER, name="narrow_TEST.ts")
    with pytest.raises(OfaError, match="cases have 2 dimensions, the classifier was trained on 3"):
        windows(model, narrow)

    def config_edit(**fields):
        def edit(meta):
            config = json.loads(meta["config"])
            config.update(fields)
            meta["config"] = json.dumps({k: v for k, v in config.items() if v is not None})
        return edit

    K, F = 2, 3 * 9 * 32  # 2 classes, 3 channels x 9 patches x d 32
    bad_files = [
        (config_edit(n_classes=1), None, "invalid config"),                      # K < 2
        (config_edit(n_classes=3), None, "head.weight: expected shape \\(3, "),   # W rows != K
        (config_edit(horizon=4), None, "invalid config"),                        # a horizon too
        (config_edit(task="forecast"), None, "config is missing key 'horizon'"),
        (config_edit(norm="robust"), None, "'instance' or 'global'"),
        (config_edit(tokens="mixed"), None, "'channel' or 'joined'"),
        (config_edit(tokens="joined"), None, "in_layer.weight: expected shape"),      # a channel model's (d, P)
        (None, lambda t: t.update({"head.weight": np.zeros((K, F - 1), np.float32)}), "head.weight: expected shape"),
        (None, lambda t: t.update({"head.bias": np.zeros(K + 1, np.float32)}), "head.bias: expected shape"),
        (lambda m: m.update(classes=json.dumps(["a", "b", "c"])), None, "3 class names for a head of 2 classes"),
    ]
    for i, (meta_edit, tensor_edit, needle) in enumerate(bad_files):
        bad = rewrite(path, tmp_path / f"bad{i}.ofa", meta_edit, tensor_edit)
        with pytest.raises(OfaError, match=needle):
            ofa.load(bad)
        assert main(["eval", "--model", bad, "--data", test]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ofa eval: error:") and len(err.splitlines()) == 1
    # A classifier is not a forecaster: ofa forecast, the firmware emitter and horizon say so.
    with pytest.raises(OfaError, match="is a classifier"):
        model.horizon
    assert main(["forecast", "--model", path, "--data", test, "--out", str(tmp_path / "f.csv")]) == 2
    assert "is a classifier" in capsys.readouterr().err
    assert main(["info", path]) == 0
    assert "classes a, b" in capsys.readouterr().out
    # The README's Python block, as written but for its two files.
    import re

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    block = re.search(r"### The classifier in the C\+\+ engine.*?```python\n(.*?)```", readme, re.S).group(1)
    for old, new in (('"jv-int8.ofa"', repr(path)), ('".../JapaneseVowels_TEST.ts"', repr(test))):
        assert old in block, f"the README example no longer contains {old}"
        block = block.replace(old, new)
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["logits"].shape == (24, 2) and np.allclose(scope["p"].sum(1), 1)
    # Norm instance+stats has no engine path: refused at export, naming the way out; no file written.
    stats_run = str(tmp_path / "stats")
    classifier.train(train, stats_run, classifier.ClassifierConfig(backbone=tiny_gpt2, layers=1, norm="instance+stats"),
                     classifier.ClassifyTrainConfig(epochs=1, threads=1), log=lambda line: None)
    assert main(["export", "--checkpoint", stats_run, "--backbone", tiny_gpt2, "--out", str(tmp_path / "s.ofa")]) == 2
    assert "norm 'instance+stats' cannot be exported" in capsys.readouterr().err
    assert not (tmp_path / "s.ofa").exists()


def test_mixup_and_label_smoothing_losses_are_the_documented_mixtures():
    import torch

    from ofa.training import classifier

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    x, y = torch.randn(8, 2, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])

    def run(**tc):
        return classifier._Run(model, None, classifier.ClassifyTrainConfig(**tc), 1, torch.device("cpu"))

    ce = torch.nn.functional.cross_entropy
    plain = run().loss(x, y, np.random.default_rng(0))
    assert torch.allclose(plain, ce(model(x), y))
    smooth = run(label_smoothing=0.1).loss(x, y, np.random.default_rng(0))
    z = torch.log_softmax(model(x), 1)
    assert torch.allclose(smooth, (-(0.9 * z.gather(1, y[:, None])[:, 0]) - 0.1 * z.mean(1)).mean())
    mixed = run(mixup=0.4).loss(x, y, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    lam, partner = float(rng.beta(0.4, 0.4)), torch.from_numpy(rng.permutation(8))
    z = model(lam * x + (1 - lam) * x[partner])
    assert 0 < lam < 1 and torch.allclose(mixed, lam * ce(z, y) + (1 - lam) * ce(z, y[partner]))
    assert not torch.allclose(mixed, plain)


@pytest.mark.parametrize("bad", [{"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"mixup": -1.0}, {"mixup": math.inf},
                                 {"mixup": float("nan")}, {"ema": 1.0}])
def test_bad_regulariser_settings_are_refused_before_training(tmp_path, bad):
    from ofa.training import classifier

    with pytest.raises(OfaError, match="label smoothing and ema"):
        classifier.train(toy(tmp_path), str(tmp_path / "run"), tc=classifier.ClassifyTrainConfig(**bad),
                         log=lambda line: None)
    assert not (tmp_path / "run").exists()


def test_ema_validates_the_moving_average_and_restores_the_raw_weights():
    import torch

    from ofa.training import classifier

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    x, y = np.random.default_rng(0).normal(size=(8, 2, 3)).astype(np.float32), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    start = [p.detach().clone() for p in model.parameters()]
    tc = classifier.ClassifyTrainConfig(ema=0.75, batch_size=8, lr=0.5)
    run = classifier._Run(model, torch.optim.SGD(model.parameters(), lr=0.5), tc, 10, torch.device("cpu"))
    run.epoch(x, y, np.random.default_rng(0), 1)  # one step
    raw = [p.detach().clone() for p in model.parameters()]
    assert not torch.allclose(raw[0], start[0])
    with run.averaged():
        for p, p0, p1 in zip(model.parameters(), start, raw):
            assert torch.allclose(p, 0.75 * p0 + 0.25 * p1)
    for p, p1 in zip(model.parameters(), raw):
        assert torch.equal(p, p1)


def test_cli_refuses_a_bad_mixup_with_one_line(tmp_path, capsys):
    code = main(["train", "--task", "classify", "--data", toy(tmp_path), "--out", str(tmp_path / "run"),
                 "--mixup", "-0.5", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "mixup" in err and len(err.splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", [["--mixup", "0.2"], ["--tokens", "joined"], ["--refit"], ["--ema", "0.9"],
                                  ["--pool", "mean"], ["--val-fraction", "0.3"]])
def test_a_forecaster_refuses_the_classifier_options(tmp_path, capsys, flag):
    out = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "series.csv"), "--out", str(out), *flag])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"{flag[0]} applies to --task classify only" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_keep_last_runs_the_whole_schedule_and_saves_its_end(tmp_path, tiny_gpt2):
    import torch

    from ofa.training import classifier

    header = HEADER.replace("@dimensions 2", "@dimensions 3")
    train = toy(tmp_path, toy_set(np.random.default_rng(4), 20, "t"), header=header)
    out = str(tmp_path / "run")
    meta = classifier.train(train, out, classifier.ClassifierConfig(backbone=tiny_gpt2, layers=1),
                            classifier.ClassifyTrainConfig(epochs=4, patience=1, lr=3e-3, threads=1, keep="last",
                                                           mixup=0.2, ema=0.9), log=lambda line: None)
    assert meta["best_epoch"] == 4 and len(meta["history"]) == 4
    assert meta["best_val_loss"] == meta["history"][-1]["val_loss"]
    model, _ = classifier.load(out, backbone=tiny_gpt2)  # the saved model is the one validated last
    x = classifier.windows(read_ts(train), model.get_base_model().cfg)
    _, va = classifier.stratified_split(read_ts(train).labels, 0.2, 0)
    z = classifier.logits_of(model, x[va], torch.device("cpu"))
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(z), torch.from_numpy(read_ts(train).labels[va]))
    assert abs(loss.item() - meta["best_val_loss"]) < 1e-5
    with pytest.raises(OfaError, match="keep"):
        classifier.train(train, str(tmp_path / "bad"), tc=classifier.ClassifyTrainConfig(keep="first"))


def test_joined_tokens_own_their_sizes_and_stay_within_the_engine():
    from ofa.training.classifier import ClassifierConfig

    cfg = ClassifierConfig(classes=["a", "b"], channels=12, seq_len=26, patch=4, stride=2, tokens="joined")
    cfg.check()
    assert (cfg.sequences, cfg.token_width) == (1, 48)
    cfg.tokens = "channel"
    assert (cfg.sequences, cfg.token_width) == (12, 4)
    wide = ClassifierConfig(classes=["a", "b"], channels=5000, seq_len=100, patch=16, stride=8, tokens="joined")
    with pytest.raises(OfaError, match="joined token of 16 x 5000 values exceeds the engine's 65,536"):
        wide.check()
    with pytest.raises(OfaError, match="tokens must be one of"):
        ClassifierConfig(classes=["a", "b"], channels=2, seq_len=8, patch=2, stride=1, tokens="mixed").check()
