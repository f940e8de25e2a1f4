"""The replication grid as committed evidence: export, load, and the three answers.

A profile with ``seeds`` and ``splits`` trains both models for every (split,
seed) pair (:func:`brainlib.runs.grid`). :func:`export` copies the small
artifacts of those runs (never weights) into ``results/<profile>/``::

    results/scratch/
        se-paper-seed42/    run.json history.csv predictions.csv metrics.json log.txt
        base-paper-seed42/  ...
        splits/paper.csv    the split manifest (path, class, sha256, split) shared by its runs
        splits/paper-duplicates.csv   per image: exact / near / none duplicate in train

:func:`load` reads them back, checking each file, and the functions below
answer the questions the paper leaves open: does SE beat base across seeds
(:func:`se_vs_base`), how far apart are the paper's split and a split that
keeps duplicates together (:func:`split_difference`: a difference of test
sets, not a measure of leakage), how do test images with a duplicate in
training fare (:func:`accuracy_by_duplicate`), and how far are the
runs from the paper's numbers (:func:`distance_from_paper`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from brainlib import runs
from brainlib.config import CLASSES, VARIANTS, Profile
from brainlib.evaluation import labels_and_proba, read_metrics, read_predictions
from brainlib.fileio import atomic_write_text
from brainlib.paper import headline
from brainlib.runs import METRICS_JSON, PREDICTIONS_CSV, read_history
from brainlib.statistics import compare_models

#: Where exported results live, and the profile whose results the book shows beside the paper.
RESULTS_DIR = "results"
REPLICATION_PROFILE = "scratch"
#: What a run contributes to ``results/``: provenance, curves, predictions, metrics, log.
ARTIFACTS = (runs.RUN_JSON, runs.HISTORY_CSV, PREDICTIONS_CSV, METRICS_JSON, runs.LOG_TXT)


class ReplicationError(RuntimeError):
    """Exported results are missing, incomplete or inconsistent."""


# ----------------------------------------------------------------------------- export


def export(runs_root: str | Path, profile: Profile, out_root: str | Path = "results",
           partial: bool = False) -> Path:  # fmt: skip
    """Copy the grid's small artifacts to ``out_root/<profile>/``; returns that folder.

    The folder is replaced as a whole, so it holds exactly the grid's runs.

    Every run must be complete and evaluated. Runs of one split must share one
    split manifest (it is stored once). Each split's duplicate flags come from
    the data stage (``<runs_root>/<profile>/data/``, written by the data
    notebook or ``brainlib audit --flags-dir``); no image is read here. With
    ``partial``, the grid's completed runs so far (a grid trained over several
    sittings commits its runs as they finish).
    """
    from brainlib.data.splits import read_split_csv

    folders = runs.grid_folders(runs_root, profile, partial)
    final = Path(out_root) / profile.name
    out = final.with_name(f".{final.name}.tmp")  # built aside, then swapped in whole
    shutil.rmtree(out, ignore_errors=True)
    splits: dict[str, str] = {}
    for (split, _seed, _variant), folder in folders.items():
        missing = [a for a in ARTIFACTS if not (folder / a).is_file()]
        if missing:
            raise ReplicationError(f"{folder}: {', '.join(missing)} missing (evaluate it first)")
        text = (folder / runs.SPLIT_CSV).read_text(encoding="utf-8")
        if splits.setdefault(split, text) != text:
            raise ReplicationError(f"{folder / runs.SPLIT_CSV} differs from another {split} run's")
    flags = {s: _data_stage_flags(runs_root, profile, s) for s in splits}
    for folder in folders.values():
        dst = out / folder.name
        dst.mkdir(parents=True, exist_ok=True)
        for a in ARTIFACTS:
            shutil.copyfile(folder / a, dst / a)
        gradcam = folder / runs.FIGURES / "figure5_gradcam.png"  # drawn by the Grad-CAM notebook
        if gradcam.is_file():
            shutil.copyfile(gradcam, dst / gradcam.name)
        _export_stages(folder, out)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split, text in splits.items():
        atomic_write_text(out / "splits" / f"{split}.csv", text)
        lines = ["path,split,duplicate_in_train,cluster"]
        for r in read_split_csv(out / "splits" / f"{split}.csv"):
            subset, flag, cluster = flags[split].get(r["path"], (None, None, None))
            if subset != r["split"]:
                raise ReplicationError(
                    f"{runs.duplicate_flags_path(runs_root, profile, split)} does not describe "
                    f"the runs' {split} split ({r['path']}); run the data stage again"
                )
            lines.append(f'"{r["path"]}",{subset},{flag},"{cluster}"')
        atomic_write_text(out / "splits" / f"{split}-duplicates.csv", "\n".join(lines) + "\n")
    if final.exists():
        shutil.rmtree(final)  # runs no longer in the grid go too
    out.rename(final)
    return final


#: What an earlier stage of a progressive-resizing run contributes: provenance and curves.
STAGE_ARTIFACTS = (runs.RUN_JSON, runs.HISTORY_CSV, runs.LOG_TXT)


def _export_stages(folder: Path, out: Path) -> None:
    """The earlier stages of a run (``init_from``), under ``out/stages/<profile>/<run>/``."""
    meta = runs.read_meta(folder)
    while meta.get("init_weights"):
        stage = Path(meta["init_weights"]["run"])
        if not stage.is_absolute() and not stage.is_dir():
            stage = folder.parent.parent / stage.parent.name / stage.name
        dst = out / "stages" / stage.parent.name / stage.name
        dst.mkdir(parents=True, exist_ok=True)
        for a in STAGE_ARTIFACTS:
            shutil.copyfile(stage / a, dst / a)
        meta = runs.read_meta(stage)


def _data_stage_flags(runs_root, profile: Profile, split: str) -> dict[str, tuple[str, str, str]]:
    """``path -> (subset, duplicate_in_train, cluster)`` from the data stage flags of ``split``."""
    import pandas as pd

    path = runs.duplicate_flags_path(runs_root, profile, split)
    if not path.is_file():
        raise ReplicationError(
            f"{path} does not exist: run the data stage first (the data notebook, e.g. "
            f"`brainlib run --profile {profile.name} --no-book`, or `brainlib audit DATA_DIR "
            f"--profile {profile.name} --flags-dir {path.parent}`)"
        )
    frame = pd.read_csv(path)
    if "cluster" not in frame:  # written before clusters were: every image its own
        frame["cluster"] = frame["path"]
    cols = ["path", "split", "duplicate_in_train", "cluster"]
    return {p: (s, f, c) for p, s, f, c in frame[cols].itertuples(index=False)}


# ------------------------------------------------------------------------------- load


def run_dirs(root: str | Path) -> list[Path]:
    """The exported run folders under ``root`` (``results/<profile>``), checked."""
    root = Path(root)
    if not root.is_dir():
        raise ReplicationError(f"{root} does not exist: export a replication first")
    dirs = sorted(p for p in root.iterdir() if (p / runs.RUN_JSON).is_file())
    if not dirs:
        raise ReplicationError(f"{root} holds no exported runs")
    for d in dirs:
        missing = [a for a in ARTIFACTS if not (d / a).is_file()]
        if missing:
            raise ReplicationError(f"{d}: {', '.join(missing)} missing")
    return dirs


def load(root: str | Path):
    """One row per exported run: split, model, seed, metrics with CIs, epochs, time."""
    import pandas as pd

    rows = []
    for d in run_dirs(root):
        meta, m = runs.read_meta(d), read_metrics(d)
        if meta.get("status") != runs.COMPLETE:
            raise ReplicationError(f"{d / runs.RUN_JSON}: status {meta.get('status')!r}")
        lo, hi = m["ci_low"]["overall"], m["ci_high"]["overall"]
        rows.append(
            {
                "split": meta["profile"]["split"],
                "model": meta["variant"],
                "seed": int(meta["seed"]),
                "accuracy": m["accuracy"],
                "accuracy_ci_low": lo["accuracy"],
                "accuracy_ci_high": hi["accuracy"],
                "auc_macro": m["auc_macro"],
                "auc_ci_low": lo["auc"],
                "auc_ci_high": hi["auc"],
                "n_test": m["n_test"],
                "epochs": int(meta["epochs"]),
                "best_epoch": int(meta["best_epoch"]),
                "train_minutes": float(meta["train_seconds"]) / 60,
                "final_train_accuracy": float(read_history(d)["accuracy"].iloc[-1]),
                "folder": d,
            }
        )
    frame = pd.DataFrame(rows)
    order = {"paper": 0, "grouped": 1, "se": 0, "base": 1}
    return frame.sort_values(
        ["split", "model", "seed"], key=lambda c: c.map(order) if c.name != "seed" else c
    ).reset_index(drop=True)


def profile_of(root: str | Path) -> dict:
    """The profile fields the exported runs were trained with (those of the first run)."""
    return runs.read_meta(run_dirs(root)[0])["profile"]


# ---------------------------------------------------------------------------- answers


def _t_interval(values, level: float = 0.95) -> tuple[float, float]:
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return (float(v.mean() - half), float(v.mean() + half))


def summary(frame):
    """Mean, sd (over seeds), min and max of accuracy and macro AUC per split and model."""
    g = frame.groupby(["split", "model"], sort=False)
    out = g.agg(
        runs=("seed", "count"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_sd=("accuracy", "std"),
        accuracy_min=("accuracy", "min"),
        accuracy_max=("accuracy", "max"),
        auc_mean=("auc_macro", "mean"),
        auc_sd=("auc_macro", "std"),
        epochs_mean=("epochs", "mean"),
        train_minutes_mean=("train_minutes", "mean"),
    )
    return out


def se_vs_base(root: str | Path, frame=None):
    """Per split and seed, SE against base on the same test images.

    The paper's unpaired two-proportion z-test and McNemar's paired test on
    the overall accuracy (see :func:`brainlib.statistics.compare_models`).
    ``frame`` is :func:`load` of ``root`` when the caller has it already.
    """
    import pandas as pd

    frame = load(root) if frame is None else frame
    rows = []
    for (split, seed), pair in frame.groupby(["split", "seed"]):
        by = dict(zip(pair["model"], pair["folder"], strict=True))
        if set(by) != set(VARIANTS):
            raise ReplicationError(f"{root}: {split} seed {seed} lacks one of the models")
        p_se, p_base = read_predictions(by["se"]), read_predictions(by["base"])
        if list(p_se["path"]) != list(p_base["path"]):
            raise ReplicationError(f"{root}: {split} seed {seed}: the models saw other test images")
        y, proba_se = labels_and_proba(p_se)
        _, proba_base = labels_and_proba(p_base)
        t = compare_models(y, proba_se.argmax(1), proba_base.argmax(1)).loc["overall"]
        rows.append(
            {
                "split": split,
                "seed": int(seed),
                "n": int(t["n"]),
                "se_accuracy": t["se_correct"] / t["n"],
                "base_accuracy": t["base_correct"] / t["n"],
                "difference": (t["se_correct"] - t["base_correct"]) / t["n"],
                "z_test_p": float(t["z_test_p"]),
                "only_se_right": int(t["only_se_right"]),
                "only_base_right": int(t["only_base_right"]),
                "mcnemar_p": float(t["mcnemar_p"]),
            }
        )
    order = {"paper": 0, "grouped": 1}
    out = pd.DataFrame(rows)
    return out.sort_values(
        ["split", "seed"], key=lambda c: c.map(order) if c.name == "split" else c
    ).reset_index(drop=True)


def paired_over_seeds(per_seed, column: str = "difference"):
    """Mean, sd and a t interval of ``column`` over seeds, per split (a seed is one unit)."""
    import pandas as pd

    rows = []
    for split, g in per_seed.groupby("split", sort=False):
        lo, hi = _t_interval(g[column])
        rows.append(
            {
                "split": split,
                "seeds": len(g),
                "mean": g[column].mean(),
                "sd": g[column].std(ddof=1),
                "ci_low": lo,
                "ci_high": hi,
                "seeds_favouring_se": int((g[column] > 0).sum()),
                "mcnemar_significant": int((g["mcnemar_p"] < 0.05).sum()),
                "z_test_significant": int((g["z_test_p"] < 0.05).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def split_difference(frame, metric: str = "accuracy"):
    """Paper split minus grouped split, per model: mean over seeds, sd and t interval.

    A seed's two runs differ only in the split (same initial weights, batch
    order and settings), so the difference is taken seed by seed.
    """
    import pandas as pd

    rows = []
    for model in VARIANTS:
        sub = frame[frame["model"] == model].pivot(index="seed", columns="split", values=metric)
        if not {"paper", "grouped"} <= set(sub.columns):
            raise ReplicationError(
                "the split difference needs runs on both the paper and the grouped split"
            )
        d = (sub["paper"] - sub["grouped"]).dropna()
        lo, hi = _t_interval(d)
        rows.append(
            {
                "model": model,
                "seeds": len(d),
                "paper_split": sub["paper"].mean(),
                "grouped_split": sub["grouped"].mean(),
                "split_difference": d.mean(),
                "sd": d.std(ddof=1),
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def duplicate_flags(root: str | Path, split: str) -> dict[str, str]:
    """``path -> exact | near | none`` (a duplicate of the image in the training set)."""
    import pandas as pd

    path = Path(root) / "splits" / f"{split}-duplicates.csv"
    if not path.is_file():
        raise ReplicationError(f"{path} does not exist: export with the images at hand")
    frame = pd.read_csv(path)
    bad = sorted(set(frame["duplicate_in_train"]) - {"exact", "near", "none"})
    if bad:
        raise ReplicationError(f"{path}: unknown duplicate_in_train values {bad}")
    return dict(zip(frame["path"], frame["duplicate_in_train"], strict=True))


def accuracy_by_duplicate(root: str | Path, split: str = "paper", frame=None):
    """Test accuracy on images with and without a (near) duplicate in training, per model.

    Mean over seeds of each run's accuracy on each group; ``images`` counts the
    test images of the group. ``frame`` is :func:`load` of ``root`` if at hand.
    """
    import pandas as pd

    flags = duplicate_flags(root, split)
    frame = load(root) if frame is None else frame
    rows = []
    for _, run in frame[frame["split"] == split].iterrows():
        p = read_predictions(run["folder"])
        ok = p["predicted"] == p["class"]
        group = p["path"].map(flags)
        if group.isna().any():
            raise ReplicationError(f"{run['folder']}: test images not in the split's manifest")
        leaked = group != "none"
        rows += [
            {"model": run["model"], "seed": run["seed"], "group": name, "images": int(m.sum()),
             "accuracy": float(ok[m].mean()) if m.any() else float("nan")}
            for name, m in (("duplicate in train", leaked), ("no duplicate in train", ~leaked))
        ]  # fmt: skip
    per_run = pd.DataFrame(rows)
    return per_run.groupby(["model", "group"], sort=False).agg(
        images=("images", "first"),
        accuracy_mean=("accuracy", "mean"),
        accuracy_sd=("accuracy", "std"),
    )


def distance_from_paper(frame, split: str = "paper"):
    """The paper's accuracy and AUC against the mean over seeds on ``split``."""
    import pandas as pd

    rows = []
    for model in VARIANTS:
        sub = frame[(frame["model"] == model) & (frame["split"] == split)]
        paper = headline(model)
        rows.append(
            {
                "model": model,
                "paper_accuracy": paper["accuracy"],
                "replication_accuracy": sub["accuracy"].mean(),
                "accuracy_gap": sub["accuracy"].mean() - paper["accuracy"],
                "paper_auc": paper["auc"],
                "replication_auc": sub["auc_macro"].mean(),
                "auc_gap": sub["auc_macro"].mean() - paper["auc"],
                "seeds": len(sub),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def run_of(frame, split: str, seed: int, model: str) -> Path:
    """The folder of one run in ``frame`` (from :func:`load`)."""
    hit = frame[(frame["split"] == split) & (frame["seed"] == seed) & (frame["model"] == model)]
    if hit.empty:
        raise ReplicationError(f"no exported run {model}-{split}-seed{seed}")
    return hit["folder"].iloc[0]


def histories(frame, split: str, seed: int) -> dict:
    """Both models' ``history.csv`` of one (split, seed) of ``frame`` as DataFrames."""
    return {v: read_history(run_of(frame, split, seed, v)) for v in VARIANTS}


def check_metrics(root: str | Path, atol: float = 1e-9) -> int:
    """Recompute every run's accuracy and macro AUC from its predictions; raise on a mismatch.

    Returns the number of runs checked.
    """
    from brainlib.evaluation import per_class_table

    dirs = run_dirs(root)
    for d in dirs:
        y, proba = labels_and_proba(read_predictions(d))
        table, m = per_class_table(y, proba), read_metrics(d)
        for key, row in (("accuracy", "accuracy"), ("auc_macro", "auc")):
            if abs(float(table.loc["overall", row]) - m[key]) > atol:
                raise ReplicationError(f"{d / METRICS_JSON}: {key} does not match predictions.csv")
        if sorted(set(CLASSES)) != sorted(m["classes"]):
            raise ReplicationError(f"{d / METRICS_JSON}: unexpected classes {m['classes']}")
    return len(dirs)
