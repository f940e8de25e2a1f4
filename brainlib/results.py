"""Committed results: export a grid's small artifacts, load them back, check them.

A profile with ``seeds`` and ``splits`` trains both models for every (split,
seed) pair (:func:`brainlib.runs.grid`). :func:`export` copies the small
artifacts of the finished runs (never weights) into ``results/<profile>/``::

    results/real224/
        se-paper-seed42/    run.json history.csv predictions.csv metrics.json log.txt
                            fit.json saliency.json figure5_gradcam.jpg
                            external/<name>/predictions.csv, metrics.json
        base-paper-seed42/  ...
        stages/real64/se-paper-seed42/   the earlier stages of a progressive run
        splits/paper.csv    the split manifest (path, class, sha256, split) shared by its runs
        splits/paper-duplicates.csv   per image: exact / near / none duplicate in train, cluster

A grid is trained over several sittings and machines, so an export *adds* the runs
it has to those already committed (a run of the same name is replaced), after
checking that each split's manifest is the committed one. :func:`load` reads the
folder back into one row per run, checking every file; the questions asked of the
results are in :mod:`brainlib.answers`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from brainlib import runs
from brainlib.config import CLASSES, VARIANTS, Profile
from brainlib.evaluation import labels_and_proba, read_metrics, read_predictions
from brainlib.fileio import atomic_write_text, read_json
from brainlib.runs import METRICS_JSON, PREDICTIONS_CSV, read_history

#: Where exported results live, and the profile whose results the book shows beside the paper.
RESULTS_DIR = "results"
REPLICATION_PROFILE = "real224"
#: What a run contributes to ``results/``: provenance, curves, predictions, metrics, log.
ARTIFACTS = (runs.RUN_JSON, runs.HISTORY_CSV, PREDICTIONS_CSV, METRICS_JSON, runs.LOG_TXT)
#: Copied when there (``brainlib analyse`` makes them where the weights are).
OPTIONAL_ARTIFACTS = (
    runs.FIT_JSON,
    runs.SALIENCY_JSON,
    f"{runs.FIGURES}/figure5_gradcam.png",
    f"{runs.FIGURES}/figure5_gradcam.jpg",
)
#: What an external test set's scores contribute (``brainlib evaluate --external``).
EXTERNAL = "external"
EXTERNAL_ARTIFACTS = (PREDICTIONS_CSV, METRICS_JSON)
#: What an earlier stage of a progressive-resizing run contributes: provenance and curves.
STAGE_ARTIFACTS = (runs.RUN_JSON, runs.HISTORY_CSV, runs.LOG_TXT)


class ResultsError(RuntimeError):
    """Exported results are missing, incomplete or inconsistent."""


# ----------------------------------------------------------------------------- export


def export(runs_root: str | Path, profile: Profile, out_root: str | Path = RESULTS_DIR,
           partial: bool = False, replace: bool = False) -> Path:  # fmt: skip
    """Add the grid's finished runs to ``out_root/<profile>/``; returns that folder.

    Runs already committed there stay unless a run of the same name is exported
    (``replace`` starts from an empty folder instead). Every exported run must be
    complete and evaluated; runs of one split, exported or committed, must share one
    split manifest (it is stored once). Each split's duplicate flags come from the data
    stage (``<runs_root>/<profile>/data/``, written by ``brainlib audit --flags-dir``);
    no image is read here. The folder is built aside and swapped in whole. With
    ``partial``, the grid's completed runs so far.
    """
    from brainlib.data.splits import read_split_csv

    folders = runs.grid_folders(runs_root, profile, partial)
    final = Path(out_root) / profile.name
    out = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(out, ignore_errors=True)
    if final.is_dir() and not replace:
        shutil.copytree(final, out)
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, str] = {}
    for (split, _seed, _variant), folder in folders.items():
        missing = [a for a in ARTIFACTS if not (folder / a).is_file()]
        if missing:
            raise ResultsError(f"{folder}: {', '.join(missing)} missing (evaluate it first)")
        text = (folder / runs.SPLIT_CSV).read_text(encoding="utf-8")
        if splits.setdefault(split, text) != text:
            raise ResultsError(f"{folder / runs.SPLIT_CSV} differs from another {split} run's")
        committed = out / "splits" / f"{split}.csv"
        if committed.is_file() and committed.read_text(encoding="utf-8") != text:
            raise ResultsError(f"{folder / runs.SPLIT_CSV} differs from the committed "
                               f"{final / 'splits' / committed.name}")  # fmt: skip
    flags = {s: _data_stage_flags(runs_root, profile, s) for s in splits}
    for folder in folders.values():
        dst = out / folder.name
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for a in ARTIFACTS:
            shutil.copyfile(folder / a, dst / a)
        for a in OPTIONAL_ARTIFACTS:
            if (folder / a).is_file():
                shutil.copyfile(folder / a, dst / Path(a).name)
        for ext in sorted((folder / EXTERNAL).glob("*/")):
            for a in EXTERNAL_ARTIFACTS:
                if (ext / a).is_file():
                    (dst / EXTERNAL / ext.name).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(ext / a, dst / EXTERNAL / ext.name / a)
        _export_stages(folder, out)
    (out / "splits").mkdir(parents=True, exist_ok=True)
    for split, text in splits.items():
        atomic_write_text(out / "splits" / f"{split}.csv", text)
        lines = ["path,split,duplicate_in_train,cluster"]
        for r in read_split_csv(out / "splits" / f"{split}.csv"):
            subset, flag, cluster = flags[split].get(r["path"], (None, None, None))
            if subset != r["split"]:
                raise ResultsError(
                    f"{runs.duplicate_flags_path(runs_root, profile, split)} does not describe "
                    f"the runs' {split} split ({r['path']}); run the data stage again"
                )
            lines.append(f'"{r["path"]}",{subset},{flag},"{cluster}"')
        atomic_write_text(out / "splits" / f"{split}-duplicates.csv", "\n".join(lines) + "\n")
    if final.exists():
        shutil.rmtree(final)
    out.rename(final)
    return final


def _export_stages(folder: Path, out: Path) -> None:
    """The earlier stages of a run (``init_from``), under ``out/stages/<profile>/<run>/``."""
    meta = runs.read_meta(folder)
    while meta.get("init_weights"):
        stage = Path(meta["init_weights"]["run"])
        if not stage.is_absolute() and not stage.is_dir():
            stage = folder.parent.parent / stage.parent.name / stage.name
        dst = out / "stages" / stage.parent.name / stage.name
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for a in STAGE_ARTIFACTS:
            shutil.copyfile(stage / a, dst / a)
        meta = runs.read_meta(stage)


def _data_stage_flags(runs_root, profile: Profile, split: str) -> dict[str, tuple[str, str, str]]:
    """``path -> (subset, duplicate_in_train, cluster)`` from the data stage flags of ``split``."""
    import pandas as pd

    path = runs.duplicate_flags_path(runs_root, profile, split)
    if not path.is_file():
        raise ResultsError(
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


def committed(results_dir: str | Path, url: str | None = None, log=print) -> Path:
    """``results_dir`` where it exists, else the committed results fetched from the repository.

    A notebook opened on Colab comes without the repository, so the results page fetches
    the repository's archive at the project's address and ref (:mod:`brainlib.address`;
    ``url`` replaces it), keeps its ``results/`` folder in the cache
    (:func:`brainlib.config.cache_dir`, one folder per archive address) and reads the
    folder of the same name (``real224``) from there.
    """
    import hashlib
    import tarfile
    import tempfile
    import urllib.request

    from brainlib import address
    from brainlib.config import cache_dir

    path = Path(results_dir)
    if path.is_dir():
        return path
    url = url or address.load().archive()
    dest = cache_dir() / "results" / hashlib.sha256(url.encode()).hexdigest()[:12]
    target = dest / RESULTS_DIR / path.name
    done = dest / "fetched.txt"
    if done.is_file() and target.is_dir():
        return target
    log(f"{path} is not here: fetching the committed results from {url}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "repository.tar.gz"
            with urllib.request.urlopen(url, timeout=120) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f)
            with tarfile.open(archive) as tar:
                members = []
                for member in tar.getmembers():  # <repo>-<ref>/results/... -> results/...
                    parts = Path(member.name).parts
                    if len(parts) > 1 and parts[1] == RESULTS_DIR:
                        member.name = str(Path(*parts[1:]))
                        members.append(member)
                if dest.exists():
                    shutil.rmtree(dest)
                tar.extractall(dest, members=members, filter="data")
    except (OSError, tarfile.TarError) as err:
        raise ResultsError(
            f"{path} does not exist and the committed results could not be fetched from "
            f"{url} ({err}): clone the repository and set results_dir to its "
            f"{RESULTS_DIR}/{path.name} folder"
        ) from err
    if not target.is_dir():
        raise ResultsError(f"{url} holds no {RESULTS_DIR}/{path.name} folder")
    atomic_write_text(done, url + "\n")
    return target


def run_dirs(root: str | Path) -> list[Path]:
    """The exported run folders under ``root`` (``results/<profile>``), checked."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root} does not exist: export a replication first")
    dirs = sorted(p for p in root.iterdir() if (p / runs.RUN_JSON).is_file())
    if not dirs:
        raise ResultsError(f"{root} holds no exported runs")
    for d in dirs:
        missing = [a for a in ARTIFACTS if not (d / a).is_file()]
        if missing:
            raise ResultsError(f"{d}: {', '.join(missing)} missing")
    return dirs


