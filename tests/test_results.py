"""Committed results: the grid's profile fields, export (adding to what is committed),
load and checks, the convergence rule; and the results committed under ``results/``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from brainlib import answers, results
from brainlib import runs as runs_mod
from brainlib.config import load_profile
from tests.handmade import A, B, make_grid

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def grid(tmp_path):
    return make_grid(tmp_path)


def test_export_copies_small_artifacts_once_per_split_and_never_weights(grid):
    _, _, out = grid
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert "splits/paper.csv" in files and "splits/dedup-duplicates.csv" in files
    assert len([f for f in files if f.endswith("/run.json")]) == 12
    assert len([f for f in files if f.endswith("/fit.json")]) == 12
    assert not [f for f in files if "weights" in f or f.endswith("split.csv")]
    assert results.check_metrics(out) == 12
    flags = results.duplicate_table(out, "paper")["duplicate_in_train"]
    assert flags[A] == "exact" and flags["glioma_tumor/G_0.jpg"] == "none"
    assert sum(flags != "none") == 1


def test_export_adds_to_the_committed_runs_and_replace_starts_afresh(grid, tmp_path):
    profile, runs, out = grid
    smaller = profile.replace(seeds=(2,), splits=("grouped",))  # + its own pair (paper, 1)
    shutil.rmtree(runs / profile.name / "se-dedup-seed2")  # trained elsewhere: committed only
    again = results.export(runs, smaller, out.parent)
    assert again == out and len(results.run_dirs(out)) == 12  # nothing committed is lost
    fresh = results.export(runs, smaller, out.parent, replace=True)
    assert sorted(d.name for d in results.run_dirs(fresh)) == [
        "base-grouped-seed2", "base-paper-seed1", "se-grouped-seed2", "se-paper-seed1"]  # fmt: skip


def test_export_refuses_a_split_that_differs_from_the_committed_one(grid):
    profile, runs, out = grid
    for folder in (runs / profile.name).glob("*-grouped-seed*"):
        split = folder / "split.csv"
        split.write_text(split.read_text().replace(f"{B},", f"{B}x,"))
    with pytest.raises(results.ResultsError, match="differs from the committed"):
        results.export(runs, profile, out.parent)
    assert results.check_metrics(out) == 12  # the committed folder is untouched


def test_export_refuses_runs_that_disagree_on_their_split(grid, tmp_path):
    profile, runs, _ = grid
    split = next((runs / profile.name).glob("base-grouped-seed2")) / "split.csv"
    split.write_text(split.read_text().replace(f"{B},", f"{B}x,"))
    with pytest.raises(results.ResultsError, match=re.escape("seed2/split.csv")):
        results.export(runs, profile, tmp_path / "again")


def test_export_carries_external_scores(grid, tmp_path):
    profile, runs, _ = grid
    ext = runs_mod.run_dir(runs, profile, "se", 1) / "external" / "other"
    ext.mkdir(parents=True)
    (ext / "predictions.csv").write_text("path,class\n")
    (ext / "metrics.json").write_text("{}")
    out = results.export(runs, profile, tmp_path / "with-external")
    assert (out / "se-paper-seed1" / "external" / "other" / "metrics.json").is_file()
    assert results.external_sets(results.load(out)) == ["other"]


def test_load_names_the_missing_file_and_check_catches_edited_metrics(grid):
    _, _, out = grid
    metrics = out / "se-paper-seed1" / "metrics.json"
    m = json.loads(metrics.read_text())
    m["accuracy"] = 0.999
    metrics.write_text(json.dumps(m))
    with pytest.raises(results.ResultsError, match=re.escape("seed1/metrics.json")):
        results.check_metrics(out)
    (out / "base-paper-seed2" / "predictions.csv").unlink()
    with pytest.raises(results.ResultsError, match=re.escape("seed2: predictions.csv")):
        results.load(out)


def test_partial_export_takes_the_finished_runs_and_their_clusters(grid, tmp_path):
    """A grid trained over several sittings commits its runs as they finish."""
    profile, runs, _ = grid
    unfinished = runs_mod.run_dir(runs, profile.replace(split="grouped"), "se", 2)
    meta = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**meta, "status": "running"}))
    with pytest.raises(runs_mod.RunError, match="se-grouped-seed2"):
        results.export(runs, profile, tmp_path / "whole")
    part = results.export(runs, profile, tmp_path / "part", partial=True)
    assert "se-grouped-seed2" not in {d.name for d in results.run_dirs(part)}
    assert len(results.run_dirs(part)) == 11
    flags = pd.read_csv(part / "splits" / "paper-duplicates.csv").set_index("path")
    # the exact copy and its original share a cluster; every other image is its own
    assert flags.loc[A, "cluster"] == flags.loc["glioma_tumor/G_0.jpg", "cluster"]
    assert flags["cluster"].nunique() == len(flags) - 1


def test_export_carries_the_earlier_stages_of_a_progressive_run(grid, tmp_path):
    profile, runs, _ = grid
    final = runs_mod.run_dir(runs, profile, "se", 1)
    stage = runs / "low" / final.name
    stage.mkdir(parents=True)
    for name in ("run.json", "history.csv", "log.txt"):
        shutil.copyfile(final / name, stage / name)
    meta = json.loads((final / "run.json").read_text())
    (final / "run.json").write_text(json.dumps({**meta, "init_weights": {"run": str(stage)}}))
    out = results.export(runs, profile, tmp_path / "staged")
    copied = sorted(p.name for p in (out / "stages" / "low" / final.name).iterdir())
    assert copied == ["history.csv", "log.txt", "run.json"]
    assert results.check_metrics(out) == 12  # the stages are not runs of the grid
    whole = results.full_history(out, out / final.name)  # the stage's 4 epochs, then 4 more
    assert list(whole["epoch"]) == list(range(1, 9)) and list(whole["stage"]) == ["smoke"] * 8
    assert [f.name for f, _ in results.stage_chain(out, out / final.name)] == [final.name] * 2
    assert results.stage_ends({"se": whole}) == "8 (smoke)"
    other = whole.assign(stage=["low"] * 3 + ["smoke"] * 5)
    assert results.stage_ends({"se": whole, "base": whole}) == "8 (smoke)"  # the same: once
    assert results.stage_ends({"se": other, "base": whole}, {"se": "SE"}) == (
        "SE: 3 (low), 8 (smoke); base: 8 (smoke)")  # fmt: skip


def _rows(val_losses, accuracies):
    return [{"epoch": i + 1, "val_loss": v, "accuracy": a, "val_accuracy": 0.8}
            for i, (v, a) in enumerate(zip(val_losses, accuracies, strict=True))]  # fmt: skip


def test_convergence_rule_by_hand():
    ok = runs_mod.convergence(_rows([0.9, 0.5, 0.4, 0.45, 0.5], [0.7, 0.9, 0.96, 0.97, 0.98]),
                              patience=2)  # fmt: skip
    assert ok["converged"] and ok["best_epoch"] == 3 and ok["train_accuracy"] == 0.96
    # best at epoch 3 of 5: stopped on a patience of 2, not of 3 (it ran out of epochs)
    capped = runs_mod.convergence(_rows([0.9, 0.5, 0.4, 0.45, 0.5], [0.7, 0.9, 0.96, 0.97, 0.98]),
                                  patience=3)  # fmt: skip
    assert not capped["converged"] and not capped["stopped_on_patience"]
    assert "ran out of epochs 2 after its best (3 of 5), before its patience of 3" in (
        capped["reason"])  # fmt: skip
    still_improving = runs_mod.convergence(_rows([0.9, 0.5, 0.4], [0.7, 0.9, 0.99]))
    assert not still_improving["converged"] and "last epoch (3)" in still_improving["reason"]
    unfitted = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.85, 0.99]))
    assert not unfitted["converged"] and "0.850, below 0.95" in unfitted["reason"]
    # the best weights' accuracy on the training images, when measured, is what is judged
    fitted = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.85, 0.99]), fitted_accuracy=0.97)
    assert fitted["converged"] and fitted["logged_train_accuracy"] == 0.85
    short = runs_mod.convergence(_rows([0.9, 0.5, 0.6], [0.7, 0.96, 0.99]), fitted_accuracy=0.9)
    assert not short["converged"] and "of the best weights is 0.900" in short["reason"]
    with pytest.raises(runs_mod.RunError):
        runs_mod.convergence([])


# --------------------------------------------------------------- the committed results

COMMITTED = ROOT / results.RESULTS_DIR / results.REPLICATION_PROFILE
#: What the 224 px stage's schedule changed (16 epochs, patience 3 -> 40, 5).
SCHEDULE_FIELDS = {"max_epochs", "early_stopping_patience"}


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed results yet")
def test_committed_runs_are_consistent_and_say_whether_they_converged():
    """The grid is trained in parts, on several machines: whatever is committed is checked,
    and each run's verdict can be computed from what was committed."""
    frame = results.load(COMMITTED)
    assert results.check_metrics(COMMITTED) == len(frame)
    profile = load_profile(results.REPLICATION_PROFILE)
    for folder in frame["folder"]:
        meta = json.loads((folder / "run.json").read_text())
        assert meta["profile"]["image_size"] == 224 and meta["status"] == "complete"
        same_split = profile.replace(split=meta["profile"]["split"]).to_dict()
        changed = runs_mod.training_fields_changed(meta["profile"], same_split)
        assert {c.split(":")[0] for c in changed} <= SCHEDULE_FIELDS  # the first schedule
        fit = json.loads((folder / "fit.json").read_text())  # brainlib analyse, before export
        split_csv = (COMMITTED / "splits" / f"{fit['split']}.csv").read_text().splitlines()
        assert fit["n_train"] == sum(line.endswith(",train") for line in split_csv)
        saliency = json.loads((folder / "saliency.json").read_text())
        assert saliency["cells"] == 7 and saliency["images"] == meta.get("n_test", len(
            pd.read_csv(folder / "predictions.csv")))  # fmt: skip
        stages = [COMMITTED / "stages" / p / folder.name for p in ("real64", "real128")]
        assert all((s / "history.csv").is_file() for s in stages)
    assert not list(COMMITTED.rglob("*.h5"))


@pytest.mark.skipif(not COMMITTED.is_dir(), reason="no committed results yet")
def test_the_readmes_results_block_is_the_answers():
    """`brainlib export` writes the block from the answers; a hand edit or a stale block
    fails here (re-run the export, or `brainlib export --readme README.md`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = answers.readme_block(answers.Grid.open(COMMITTED))
    assert block in readme
