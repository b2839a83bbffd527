import numpy as np
import pytest
from conftest import shared_file, write_csv

from ofa.data import load_csv, make_splits, n_patches, split_borders, Series
from ofa.errors import OfaError


def test_ett_hour_borders_are_the_published_ones():
    train, val, test = split_borders("ett-hour", 17420, 336)
    assert train == (0, 8640) and val == (8640 - 336, 11520) and test == (11520 - 336, 14400)


def test_ett_minute_borders_are_four_times_the_hour_ones():
    train, val, test = split_borders("ett-minute", 69680, 512)
    assert train == (0, 34560) and val == (34560 - 512, 46080) and test == (46080 - 512, 57600)


def test_custom_split_is_70_10_20_like_tslib():
    train, val, test = split_borders("0.7,0.1,0.2", 52696, 336)
    assert train == (0, 36887) and val == (36887 - 336, 42157) and test == (42157 - 336, 52696)


def test_auto_split_recognises_ett_by_content_not_by_name(tmp_path):
    from ofa.data import ETT_COLUMNS, resolved_split

    ett_like = np.random.default_rng(0).standard_normal((17420, 7))
    named_other = load_csv(write_csv(tmp_path / "mydata.csv", ett_like, ETT_COLUMNS))
    assert resolved_split(named_other) == "ett-hour"  # the ETT file's columns and length, whatever its name
    not_ett = load_csv(write_csv(tmp_path / "etth_sensors.csv", ett_like[:3000, :2], ["a", "b"]))
    assert resolved_split(not_ett) == "0.7,0.1,0.2"  # a name starting with "etth" no longer means ETT


@pytest.mark.parametrize("spec,borders", [
    ("0.6,0.2,0.2", ((0, 600), (600 - 32, 800), (800 - 32, 1000))),
    ("0.5,0.1,0.1", ((0, 500), (500 - 32, 600), (600 - 32, 700))),
    ("rows:400,100,200", ((0, 400), (400 - 32, 500), (500 - 32, 700))),
])
def test_user_splits(spec, borders):
    assert split_borders(spec, 1000, 32) == borders


@pytest.mark.parametrize("spec", ["0.7,0.7,0.2", "0.7,0.1", "rows:10,x,3", "ett", "-0.1,0.5,0.5"])
def test_bad_split_is_refused_by_name(spec):
    from ofa.data import check_split

    with pytest.raises(OfaError, match="--split"):
        check_split(spec)


def test_train_and_eval_print_and_keep_the_split(tmp_path, small_csv, capsys):
    from ofa.cli import main

    out = tmp_path / "run"
    assert main(["train", "--data", small_csv, "--out", str(out), "--seq-len", "32", "--horizon", "8", "--layers",
                 "1", "--epochs", "1", "--quiet", "--max-train-windows", "30", "--split", "0.6,0.2,0.2"]) == 0
    printed = capsys.readouterr().out
    assert "split 0.6,0.2,0.2: train rows 0-359 (2020-01-01T00:00 to 2020-01-15T23:00)" in printed
    assert main(["eval", "--checkpoint", str(out), "--data", small_csv]) == 0
    assert "split 0.6,0.2,0.2: train rows 0-359" in capsys.readouterr().err  # eval uses the recorded split


def test_patch_count_matches_gpt4ts():
    assert n_patches(336, 16, 8) == 42
    assert n_patches(512, 16, 8) == 64
    assert n_patches(512, 16, 16) == 33


def test_every_test_window_is_scored_and_scaler_uses_train_only():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((1000, 3)).astype(np.float32)
    values[800:] += 100.0  # test part far off: a scaler fitted on all rows would move
    splits = make_splits(Series("custom", values, ["a", "b", "c"]), 64, 16)
    np.testing.assert_allclose(splits.scaler.mean, values[:700].mean(0), rtol=1e-5)
    n_test_rows = 1000 - 800 + 64
    assert len(splits.test.starts) == n_test_rows - 64 - 16 + 1
    assert len(splits.test) == 3 * len(splits.test.starts)
    x, y = splits.test.windows()
    assert x.shape == (len(splits.test.starts), 64, 3) and y.shape[1:] == (16, 3)
    # last window ends exactly at the last row
    np.testing.assert_allclose(y[-1, -1], splits.scaler.transform(values)[-1], rtol=1e-6)