SPLIT_ORDER = {"paper": 0, "dedup": 1, "grouped": 2, "given": 3}


def load(root: str | Path):
    """One row per exported run: split, model, seed, metrics with CIs, schedule, time."""
    import pandas as pd

    rows = []
    for d in run_dirs(root):
        meta, m = runs.read_meta(d), read_metrics(d)
        if meta.get("status") != runs.COMPLETE:
            raise ResultsError(f"{d / runs.RUN_JSON}: status {meta.get('status')!r}")
        lo, hi = m["ci_low"]["overall"], m["ci_high"]["overall"]
        p = meta["profile"]
        rows.append({"split": p["split"], "model": meta["variant"], "seed": int(meta["seed"]),
                     "accuracy": m["accuracy"], "accuracy_ci_low": lo["accuracy"],
                     "accuracy_ci_high": hi["accuracy"], "auc_macro": m["auc_macro"],
                     "auc_ci_low": lo["auc"], "auc_ci_high": hi["auc"], "n_test": m["n_test"],
                     "epochs": int(meta["epochs"]), "best_epoch": int(meta["best_epoch"]),
                     "max_epochs": int(p["max_epochs"]),
                     "patience": int(p["early_stopping_patience"]),
                     "train_minutes": float(meta["train_seconds"]) / 60,
                     "folder": d})  # fmt: skip
    frame = pd.DataFrame(rows)
    order = {**SPLIT_ORDER, "se": 0, "base": 1}
    return frame.sort_values(
        ["split", "model", "seed"], key=lambda c: c.map(order) if c.name != "seed" else c
    ).reset_index(drop=True)


