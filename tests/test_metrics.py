"""The competitions' metrics against hand-computed values, Naive2 against the M4 submission (OWA 1.000),
and the panel reader's refusals."""
import gzip
import csv

import numpy as np
import pytest
from conftest import shared_file

from ofa import metrics
from ofa.errors import OfaError
from ofa.panel import read_m4, read_m4_pair


def test_smape_and_mase_by_hand():
    y, f = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    # 200/2 * (10/210 + 20/380)
    assert metrics.smape(y, f) == pytest.approx(100 * (10 / 210 + 20 / 380))
    assert metrics.smape(np.zeros(3), np.zeros(3)) == 0.0
    x = np.array([1.0, 3.0, 2.0, 5.0])  # lag-1 naive errors 2, 1, 3: scale 2
    assert metrics.mase(y, f, x, 1) == pytest.approx(15 / 2)
    x4 = np.array([1.0, 2, 3, 4, 2, 4, 6, 8])  # lag-4 errors 1, 2, 3, 4: scale 2.5
    assert metrics.mase(y, f, x4, 4) == pytest.approx(15 / 2.5)
    assert metrics.owa(10.0, 2.0, 20.0, 1.0) == pytest.approx(0.5 * (0.5 + 2.0))
    with pytest.raises(OfaError, match="constant in-sample"):
        metrics.mase(y, f, np.ones(5), 1)
    with pytest.raises(OfaError, match="equal 1-D"):
        metrics.smape(y, f[:1])


def test_seasonality_test_and_decomposition():
    m, periods = 4, 12
    season = np.array([0.8, 1.2, 1.1, 0.9])
    x = np.tile(season, periods) * np.linspace(100, 130, m * periods)
    assert metrics.seasonal(x, m)
    s = metrics.seasonal_indices(x, m)
    assert np.allclose(s[:m], season / season.mean(), atol=0.01) and np.allclose(s[m:2 * m], s[:m])
    f = metrics.naive2(x, 6, m)  # the deseasonalised last value, reseasonalised with the last season
    assert np.allclose(f, x[-1] / s[-1] * np.resize(s[-m:], 6))
    noise = np.random.default_rng(0).standard_normal(200) + 50
    assert not metrics.seasonal(noise, 12)
    assert np.all(metrics.naive2(noise, 5, 12) == noise[-1])
    assert not metrics.seasonal(x[:10], m)  # shorter than 3 seasons: not tested, plain naive
    assert np.all(metrics.seasonal_naive(x, 6, m) == np.resize(x[-m:], 6))


@pytest.mark.parametrize("freq,m,smape2,mase2", [("Hourly", 24, 18.383, 2.395), ("Weekly", 1, 9.161, 2.777)])
def test_naive2_matches_the_m4_submission(freq, m, smape2, mase2):
    """Naive2 computed here equals M4's own Naive2 submission, which scores OWA 1.000 and the published
    Naive2 sMAPE / MASE of its frequency (M4 paper, Table 4)."""
    ids, train, test = read_m4_pair(shared_file(f"M4/{freq}-train.csv"), shared_file(f"M4/{freq}-test.csv"))
    h = len(test[0])
    wanted = {i[0] for i in ids}
    sub = {}
    with gzip.open(shared_file("M4/submission-Naive2.csv.gz"), "rt") as fh:
        rows = csv.reader(fh)
        next(rows)
        for row in rows:
            if row[0][0] in wanted:
                sub[row[0]] = np.array([float(c) for c in row[1:h + 1]])
    given = [sub[i] for i in ids]
    mine = [metrics.naive2(x, h, m) for x in train]
    assert max(float(np.max(np.abs(a - b) / np.abs(b))) for a, b in zip(mine, given)) < 1e-8
    s = metrics.score(train, test, given, m, naive2_forecasts=given)
    assert s["owa"] == pytest.approx(1.0, abs=5e-4) and s["series"] == len(ids)
    assert round(s["smape"], 3) == smape2 and round(s["mase"], 3) == mase2
    assert metrics.score(train, test, mine, m)["owa"] == pytest.approx(1.0, abs=5e-4)


def test_panel_reader_refuses_bad_files(tmp_path):
    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        return str(p)

    ok = write("ok.csv", "V1,V2,V3,V4\nA,1,2,3\nB,4,5,\nC,6,NA,NA\n")
    ids, series = read_m4(ok)
    assert ids == ["A", "B", "C"] and [len(s) for s in series] == [3, 2, 1]
    with pytest.raises(OfaError, match="line 3 .*no values"):
        read_m4(write("empty.csv", "V1,V2,V3\nA,1,2\nB,,\n"))
    with pytest.raises(OfaError, match="line 2 .*non-numeric value 'x'"):
        read_m4(write("text.csv", "V1,V2,V3\nA,1,x\n"))
    with pytest.raises(OfaError, match="line 2 .*inside the series"):
        read_m4(write("gap.csv", "V1,V2,V3,V4\nA,1,,3\n"))
    test_other = write("t1.csv", "V1,V2\nA,1\nX,2\nC,3\n")
    with pytest.raises(OfaError, match="do not match .*series 2: 'X' against 'B'"):
        read_m4_pair(ok, test_other)
    with pytest.raises(OfaError, match="different horizons"):
        read_m4_pair(ok, write("t2.csv", "V1,V2,V3\nA,1,2\nB,3,\nC,4,5\n"))
    with pytest.raises(OfaError, match="not found"):
        read_m4(str(tmp_path / "missing.csv"))


def test_theta_by_hand():
    # On a straight line SES (any weight) ends on the last value and Theta adds half the slope per step,
    # plus the SES lag term b/2 * (1/a - (1-a)^n/a) - with the line exact, the SSE-best weight is the largest.
    x = np.arange(1.0, 21.0)
    a = metrics.THETA_ALPHAS[-1]
    level = metrics.ses_levels(x, np.array([a]))[0][0]
    want = level + 0.5 * (np.arange(4) + 1 / a - (1 - a) ** 20 / a)
    assert np.allclose(metrics.theta(x, 4, 1), want)
    assert np.all(np.diff(metrics.theta(x, 4, 1)) == pytest.approx(0.5))
    # SES levels by hand for one weight.
    lv, sse = metrics.ses_levels(np.array([1.0, 3.0, 2.0]), np.array([0.5]))
    assert lv[0] == pytest.approx(2.0) and sse[0] == pytest.approx(4.0 + 0.0)
    # A seasonal series is adjusted as for Naive2 and reseasonalised with the last season's indices.
    t = np.arange(48)
    s = 100 * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    f = metrics.theta(s, 12, 12)
    idx = metrics.seasonal_indices(s, 12)[-12:]
    assert metrics.seasonal(s, 12) and np.allclose(f / idx, (f / idx)[0], rtol=0.02)
    assert set(metrics.BENCHMARKS) == {"naive2", "seasonal-naive", "theta"}
