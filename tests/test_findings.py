"""The results page's sentences follow the numbers: change the results, the sentence changes."""

from __future__ import annotations

import pandas as pd
import pytest

from brainlib import findings

TRAINING = {"train_accuracy_above_095_by_epoch": 5, "epochs": 27}


def _over(mean, lo, hi, seeds=4, mcnemar=0):
    return pd.Series({"seeds": seeds, "mean": mean, "sd": 0.02, "ci_low": lo, "ci_high": hi,
                      "seeds_favouring_se": 2, "mcnemar_significant": mcnemar,
                      "z_test_significant": 0})  # fmt: skip


@pytest.mark.parametrize(
    ("row", "verdict"),
    [
        (_over(-0.001, -0.045, 0.044), "no difference shown"),
        (_over(-0.053, -0.076, -0.030), "base beats SE"),
        (_over(0.040, 0.010, 0.070), "SE beats base"),
        (_over(0.040, float("nan"), float("nan"), seeds=1, mcnemar=1), "SE beats base"),
        (_over(0.040, float("nan"), float("nan"), seeds=1, mcnemar=0), "no difference shown"),
    ],
)
def test_se_vs_base_verdict_follows_the_interval(row, verdict):
    assert findings.se_vs_base_verdict(row) == verdict
    assert f"paper split: {verdict}" in findings.se_vs_base_sentence("paper", row)


def test_split_difference_sentence_changes_with_the_interval():
    row = pd.Series({"seeds": 4, "paper_split": 0.746, "grouped_split": 0.658,
                     "split_difference": 0.088, "sd": 0.05, "ci_low": 0.004,
                     "ci_high": 0.173})  # fmt: skip
    assert "higher on the paper's split" in findings.split_difference_sentence("se", row)
    row["ci_low"] = -0.017
    assert "no split difference shown" in findings.split_difference_sentence("se", row)


def test_fit_sentence_says_whether_the_runs_fit_their_training_images():
    frame = pd.DataFrame({"model": ["se", "base"], "final_train_accuracy": [0.77, 0.76]})
    assert "have not fitted their training images" in findings.fit_sentence(frame, TRAINING)
    frame["final_train_accuracy"] = [0.99, 0.97]
    assert "they fit their training images" in findings.fit_sentence(frame, TRAINING)
    frame["final_train_accuracy"] = [0.99, 0.90]
    assert "not every run has fitted" in findings.fit_sentence(frame, TRAINING)


def test_duplicate_sentence_says_which_group_scores_higher():
    idx = pd.MultiIndex.from_tuples([("se", "duplicate in train"), ("se", "no duplicate in train")])
    by = pd.DataFrame({"images": [74, 235], "accuracy_mean": [0.720, 0.754]}, index=idx)
    assert "lower where a copy was seen" in findings.duplicate_sentence("se", by)
    by["accuracy_mean"] = [0.95, 0.754]
    assert "higher where a copy was seen" in findings.duplicate_sentence("se", by)


def test_weights_caveat_depends_on_the_weights():
    assert "No ImageNet weights" in findings.weights_caveat(
        {"weights": "none", "image_size": 64}, {}
    )
    assert "No ImageNet" not in findings.weights_caveat({"weights": "imagenet"}, {})
    standin = findings.weights_caveat({"weights": "/x/standin_notop.h5"}, {})
    assert "standin_notop.h5" in standin and "/x/" not in standin


def test_localisation_sentence_follows_the_ratio_to_random():
    def summary(energy):
        return pd.concat({"SE": pd.DataFrame(
            {"energy_in_mask": [energy, energy / 2, 0.03], "pointing_game": [0.5, 0.2, 0.02],
             "images": [18, 18, 18]}, index=["gradcam", "gradcam++", "random"])})  # fmt: skip

    assert "does no better than random" in findings.localisation_sentence(summary(0.031))
    assert "finds the lesion weakly" in findings.localisation_sentence(summary(0.036))
    assert "gradcam finds the lesion:" in findings.localisation_sentence(summary(0.09))


def _saliency(gradcam_energy, gradcam_areas, random_area=0.75):
    """One run per gradcam area given (seeds 42, 43, ...); Grad-CAM++ deletes like random."""
    rows = []
    for i, gradcam_area in enumerate(gradcam_areas):
        for method, energy, area in (
            ("gradcam", gradcam_energy, gradcam_area),
            ("gradcam++", 0.66, random_area),
            ("random", 0.66, random_area),
        ):
            rows.append({"split": "paper", "model": "se", "seed": 42 + i, "method": method,
                         "energy_in_brain": energy, "brain_area": 0.66,
                         "deletion_area": area})  # fmt: skip
    return pd.DataFrame(rows)


