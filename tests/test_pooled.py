"""The pooled, paired analysis on hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlib import pooled
from brainlib.config import CLASSES


def _predictions(paths, classes, predicted, proba=None):
    frame = pd.DataFrame({"path": paths, "class": classes, "predicted": predicted})
    proba = np.full((len(paths), 4), 0.25) if proba is None else np.asarray(proba)
    for k, c in enumerate(CLASSES):
        frame[f"p_{c}"] = proba[:, k]
    return frame


def test_per_image_pools_seeds_votes_and_probabilities():
    paths, cls = ["a", "b"], ["normal", "glioma_tumor"]
    p1 = [[0.1, 0.1, 0.7, 0.1], [0.6, 0.2, 0.1, 0.1]]
    p2 = [[0.1, 0.5, 0.3, 0.1], [0.7, 0.1, 0.1, 0.1]]
    p3 = [[0.1, 0.1, 0.6, 0.2], [0.1, 0.8, 0.05, 0.05]]
    preds = {
        ("se", 1): _predictions(paths, cls, ["normal", "glioma_tumor"], p1),
        ("se", 2): _predictions(paths, cls, ["meningioma_tumor", "glioma_tumor"], p2),
        ("se", 3): _predictions(paths, cls, ["normal", "meningioma_tumor"], p3),
    }
    out = pooled.per_image(preds)
    assert out.loc["a", "correct_se"] == pytest.approx(2 / 3)
    assert out.loc["b", "correct_se"] == pytest.approx(2 / 3)
    assert list(out["vote_se"]) == ["normal", "glioma_tumor"]
    assert out.loc["a", "p_se_normal"] == pytest.approx((0.7 + 0.3 + 0.6) / 3)
    other = {("se", 4): _predictions(["a", "c"], cls, ["normal", "normal"])}
    with pytest.raises(pooled.PoolingError, match="other images"):
        pooled.per_image({**preds, **other})


def test_paired_difference_and_its_cluster_bootstrap():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, 50).astype(float)
    b = rng.integers(0, 2, 50).astype(float)
    one = pooled.paired_difference(a, b, n_resamples=2000)
    assert one["difference"] == pytest.approx(a.mean() - b.mean())
    assert one["low"] < one["difference"] < one["high"]
    # every picture four times: as images the interval is half as wide as it should be;
    # resampling the clusters gives back the interval of the 50 distinct pictures
    a4, b4, ids = np.repeat(a, 4), np.repeat(b, 4), np.repeat(np.arange(50), 4)
    naive = pooled.paired_difference(a4, b4, n_resamples=2000)
    clustered = pooled.paired_difference(a4, b4, clusters=ids, n_resamples=2000)
    assert clustered["clusters"] == 50 and clustered["difference"] == one["difference"]
    width = {k: r["high"] - r["low"] for k, r in
             {"one": one, "naive": naive, "clustered": clustered}.items()}  # fmt: skip
    assert width["clustered"] > 1.6 * width["naive"]
    assert width["clustered"] == pytest.approx(width["one"], rel=0.25)


def test_auc_difference_is_zero_for_the_same_scores_and_positive_for_a_better_model():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 30)
    good = np.eye(4)[y] * 0.7 + rng.uniform(0, 0.3, (120, 4))
    noise = rng.uniform(0, 1, (120, 4))
    same = pooled.auc_difference(y, good, good, n_resamples=200)
    assert same["difference"] == 0 and same["low"] == 0 == same["high"]
    better = pooled.auc_difference(y, good, noise, n_resamples=300)
    assert better["auc_a"] == pytest.approx(1.0) and better["low"] > 0.2
    assert better["share_at_or_below_zero"] == 0


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1, made monotone
    np.testing.assert_allclose(pooled.holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])


def test_mcnemar_by_seed_counts_discordant_images_and_the_vote():
    paths = [f"i{k}" for k in range(6)]
    cls = ["normal"] * 6
    right, wrong = "normal", "glioma_tumor"
    preds = {
        ("se", 1): _predictions(paths, cls, [right] * 6),
        ("base", 1): _predictions(paths, cls, [right, right, wrong, wrong, wrong, right]),
        ("se", 2): _predictions(paths, cls, [right, wrong, right, right, right, right]),
        ("base", 2): _predictions(paths, cls, [right] * 6),
    }
    table = pooled.mcnemar_by_seed(preds)
    assert (table.loc["seed 1", "only_a_right"], table.loc["seed 1", "only_b_right"]) == (3, 0)
    assert (table.loc["seed 2", "only_a_right"], table.loc["seed 2", "only_b_right"]) == (0, 1)
    # one vote each is a tie; with equal mean probabilities it goes to the first class
    # (glioma_tumor, wrong here): SE loses i1, base loses i2-i4
    vote = table.loc["majority vote of 2 seeds"]
    assert (vote["only_a_right"], vote["only_b_right"]) == (3, 1)


def test_two_sample_difference_resamples_each_sets_clusters_on_its_own():
    a = np.array([1.0] * 10 + [0.0] * 10)  # two clusters of ten copies: right, wrong
    b = np.array([1.0, 0.0] * 10)  # twenty independent images, half right
    by_image = pooled.two_sample_difference(a, b, n_resamples=500)
    by_cluster = pooled.two_sample_difference(a, b, np.repeat([0, 1], 10), n_resamples=500)
    assert by_image["difference"] == by_cluster["difference"] == 0.0
    assert (by_cluster["clusters_a"], by_cluster["clusters_b"]) == (2, 20)
    # a resampled mean is 0, 0.5 or 1 when whole clusters are drawn: a much wider interval
    assert by_cluster["high"] - by_cluster["low"] > by_image["high"] - by_image["low"] + 0.3
    assert by_cluster["low"] <= -0.5 and by_cluster["high"] >= 0.5
    assert np.isnan(pooled.two_sample_difference(a, b, np.zeros(20))["low"])  # one cluster
    same = pooled.two_sample_difference(np.ones(5), np.ones(7), n_resamples=100)
    assert (same["low"], same["high"]) == (0.0, 0.0)
    with pytest.raises(pooled.PoolingError, match="non-empty"):
        pooled.two_sample_difference([], b)


def test_weighted_macro_auc_is_the_auc_of_the_repeated_images():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 120)
    proba = np.round(rng.dirichlet(np.ones(4), 120), 1)  # many ties
    counts = rng.integers(0, 3, 120)
    repeated = np.repeat(np.arange(120), counts)
    direct = pooled.macro_auc(y[repeated], proba[repeated])
    assert pooled.weighted_macro_auc(y, proba, counts[None])[0] == pytest.approx(direct)
    assert pooled.weighted_macro_auc(y, proba, np.ones((1, 120)))[0] == pytest.approx(
        pooled.macro_auc(y, proba))  # fmt: skip


def test_cluster_weights_draw_whole_clusters():
    clusters = np.array([0, 0, 0, 1, 2, 2])
    w = pooled.cluster_weights(clusters, 200, seed=1)
    assert w.shape == (200, 6)
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 4] == w[:, 5]).all()  # copies drawn together
    assert (np.unique(clusters, return_index=True)[1] is not None) and (
        w[:, [0, 3, 4]].sum(axis=1) == 3).all()  # fmt: skip


def test_monte_carlo_error_shrinks_with_the_resamples_and_the_mde_by_hand():
    a = np.r_[np.ones(80), np.zeros(20)]
    b = np.r_[np.ones(70), np.zeros(30)]
    few = pooled.paired_difference(a, b, n_resamples=1000, seed=0)["mc_error"]
    many = pooled.paired_difference(a, b, n_resamples=16000, seed=0)["mc_error"]
    assert 0 < many < few / 2  # about 1/4: the error falls with the square root
    # an interval of +-1.96 se: the MDE at 80% power is (1.96 + 0.84) se
    assert pooled.minimum_detectable(-1.96, 1.96) == pytest.approx(2.8016, abs=1e-3)
