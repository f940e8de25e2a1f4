"""The answers of the results page on the hand-made grid (tests/handmade.py), and on the
same results altered: a run that no longer converges, a run that ran out of epochs,
external scores and Grad-CAM numbers added, the README's block rewritten."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainlib import answers, display, results
from tests.handmade import A, C, D, make_grid

N = 400  # bootstrap resamples: enough for the Monte Carlo error to be estimated


@pytest.fixture
def grid(tmp_path):
    _, _, out = make_grid(tmp_path)
    return out


def _open(out):
    return answers.Grid.open(out, resamples=N)


def test_every_hand_made_run_converges_and_the_table_is_human(grid):
    a = answers.convergence(_open(grid))
    assert a.numbers == {"converged": 12, "runs": 12, "to_train": []}
    assert a.sentence.startswith("**12 of 12 runs meet the convergence rule**")
    assert "Left out" not in a.sentence and len(a.runs) == 12
    assert "Converged" in a.table.columns and "nan" not in a.table.to_string().lower()
    assert set(a.table["Converged"]) == {"yes"} and set(a.table["Train fit"]) == {"0.970"}
    assert "2 models x 3 splits x 2 seeds = 12 runs, every one converged on today's" in a.sentence


def test_minutes_take_the_median_epoch_so_a_pause_does_not_count_and_the_cpu_is_named(grid):
    run = grid / "se-paper-seed1"
    history = run / "history.csv"  # four 30 s epochs: 2 minutes
    history.write_text(
        history.read_text().replace("3,0.9,0.6,0.7,1.0,0.001,30", "3,0.9,0.6,0.7,1.0,0.001,5000")
    )  # paused
    meta = json.loads((run / "run.json").read_text())
    meta["device"] = {"cpu": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_count": 2, "device": "CPU"}
    meta["precision_policy"] = "mixed_bfloat16"
    (run / "run.json").write_text(json.dumps(meta))
    assert results.train_minutes(grid, run) == pytest.approx(2.0)
    table = answers.convergence(_open(grid)).table.set_index("Run (model, split, seed)")
    assert table.loc["SE, paper, 1", "Minutes*"] == "2"
    assert table.loc["SE, paper, 1", "CPU, precision"] == "Intel Xeon, 2 cores, bf16"
    assert table.loc["base, paper, 1", "CPU, precision"] == "–"  # older run.json: neither


def test_se_against_base_pooled_over_seeds_by_hand(grid):
    a = answers.se_vs_base(_open(grid))
    acc = a.numbers["accuracy"]
    # SE misses nothing, then A: 15 of 16 image-seeds; base misses A, B then A, C: 12 of 16
    assert acc["difference"] == pytest.approx(3 / 16) and acc["clusters"] == 8
    assert a.numbers["per_seed"] == pytest.approx([2 / 8, 1 / 8])
    lo, hi = a.numbers["t_interval"]  # t(0.975, 1 df) = 12.706
    half = 12.706 * np.std([0.25, 0.125], ddof=1) / np.sqrt(2)
    assert (lo, hi) == pytest.approx((0.1875 - half, 0.1875 + half), abs=1e-3)
    assert "95% t-interval [-60.7, +98.2]" in a.sentence
    assert "the paper's +0.012" in a.sentence  # the AUC set against the paper's difference
    assert a.runs == ["se-paper-seed1", "base-paper-seed1", "se-paper-seed2", "base-paper-seed2"]
    assert list(a.table["Interval"]) == ["primary", answers.SECONDARY, answers.SECONDARY]


def test_a_run_that_stops_fitting_leaves_every_answer_it_was_in(grid):
    (grid / "se-paper-seed2" / "fit.json").write_text(json.dumps({"train_accuracy": 0.9}))
    g = _open(grid)
    conv = answers.convergence(g)
    assert conv.numbers["converged"] == 11
    assert "se-paper-seed2 (training accuracy of the best weights is 0.900, below 0.95)" in (
        conv.sentence)  # fmt: skip
    assert conv.table.set_index("Run (model, split, seed)").loc["SE, paper, 2", "Converged"] == (
        "no: fit")  # fmt: skip
    se = answers.se_vs_base(g)
    assert se.runs == ["se-paper-seed1", "base-paper-seed1"]
    assert "from one seed: no verdict" in se.sentence
    leak = answers.leakage(g)
    assert leak.numbers["se"]["seeds"] == [1] and leak.numbers["base"]["seeds"] == [1, 2]


def test_a_run_that_ran_out_of_epochs_does_not_count(grid):
    history = grid / "base-dedup-seed1" / "history.csv"
    lines = history.read_text().splitlines()
    lines[3] = "3,0.9,0.6,0.7,0.8,0.001,30"  # best at epoch 3 of 4: one short of patience 2
    history.write_text("\n".join(lines) + "\n")
    g = _open(grid)
    assert "base-dedup-seed1 (it ran out of epochs 1 after its best (3 of 4), before its " \
           "patience of 2)" in answers.convergence(g).sentence  # fmt: skip
    table = answers.convergence(g).table.set_index("Run (model, split, seed)")
    assert table.loc["base, dedup, 1", "Converged"] == "no: cap"
    assert answers.leakage(g).numbers["base"]["seeds"] == [2]


def _set_meta(run, **fields):
    meta = json.loads((run / "run.json").read_text())
    meta.update(fields)
    (run / "run.json").write_text(json.dumps(meta))


def _set_profile(run, **fields):
    profile = json.loads((run / "run.json").read_text())["profile"]
    _set_meta(run, profile={**profile, **fields})


def test_runs_on_different_schedules_are_not_compared_and_are_named(grid):
    _set_profile(grid / "se-dedup-seed2", cache_memory_gib=8.0)  # how, not what: compared
    assert answers.leakage(_open(grid)).numbers["se"]["seeds"] == [1, 2]
    # `mixed_precision = auto` trained one run in fp32 (a CPU without native bfloat16),
    # the other in bf16: two numeric regimes, not compared
    _set_meta(grid / "se-paper-seed2", precision_policy="mixed_bfloat16")
    _set_meta(grid / "se-dedup-seed2", precision_policy="float32")
    assert answers.leakage(_open(grid)).numbers["se"]["seeds"] == [1]
    _set_meta(grid / "se-dedup-seed2", precision_policy="mixed_bfloat16")
    assert answers.leakage(_open(grid)).numbers["se"]["seeds"] == [1, 2]
    _set_profile(grid / "se-dedup-seed2", max_epochs=40)  # another schedule
    g = _open(grid)
    # ... and not today's: the profile in profiles.toml has another cap
    conv = answers.convergence(g)
    assert conv.numbers["to_train"] == [("se", "dedup", 2)]
    assert "11 converged on today's schedule, 1 to train or train again" in conv.sentence
    assert conv.sentence.endswith("unless named): dedup 2 (SE).")
    _set_profile(grid / "se-dedup-seed2", name="gone")  # a profile profiles.toml lost
    conv = answers.convergence(_open(grid))
    assert conv.numbers["to_train"] is None and "The grid is" not in conv.sentence
    leak = answers.leakage(g)
    assert leak.numbers["se"]["seeds"] == [1] and leak.numbers["base"]["seeds"] == [1, 2]
    assert leak.caveats[0] == (
        "Left out for training on different schedules (the comparison would measure the "
        "schedules too; the runs table gives each run's): se-paper-seed2, se-dedup-seed2."
    )
    assert "converged, on one schedule" in leak.why
    # the one-seed caveat names the model it holds for (base has two seeds here)
    assert any(c.startswith("One seed per arm for SE: ") for c in leak.caveats)
    _set_profile(grid / "base-paper-seed2", max_epochs=40)
    g = _open(grid)
    assert answers.se_vs_base(g).numbers["seeds"] == [1]
    assert (1, 2) not in answers.leakage(g).numbers["base"]["placebo"]  # two schedules
    # one seed per arm and no two paper seeds on one schedule: no placebo rows to point to
    _set_profile(grid / "se-paper-seed2", max_epochs=40)
    leak = answers.leakage(_open(grid))
    assert not any(v["placebo"] for k, v in leak.numbers.items() if k in ("se", "base"))
    assert "Placebo" not in " ".join(leak.table["Estimate"])
    assert any(c.startswith("One seed per arm: ") and "no placebo yet" in c for c in leak.caveats)
    assert not any("placebo rows" in c for c in leak.caveats)


def test_leakage_by_hand_with_its_checks(grid):
    a = answers.leakage(_open(grid))
    se = a.numbers["se"]
    raw = se["raw"]
    # A, the one duplicated test image: 0.5 with the copies (seed 1 right), 0 without;
    # the other 7: all right with the copies, C and D each missed once without -> 6/7
    assert raw.loc["duplicate in training", "difference"] == pytest.approx(0.5)
    assert raw.loc["no duplicate in training", "difference"] == pytest.approx(1 / 7)
    effect = raw.loc["leakage effect (difference of differences)", "difference"]
    assert effect == pytest.approx(0.5 - 1 / 7)
    # within glioma (A against B, which is right in every run): +0.5; the other classes
    # have no duplicated image and leave the stratified estimate
    assert se["stratified"].loc["stratified", "difference"] == pytest.approx(0.5)
    assert list(se["stratified"].index) == ["glioma_tumor", "stratified"]
    assert se["adjusted"]["difference"] == pytest.approx(0.5, abs=1e-9)
    # placebo between paper seeds 1 and 2: A right with seed 1 only, the rest always
    assert se["placebo"][(1, 2)]["difference"] == pytest.approx(1.0)
    assert a.numbers["base"]["placebo"][(1, 2)]["difference"] == pytest.approx(0.0)
    assert a.numbers["residual"]["linked_to_train"] == 1  # A's twin G_0 is a training image
    # seed by seed: seed 1 gains 1 on A and 1/7 elsewhere (C) -> 6/7; seed 2 gains 0 on A
    # (missed with and without) and 1/7 elsewhere (D) -> -1/7; the mean is the pooled value
    assert se["per_seed"] == pytest.approx([6 / 7, -1 / 7])
    half = 12.706 * np.std([6 / 7, -1 / 7], ddof=1) / np.sqrt(2)  # t(0.975, 1 df)
    over = se["over_seeds"]
    assert (over["low"], over["difference"], over["high"]) == pytest.approx(
        (5 / 14 - half, 5 / 14, 5 / 14 + half), abs=1e-3
    )
    assert a.numbers["base"]["per_seed"] == pytest.approx([0.0, -1 / 7])
    assert "Seed by seed it reads +85.7 and -14.3 points" in a.sentence
    assert "**SE (2 seeds): no leakage effect shown" in a.sentence  # both intervals hold 0
    assert "chance alone" in a.sentence and "1 of its 8 test images" in a.caveats[0]
    # no interval (one cluster): the default digits, not the three a zero error would allow
    assert "reads +100.0 points (no interval) for seeds 1 and 2: what chance" in a.sentence
    assert not any(c.startswith("One seed per arm") for c in a.caveats)  # 2 seeds each
    assert list(a.table["Interval"]).count("primary") == 2  # one per model
    assert (
        list(a.table["Estimate"]).count("Mean of 2 seeds' differences (t-interval over seeds)") == 2
    )


def test_a_verdict_needs_the_pooled_interval_and_the_one_over_seeds_on_one_side():
    from brainlib.answers.models import _se_vs_base_sentence

    nan = float("nan")
    acc = {"difference": 0.03, "low": 0.01, "high": 0.05, "clusters": 10, "mc_error": nan}
    auc = {"difference": 0.0, "low": -0.01, "high": 0.01, "mc_error": nan}
    paper = {"accuracy": 0.058, "auc": 0.012}
    both = _se_vs_base_sentence("paper", [1, 2, 3], acc, auc, (0.005, 0.06), 0.03, paper)
    assert "SE ahead in accuracy" in both
    split = _se_vs_base_sentence("paper", [1, 2, 3], acc, auc, (-0.02, 0.08), 0.03, paper)
    assert "no difference shown beyond the spread over seeds" in split
    assert (
        "At least one interval does not rule out the paper's +5.8 points" in split
    )  # 0.08 > 0.058
    narrow = _se_vs_base_sentence("paper", [1, 2, 3], {**acc, "low": -0.01}, auc,
                                  (-0.02, 0.04), 0.03, paper)  # fmt: skip
    assert "no difference shown in accuracy" in narrow
    assert "Both intervals rule out the paper's +5.8 points" in narrow


def test_split_difference_image_by_image(grid):
    a = answers.split_difference(_open(grid))
    # SE: paper 7.5/8 (A 0.5); grouped: A 0.5, C and D 0 -> 5.5/8; A is the one test image
    # in a duplicate cluster, so 7 images have no duplicate anywhere: 7/7 against 5/7
    se = a.table[a.table["Model"] == "SE"]
    assert list(se["Paper split"]) == ["0.938", "1.000"]
    assert list(se["Grouped split"]) == ["0.688", "0.714"]
    assert list(se["Images (paper / grouped)"]) == ["8 / 8", "7 / 7"]


def _add_external(out, runs_names, misses):
    for name in runs_names:
        folder = out / name / "external" / "other"
        folder.mkdir(parents=True)
        split = (out / "splits" / "paper.csv").read_text()
        from tests.handmade import predictions_text

        text = predictions_text(split, misses).splitlines()
        flagged = [text[0] + ",duplicate_in_train"] + [
            line + ("," + ("exact" if line.startswith(A) else "none")) for line in text[1:]
        ]
        (folder / "predictions.csv").write_text("\n".join(flagged) + "\n")
        (folder / "metrics.json").write_text(json.dumps(
            {"n_test": 8, "external": {"name": "other", "classes_missing": []}}))  # fmt: skip


def test_external_scores_pooled_over_seeds_with_and_without_overlap(grid):
    assert answers.external(_open(grid)).sentence.startswith("Not measured yet")
    _add_external(grid, ["se-paper-seed1", "se-paper-seed2"], {C, D})
    a = answers.external(_open(grid))
    row = a.table.iloc[0]
    assert (row["Model"], row["Trained on"], row["Seeds"], row["Images"]) == (
        "SE",
        "paper",
        "2",
        "8",
    )
    numbers = a.numbers[("se", "paper")]
    assert numbers["accuracy"]["value"] == pytest.approx(6 / 8)  # C and D missed by both seeds
    assert numbers["clean"]["value"] == pytest.approx(5 / 7) and numbers["overlapping"] == 1
    assert row["Accuracy, no overlap with training [95%] (images)"].endswith("(7)")  # A out
    assert a.runs == ["se-paper-seed1", "se-paper-seed2"]
    assert "cannot tell which cause" in a.caveats[0]
    assert "training images: 1 for the paper split;" in a.caveats[0]


def test_external_own_test_accuracy_is_that_of_the_scored_runs_only(grid):
    _add_external(grid, ["se-paper-seed1"], {C, D})  # seed 2 converged but was not scored
    g = _open(grid)
    own = g.converged().set_index(["model", "split", "seed"])["accuracy"]
    a = answers.external(g)
    assert a.table.iloc[0]["Seeds"] == "1"
    assert own[("se", "paper", 1)] != own[("se", "paper", 2)]  # so a pooled mean would show
    assert a.table.iloc[0]["Own test set"] == f"{own[('se', 'paper', 1)]:.3f}"
    assert f"against {own[('se', 'paper', 1)]:.3f} on its own test set" in a.sentence


def _add_saliency(out, name, gradcam_area, random_area, spearman=None, in_brain=True):
    curve = {"fraction": [0.0, 0.5], "accuracy": [1.0, 0.5], "mean_true_probability": [1, 1]}
    s = {"images": 8, "cells": 7, "brain_area": {"mean": 0.6},
         "energy_in_brain": {m: {"mean": e, "blank_heatmaps": b} for m, e, b in
                             (("gradcam", 0.8, 1), ("gradcam++", 0.7, 0), ("random", 0.6, 0),
                              ("random_in_brain", 1.0, 0))},
         "deletion_images": 7,
         "deletion": {"gradcam": {**curve, "area": gradcam_area},
                      "gradcam++": {**curve, "area": gradcam_area + 0.01},
                      "random": {**curve, "area": random_area},
                      "random_in_brain": {**curve, "area": random_area - 0.05}}}  # fmt: skip
    if not in_brain:  # a saliency.json from before the in-brain baseline
        del s["deletion"]["random_in_brain"], s["energy_in_brain"]["random_in_brain"]
    if spearman is not None:
        s["randomisation"] = {"stages": {k: {"median_spearman": v} for k, v in spearman.items()}}
    (out / name / "saliency.json").write_text(json.dumps(s))


def test_saliency_sets_heatmaps_against_both_random_baselines_and_the_sanity_check(grid):
    assert answers.saliency(_open(grid)).sentence.startswith("Not measured yet")
    check = {"top": 0.3, "top+conv5": 0.1, "random heatmaps": 0.0}
    _add_saliency(grid, "se-paper-seed1", 0.55, 0.75, check)
    one = answers.saliency(_open(grid))  # one run: a gap, no interval, no interval caveat
    assert "not judged against random heatmaps (1 run)" in one.sentence
    assert not any("t over runs" in c for c in one.caveats)
    _add_saliency(grid, "se-paper-seed2", 0.60, 0.78, check)
    a = answers.saliency(_open(grid))
    # random minus Grad-CAM: 0.20 and 0.18; in the brain 0.15 and 0.13
    assert "gradcam: 80.0% of the heatmap inside the brain" in a.sentence
    assert "lowers accuracy faster than random heatmaps (+0.190" in a.sentence
    assert "faster than random heatmaps inside the brain (+0.140" in a.sentence
    assert "the heatmaps changed" in a.sentence and "with conv5 as well 0.10" in a.sentence
    assert "2 heatmaps were blank" in a.caveats[0]
    assert list(a.table["Blank"]) == ["2 of 16", "0 of 16"]
    assert any("t over runs" in c and "secondary, unadjusted" in c for c in a.caveats)
    _add_saliency(grid, "se-paper-seed1", 0.55, 0.75, {**check, "top+conv5": 0.8})
    _add_saliency(grid, "se-paper-seed2", 0.60, 0.78, {**check, "top+conv5": 0.8})
    assert "stayed similar" in answers.saliency(_open(grid)).sentence


def test_a_saliency_gap_over_fewer_runs_says_over_how_many(grid):
    """Runs analysed before the in-brain baseline existed: the sentence says that gap
    rests on 2 of the 3 runs, the one against all random heatmaps on all 3."""
    _add_saliency(grid, "se-paper-seed1", 0.55, 0.75)
    _add_saliency(grid, "se-paper-seed2", 0.60, 0.78)
    _add_saliency(grid, "base-paper-seed1", 0.58, 0.77, in_brain=False)
    a = answers.saliency(_open(grid))
    assert "inside the brain (+0.140 [" in a.sentence and "], 2 of 3 runs)" in a.sentence
    # against all random heatmaps over all 3 runs (0.20, 0.18, 0.19), so no count named
    assert "than random heatmaps (+0.190 [" in a.sentence and "], 3 of" not in a.sentence
    assert a.table.iloc[0]["Random in brain − heatmap [95% t, runs]"].endswith("2 of 3 runs")


def test_grad_cam_numbers_average_runs_of_one_schedule_and_name_the_rest(grid):
    _add_saliency(grid, "se-paper-seed1", 0.55, 0.75)
    _add_saliency(grid, "se-paper-seed2", 0.60, 0.78)
    _add_saliency(grid, "base-paper-seed1", 0.20, 0.90)  # another schedule: left out
    _set_profile(grid / "base-paper-seed1", max_epochs=40)
    a = answers.saliency(_open(grid))
    assert a.runs == ["se-paper-seed1", "se-paper-seed2"]
    assert "lowers accuracy faster than random heatmaps (+0.190" in a.sentence  # not 0.4
    assert a.caveats[-1] == (
        "Left out so that a mean holds one schedule (the runs table gives each run's): "
        "base-paper-seed1."
    )
    assert set(answers.saliency_table(_open(grid))["run"]) == set(a.runs)


def test_external_scores_pool_one_schedule_and_name_the_rest(grid):
    _add_external(grid, ["se-paper-seed1", "se-paper-seed2"], {C, D})
    _set_profile(grid / "se-paper-seed2", max_epochs=40)  # not today's schedule
    a = answers.external(_open(grid))
    assert a.table.iloc[0]["Seeds"] == "1" and a.runs == ["se-paper-seed1"]
    assert a.caveats[-1].endswith("each run's): se-paper-seed2.")


def test_distance_and_setup(grid):
    g = _open(grid)
    a = answers.distance_from_paper(g)
    assert "accuracy 0.938 against the paper's 0.984 (-4.6 points)" in a.sentence
    what = answers.setup(g)
    assert "No ImageNet weights" in what.caveats[0] and "at 32 px" in what.caveats[0]
    assert "`image_size` 32 (paper: 224)" in what.sentence and "`dedup`" in what.sentence
    assert "start from random weights" in a.caveats[0]


def test_distance_from_the_paper_averages_one_schedule_per_model(grid):
    whole = answers.distance_from_paper(_open(grid))
    _set_profile(grid / "se-paper-seed2", max_epochs=40)  # not today's schedule
    a = answers.distance_from_paper(_open(grid))
    assert a.table.iloc[0]["Seeds"] == "1" and a.table.iloc[1]["Seeds"] == "2"
    assert a.runs == ["se-paper-seed1", "base-paper-seed1", "base-paper-seed2"]
    assert a.caveats[-1] == (
        "Left out so that a mean holds one schedule (the runs table gives each run's): "
        "se-paper-seed2."
    )
    f = _open(grid).frame
    acc = f.set_index(["model", "split", "seed"])["accuracy"]
    se1 = acc[("se", "paper", 1)]
    assert f"**SE** (mean of 1 seed): accuracy {se1:.3f} against" in a.sentence
    assert f"{acc[('se', 'paper', 1)]:.3f}" != f"{(se1 + acc[('se', 'paper', 2)]) / 2:.3f}"
    assert "Left out" not in " ".join(whole.caveats)


@pytest.mark.parametrize(
    ("weights", "stand_in", "said"),
    [("imagenet", None, "ImageNet weights, as in the paper"),
     ("/tmp/standin.h5", "random weights (seed 0), not ImageNet: a stand-in",
      "**Stand-in backbone weights** (random weights (seed 0)")],
)  # fmt: skip
def test_the_page_says_which_weights_the_runs_started_from(grid, weights, stand_in, said):
    """A gathered grid of the paper profile: ImageNet, or the stand-in file a rehearsal
    used (run.json's ``weights_stand_in``), never the from-scratch caveat."""
    for meta_path in grid.glob("*/run.json"):
        meta = json.loads(meta_path.read_text())
        meta["profile"]["weights"] = weights
        meta.pop("weights_stand_in", None)
        if stand_in:
            meta["weights_stand_in"] = stand_in
        meta_path.write_text(json.dumps(meta))
    g = _open(grid)
    what, distance = answers.setup(g), answers.distance_from_paper(g)
    assert said in what.caveats[0] and "No ImageNet weights" not in what.caveats[0]
    assert "random weights, so" not in distance.caveats[0]
    assert ("stand-in" in distance.caveats[0]) == bool(stand_in)


def test_the_readme_block_is_written_from_the_answers_and_needs_its_markers(grid, tmp_path):
    g = _open(grid)
    block = answers.readme_block(g)
    assert block.startswith(answers.README_START) and block.endswith(answers.README_END)
    for a in answers.all_answers(g):
        assert a.sentence in block
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{answers.README_START}\nold\n{answers.README_END}\n\nmore\n")
    assert answers.write_readme_block(readme, block)
    assert not answers.write_readme_block(readme, block)  # unchanged the second time
    assert readme.read_text() == f"# x\n\n{block}\n\nmore\n"
    readme.write_text("# no block\n")
    with pytest.raises(results.ResultsError, match="no results block"):
        answers.write_readme_block(readme, block)


def test_printed_digits_follow_the_monte_carlo_error():
    assert display.decimals(0.0002) == 1  # 0.02 points: one decimal of a point is safe
    assert display.decimals(0.002) == 0  # 0.2 points: whole points
    assert display.decimals(0.0002, scale=1) == 3 and display.decimals(0.002, scale=1) == 2
    r = {"difference": 0.0312, "low": -0.0149, "high": 0.0771, "mc_error": 0.002}
    assert display.interval(r) == "+3 points [-1, +8]"
    assert display.interval({**r, "mc_error": 0.0001}) == "+3.1 points [-1.5, +7.7]"
    frame = pd.DataFrame({"a": [1.0, float("nan")], "b": [14.0, 2.0]})
    t = display.table(frame, {"a": "A", "b": "Epochs"}, {"b": 0})
    assert list(t["A"]) == ["1.000", "–"] and list(t["Epochs"]) == ["14", "2"]