def test_saliency_sentence_sets_each_heatmap_against_random():
    sentence = findings.saliency_sentence(_saliency(0.76, [0.58, 0.60]))
    assert "(2 runs, brain 66.0% of the image)" in sentence
    assert "gradcam: 76.0% of the heatmap inside the brain (+10.0 points" in sentence
    assert "deletion area 0.590 against 0.750 (accuracy falls faster" in sentence
    assert "gradcam++: 66.0% of the heatmap inside the brain (+0.0 points" in sentence
    assert "no faster than random shown" in sentence  # gradcam++ here deletes like random


@pytest.mark.parametrize(("gaps", "words"), [
    ([0.16, 0.18, 0.15], "accuracy falls faster"),
    ([0.20, -0.15], "no faster than random shown"),  # mean +0.025 but the runs disagree
    ([-0.05, -0.06, -0.055], "accuracy falls slower"),
    ([0.16], "in the one run; a verdict needs two runs")])  # fmt: skip
def test_the_deletion_verdict_rests_on_the_spread_over_runs(gaps, words):
    verdict = findings.deletion_verdict(gaps)
    assert words in verdict
    if len(gaps) > 1:
        assert f"over {len(gaps)} runs" in verdict


@pytest.mark.parametrize(("low", "high", "words"), [
    (0.01, 0.05, "SE ahead in accuracy"), (-0.05, -0.01, "base ahead in accuracy"),
    (-0.02, 0.03, "no difference shown in accuracy")])  # fmt: skip
def test_pooled_sentence_follows_the_interval(low, high, words):
    diff = {"difference": (low + high) / 2, "low": low, "high": high, "images": 309,
            "clusters": 306}  # fmt: skip
    auc = {"auc_a": 0.99, "auc_b": 0.98, "difference": 0.01, "low": -0.01, "high": 0.02}
    res = {"split": "paper", "seeds": [42, 43], "accuracy_se": 0.9, "accuracy_base": 0.9,
           "accuracy": diff, "auc": auc}  # fmt: skip
    sentence = findings.pooled_sentence(res)
    assert words in sentence and "no difference shown in macro AUC" in sentence
    assert "306 duplicate clusters of 309 test images" in sentence
    assert "0.990 against 0.980: +0.010 [-0.010, +0.020]" in sentence


def test_compared_runs_caveat_names_the_unconverged_runs():
    table = pd.DataFrame({"model": ["se", "se"], "split": ["paper", "dedup"], "seed": [42, 42],
                          "converged": [True, False],
                          "reason": ["converged", "training accuracy of the best weights is "
                                     "0.940, below 0.95"]})  # fmt: skip
    caveat = findings.compared_runs_caveat(table)
    assert "se-dedup-seed42: training accuracy of the best weights is 0.940" in caveat
    assert "se-paper" not in caveat
    assert caveat.endswith("has not fully fitted its training images.")
    other = findings.compared_runs_caveat(table, "so the gap may be how far each run got")
    assert other.endswith("below 0.95), so the gap may be how far each run got.")
    assert findings.compared_runs_caveat(table.assign(converged=True)) == ""


def _by_image(low, high, alone_diff):
    idx = pd.MultiIndex.from_tuples([("se", "all test images"), ("se", "no duplicate anywhere")],
                                    names=["model", "images"])  # fmt: skip
    return pd.DataFrame({"seeds": [4, 4], "paper_images": [309, 224], "grouped_images": [311, 219],
                         "paper_split": [0.746, 0.766], "grouped_split": [0.658, 0.692],
                         "difference": [0.088, alone_diff], "low": [low, 0.014],
                         "high": [high, 0.132]}, index=idx)  # fmt: skip


def test_split_by_image_sentence_says_how_much_is_not_leakage():
    sentence = findings.split_by_image_sentence("se", _by_image(0.032, 0.146, 0.074))
    assert "higher on the paper's split, 0.746 against 0.658, +8.8 points [+3.2, +14.6]" in sentence
    assert "On the 224 and 219 test images with no duplicate anywhere" in sentence
    assert "84% of the difference remains there" in sentence
    unshown = findings.split_by_image_sentence("se", _by_image(-0.01, 0.146, 0.074))
    assert "no split difference shown" in unshown and "remains there" not in unshown


def test_saliency_sentence_pools_both_models_runs_for_the_heatmaps_verdict():
    se = _saliency(0.76, [0.58, 0.60])
    table = pd.concat([se, se.assign(model="base", deletion_area=se["deletion_area"] - 0.01)])
    last = findings.saliency_sentence(table).splitlines()[-1]
    assert last.startswith("- **Both models' runs together** (4 runs): gradcam: accuracy falls")
    assert "gradcam++: no faster than random shown" in last
    assert "Both models" not in findings.saliency_sentence(se)
