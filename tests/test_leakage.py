"""The leakage effect and its checks, on scores made by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlib import leakage


def test_leakage_effect_is_the_difference_of_differences():
    dup = np.array([True] * 20 + [False] * 80)
    with_copies = np.where(dup, 1.0, 0.7)
    without = np.where(dup, 0.6, 0.7)
    out = leakage.leakage_effect(with_copies, without, dup, n_resamples=500)
    assert out.loc["duplicate in training", "difference"] == pytest.approx(0.4)
    assert out.loc["no duplicate in training", "difference"] == pytest.approx(0.0)
    effect = out.loc[leakage.EFFECT]
    assert effect["difference"] == pytest.approx(0.4)
    assert effect["low"] == pytest.approx(0.4) and effect["high"] == pytest.approx(0.4)


def _class_confounded():
    """The comparator loses one class everywhere (normal: -0.5 on every image); normal
    images are most of the duplicated ones. Copies themselves are worth +0.1."""
    cls = np.array(["normal"] * 10 + ["glioma"] * 10 + ["normal"] * 5 + ["glioma"] * 45)
    dup = np.array([True] * 20 + [False] * 50)
    without = np.where(cls == "normal", 0.4, 0.8)
    with_copies = np.where(cls == "normal", 0.9, 0.8) + np.where(dup, 0.1, 0.0)
    return with_copies, without, dup, cls


def test_a_class_effect_of_the_comparator_inflates_the_raw_effect_but_not_the_adjusted_ones():
    a, b, dup, cls = _class_confounded()
    raw = leakage.leakage_effect(a, b, dup, n_resamples=200).loc[leakage.EFFECT, "difference"]
    # duplicated: 10 normal (+0.6) and 10 glioma (+0.1) -> +0.35; others: 5 normal (+0.5),
    # 45 glioma (0) -> +0.05; raw difference of differences +0.30, not the +0.1 of the copies
    assert raw == pytest.approx(0.30)
    strat = leakage.stratified_effect(a, b, dup, cls, n_resamples=200)
    assert strat.loc["normal", "difference"] == pytest.approx(0.1)
    assert strat.loc["glioma", "difference"] == pytest.approx(0.1)
    assert strat.loc["stratified", "difference"] == pytest.approx(0.1)
    assert strat.loc["stratified", "duplicated"] == 20
    adjusted = leakage.adjusted_effect(a, b, dup, cls)
    assert adjusted["difference"] == pytest.approx(0.1, abs=1e-9)
    assert adjusted["clusters"] == 70 and "clustered" in adjusted["model"]


def test_stratified_effect_leaves_out_a_class_seen_in_one_group_only():
    a, b, dup, cls = _class_confounded()
    cls = cls.copy()
    cls[:5] = "pituitary"  # five duplicated pituitary images, no undupicated one
    strat = leakage.stratified_effect(a, b, dup, cls, n_resamples=100)
    assert "pituitary" not in strat.index and strat.loc["stratified", "duplicated"] == 15


def test_residual_links_follow_clusters_across_subsets():
    table = pd.DataFrame(
        {"split": ["train", "test", "test", "val", "test", "test"],
         "cluster": ["c1", "c1", "c2", "c3", "c3", "c4"]},
        index=["t1", "x1", "x2", "v1", "x3", "x4"])  # fmt: skip
    out = leakage.residual_links(table)
    assert (out["test_images"], out["linked"], out["linked_to_train"]) == (4, 2, 1)
    assert out["examples"] == ["x1", "x3"]
