"""Comparison helpers of notebook 04: ranks, agreement and findings come from the rows."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganreport import compare, results
from ganreport import stats as row_stats


@pytest.fixture()
def rows(tmp_path):
    r = []
    fid = {"a": 10.0, "b": 20.0, "c": 30.0}
    prec = {"a": 0.9, "b": 0.7, "c": 0.8}
    conc = {"a": 0.3, "b": 0.2, "c": 0.1}
    for m in fid:
        r.append(results.make_row(m, "fid", fid[m], ci_low=fid[m] - 1, ci_high=fid[m] + 1, feature="f", section="quantitative", direction="lower"))
        r.append(results.make_row(m, "precision", prec[m], feature="f", section="quantitative", direction="higher"))
        r.append(results.make_row(m, "attr_deletion_auc_ratio", conc[m], section="qualitative", direction="higher"))
    r.append(results.make_row("real_test", "fid", 1.5, feature="f", section="quantitative", direction="lower"))
    results.record("t", r, root=tmp_path)
    df = results.load("t", root=tmp_path)
    return df


def test_ranked_and_winner(rows):
    r = row_stats.ranked(rows, ["a", "b", "c"])
    assert r.loc["fid (f)", "winner"] == "a" and r.loc["fid (f)", "c"] == 3
    assert r.loc["precision (f)", "winner"] == "a" and r.loc["precision (f)", "b"] == 3


def test_agreement_matches_scipy(rows):
    mat = compare.metric_agreement(rows, ["a", "b", "c"])
    # oriented: -fid = (-10, -20, -30), precision = (.9, .7, .8)
    expect = stats.spearmanr([-10, -20, -30], [0.9, 0.7, 0.8])[0]
    assert mat.loc["fid (f)", "precision (f)"] == pytest.approx(expect)
    assert mat.loc["fid (f)", "fid (f)"] == 1.0
    assert np.allclose(mat.to_numpy(dtype=float), mat.to_numpy(dtype=float).T, equal_nan=True)
    with pytest.raises(ValueError, match="spearman"):
        compare.metric_agreement(rows, ["a"], method="pearson")


def test_findings_numbers_come_from_rows(rows):
    text = compare.findings(rows, ["a", "b", "c"], ("fid", "precision"), ("attr_deletion_auc_ratio",))
    assert "best a = 10 [9, 11]" in text and "real_test = 1.5" in text
    # mean quantitative ranks a 1, b 2.5, c 2.5 (fid a<b<c, precision a>c>b); interpretability ranks a 1, b 2, c 3
    rho = stats.spearmanr([1, 2.5, 2.5], [1, 2, 3])[0]
    assert f"ρ between the two orderings = {rho:.2f}" in text and "they agree" in text
    table = compare.summary_table(rows)
    assert table.loc["direction", "fid (f)"].startswith("↓") and table.loc["a", "fid (f)"] == "10 [9, 11]"


def test_empty_rows_give_a_message(tmp_path):
    df = results.load("none", root=tmp_path)
    assert "No results" in compare.findings(df, ["a"], ("fid",), ("x",))
    assert isinstance(compare.summary_table(df), pd.DataFrame)
