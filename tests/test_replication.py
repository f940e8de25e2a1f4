"""The replication grid: profile fields, run reuse, export and the three answers.

The runs here are written by hand (predictions chosen image by image), so
every summary, test and difference has a value worked out in the comments.
The real-data results committed under ``results/`` are checked at the end.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlib import evaluation, findings, replication
from brainlib import runs as runs_mod
from brainlib.config import CLASSES, ConfigError, load_profile
from brainlib.data.splits import split_csv_text
from tests.conftest import write_image

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (1, 2)

# Test images (2 per class); "G_dup" is a byte copy of the training image G_0.
A, B = "glioma_tumor/G_dup.jpg", "glioma_tumor/G_3.jpg"
C, D = "meningioma_tumor/M_3.jpg", "meningioma_tumor/M_4.jpg"
# The test images each run gets wrong.
MISSES = {
    ("paper", 1, "se"): set(), ("paper", 2, "se"): {A},
    ("paper", 1, "base"): {A, B}, ("paper", 2, "base"): {A, C},
    ("grouped", 1, "se"): {C, D}, ("grouped", 2, "se"): {A, C, D},
    ("grouped", 1, "base"): {A, B, C, D}, ("grouped", 2, "base"): {B, C, D},
}  # fmt: skip


# ---------------------------------------------------------------------------- profile


def test_grid_fields_read_from_toml_and_command_line():
    p = load_profile("scratch")
    assert len(p.seeds) >= 3 and p.splits == ("paper", "grouped")
    q = load_profile("smoke", seeds="7, 8", splits="grouped")
    assert q.seeds == (7, 8) and q.splits == ("grouped",)
    with pytest.raises(ConfigError, match="'random'"):
        load_profile("smoke", splits="paper,random")
    with pytest.raises(ConfigError, match="repeat"):
        load_profile("smoke", seeds="1,1")
    with pytest.raises(ConfigError, match="seeds"):
        load_profile("smoke", seeds="1,x")


def test_grid_pairs_profile_first_without_repeats():
    p = load_profile("smoke", seeds=(3, 42), splits=("grouped", "paper"))
    assert runs_mod.grid(p) == [("paper", 42), ("grouped", 3), ("grouped", 42), ("paper", 3)]
    assert runs_mod.grid(load_profile("smoke")) == [("paper", 42)]


def test_finished_runs_survive_fields_that_do_not_change_training():
    old = load_profile("scratch").to_dict()
    for key in ("seeds", "splits"):  # a run.json written before these fields existed
        old.pop(key)
    new = load_profile("scratch", bootstrap_resamples=50, description="x").to_dict()
    assert runs_mod.training_fields_changed(old, new) == []
    changed = runs_mod.training_fields_changed(old, load_profile("scratch", dropout=0.3).to_dict())
    assert changed == ["dropout: 0.5 != 0.3"]
    old.pop("bn_momentum")  # missing in an old run.json: counts only if not the default
    assert runs_mod.training_fields_changed(old, new) == ["bn_momentum: None != 0.9"]


# ---------------------------------------------------------------------- a hand-made grid


def _dataset(root: Path) -> tuple[Path, dict[str, str]]:
    """5 images per class plus an exact copy of G_0; 2 train, 1 val, 2 test per class."""
    assignment = {}
    for k, cls in enumerate(CLASSES):
        for i in range(5):
            rel = f"{cls}/{cls[0].upper()}_{i}.jpg"
            write_image(root / rel, seed=10 * k + i, size=(64, 64))
            assignment[rel] = {0: "train", 1: "train", 2: "val"}.get(i, "test")
    shutil.copyfile(root / "glioma_tumor/G_0.jpg", root / A)
    assignment["glioma_tumor/G_4.jpg"] = "train"
    assignment[A] = "test"
    return root, assignment


def _write_run(folder: Path, meta: dict, split_text: str, misses: set[str]) -> None:
    folder.mkdir(parents=True)
    (folder / "split.csv").write_text(split_text)
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "log.txt").write_text("hand-made\n")
    (folder / "weights").mkdir()
    (folder / "weights" / "best.weights.h5").write_bytes(b"not exported")
    (folder / "history.csv").write_text(
        "epoch,accuracy,loss,val_accuracy,val_loss,learning_rate,seconds\n"
        "1,0.5,1.2,0.5,1.3,0.001,30\n2,0.7,0.8,0.6,1.0,0.001,30\n"
    )
    rows = ["path,class," + ",".join(evaluation.PROB_COLUMNS) + ",predicted"]
    tests = [r.split(",") for r in split_text.splitlines()[1:] if r.endswith(",test")]
    for path, cls, *_ in tests:
        k = CLASSES.index(cls)
        guess = (k + 1) % 4 if path in misses else k
        proba = [0.7 if j == guess else 0.1 for j in range(4)]
        rows.append(f"{path},{cls}," + ",".join(map(str, proba)) + f",{CLASSES[guess]}")
    (folder / "predictions.csv").write_text("\n".join(rows) + "\n")
    evaluation.evaluate_run(folder, n_resamples=50)  # reads predictions.csv: no model needed


@pytest.fixture
def grid(tmp_path):
    from brainlib.data import index_duplicates, scan_dataset
    from brainlib.data.audit import write_duplicate_flags

    data, assignment = _dataset(tmp_path / "data")
    split_text = split_csv_text(scan_dataset(data), assignment)
    profile = load_profile("smoke", seeds=SEEDS, splits=("paper", "grouped"), seed=1)
    runs = tmp_path / "runs"
    for (split, seed, variant), misses in MISSES.items():
        p = profile.replace(split=split)
        meta = {"variant": variant, "seed": seed, "profile": p.to_dict(), "status": "complete",
                "epochs": 2, "best_epoch": 2, "train_seconds": 60.0, "data_root": str(data),
                "device": {"cpu_count": 2, "machine": "x86_64"},
                "versions": {"tensorflow-cpu": "2.21.0", "keras": "3.15.1"}}  # fmt: skip
        _write_run(runs_mod.run_dir(runs, p, variant, seed), meta, split_text, misses)
    index = index_duplicates(scan_dataset(data))  # the data stage's flags
    write_duplicate_flags(runs_mod.data_stage_dir(runs, profile), index,
                          {"paper": assignment, "grouped": assignment})  # fmt: skip
    out = replication.export(runs, profile, tmp_path / "results")
    return profile, runs, out


def test_export_copies_small_artifacts_once_per_split_and_never_weights(grid):
    _, _, out = grid
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "splits/paper.csv" in files and "splits/grouped-duplicates.csv" in files
    assert len([f for f in files if f.endswith("/run.json")]) == 8
    assert not [f for f in files if "weights" in f or f.endswith("split.csv")]
    assert replication.check_metrics(out) == 8
    flags = replication.duplicate_flags(out, "paper")
    assert flags[A] == "exact" and flags["glioma_tumor/G_0.jpg"] == "none"
    assert sum(v != "none" for v in flags.values()) == 1


def test_export_again_with_a_smaller_grid_leaves_no_stale_runs(grid, tmp_path):
    profile, runs, out = grid
    smaller = profile.replace(seeds=(2,), splits=("grouped",))  # + its own pair (paper, 1)
    again = replication.export(runs, smaller, out.parent)
    assert again == out
    assert sorted(d.name for d in replication.run_dirs(out)) == [
        "base-grouped-seed2", "base-paper-seed1", "se-grouped-seed2", "se-paper-seed1"]  # fmt: skip
    assert sorted(p.name for p in (out / "splits").iterdir()) == [
        "grouped-duplicates.csv", "grouped.csv", "paper-duplicates.csv", "paper.csv"]  # fmt: skip


def test_export_refuses_runs_that_disagree_on_their_split(grid, tmp_path):
    profile, runs, _ = grid
    split = next((runs / profile.name).glob("base-grouped-seed2")) / "split.csv"
    split.write_text(split.read_text().replace(f"{B},", f"{B}x,"))
    with pytest.raises(replication.ReplicationError, match=re.escape("seed2/split.csv")):
        replication.export(runs, profile, tmp_path / "again")


def test_load_names_the_missing_file_and_check_catches_edited_metrics(grid):
    _, _, out = grid
    metrics = out / "se-paper-seed1" / "metrics.json"
    m = json.loads(metrics.read_text())
    m["accuracy"] = 0.999
    metrics.write_text(json.dumps(m))
    with pytest.raises(replication.ReplicationError, match=re.escape("seed1/metrics.json")):
        replication.check_metrics(out)
    (out / "base-paper-seed2" / "predictions.csv").unlink()
    with pytest.raises(replication.ReplicationError, match=re.escape("seed2: predictions.csv")):
        replication.load(out)


def test_summary_over_seeds(grid):
    _, _, out = grid
    s = replication.summary(replication.load(out))
    # SE on the paper split: 8/8 and 7/8 right
    assert s.loc[("paper", "se"), "accuracy_mean"] == pytest.approx(0.9375)
    assert s.loc[("paper", "se"), "accuracy_sd"] == pytest.approx(np.std([1, 0.875], ddof=1))
    assert s.loc[("grouped", "base"), "accuracy_min"] == pytest.approx(0.5)
    assert list(s.index) == [("paper", "se"), ("paper", "base"), ("grouped", "se"),
                             ("grouped", "base")]  # fmt: skip


def test_se_against_base_per_seed_and_over_seeds(grid):
    _, _, out = grid
    per_seed = replication.se_vs_base(out).set_index(["split", "seed"])
    first = per_seed.loc[("paper", 1)]
    # base misses A and B, SE none: 2 discordant pairs for SE, exact McNemar p = 2 * 0.5**2
    assert (first["only_se_right"], first["only_base_right"]) == (2, 0)
    assert first["mcnemar_p"] == pytest.approx(0.5)
    assert first["difference"] == pytest.approx(0.25)
    over = replication.paired_over_seeds(per_seed.reset_index())
    # paper: +2/8 and +1/8 -> mean 0.1875; grouped: +2/8 and 0/8 -> 0.125
    assert over.loc["paper", "mean"] == pytest.approx(0.1875)
    assert over.loc["grouped", "mean"] == pytest.approx(0.125)
    assert over.loc["paper", "seeds_favouring_se"] == 2
    assert over.loc["grouped", "seeds_favouring_se"] == 1
    lo, hi = over.loc["paper", ["ci_low", "ci_high"]]
    half = 12.706 * np.std([0.25, 0.125], ddof=1) / np.sqrt(2)  # t(0.975, 1 df)
    assert (lo, hi) == pytest.approx((0.1875 - half, 0.1875 + half), abs=1e-3)


def test_split_difference_paired_by_seed(grid):
    _, _, out = grid
    leak = replication.split_difference(replication.load(out))
    # SE: (8-6)/8 and (7-5)/8 -> 0.25, sd 0; base: (6-4)/8 and (6-5)/8 -> 0.1875
    assert leak.loc["se", "split_difference"] == pytest.approx(0.25)
    assert leak.loc["se", "sd"] == pytest.approx(0.0)
    assert leak.loc["base", "split_difference"] == pytest.approx(0.1875)
    assert leak.loc["base", "grouped_split"] == pytest.approx((0.5 + 0.625) / 2)


def test_split_difference_image_by_image_and_where_no_copy_exists(grid):
    _, _, out = grid
    frame = replication.load(out)
    t = pd.concat([replication.split_difference_by_image(out, frame, m, n_resamples=200)
                   for m in ("se", "base")])  # fmt: skip
    # SE, share of seeds right per image: paper A 0.5, rest 1 -> 7.5/8; grouped A 0.5, C and
    # D 0 -> 5.5/8. A (a copy of G_0) is the one test image in a duplicate cluster.
    se = t.loc[("se", "all test images")]
    assert (se["paper_split"], se["grouped_split"]) == pytest.approx((7.5 / 8, 5.5 / 8))
    assert se["difference"] == pytest.approx(0.25) and se["seeds"] == 2
    alone = t.loc[("se", "no duplicate anywhere")]
    assert (alone["paper_images"], alone["grouped_images"]) == (7, 7)
    assert alone["difference"] == pytest.approx(1 - 5 / 7)
    base = t.loc[("base", "no duplicate anywhere")]  # paper: B, C 0.5 -> 6/7; grouped 4/7
    assert base["difference"] == pytest.approx(2 / 7)
    assert (t["low"] <= t["difference"]).all() and (t["difference"] <= t["high"]).all()
    sentence = findings.split_by_image_sentence("se", t)
    assert "0.938 against 0.688, +25.0 points" in sentence
    assert "On the 7 and 7 test images with no duplicate anywhere" in sentence


def test_accuracy_on_test_images_with_a_duplicate_in_train(grid):
    _, _, out = grid
    by = replication.accuracy_by_duplicate(out, "paper")
    # A (the copy of G_0) is the one leaked image: SE right with seed 1 only, base never
    assert by.loc[("se", "duplicate in train"), "images"] == 1
    assert by.loc[("se", "duplicate in train"), "accuracy_mean"] == pytest.approx(0.5)
    assert by.loc[("base", "duplicate in train"), "accuracy_mean"] == pytest.approx(0.0)
    assert by.loc[("base", "no duplicate in train"), "accuracy_mean"] == pytest.approx(6 / 7)


def test_distance_from_the_paper(grid):
    _, _, out = grid
    d = replication.distance_from_paper(replication.load(out))
    assert d.loc["se", "accuracy_gap"] == pytest.approx(0.9375 - 0.984)
    assert d.loc["base", "paper_auc"] == pytest.approx(0.987)


def test_the_pages_sentences_on_the_hand_made_grid(grid):
    from brainlib import paper

    _, _, out = grid
    frame = replication.load(out)
    over = replication.paired_over_seeds(replication.se_vs_base(out, frame))
    sentence = findings.se_vs_base_sentence("paper", over.loc["paper"])
    assert "SE - base = +18.8 points" in sentence  # mean of +25.0 and +12.5
    assert "no difference shown" in sentence  # 2 seeds: t-interval [-60.6, +98.1] points
    leak = replication.split_difference(frame)
    assert "+25.0 points (paired by seed" in findings.split_difference_sentence(
        "se", leak.loc["se"]
    )
    # a seed without its grouped run leaves the means too, not only the difference
    seeds = sorted(frame["seed"].unique())
    one = replication.split_difference(
        frame[~((frame["split"] == "grouped") & (frame["seed"] == seeds[-1]))]
    ).loc["se"]
    paper_of = frame[(frame["model"] == "se") & (frame["split"] == "paper")].set_index("seed")
    assert one["seeds"] == len(seeds) - 1
    assert one["paper_split"] == pytest.approx(paper_of.loc[seeds[:-1], "accuracy"].mean())
    assert one["paper_split"] - one["grouped_split"] == pytest.approx(one["split_difference"])
    dist = replication.distance_from_paper(frame)
    assert "accuracy 0.938 against the paper's 0.984 (-4.6 points)" in findings.distance_sentence(
        "se", dist.loc["se"]
    )
    fit = findings.fit_sentence(frame, paper.reported()["training"])
    assert "every one below 0.95" in fit  # the hand-made runs end at 0.7
    caveat = findings.weights_caveat(replication.profile_of(out), {"cpu_count": 2})
    assert "No ImageNet weights" in caveat and "at 32 px" in caveat
    assert "`image_size` 32 (paper: 224)" in findings.protocol_sentence(replication.profile_of(out))


# --------------------------------------------------------------- the committed results


COMMITTED = ROOT / replication.RESULTS_DIR / replication.EARLIER_PROFILE  # the 64 px grid


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed replication results")
def test_committed_results_are_complete_and_consistent():
    frame = replication.load(COMMITTED)
    profile = load_profile(replication.EARLIER_PROFILE)
    expected = {(s, d, v) for s, d in runs_mod.grid(profile) for v in ("se", "base")}
    assert set(zip(frame["split"], frame["seed"], frame["model"], strict=True)) >= expected
    assert replication.check_metrics(COMMITTED) == len(frame)
    assert (frame["n_test"] >= 300).all()  # the real test sets: 309 and 311 images
    for folder in frame["folder"]:
        meta = json.loads((folder / "run.json").read_text())
        assert meta["profile"]["weights"] == "none" and meta["status"] == "complete"
        same_split = profile.replace(split=meta["profile"]["split"]).to_dict()
        changed = runs_mod.training_fields_changed(meta["profile"], same_split)
        assert {c.split(":")[0] for c in changed} <= SCHEDULE_FIELDS  # the first 224 px schedule
    assert not list(COMMITTED.rglob("*.h5"))


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed replication results")
def test_the_readmes_results_are_the_committed_ones():
    frame = replication.load(COMMITTED)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    s = replication.summary(frame)
    for model in ("se", "base"):
        assert f"{s.loc[('paper', model), 'accuracy_mean']:.3f}" in readme, model
    over = replication.paired_over_seeds(replication.se_vs_base(COMMITTED, frame))
    for split in ("paper", "grouped"):
        o = over.loc[split]
        assert f"{100 * o['mean']:.1f} points" in readme, split
        assert f"[{100 * o['ci_low']:+.1f}, {100 * o['ci_high']:+.1f}]" in readme, split
    leak = replication.split_difference(frame)
    assert f"SE {100 * leak.loc['se', 'split_difference']:.1f} points" in readme
    assert f"base {100 * leak.loc['base', 'split_difference']:.1f}" in readme
    assert (COMMITTED / "replication_runs.png").stat().st_size < 200_000


def test_partial_export_takes_the_finished_runs_and_their_clusters(grid, tmp_path):
    """A grid trained over several sittings commits its runs as they finish."""
    profile, runs, _ = grid
    unfinished = runs_mod.run_dir(runs, profile.replace(split="grouped"), "se", 2)
    meta = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    with pytest.raises(runs_mod.RunError, match="se-grouped-seed2"):
        replication.export(runs, profile, tmp_path / "whole")
    part = replication.export(runs, profile, tmp_path / "part", partial=True)
    assert "se-grouped-seed2" not in {d.name for d in replication.run_dirs(part)}
    assert len(replication.run_dirs(part)) == 7
    flags = pd.read_csv(part / "splits" / "paper-duplicates.csv").set_index("path")
    # the exact copy and its original share a cluster; every other image is its own
    assert flags.loc[A, "cluster"] == flags.loc["glioma_tumor/G_0.jpg", "cluster"]
    assert flags["cluster"].nunique() == len(flags) - 1


def _rows(val_losses, accuracies):
    return [{"epoch": i + 1, "val_loss": v, "accuracy": a, "val_accuracy": 0.8}
            for i, (v, a) in enumerate(zip(val_losses, accuracies, strict=True))]  # fmt: skip


def test_convergence_rule_by_hand():
    ok = runs_mod.convergence(_rows([0.9, 0.5, 0.4, 0.45, 0.5], [0.7, 0.9, 0.96, 0.97, 0.98]))
    assert ok["converged"] and ok["best_epoch"] == 3 and ok["train_accuracy"] == 0.96
    still_improving = runs_mod.convergence(_rows([0.9, 0.5, 0.4], [0.7, 0.9, 0.99]))
    assert not still_improving["converged"] and "last epoch (3)" in still_improving["reason"]
    unfitted = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.85, 0.99]))
    assert not unfitted["converged"] and "0.850, below 0.95" in unfitted["reason"]
    # the best weights' accuracy on the training images, when measured, is what is judged
    fitted = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.85, 0.99]), fitted_accuracy=0.97)
    assert fitted["converged"] and fitted["logged_train_accuracy"] == 0.85
    assert fitted["train_accuracy"] == 0.97
    short = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.96, 0.99]), fitted_accuracy=0.9)
    assert not short["converged"] and "of the best weights is 0.900" in short["reason"]
    with pytest.raises(runs_mod.RunError):
        runs_mod.convergence([])


def test_export_carries_the_earlier_stages_of_a_progressive_run(grid, tmp_path):
    profile, runs, _ = grid
    final = runs_mod.run_dir(runs, profile, "se", 1)
    stage = runs / "low" / final.name
    stage.mkdir(parents=True)
    for name in ("run.json", "history.csv", "log.txt"):
        shutil.copyfile(final / name, stage / name)
    meta = json.loads((final / "run.json").read_text())
    (final / "run.json").write_text(json.dumps({**meta, "init_weights": {"run": str(stage)}}))
    out = replication.export(runs, profile, tmp_path / "staged")
    copied = sorted(p.name for p in (out / "stages" / "low" / final.name).iterdir())
    assert copied == ["history.csv", "log.txt", "run.json"]
    assert replication.check_metrics(out) == 8  # the stages are not runs of the grid
    whole = replication.full_history(out, out / final.name)  # the stage's 2 epochs, then 2 more
    assert list(whole["epoch"]) == [1, 2, 3, 4] and list(whole["accuracy"]) == [0.5, 0.7] * 2
    assert replication.stage_minutes(out, final.name) == {"low": 1.0}  # 60 s
    frame = replication.load(out)
    table = replication.convergence_table(out, frame).set_index(["split", "model", "seed"])
    assert table.loc[("paper", "se", 1), "stages"] == 2
    assert table.loc[("paper", "se", 1), "minutes_all_stages"] == pytest.approx(2.0)
    schedule = replication.schedule_table(out, frame)
    assert schedule["runs"].sum() == 9 and schedule["seconds_per_epoch"].iloc[0] == 30


def test_pooled_se_against_base_by_hand(grid):
    _, _, out = grid
    r = replication.pooled_se_vs_base(out, replication.load(out), "paper", n_resamples=200)
    # SE misses nothing, then A: 15 of 16 image-seeds; base misses A, B then A, C: 12 of 16
    assert r["seeds"] == [1, 2]
    assert (r["accuracy_se"], r["accuracy_base"]) == pytest.approx((15 / 16, 12 / 16))
    assert r["accuracy"]["difference"] == pytest.approx(3 / 16)
    assert (
        r["accuracy"]["clusters"] == 8 and r["accuracy"]["low"] <= 3 / 16 <= r["accuracy"]["high"]
    )
    # seed 1, seed 2, the majority vote: a 1-1 tie goes to the larger mean probability, here
    # equal too (0.4 each), so to the first class: A stays right for SE and wrong for base,
    # while base's split votes on B and C come out right
    assert list(r["mcnemar"]["only_a_right"]) == [2, 1, 1]
    assert r["per_class"].loc["glioma_tumor", "difference"] == pytest.approx(0.5)
    sentence = findings.pooled_sentence(r)
    assert "SE - base = +18.8 points" in sentence and "pooled over 2 seeds (1, 2)" in sentence


def test_leakage_on_a_fixed_test_set_by_hand(grid):
    _, _, out = grid
    frame = replication.load(out)
    # the hand-made grid's "grouped" runs share the paper split's test images: use them as
    # the runs without the copies. SE: A (the one duplicate) right 1 of 2 times either way;
    # the 7 others: all right with the copies, C and D missed by both seeds without.
    table, seeds = replication.leakage(out, frame, "se", "paper", "grouped", n_resamples=200)
    assert seeds == [1, 2]
    assert table.loc["duplicate in training", "difference"] == pytest.approx(0.0)
    assert table.loc["no duplicate in training", "difference"] == pytest.approx(2 / 7)
    did = table.loc["leakage effect (difference of differences)", "difference"]
    assert did == pytest.approx(-2 / 7)
    sentence = findings.leakage_sentence("se", table, seeds)
    assert "Difference of the differences: -28.6 points" in sentence
    with pytest.raises(replication.ReplicationError, match="dedup"):
        replication.leakage(out, frame, "se")  # no dedup runs in this grid


def test_convergence_table_reads_fit_json_where_exported(grid):
    _, _, out = grid
    (out / "se-paper-seed1" / "fit.json").write_text(json.dumps({"train_accuracy": 0.99}))
    table = replication.convergence_table(out, replication.load(out))
    table = table.set_index(["split", "model", "seed"])
    # the hand-made histories end at their lowest validation loss: none converged
    assert not table["converged"].any()
    assert table.loc[("paper", "se", 1), "fitted_accuracy"] == 0.99
    assert np.isnan(table.loc[("paper", "se", 2), "fitted_accuracy"])
    sentence = findings.convergence_sentence(table.reset_index())
    assert sentence.startswith("0 of 8 runs meet") and "measured for 1 of them" in sentence
    assert "Not converged: se-paper-seed1 (its best validation loss is at its last epoch (2))" in (
        sentence
    )


CONVERGED = ROOT / replication.RESULTS_DIR / "real224"
#: What the 224 px stage's schedule changed (16 epochs, patience 3 -> 40, 5).
SCHEDULE_FIELDS = {"max_epochs", "early_stopping_patience"}


@pytest.mark.skipif(not CONVERGED.is_dir(), reason="no committed real224 runs yet")
def test_committed_real224_runs_are_consistent_and_say_whether_they_converged():
    """The grid is trained in parts: whatever is committed is checked, and each run's verdict
    under the convergence rule can be computed from what was committed."""
    frame = replication.load(CONVERGED)
    assert replication.check_metrics(CONVERGED) == len(frame)
    profile = load_profile("real224")
    for folder in frame["folder"]:
        meta = json.loads((folder / "run.json").read_text())
        assert meta["profile"]["image_size"] == 224 and meta["status"] == "complete"
        same_split = profile.replace(split=meta["profile"]["split"]).to_dict()
        changed = runs_mod.training_fields_changed(meta["profile"], same_split)
        assert {c.split(":")[0] for c in changed} <= SCHEDULE_FIELDS  # the first 224 px schedule
        fit = json.loads((folder / "fit.json").read_text())  # brainlib analyse, before export
        split_csv = (CONVERGED / "splits" / f"{fit['split']}.csv").read_text().splitlines()
        assert fit["n_train"] == sum(line.endswith(",train") for line in split_csv)
        verdict = runs_mod.convergence(runs_mod.read_history_rows(folder), fit["train_accuracy"])
        assert verdict["best_epoch"] == meta["best_epoch"]
        saliency = json.loads((folder / "saliency.json").read_text())
        assert saliency["cells"] == 7 and saliency["images"] == len(
            evaluation.read_predictions(folder))  # fmt: skip
        stages = [CONVERGED / "stages" / p / folder.name for p in ("real64", "real128")]
        assert all((s / "history.csv").is_file() for s in stages)
    assert not list(CONVERGED.rglob("*.h5"))


@pytest.mark.skipif(not CONVERGED.is_dir(), reason="no committed real224 runs yet")
def test_the_readmes_real224_results_are_the_committed_ones():
    frame = replication.load(CONVERGED)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    planned = 2 * len(runs_mod.grid(load_profile("real224")))
    assert f"{len(frame)} of its {planned} runs are committed so far" in readme
    fits = replication.convergence_table(CONVERGED, frame)
    for value in fits["fitted_accuracy"]:
        assert f"{value:.3f}" in readme
    if replication.paired_seeds(frame, "paper"):
        r = replication.pooled_se_vs_base(CONVERGED, frame, "paper", n_resamples=2000)
        acc = r["accuracy"]
        assert f"SE - base = {100 * acc['difference']:.1f} points" in readme.replace("\n  ", " ")
        assert f"[{100 * acc['low']:+.1f}, {100 * acc['high']:+.1f}]" in readme
    sal = replication.saliency_table(frame)
    for area in sal.loc[sal["method"] == "gradcam", "deletion_area"]:
        assert f"{area:.3f}" in readme
