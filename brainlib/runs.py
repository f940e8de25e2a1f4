"""The run folder: the one contract between training, evaluation and the book.

A run folder holds one model, one seed, one profile::

    <runs_root>/<profile>/<variant>-<split>-seed<seed>/
        run.json          provenance: commit, versions, profile, seed, data hash, device, times,
                          status ("running" while training, "complete" when done)
        split.csv         the split used (path, class, sha256, split)
        history.csv       epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds
        log.txt           one line per epoch
        weights/          best.weights.h5, last.weights.h5 (complete); epoch-NNNN/ (while running)
        predictions.csv   the test images' class probabilities (evaluation)
        metrics.json      Tables 1-2 with bootstrap intervals, confusion matrix (evaluation)
        figures/          Figures 1-5 of the run (the notebooks)

    <runs_root>/<profile>/data/<split>-duplicates.csv
                          per image: an exact / near / no duplicate in training (the data stage)

This module owns those names, reads and checks ``run.json``, tells a complete
run from a partial one, finds the runs of a profile and of its grid of seeds and
splits, and loads a trained model. Every other module goes through it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from brainlib.config import NOT_TRAINING_FIELDS, VARIANTS, Profile
from brainlib.fileio import atomic_write_json, atomic_write_text, read_json

RUN_JSON = "run.json"
SPLIT_CSV = "split.csv"
HISTORY_CSV = "history.csv"
LOG_TXT = "log.txt"
WEIGHTS = "weights"
PREDICTIONS_CSV = "predictions.csv"
METRICS_JSON = "metrics.json"
FIT_JSON = "fit.json"  # the best weights' accuracy on the training images, inference mode
SALIENCY_JSON = "saliency.json"  # what the Grad-CAM heatmaps look at, in numbers
FIGURES = "figures"
DATA = "data"  # the data stage's outputs, beside the run folders of a profile
TRUNK_CACHE = "trunk-cache"  # the fast path's cached trunk outputs, beside the run folders

COMPLETE, RUNNING = "complete", "running"

HISTORY_FIELDS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "seconds",
)


class RunError(RuntimeError):
    """A run folder is missing files or does not match the command."""


# ------------------------------------------------------------------------------ paths


def run_name(variant: str, split: str, seed: int) -> str:
    return f"{variant}-{split}-seed{seed}"


def run_dir(runs_root: str | Path, profile: Profile, variant: str, seed: int) -> Path:
    """``<runs_root>/<profile>/<variant>-<split>-seed<seed>``."""
    return Path(runs_root) / profile.name / run_name(variant, profile.split, seed)


def data_stage_dir(runs_root: str | Path, profile: Profile) -> Path:
    """Where the data stage leaves what later stages read (duplicate flags per split)."""
    return Path(runs_root) / profile.name / DATA


def duplicate_flags_path(runs_root: str | Path, profile: Profile, split: str) -> Path:
    return data_stage_dir(runs_root, profile) / f"{split}-duplicates.csv"


# --------------------------------------------------------------------------- run.json


def read_meta(folder: str | Path) -> dict:
    """``run.json`` of ``folder``; :class:`RunError` if there is none."""
    path = Path(folder) / RUN_JSON
    if not path.is_file():
        raise RunError(f"{folder} is not a run folder (no {RUN_JSON})")
    return read_json(path)


def write_meta(folder: str | Path, meta: dict) -> None:
    atomic_write_json(Path(folder) / RUN_JSON, meta)


def status(folder: str | Path) -> str | None:
    """``"complete"``, ``"running"`` (a partial run) or ``None`` (no run here)."""
    path = Path(folder) / RUN_JSON
    return read_json(path).get("status") if path.is_file() else None


def is_complete(folder: str | Path) -> bool:
    return status(folder) == COMPLETE


def require_complete(folder: str | Path) -> dict:
    """``run.json`` of a complete run; :class:`RunError` naming the status otherwise."""
    meta = read_meta(folder)
    if meta.get("status") != COMPLETE:
        raise RunError(f"{folder}: the run is not complete (status {meta.get('status')!r})")
    return meta


def identity(meta: dict) -> dict:
    """What names a run in its metrics files: model, seed, profile and split."""
    return {"variant": meta["variant"], "seed": meta["seed"], "profile": meta["profile"]["name"],
            "split": meta["profile"]["split"]}  # fmt: skip


def training_fields_changed(old: dict, new: dict) -> list[str]:
    """The profile fields that differ between two runs in a way that changes training.

    Fields in :data:`~brainlib.config.NOT_TRAINING_FIELDS` are ignored; a field
    that an older run.json lacks (added to brainlib later) counts as changed
    only when its new value differs from the field's default.
    """
    defaults = Profile().to_dict()
    out = []
    for key in sorted(set(old) | set(new)):
        if key in NOT_TRAINING_FIELDS:
            continue
        a = json.loads(json.dumps(old.get(key, defaults.get(key))))
        b = json.loads(json.dumps(new.get(key, defaults.get(key))))
        if a != b:
            out.append(f"{key}: {a!r} != {b!r}")
    return out


def check_same_run(folder: Path, meta: dict) -> dict | None:
    """The stored run.json if ``folder`` holds a run of the same configuration as ``meta``.

    ``None`` when the folder holds no run yet; :class:`RunError` when it holds
    another model, seed, data or training setting.
    """
    if not (folder / RUN_JSON).is_file():
        return None
    old = read_meta(folder)
    if not has_progress(folder, old):
        return None  # a start that failed before its first epoch: nothing to keep
    for key in ("variant", "seed", "data_manifest_sha256"):
        if json.loads(json.dumps(old.get(key))) != json.loads(json.dumps(meta[key])):
            raise RunError(
                f"{folder} holds a run with another {key} ({old.get(key)!r} != "
                f"{meta[key]!r}); use another --runs folder or delete it"
            )
    changed = training_fields_changed(old.get("profile") or {}, meta["profile"])
    if changed:
        raise RunError(
            f"{folder} holds a run trained with other settings ({'; '.join(changed)}); "
            "use another --runs folder or delete it"
        )
    return old


def has_progress(folder: str | Path, meta: dict | None = None) -> bool:
    """Whether the run finished or has a checkpoint of at least one epoch."""
    meta = read_meta(folder) if meta is None else meta
    return meta.get("status") == COMPLETE or (Path(folder) / WEIGHTS / "latest.json").is_file()


LOCK = ".lock"
LOCK_HOLDER = ".lock.pid"  # who holds the lock (the lock file itself is the OS's to lock)


@contextlib.contextmanager
def locked(folder: str | Path):
    """Hold ``folder`` for one process: a second one gets a :class:`RunError` naming the first.

    The lock is the operating system's (``filelock``: ``flock`` on Linux and macOS,
    ``msvcrt.locking`` on Windows), so it is released when the process ends, however it
    ends. On entry, temporary files that a killed atomic write left behind are removed
    (no other process can be writing them). A folder that holds nothing but the lock on
    exit (a start refused before it wrote anything) is removed.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again if unused
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK, timeout=0)
    try:
        try:
            lock.acquire()
        except Timeout:
            try:
                holder = (folder / LOCK_HOLDER).read_text(encoding="utf-8").strip()
            except OSError:
                holder = ""
            raise RunError(
                f"{folder} is in use by another brainlib process (pid {holder or 'unknown'}); "
                "wait for it to finish or stop it, then run the command again"
            ) from None
        try:
            (folder / LOCK_HOLDER).write_text(f"{os.getpid()}\n", encoding="utf-8")
            for stale in folder.rglob(".tmp-*"):
                stale.unlink(missing_ok=True)
            yield folder
        finally:
            lock.release()
    finally:
        left = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
        if made and left <= {LOCK, LOCK_HOLDER}:
            shutil.rmtree(folder, ignore_errors=True)
            for parent in made[1:]:  # the folders made for it, innermost first, if empty
                with contextlib.suppress(OSError):
                    parent.rmdir()