def exported_profile(root: str | Path) -> dict:
    """The profile fields the exported runs were trained with (those of the first run)."""
    return runs.read_meta(run_dirs(root)[0])["profile"]


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
                raise ResultsError(f"{d / METRICS_JSON}: {key} does not match predictions.csv")
        if sorted(set(CLASSES)) != sorted(m["classes"]):
            raise ResultsError(f"{d / METRICS_JSON}: unexpected classes {m['classes']}")
    return len(dirs)


# ------------------------------------------------------------------- what runs share


def duplicate_table(root: str | Path, split: str):
    """The split's duplicate flags: a frame indexed by path (``split``,
    ``duplicate_in_train``: exact, near or none, and ``cluster``: the image's
    near-duplicate group, its own path when it has none)."""
    import pandas as pd

    path = Path(root) / "splits" / f"{split}-duplicates.csv"
    if not path.is_file():
        raise ResultsError(f"{path} does not exist: export with the images at hand")
    table = pd.read_csv(path).set_index("path")
    bad = sorted(set(table["duplicate_in_train"]) - {"exact", "near", "none"})
    if bad:
        raise ResultsError(f"{path}: unknown duplicate_in_train values {bad}")
    if "cluster" not in table:  # exported before clusters were: every image its own
        table["cluster"] = table.index
    return table