def test_channel_independent_items_match_windows():
    values = np.arange(500 * 2, dtype=np.float32).reshape(500, 2)
    splits = make_splits(Series("custom", values, ["a", "b"]), 32, 8)
    x, y = splits.train.batch(np.array([0, 1, 2]))
    xw, yw = splits.train.windows()
    np.testing.assert_array_equal(x[1], xw[0, :, 1])
    np.testing.assert_array_equal(x[2], xw[1, :, 0])
    np.testing.assert_array_equal(y[0], yw[0, :, 0])


def test_train_fraction_follows_tslib_percent_rule():
    values = np.random.default_rng(0).standard_normal((1000, 1)).astype(np.float32)
    full = make_splits(Series("custom", values, ["a"]), 64, 16)
    few = make_splits(Series("custom", values, ["a"]), 64, 16, train_fraction=0.1)
    rows = int((700 - 64) * 0.1) + 64
    assert len(few.train.starts) == rows - 64 - 16 + 1
    np.testing.assert_array_equal(few.scaler.mean, full.scaler.mean)


def test_real_etth1_split_sizes():
    series = load_csv(shared_file("ETT/ETTh1.csv"))
    assert series.values.shape == (17420, 7) and series.channels[-1] == "OT"
    splits = make_splits(series, 336, 96)
    assert len(splits.test.starts) == 2880 - 96 + 1  # 2785 windows, none dropped
    assert len(splits.train.starts) == 8640 - 336 - 96 + 1


@pytest.mark.parametrize("content,message", [
    ("date,a\n2020,1\n2021,x\n", "non-numeric"),
    ("date,a\n2020,1\n2021,nan\n", "non-finite"),
    ("date,a\n2020,1\n2021,inf\n", "non-finite"),
    ("date\n2020\n", "numeric column"),
])
def test_bad_csv_contents(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(OfaError, match=message):
        load_csv(str(path))


def test_missing_file_and_column(tmp_path, small_csv):
    with pytest.raises(OfaError, match="not found"):
        load_csv(str(tmp_path / "nope.csv"))
    with pytest.raises(OfaError, match="no column named 'zz'"):
        load_csv(small_csv, target="zz")


def test_too_short_and_nonpositive_lengths(tmp_path):
    path = write_csv(tmp_path / "short.csv", np.ones((50, 1)) * np.arange(50)[:, None])
    series = load_csv(path)
    with pytest.raises(OfaError, match="shorter than seq_len"):
        make_splits(series, 64, 16)
    with pytest.raises(OfaError, match="positive"):
        make_splits(series, 0, 16)
    with pytest.raises(OfaError, match="positive"):
        make_splits(series, 16, -3)


def test_non_finite_value_names_its_column_and_line(tmp_path):
    path = tmp_path / "gap.csv"
    path.write_text("date,a,b\n2020-01-01,1,2\n2020-01-02,3,4\n2020-01-03,5,\n")
    with pytest.raises(OfaError, match=r"column 'b' at line 4"):
        load_csv(str(path))


def test_dates_are_kept_when_the_first_column_parses(tmp_path):
    from conftest import sines

    series = load_csv(write_csv(tmp_path / "s.csv", sines(30)))
    assert series.date_column == "date" and series.dates[1] - series.dates[0] == np.timedelta64(1, "h")
    numbered = tmp_path / "n.csv"
    numbered.write_text("t,a\n0,1\n1,2\n")
    assert load_csv(str(numbered)).dates is None