# ---------------------------------------------------------------------------- history


def history_csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: row[k] for k in HISTORY_FIELDS})
    return buf.getvalue()


def write_history(folder: str | Path, rows: list[dict]) -> None:
    atomic_write_text(Path(folder) / HISTORY_CSV, history_csv_text(rows))


def read_history_rows(folder: str | Path) -> list[dict]:
    path = Path(folder) / HISTORY_CSV
    if not path.is_file():
        raise RunError(f"{folder} has no {HISTORY_CSV}")
    with path.open(newline="") as fh:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def read_history(folder: str | Path):
    """``history.csv`` of a run folder as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(read_history_rows(Path(folder)))


#: The convergence rule for the real-data runs that the results page analyses: the
#: best weights classify at least this share of the training images (inference mode).
MIN_TRAIN_ACCURACY = 0.95


def convergence(history: list[dict], fitted_accuracy: float | None = None,
                patience: int | None = None,
                min_train_accuracy: float = MIN_TRAIN_ACCURACY) -> dict:  # fmt: skip
    """Whether a run converged: it stopped on its early-stopping ``patience`` (``patience``
    epochs without a lower validation loss after its best one), rather than running out
    of epochs, and its best weights fit its training images: training accuracy at least
    ``min_train_accuracy``, which a leakage experiment needs (a model that has not
    fitted its training images cannot profit from copies of test images among them).
    Without ``patience`` (a run.json that does not say), the best epoch must come
    before the last.

    The training accuracy judged is ``fitted_accuracy`` when given: the best weights'
    accuracy on the training images in inference mode (``fit.json``,
    :func:`brainlib.evaluation.fit_accuracy`). Otherwise it is the accuracy logged at
    the best epoch, which Keras takes with dropout on and on augmented images, and
    which runs below it. Returns the numbers behind both conditions and the verdict
    with its reason."""
    if not history:
        raise RunError("an empty history cannot be judged")
    best = min(history, key=lambda r: (r["val_loss"], r["epoch"]))
    last = history[-1]["epoch"]
    after = last - best["epoch"]
    stopped = after >= patience if patience is not None else after > 0
    judged = best["accuracy"] if fitted_accuracy is None else fitted_accuracy
    source = "logged at the best epoch" if fitted_accuracy is None else "of the best weights"
    fitted = judged >= min_train_accuracy
    reasons = []
    if not stopped and patience is not None:
        reasons.append(f"it ran out of epochs {after} after its best ({best['epoch']} of {last}), "
                       f"before its patience of {patience}")  # fmt: skip
    elif not stopped:
        reasons.append(f"its best validation loss is at its last epoch ({last})")
    if not fitted:
        reasons.append(f"training accuracy {source} is {judged:.3f}, "
                       f"below {min_train_accuracy}")  # fmt: skip
    return {"epochs": last, "best_epoch": best["epoch"], "logged_train_accuracy": best["accuracy"],
            "fitted_accuracy": fitted_accuracy, "train_accuracy": judged,
            "val_accuracy": best["val_accuracy"], "stopped_on_patience": stopped,
            "fitted": fitted, "converged": stopped and fitted,
            "reason": "; ".join(reasons) or "converged"}  # fmt: skip


# -------------------------------------------------------------------------- discovery


def run_folders(runs_root: str | Path, profile: Profile, seeds=None) -> dict[str, list[Path]]:
    """Completed run folders of ``profile`` (on its split) per variant: all seeds, or ``seeds``."""
    out: dict[str, list[Path]] = {}
    base = Path(runs_root) / profile.name
    for variant in VARIANTS:
        found = []
        for folder in sorted(base.glob(f"{variant}-{profile.split}-seed*")):
            if is_complete(folder):
                seed = int(folder.name.rsplit("seed", 1)[1])
                if seeds is None or seed in seeds:
                    found.append(folder)
        out[variant] = found
    return out


def seed_runs(runs_root: str | Path, profile: Profile, seed: int | None = None) -> dict[str, Path]:
    """The completed run folder of each model for one seed (default: the profile's).

    Raises :class:`RunError` naming the models that have no completed run.
    """
    seed = profile.seed if seed is None else seed
    found = {v: fs[0] for v, fs in run_folders(runs_root, profile, seeds=[seed]).items() if fs}
    missing = [v for v in VARIANTS if v not in found]
    if missing:
        raise RunError(
            f"no completed run of {missing} for profile {profile.name}, seed {seed} "
            f"under {runs_root}; train them first (brainlib train, or the training notebook)"
        )
    return found


def grid(profile: Profile) -> list[tuple[str, int]]:
    """The (split, seed) pairs of the profile's replication grid, its own pair first.

    Every split is drawn with the profile's ``seed``; ``seeds`` are training
    seeds (initial weights, batch order, augmentation and dropout), so the
    runs of one split share their test images and pair across models.
    """
    splits = profile.splits or (profile.split,)
    seeds = profile.seeds or (profile.seed,)
    pairs = [(profile.split, profile.seed)] + [(s, d) for s in splits for d in seeds]
    return list(dict.fromkeys(pairs))


def grid_folders(
    runs_root: str | Path, profile: Profile, partial: bool = False
) -> dict[tuple[str, int, str], Path]:
    """The completed run folder of every (split, seed, model) of the grid.

    Raises :class:`RunError` naming the runs that are missing or unfinished;
    with ``partial``, returns the completed ones (a grid trained over several
    sittings) and raises only when there is none.
    """
    found, missing = {}, []
    for split, seed in grid(profile):
        folder_of = {v: run_dir(runs_root, profile.replace(split=split), v, seed) for v in VARIANTS}
        for variant, folder in folder_of.items():
            if is_complete(folder):
                found[(split, seed, variant)] = folder
            else:
                missing.append(folder.name)
    if missing and not (partial and found):
        raise RunError(
            f"no completed run for {', '.join(missing)} of profile {profile.name} under "
            f"{runs_root}; train them first (brainlib train, or the training notebook)"
        )
    return found


# ------------------------------------------------------------------------- provenance


def now() -> str:
    """The time in UTC, to the second (ISO 8601), as run.json and log.txt write it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit(cwd: Path | None = None) -> str:
    """The checkout's commit, with ``-dirty`` when tracked files were changed."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10)  # fmt: skip
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from brainlib import __version__

    out = {"python": platform.python_version(), "brainlib": __version__}
    for name in ("tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else the machine type."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_info() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": [g.name for g in gpus],
        "device": "GPU" if gpus else "CPU",
    }


# ------------------------------------------------------------------------------ model


def profile_of(meta: dict) -> Profile:
    """The profile a run was trained with, rebuilt from its run.json."""
    from brainlib.config import load_profile

    fields = dict(meta["profile"])
    name = fields.pop("name")
    fields.pop("extra", None)
    return load_profile(name, **{k: v for k, v in fields.items() if v is not None})


def load_trained_model(folder: str | Path, which: str = "best", float32: bool = False):
    """Rebuild the model of a run folder and load its ``best`` or ``last`` weights.

    The model computes as it was trained (mixed precision where the run used it);
    ``float32`` builds it in full precision instead (the weights are float32 either
    way), as Grad-CAM needs: its maps are upsampled with scipy, which has no bfloat16.
    """
    from brainlib.models import build_for_profile

    folder = Path(folder)
    meta = read_meta(folder)
    path = folder / WEIGHTS / f"{which}.weights.h5"
    if not path.is_file():
        raise RunError(
            f"{folder}: no {path.name} (is the run complete? status: {meta.get('status')})"
        )
    fields = {**meta["profile"], "weights": "none"}
    if float32:
        fields["mixed_precision"] = False
    profile = profile_of({**meta, "profile": fields})
    model = build_for_profile(profile, meta["variant"], weights="none")  # the file holds all
    model.load_weights(str(path), skip_mismatch=False)
    return model
