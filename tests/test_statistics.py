"""Statistics: the paper's z-tests reconstructed from its own tables, McNemar, summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainlib.paper import implied_test_counts, reported_p_values
from brainlib.statistics import (
    compare_models,
    mcnemar_test,
    reconstruct_paper_ztests,
    two_proportion_ztest,
)


def _z_by_hand(s1, n1, s2, n2):
    p1, p2, p = s1 / n1, s2 / n2, (s1 + s2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return z, math.erfc(abs(z) / math.sqrt(2))


def test_two_proportion_ztest_matches_the_formula():
    for args in [(84, 84, 78, 84), (89, 91, 81, 91), (10, 50, 20, 60)]:
        z, p = two_proportion_ztest(*args)
        zh, ph = _z_by_hand(*args)
        assert z == pytest.approx(zh, rel=1e-9) and p == pytest.approx(ph, rel=1e-9)
    assert two_proportion_ztest(5, 5, 7, 7) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_ztest(6, 5, 1, 5)


def test_implied_test_counts():
    assert implied_test_counts() == {
        "glioma_tumor": 90,
        "meningioma_tumor": 91,
        "normal": 44,
        "pituitary_tumor": 84,
    }


def test_reconstruction_of_the_papers_ztests():
    table = reconstruct_paper_ztests()
    # pituitary, 84/84 against 78/84: z 2.49, p 0.0126 -- the value the paper gives for meningioma
    pit = table.loc["pituitary_tumor"]
    assert (pit.se_correct, pit.base_correct) == (84, 78)
    assert pit.z == pytest.approx(2.494, abs=1e-3) and pit.p == pytest.approx(0.0126, abs=1e-4)
    assert pit.rounds_to_paper_p_of == "meningioma_tumor" and not pit.p_matches_paper
    # meningioma, 89/91 against 81/91: p 0.017 (the paper: 0.013)
    men = table.loc["meningioma_tumor"]
    assert (men.se_correct, men.base_correct) == (89, 81)
    assert men.p == pytest.approx(0.0169, abs=1e-4) and men.rounds_to_paper_p_of is None
    # both are significant, as the paper says, but neither p-value is reproduced as labelled
    assert men.significance_agrees and pit.significance_agrees
    assert reported_p_values() == {"meningioma_tumor": 0.013, "pituitary_tumor": 0.015}
    # glioma and normal: not significant, as the paper says
    assert table.loc["glioma_tumor"].p > 0.05 and table.loc["normal"].p > 0.05
    assert table.loc["glioma_tumor"].significance_agrees and table.loc["normal"].significance_agrees
    # overall: 304/309 against 286/309 gives p < 0.001; the paper calls it not significant
    overall = table.loc["overall"]
    assert (overall.n, overall.se_correct, overall.base_correct) == (309, 304, 286)
    assert overall.p < 0.001 and not overall.significance_agrees


def test_mcnemar_on_known_tables():
    # chi-square with continuity correction: (|6 - 16| - 1)^2 / (6 + 16) = 81 / 22
    a = [True] * 59 + [True] * 6 + [False] * 16 + [False] * 80
    b = [True] * 59 + [False] * 6 + [True] * 16 + [False] * 80
    assert mcnemar_test(a, b)["exact"]  # 22 discordant pairs: exact by default
    res = mcnemar_test(a, b, exact=False)
    assert res["table"] == [[59, 6], [16, 80]] and not res["exact"]
    assert res["statistic"] == pytest.approx(81 / 22)
    assert res["p"] == pytest.approx(0.05501, abs=1e-4)
    # exact binomial for few discordant pairs: b = 1, c = 7 -> 2 * P(X <= 1 | 8, 1/2)
    a = [True] + [False] * 7 + [True] * 10
    b = [False] + [True] * 7 + [True] * 10
    res = mcnemar_test(a, b)
    assert res["exact"] and res["p"] == pytest.approx(2 * 9 / 256)
    assert mcnemar_test([True, False], [True, False])["p"] == 1.0


def test_compare_models_uses_paired_outcomes():
    y = np.array([0] * 10 + [1] * 10)
    pred_a = y.copy()
    pred_b = y.copy()
    pred_b[:4] = 1  # base misses 4 glioma images
    table = compare_models(y, pred_a, pred_b)
    assert table.loc["glioma_tumor", "only_se_right"] == 4
    assert table.loc["glioma_tumor", "only_base_right"] == 0
    assert table.loc["glioma_tumor", "mcnemar_p"] == pytest.approx(2 / 16)
    assert table.loc["overall", "n"] == 20 and "normal" not in table.index
