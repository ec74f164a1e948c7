"""Seed 000's question: do the architectures rank the same by sample quality and by the
interpretability measures (:mod:`ganreport.studies.quant_qual`)?"""

import itertools

import numpy as np
import pytest
from scipy import stats

from _toy import record_quant
from ganreport.studies import quant_qual as Q


def test_quant_vs_qual_and_exact_p(tmp_path):
    assert Q.exact_spearman_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1 / 6)
    assert Q.exact_spearman_p([1, 2, 3], [3, 2, 1], "less") == pytest.approx(1 / 6)
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    rho = stats.spearmanr(x, y).statistic
    perms = [stats.spearmanr(x, [y[i] for i in p]).statistic for p in itertools.permutations(range(5))]
    assert Q.exact_spearman_p(x, y) == pytest.approx(np.mean(np.asarray(perms) >= rho - 1e-12))
    record_quant(tmp_path)
    res = Q.quant_vs_qual("t", models=["a", "b", "c"], root=tmp_path)
    assert res["n"] == 3 and res["grid"] is None
    text = Q.verdict_quant_qual(res)
    assert text.startswith("Inconclusive") and f"ρ = {res['rho']:.2f}" in text and "p = 0.17" in text
    assert Q.verdict_quant_qual({"n": 0, "rho": float("nan")}).startswith("Inconclusive")