def test_clusters(root: str | Path, split: str, paths) -> np.ndarray:
    """An integer per test image of ``paths``: its near-duplicate cluster in ``split``."""
    table = duplicate_table(root, split)
    missing = [p for p in paths if p not in table.index]
    if missing:
        raise ResultsError(f"{root}: test images not in the {split} split's flags: "
                           f"{missing[:3]}")  # fmt: skip
    _, ids = np.unique(table.loc[list(paths), "cluster"].astype(str), return_inverse=True)
    return ids


test_clusters.__test__ = False  # not a pytest test, whatever its name


def run_predictions(frame, split: str, models=VARIANTS, seeds=None) -> dict:
    """``(model, seed) -> predictions frame`` of the exported runs of ``split``."""
    sub = frame[(frame["split"] == split) & frame["model"].isin(models)]
    if seeds is not None:
        sub = sub[sub["seed"].isin(seeds)]
    return {(r.model, int(r.seed)): read_predictions(r.folder) for r in sub.itertuples()}


def paired_seeds(frame, split: str) -> list[int]:
    """The seeds of ``split`` with a run of both models."""
    sub = frame[frame["split"] == split]
    return sorted(set.intersection(*(set(sub.loc[sub["model"] == m, "seed"]) for m in VARIANTS)))


def common_seeds(frame, model: str, splits) -> list[int]:
    """The seeds with a run of ``model`` on every split of ``splits``."""
    sub = frame[frame["model"] == model]
    return sorted(set.intersection(*(set(sub.loc[sub["split"] == s, "seed"]) for s in splits)))


def run_of(frame, split: str, seed: int, model: str) -> Path:
    """The folder of one run in ``frame`` (from :func:`load`)."""
    hit = frame[(frame["split"] == split) & (frame["seed"] == seed) & (frame["model"] == model)]
    if hit.empty:
        raise ResultsError(f"no exported run {model}-{split}-seed{seed}")
    return hit["folder"].iloc[0]


def fit_of(folder: str | Path) -> dict | None:
    """A run's ``fit.json`` (the best weights on the training images), if exported."""
    path = Path(folder) / runs.FIT_JSON
    return read_json(path) if path.is_file() else None


def external_sets(frame) -> list[str]:
    """The names of the external test sets that some exported run was scored on."""
    names = {
        p.parent.name
        for f in frame["folder"]
        for p in Path(f).glob(f"{EXTERNAL}/*/" + METRICS_JSON)
    }
    return sorted(names)


def external_predictions(folder: str | Path, name: str):
    """A run's predictions on the external set ``name`` (with ``duplicate_in_train``), or
    ``None`` when the run was not scored on it."""
    path = Path(folder) / EXTERNAL / name
    return read_predictions(path) if (path / PREDICTIONS_CSV).is_file() else None


# ---------------------------------------------------------------- progressive stages


def stage_chain(root: str | Path, folder: str | Path) -> list[tuple[Path, dict]]:
    """A progressive run's stages, first to last: ``(folder, run.json)`` of each."""
    folder = Path(folder)
    meta = runs.read_meta(folder)
    chain = [(folder, meta)]
    while meta.get("init_weights"):
        stage = Path(root) / "stages" / Path(meta["init_weights"]["run"]).parent.name / folder.name
        if not (stage / runs.RUN_JSON).is_file():
            raise ResultsError(f"{stage}: the stage {folder.name} started from is missing")
        meta = runs.read_meta(stage)
        chain.append((stage, meta))
    return chain[::-1]


#: Profile fields that may differ between runs of one schedule: what a grid's cells vary
#: (split, seed), where the data sit, and what changes how a run is computed or reported,
#: not what it learns (the trunk cache's memory, XLA, the evaluation's resamples).
NOT_SCHEDULE = ("split", "seed", "seeds", "splits", "data_dir", "strict_data", "description",
                "cache_memory_gib", "jit_compile", "bootstrap_resamples")  # fmt: skip


