"""A sweep's rows summarised (gan_tutorial.sweep.results): mean and sample std per trial, table, plot."""

import math
import statistics

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from gan_tutorial.sweep import Results  # noqa: E402


def made_rows():
    rows = []
    for trial, k, values in (("a", 1, [1.0, 2.0, 4.0]), ("b", 2, [3.0]), ("c", 1, [5.0, 7.0])):
        for seed, v in enumerate(values):
            rows.append({"trial": trial, "seed": seed, "config": {"k": k}, "fd": v, "seconds": 1.0})
    rows.append(
        {"trial": "c", "seed": 9, "config": {"k": 1}, "fd": math.nan, "diverged": True, "seconds": 1.0}
    )
    return Results(rows)


def test_summary_is_the_mean_and_sample_std_per_trial():
    results = made_rows()
    summary = results.summary("fd")
    assert [s.trial for s in summary] == ["a", "b", "c"]
    a, b, c = summary
    assert a.mean == pytest.approx(7 / 3) and a.std == pytest.approx(statistics.stdev([1, 2, 4])) and a.n == 3
    assert (b.mean, b.std, b.n) == (3.0, 0.0, 1)  # one seed: no spread
    assert (c.mean, c.n) == (6.0, 2) and c.std == pytest.approx(math.sqrt(2))  # the diverged run left out
    assert tuple(a) == ("a", a.mean, a.std, 3)
    by_k = results.summary("fd", by="k")
    assert [(s.trial, s.n) for s in by_k] == [("k=1", 5), ("k=2", 1)]
    assert by_k[0].mean == pytest.approx((1 + 2 + 4 + 5 + 7) / 5)
    assert results.best("fd").trial == "a" and results.best("fd", lower_is_better=False).trial == "c"
    with pytest.raises(ValueError, match="no metric 'kl'"):
        results.summary("kl")
    with pytest.raises(ValueError, match="cannot group by"):
        results.summary("fd", by="lr")


def test_table_and_plot():
    results = made_rows()
    table = results.table()
    lines = table.splitlines()
    assert lines[0].split() == ["trial", "fd", "runs", "diverged"]
    assert "2.33 ± 1.53" in lines[1] and lines[1].split()[-2:] == ["3", "0"]
    assert lines[3].split()[-2:] == ["3", "1"]  # trial c: three runs, one diverged
    ax = results.plot("fd")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    plt.close(ax.figure)


def test_compare_tests_each_trial_against_the_base_with_holm():
    from gan_tutorial.sweep.results import bootstrap_interval, holm, permutation_p

    rows = []
    for trial, values in (("base", [10, 11, 12, 13]), ("far", [20, 21, 22, 23]), ("near", [10, 12, 12, 13])):
        for seed, v in enumerate(values):
            rows.append({"trial": trial, "seed": seed, "config": {}, "m": float(v), "seconds": 1.0})
    out = Results(rows).compare("m")["m"]
    far, near = out
    assert far.trial == "far" and far.diff == 10.0 and far.low <= 10.0 <= far.high
    # the two extreme splits of 8 values into 4 and 4 give the observed gap: p = 2 / C(8, 4)
    assert far.p == pytest.approx(2 / 70) and far.p_holm == pytest.approx(2 * 2 / 70)
    assert near.p > 0.3 and near.p_holm == pytest.approx(max(near.p, 2 * far.p))
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert permutation_p([1.0, 2.0], [1.0, 2.0]) == 1.0
    low, high = bootstrap_interval([1.0, 1.0], [0.0, 0.0])
    assert low == high == 1.0
    with pytest.raises(ValueError, match="no trial named"):
        Results(rows).compare("m", base="nope")
