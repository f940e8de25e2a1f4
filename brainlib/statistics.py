"""Hypothesis tests: the paper's two-proportion z-tests, reconstructed, and McNemar's test.

The paper compares the SE and base models with "a two-proportion Z-test ...
[on] the test overall and subclassification accuracies". Its own numbers let
us redo those tests: a 10% test split of the class sizes gives 90 glioma,
91 meningioma, 44 normal and 84 pituitary images (309 in all), and Tables
1-2 give each class's accuracy, so successes = round(accuracy x n).

Both models were scored on the *same* test images, so their outcomes are
paired; the z-test treats them as two independent samples. McNemar's test
uses only the images on which the two models disagree, which is the right
comparison for paired predictions (:func:`mcnemar_test`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brainlib.config import CLASSES


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int
) -> tuple[float, float]:
    """Two-sided two-proportion z-test with pooled variance: ``(z, p)``.

    ``z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))`` with ``p`` the pooled
    proportion; statsmodels' ``proportions_ztest`` underneath. When both
    proportions are 0 or both 1 there is no variance and ``(0.0, 1.0)`` is returned.
    """
    from statsmodels.stats.proportion import proportions_ztest

    for s, n in ((successes_a, n_a), (successes_b, n_b)):
        if n <= 0 or not 0 <= s <= n:
            raise ValueError(f"need 0 <= successes <= n and n > 0, got {s}/{n}")
    pooled = (successes_a + successes_b) / (n_a + n_b)
    if pooled in (0.0, 1.0):
        return 0.0, 1.0
    z, p = proportions_ztest([successes_a, successes_b], [n_a, n_b])
    return float(z), float(p)


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Student's t interval for the mean of ``values`` (NaNs for fewer than two)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return (float(v.mean() - half), float(v.mean() + half))


def reconstruct_paper_ztests(alpha: float = 0.05):
    """The paper's z-tests redone from its own Tables 1-2 and class sizes.

    One row per class and overall: test images ``n``, the reported accuracies,
    the implied successes, ``z`` and ``p`` (pooled two-proportion z-test), the
    p-value the paper reports (where it gives one), whether the paper calls
    the difference significant, and whether the reconstruction agrees with it.
    The overall row uses the text's 98.4% and 92.6% on the 309 test images.
    """
    import pandas as pd

    from brainlib.paper import implied_test_counts, reported, reported_p_values

    data = reported()
    counts = implied_test_counts()
    paper_p = reported_p_values()
    not_significant = set(data["ztest"]["not_significant"])
    rows = []
    for name in (*CLASSES, "overall"):
        if name == "overall":
            n = sum(counts.values())
            acc_se = data["se"]["overall"]["accuracy_text"]
            acc_base = data["base"]["overall"]["accuracy_text"]
        else:
            n = counts[name]
            acc_se, acc_base = data["se"][name]["accuracy"], data["base"][name]["accuracy"]
        s_se, s_base = round(acc_se * n), round(acc_base * n)
        z, p = two_proportion_ztest(s_se, n, s_base, n)
        claimed_significant = name not in not_significant
        rows.append(
            {
                "group": name,
                "n": n,
                "se_accuracy": acc_se,
                "base_accuracy": acc_base,
                "se_correct": s_se,
                "base_correct": s_base,
                "z": round(z, 3),
                "p": round(p, 4),
                "paper_p": paper_p.get(name),
                "paper_says_significant": claimed_significant,
                "significant_here": p < alpha,
                "significance_agrees": (p < alpha) == claimed_significant,
                "p_matches_paper": name in paper_p and round(p, 3) == paper_p[name],
                # which reported p-value (if any) this p rounds to: a swap shows here
                "rounds_to_paper_p_of": next(
                    (k for k, v in paper_p.items() if round(p, 3) == v), None
                ),
            }
        )
    return pd.DataFrame(rows).set_index("group")


def mcnemar_test(correct_a: Sequence[bool], correct_b: Sequence[bool], exact: bool | None = None):
    """McNemar's test on paired outcomes of two models on the same images.

    Returns a dict with the 2x2 table ``[[both right, a right b wrong], [a wrong
    b right, both wrong]]``, the discordant counts ``b`` (only a right) and
    ``c`` (only b right), the statistic and the p-value. ``exact`` defaults to
    the exact binomial test when ``b + c < 25``, else the chi-square test with
    continuity correction (statsmodels).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("both models must be scored on the same images")
    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    discordant = int(table[0, 1] + table[1, 0])
    use_exact = discordant < 25 if exact is None else exact
    if discordant == 0:
        return {"table": table.tolist(), "b": 0, "c": 0, "statistic": 0.0, "p": 1.0,
                "exact": use_exact}  # fmt: skip
    res = mcnemar(table, exact=use_exact, correction=True)
    return {
        "table": table.tolist(),
        "b": int(table[0, 1]),
        "c": int(table[1, 0]),
        "statistic": float(res.statistic),
        "p": float(res.pvalue),
        "exact": use_exact,
    }


def compare_models(
    y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], alpha: float = 0.05
):
    """SE (a) against base (b) on the same test images, overall and per class.

    Per class the outcome is "correctly classified" for the images of that
    class (the per-class recall, as a proportion). Both the paper's z-test
    (unpaired) and McNemar's test (paired) are reported.
    """
    import pandas as pd

    y = np.asarray(y_true)
    ok_a = np.asarray(pred_a) == y
    ok_b = np.asarray(pred_b) == y
    rows = []
    for name in ("overall", *CLASSES):
        mask = np.ones_like(y, bool) if name == "overall" else y == CLASSES.index(name)
        n = int(mask.sum())
        if n == 0:
            continue
        z, p = two_proportion_ztest(int(ok_a[mask].sum()), n, int(ok_b[mask].sum()), n)
        mc = mcnemar_test(ok_a[mask], ok_b[mask])
        rows.append(
            {
                "group": name,
                "n": n,
                "se_correct": int(ok_a[mask].sum()),
                "base_correct": int(ok_b[mask].sum()),
                "z": z,
                "z_test_p": p,
                "only_se_right": mc["b"],
                "only_base_right": mc["c"],
                "mcnemar_p": mc["p"],
                "mcnemar_exact": mc["exact"],
                "significant_z": p < alpha,
                "significant_mcnemar": mc["p"] < alpha,
            }
        )
    return pd.DataFrame(rows).set_index("group")
