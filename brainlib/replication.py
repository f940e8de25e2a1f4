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
keeps duplicates together (:func:`split_difference` by seed,
:func:`split_difference_by_image` by test image: a difference of test sets,
not a measure of leakage), how do test images with a duplicate in
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
from brainlib.statistics import compare_models, t_interval

#: Where exported results live, and the profile whose results the book shows beside the paper.
RESULTS_DIR = "results"
REPLICATION_PROFILE = "real224"
#: The earlier grid (64 px, not converged) the results page still quotes for the split difference.
EARLIER_PROFILE = "scratch"
#: What a run contributes to ``results/``: provenance, curves, predictions, metrics, log.
ARTIFACTS = (runs.RUN_JSON, runs.HISTORY_CSV, PREDICTIONS_CSV, METRICS_JSON, runs.LOG_TXT)
#: Copied when there (``brainlib analyse`` makes them where the weights are).
OPTIONAL_ARTIFACTS = (
    runs.FIT_JSON,
    runs.SALIENCY_JSON,
    f"{runs.FIGURES}/figure5_gradcam.png",
    f"{runs.FIGURES}/figure5_gradcam.jpg",
)


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
        for a in OPTIONAL_ARTIFACTS:
            if (folder / a).is_file():
                shutil.copyfile(folder / a, dst / Path(a).name)
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
        lo, hi = t_interval(g[column])
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
        both = sub[["paper", "grouped"]].dropna()  # the seeds run on both splits
        d = both["paper"] - both["grouped"]
        lo, hi = t_interval(d)
        rows.append(
            {
                "model": model,
                "seeds": len(d),
                "paper_split": both["paper"].mean(),
                "grouped_split": both["grouped"].mean(),
                "split_difference": d.mean(),
                "sd": d.std(ddof=1),
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    return pd.DataFrame(rows).set_index("model")


def split_difference_by_image(root: str | Path, frame, model: str, n_resamples: int = 2000,
                               seed: int = 0):  # fmt: skip
    """Paper split minus grouped split for ``model``, image by image, on all test images and
    on those with no duplicate anywhere in the data (where leakage is impossible).

    Each split's test images are scored by the share of the common seeds that
    classify them correctly; the two test sets hold different images, so the
    interval is an unpaired bootstrap that resamples each split's duplicate
    clusters on its own (:func:`brainlib.pooled.two_sample_difference`).
    Rows ``all test images`` and ``no duplicate anywhere``; the seeds used are
    in the ``seeds`` column.
    """
    import pandas as pd

    from brainlib import pooled as pl

    sub = frame[frame["model"] == model]
    seeds = sorted(set(sub.loc[sub["split"] == "paper", "seed"])
                   & set(sub.loc[sub["split"] == "grouped", "seed"]))  # fmt: skip
    if not seeds:
        raise ReplicationError(f"{root}: no seed has a {model} run on both the paper and the "
                               "grouped split")  # fmt: skip
    scores = {}
    for split in ("paper", "grouped"):
        preds = {k: v for k, v in run_predictions(frame, split, (model,)).items() if k[1] in seeds}
        table = pl.per_image(preds)
        clusters = test_clusters(root, split, table.index)  # names test images it lacks
        dups = duplicate_table(root, split)
        alone = dups.groupby("cluster")["split"].transform("size").loc[table.index] == 1
        scores[split] = (table[f"correct_{model}"].to_numpy(), clusters, alone.to_numpy())
    rows = []
    for name, only_alone in (("all test images", False), ("no duplicate anywhere", True)):
        args = []
        for split in ("paper", "grouped"):
            correct, clusters, alone = scores[split]
            keep = alone if only_alone else np.ones_like(alone)
            args.append((correct[keep], clusters[keep]))
        r = pl.two_sample_difference(args[0][0], args[1][0], args[0][1], args[1][1],
                                     n_resamples=n_resamples, seed=seed)  # fmt: skip
        rows.append({"model": model, "images": name, "seeds": len(seeds),
                     "paper_images": r["images_a"], "grouped_images": r["images_b"],
                     "grouped_clusters": r["clusters_b"], "paper_split": args[0][0].mean(),
                     "grouped_split": args[1][0].mean(), "difference": r["difference"],
                     "low": r["low"], "high": r["high"]})  # fmt: skip
    return pd.DataFrame(rows).set_index(["model", "images"])


def duplicate_flags(root: str | Path, split: str) -> dict[str, str]:
    """``path -> exact | near | none`` (a duplicate of the image in the training set)."""
    return duplicate_table(root, split)["duplicate_in_train"].to_dict()


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


# ------------------------------------------------------ the converged grid, pooled and paired


def duplicate_table(root: str | Path, split: str):
    """The split's duplicate flags: a frame indexed by path (``split``,
    ``duplicate_in_train``: exact, near or none, and ``cluster``: the image's
    near-duplicate group, its own path when it has none)."""
    import pandas as pd

    path = Path(root) / "splits" / f"{split}-duplicates.csv"
    if not path.is_file():
        raise ReplicationError(f"{path} does not exist: export with the images at hand")
    table = pd.read_csv(path).set_index("path")
    bad = sorted(set(table["duplicate_in_train"]) - {"exact", "near", "none"})
    if bad:
        raise ReplicationError(f"{path}: unknown duplicate_in_train values {bad}")
    if "cluster" not in table:  # exported before clusters were: every image its own
        table["cluster"] = table.index
    return table


def test_clusters(root: str | Path, split: str, paths) -> np.ndarray:
    """An integer per test image of ``paths``: its near-duplicate cluster in ``split``."""
    table = duplicate_table(root, split)
    missing = [p for p in paths if p not in table.index]
    if missing:
        raise ReplicationError(f"{root}: test images not in the {split} split's flags: "
                               f"{missing[:3]}")  # fmt: skip
    _, ids = np.unique(table.loc[list(paths), "cluster"].astype(str), return_inverse=True)
    return ids


def run_predictions(frame, split: str, models=VARIANTS) -> dict:
    """``(model, seed) -> predictions frame`` of the exported runs of ``split``."""
    sub = frame[(frame["split"] == split) & frame["model"].isin(models)]
    return {(r.model, int(r.seed)): read_predictions(r.folder) for r in sub.itertuples()}


def paired_seeds(frame, split: str) -> list[int]:
    """The seeds of ``split`` with a run of both models."""
    sub = frame[frame["split"] == split]
    return sorted(set.intersection(*(set(sub.loc[sub["model"] == m, "seed"]) for m in VARIANTS)))


def pooled_se_vs_base(root: str | Path, frame, split: str, n_resamples: int = 2000,
                      seed: int = 0) -> dict:  # fmt: skip
    """SE against base on ``split``, seeds pooled per image and paired by image.

    The accuracy difference (share of seeds right, SE - base) and the macro AUC
    difference of the seed-averaged probabilities, each with a paired bootstrap
    interval over the test images' duplicate clusters; McNemar per seed and on
    the majority vote; per-class recall differences with Holm-adjusted McNemar
    p-values (:mod:`brainlib.pooled`). Only seeds with both models count.
    """
    from brainlib import pooled as pl

    seeds = paired_seeds(frame, split)
    if not seeds:
        raise ReplicationError(f"{root}: no seed of the {split} split has both models")
    preds = {k: v for k, v in run_predictions(frame, split).items() if k[1] in seeds}
    table = pl.per_image(preds)
    clusters = test_clusters(root, split, table.index)
    proba = {m: table[[f"p_{m}_{c}" for c in CLASSES]].to_numpy() for m in VARIANTS}
    return {
        "split": split,
        "seeds": seeds,
        "accuracy_se": float(table["correct_se"].mean()),
        "accuracy_base": float(table["correct_base"].mean()),
        "accuracy": pl.paired_difference(
            table["correct_se"], table["correct_base"], clusters, n_resamples, seed
        ),
        "auc": pl.auc_difference(
            table["y"], proba["se"], proba["base"], clusters, n_resamples, seed
        ),
        "mcnemar": pl.mcnemar_by_seed(preds),
        "per_class": pl.per_class_tests(
            table, clusters=clusters, n_resamples=n_resamples, seed=seed
        ),
    }


def leakage(root: str | Path, frame, model: str, with_copies: str = "paper",
            without_copies: str = "dedup", n_resamples: int = 2000, seed: int = 0):  # fmt: skip
    """The leakage effect for ``model`` on one fixed test set (:mod:`brainlib.pooled`).

    Runs on the paper split against runs on the same split minus the training
    duplicates of its test images, seeds present in both pooled per image; test
    images grouped by whether they had a duplicate in the paper split's training
    set. Returns ``(table, seeds)``; raises when no seed has both runs.
    """
    from brainlib import pooled as pl

    sub = frame[frame["model"] == model]
    seeds = sorted(set(sub.loc[sub["split"] == with_copies, "seed"])
                   & set(sub.loc[sub["split"] == without_copies, "seed"]))  # fmt: skip
    if not seeds:
        raise ReplicationError(f"{root}: no seed of {model} has runs on both the "
                               f"{with_copies} and the {without_copies} split")  # fmt: skip
    pooled = {}
    for split in (with_copies, without_copies):
        preds = run_predictions(frame, split, (model,))
        pooled[split] = pl.per_image({k: v for k, v in preds.items() if k[1] in seeds})
    a, b = pooled[with_copies], pooled[without_copies]
    if not a.index.equals(b.index):
        raise ReplicationError(f"{root}: the {with_copies} and {without_copies} runs of {model} "
                               "were tested on other images")  # fmt: skip
    flags = duplicate_table(root, with_copies).loc[a.index, "duplicate_in_train"]
    clusters = test_clusters(root, with_copies, a.index)
    table = pl.leakage_effect(a[f"correct_{model}"], b[f"correct_{model}"], flags != "none",
                              clusters, n_resamples, seed)  # fmt: skip
    return table, seeds


def stage_minutes(root: str | Path, run: str) -> dict[str, float]:
    """Training minutes of each earlier stage of an exported progressive run, by stage."""
    out = {}
    stages = Path(root) / "stages"
    for stage in sorted(stages.iterdir()) if stages.is_dir() else []:
        if (stage / run / runs.RUN_JSON).is_file():
            out[stage.name] = float(runs.read_meta(stage / run)["train_seconds"]) / 60
    return out


def convergence_table(root: str | Path, frame):
    """One row per exported run: its schedule's epochs, best epoch, training accuracy
    (logged at the best epoch, and of the best weights in inference mode where
    ``fit.json`` was exported), validation and test accuracy, the verdict of
    :func:`brainlib.runs.convergence` with its reason, and minutes (this stage, all)."""
    import pandas as pd

    from brainlib.fileio import read_json

    rows = []
    for r in frame.itertuples():
        fit_path = Path(r.folder) / runs.FIT_JSON
        fitted = read_json(fit_path)["train_accuracy"] if fit_path.is_file() else None
        v = runs.convergence(runs.read_history_rows(r.folder), fitted)
        earlier = stage_minutes(root, Path(r.folder).name)
        rows.append({"split": r.split, "model": r.model, "seed": r.seed, "epochs": v["epochs"],
                     "best_epoch": v["best_epoch"],
                     "logged_train_accuracy": v["logged_train_accuracy"],
                     "fitted_accuracy": np.nan if fitted is None else fitted,
                     "val_accuracy": v["val_accuracy"], "test_accuracy": r.accuracy,
                     "converged": v["converged"], "reason": v["reason"],
                     "minutes": r.train_minutes,
                     "minutes_all_stages": r.train_minutes + sum(earlier.values()),
                     "stages": len(earlier) + 1})  # fmt: skip
    return pd.DataFrame(rows)


def saliency_table(frame):
    """Per exported run with a ``saliency.json`` and per heatmap (Grad-CAM, Grad-CAM++,
    random): energy in the brain with its interval, the brain's area and the deletion
    area. Empty when no run has one."""
    import pandas as pd

    from brainlib.fileio import read_json

    rows = []
    for r in frame.itertuples():
        path = Path(r.folder) / runs.SALIENCY_JSON
        if not path.is_file():
            continue
        s = read_json(path)
        for method, e in s["energy_in_brain"].items():
            rows.append({"split": r.split, "model": r.model, "seed": r.seed, "method": method,
                         "images": s["images"], "cells": s["cells"],
                         "energy_in_brain": e["mean"], "energy_low": e["ci_low"],
                         "energy_high": e["ci_high"], "brain_area": s["brain_area"]["mean"],
                         "deletion_area": s["deletion"][method]["area"],
                         "deletion_curve": dict(zip(s["deletion"][method]["fraction"],
                                                    s["deletion"][method]["accuracy"],
                                                    strict=True))})  # fmt: skip
    return pd.DataFrame(rows)


def full_history(root: str | Path, folder: str | Path):
    """A progressive run's whole schedule: its earlier stages' histories, then its own,
    epochs numbered on, with ``stage`` (the profile) and ``image_size`` columns."""
    import pandas as pd

    folder = Path(folder)
    parts, meta = [], runs.read_meta(folder)
    chain = [(folder, meta)]
    while meta.get("init_weights"):
        stage = Path(root) / "stages" / Path(meta["init_weights"]["run"]).parent.name / folder.name
        if not (stage / runs.RUN_JSON).is_file():
            raise ReplicationError(f"{stage}: the stage {folder.name} started from is missing")
        meta = runs.read_meta(stage)
        chain.append((stage, meta))
    offset = 0
    for f, m in reversed(chain):
        h = read_history(f).assign(stage=m["profile"]["name"],
                                   image_size=int(m["profile"]["image_size"]))  # fmt: skip
        h["epoch"] = h["epoch"].astype(int) + offset
        offset = int(h["epoch"].max())
        parts.append(h)
    return pd.concat(parts, ignore_index=True)


def schedule_table(root: str | Path, frame):
    """Per stage of the progressive schedule (over every exported run): image size,
    learning rate, batch size, the most epochs allowed, epochs run (mean) and seconds
    per epoch (median over the runs' epochs, so a paused epoch does not count), from the
    stages' run.json and history."""
    import pandas as pd

    rows = []
    for r in frame.itertuples():
        folder = Path(r.folder)
        stages = [Path(root) / "stages" / s.name / folder.name
                  for s in sorted((Path(root) / "stages").glob("*"))] + [folder]  # fmt: skip
        for f in stages:
            if not (f / runs.RUN_JSON).is_file():
                continue
            m = runs.read_meta(f)
            p = m["profile"]
            rows.append({"stage": p["name"], "image_size": int(p["image_size"]),
                         "learning_rate": p["learning_rate"], "batch_size": p["batch_size"],
                         "max_epochs": p["max_epochs"], "epochs": int(m["epochs"]),
                         "seconds_per_epoch": float(read_history(f)["seconds"].median()),
                         "precision": m.get("precision_policy", "float32")})  # fmt: skip
    d = pd.DataFrame(rows)
    return (d.groupby(["stage", "image_size", "learning_rate", "batch_size", "max_epochs",
                       "precision"], sort=False)
             .agg(runs=("epochs", "size"), epochs_mean=("epochs", "mean"),
                  seconds_per_epoch=("seconds_per_epoch", "median"))
             .reset_index().sort_values("image_size").reset_index(drop=True))  # fmt: skip