def schedule(root: str | Path, folder: str | Path) -> str:
    """A run's training schedule as one comparable string: the profile of every stage it
    went through, less the fields that do not change what it learns
    (:data:`NOT_SCHEDULE`), with the precision each stage trained in. Two runs compare
    fairly only where their schedules are equal.

    The precision is the one the machine resolved (``precision_policy`` in ``run.json``),
    not the profile's ``mixed_precision``: ``auto`` trains in mixed bfloat16 on a CPU with
    native bfloat16 and in float32 elsewhere, so one profile learns in two numeric regimes."""
    stages = [{**_trained_fields(m["profile"]), "precision": m.get("precision_policy")}
              for _, m in stage_chain(root, folder)]  # fmt: skip
    return json.dumps(stages, sort_keys=True)


def _trained_fields(profile: dict) -> dict:
    return {k: v for k, v in profile.items() if k not in NOT_SCHEDULE}


def current_stages(name: str) -> list[dict]:
    """The stages a run of profile ``name`` trains through today (``profiles.toml``, its
    ``init_from`` chain), first stage first, less :data:`NOT_SCHEDULE`, as ``run.json``
    stores them."""
    from brainlib.config import init_profile, load_profile

    chain, p = [], load_profile(name)
    while p is not None:
        chain.append(p)
        p = init_profile(p)
    return [_trained_fields(json.loads(json.dumps(p.to_dict()))) for p in chain[::-1]]


def on_current_schedule(root: str | Path, folder: str | Path) -> bool:
    """Whether a run was trained on the schedule its profile has today: every stage's
    fields equal to those of :func:`current_stages` (a field added to the profile since
    the run was trained is not held against it)."""
    trained = [_trained_fields(m["profile"]) for _, m in stage_chain(root, folder)]
    now = current_stages(trained[-1]["name"])
    return len(trained) == len(now) and all(
        all(t[k] == v for k, v in n.items() if k in t) for t, n in zip(trained, now, strict=True)
    )


def train_minutes(root: str | Path, folder: str | Path) -> float:
    """Minutes a progressive run took to train, summed over its stages: each stage's
    epochs times its median epoch time.

    The median, not the sum of ``seconds``: an epoch that ran while the run was paused
    (``kill -STOP``) or shared the machine with another job counts as a typical one, so a
    pause does not inflate the figure. ``run.json``'s ``train_seconds`` keeps the plain sum.
    """
    total = 0.0
    for f, _ in stage_chain(root, folder):
        seconds = read_history(f)["seconds"].astype(float)
        total += len(seconds) * float(seconds.median()) if len(seconds) else 0.0
    return total / 60


def full_history(root: str | Path, folder: str | Path):
    """A progressive run's whole schedule: its earlier stages' histories, then its own,
    epochs numbered on, with ``stage`` (the profile) and ``image_size`` columns."""
    import pandas as pd

    parts, offset = [], 0
    for f, m in stage_chain(root, folder):
        h = read_history(f).assign(stage=m["profile"]["name"],
                                   image_size=int(m["profile"]["image_size"]))  # fmt: skip
        h["epoch"] = h["epoch"].astype(int) + offset
        offset = int(h["epoch"].max())
        parts.append(h)
    return pd.concat(parts, ignore_index=True)


def stage_ends(histories: dict, labels: dict | None = None) -> str:
    """Where each stage of whole-schedule histories (``full_history``) ends, in words:
    "14 (real64), 26 (real128), 44 (real224)" when every history has the same stages,
    else one such list per history, named by ``labels`` (key -> name)."""
    ends = {
        k: ", ".join(f"{e} ({s})" for s, e in h.groupby("stage", sort=False)["epoch"].max().items())
        for k, h in histories.items()
    }
    if len(set(ends.values())) <= 1:
        return next(iter(ends.values()), "(none)")
    return "; ".join(f"{(labels or {}).get(k, k)}: {e}" for k, e in ends.items())


def external_meta(frame, name: str) -> dict:
    """What the first run scored on the external set ``name`` says of the set: its size,
    classes per folder and the classes it lacks."""
    for f in frame["folder"]:
        path = Path(f) / EXTERNAL / name / METRICS_JSON
        if path.is_file():
            m = read_json(path)
            return {"n_test": m["n_test"], **m.get("external", {})}
    return {}
