"""Training under the paper's protocol, into a resumable run folder.

``train`` is three steps: :func:`prepare` (load and check the data, draw the
split, settle the run folder and its run.json), :func:`fit` (from the last
checkpoint, or the start) and :func:`finish` (best and last weights, run.json
complete). The pieces it joins each have their module:

- :mod:`brainlib.protocol`: the paper's protocol in plain Keras (``compile``,
  early stopping with the best weights restored, the learning rate cut on a plateau);
- :mod:`brainlib.checkpoints`: the same callbacks made resumable, and a checkpoint
  after every epoch, so a killed run resumes where it stopped;
- :mod:`brainlib.trunk_cache`: the fast path (a frozen trunk's outputs computed
  once, so each epoch trains only the top);
- :mod:`brainlib.runs`: the run folder's layout, run.json and provenance.
"""

from __future__ import annotations

import dataclasses
import gc
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainlib import checkpoints, runs
from brainlib.config import CLASSES, VARIANTS, Profile
from brainlib.data import load_dataset
from brainlib.data.splits import make_split, read_split_csv, split_csv_text
from brainlib.fileio import atomic_write, atomic_write_text
from brainlib.models import build_for_profile, precision_policy
from brainlib.protocol import compile_model, set_determinism
from brainlib.runs import RunError
from brainlib.trunk_cache import trunk_cache, trunk_cache_key

# -------------------------------------------------------------------------- the run


@dataclass
class RunResult:
    folder: Path
    history: list[dict]
    resumed_from: int  # epochs already done when this call started
    model: object  # the trained keras.Model (best weights), or None if loaded lazily


@dataclass
class RunPlan:
    """What :func:`prepare` settled: the run folder, its images and its run.json."""

    profile: Profile
    variant: str
    seed: int
    folder: Path
    records: list
    assignment: dict[str, str]
    meta: dict
    weights: str | None
    complete: bool  # a finished run of the same configuration is already there


def subsample(records, assignment: dict[str, str], per_group: int, seed: int):
    """At most ``per_group`` images of each (split, class), chosen with ``seed``.

    For quick checks of a profile's code path (``subsample`` field); a run
    folder made so says it in run.json and its split.csv lists only these images.
    """
    rng = np.random.default_rng([seed, 104729])
    keep = []
    for split in ("train", "val", "test"):
        for cls in CLASSES:
            group = [r for r in records if r.label == cls and assignment[r.relpath] == split]
            if len(group) > per_group:
                idx = sorted(rng.choice(len(group), per_group, replace=False))
                group = [group[i] for i in idx]
            keep.extend(group)
    return sorted(keep, key=lambda r: r.relpath)


def prepare(
    profile: Profile,
    variant: str,
    runs_root: str | Path,
    data_dir: str | Path | None = None,
    seed: int | None = None,
    weights: str | None = None,
    allow_mismatch: bool = False,
    skip_bad: bool = False,
) -> RunPlan:
    """Load and check the data, draw the split and settle the run folder.

    A folder that holds another configuration is refused (:class:`RunError`);
    one that holds a finished run of this configuration is left as it is
    (``plan.complete``). Otherwise ``split.csv`` is written once (checked on
    resume) and ``run.json`` says ``running``.
    """
    seed = profile.seed if seed is None else seed
    profile.replace(seed=seed)  # the training seed is checked like the profile's, before any write
    check_weights_source(weights if weights is not None else profile.weights)
    dataset = load_dataset(profile, data_dir, on_bad="skip" if skip_bad else "raise",
                           allow_mismatch=allow_mismatch)  # fmt: skip
    folder = runs.run_dir(runs_root, profile, variant, seed)
    profile_dict = profile.to_dict()
    if weights is not None:
        profile_dict["weights"] = str(weights)
    meta = {
        "variant": variant,
        "seed": seed,
        "profile": profile_dict,
        "data_root": str(dataset.root.resolve()),
        "data_manifest_sha256": dataset.manifest_sha256,
    }
    from brainlib.models import stand_in_note

    note = stand_in_note(profile_dict["weights"])
    if note:
        meta["weights_stand_in"] = note
    if profile.init_from:
        meta["init_weights"] = init_weights_source(profile, variant, runs_root, seed)
    old = runs.check_same_run(folder, meta)
    plan = RunPlan(profile, variant, seed, folder, [], {}, old or meta, weights, False)
    if old and old.get("status") == runs.COMPLETE:
        plan.complete = True
        return plan

    assignment = make_split(
        dataset.records,
        profile.split,
        seed=profile.seed,
        fractions=profile.split_fractions,
        max_distance=profile.near_duplicate_distance,
    )
    # a "dedup" split leaves some training images out of the run
    records = [r for r in dataset.records if r.relpath in assignment]
    if profile.subsample:
        records = subsample(records, assignment, profile.subsample, profile.seed)
        assignment = {r.relpath: assignment[r.relpath] for r in records}
    split_text = split_csv_text(records, assignment)
    split_path = folder / runs.SPLIT_CSV
    if split_path.is_file() and old is None:  # left by a start that failed: drawn again below
        split_path.unlink()
    if split_path.is_file():
        if split_path.read_text(encoding="utf-8") != split_text:
            raise RunError(f"{split_path} differs from the split this run would use")
    else:
        atomic_write_text(split_path, split_text)
    read_split_csv(split_path)  # validates what was written

    plan.records, plan.assignment = records, assignment
    plan.meta = {
        **meta,
        "status": runs.RUNNING,
        "git_commit": runs.git_commit(),
        "versions": runs.package_versions(),
        "device": runs.device_info(),
        "precision_policy": precision_policy(profile.mixed_precision),
        "deterministic": not profile.jit_compile,
        "started": (old or {}).get("started", runs.now()),
        "command": sys.argv,
    }
    runs.write_meta(folder, plan.meta)
    return plan


def init_weights_source(profile: Profile, variant: str, runs_root, seed: int) -> dict:
    """The finished warm-start run (``init_from``) whose best weights start this run."""
    from brainlib.config import init_profile

    start = init_profile(profile)
    folder = runs.run_dir(runs_root, start, variant, seed)
    meta = runs.require_complete(folder)
    path = folder / runs.WEIGHTS / "best.weights.h5"
    if not path.is_file():
        raise RunError(f"{folder}: no {path.name} to start {profile.name!r} from")
    return {"profile": start.name, "run": str(folder), "file": str(path),
            "image_size": start.image_size, "epochs": meta.get("epochs"),
            "best_epoch": meta.get("best_epoch")}  # fmt: skip


def check_weights_source(weights: str | None) -> None:
    """A weights file must exist and be HDF5 before a run folder is written."""
    from brainlib.models import WeightsError

    if weights in (None, "none", "None", "", "imagenet"):
        return
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist")
    with open(path, "rb") as fh:
        if fh.read(8) != b"\x89HDF\r\n\x1a\n":
            raise WeightsError(f"{path}: not an HDF5 file (Keras .h5 weights expected)")


@dataclass
class _Inputs:
    model: object  # the whole model (what is saved)
    fit_model: object  # what fit() trains: the model, or its top on the fast path
    train: object  # cached images, or (features, flipped features, labels) on the fast path
    val: object
    n_train: int


def _inputs(plan: RunPlan, log) -> _Inputs:
    """The model and the training and validation data (trunk features on the fast path)."""
    import tensorflow as tf

    from brainlib.data.tfdata import eval_batches, image_dataset
    from brainlib.models import trunk_and_top

    profile = plan.profile
    model = build_for_profile(profile, plan.variant, plan.weights)
    start = plan.meta.get("init_weights")
    if start:  # progressive resizing: every weight from the lower-resolution run
        model.load_weights(start["file"])
        log(f"starting weights: {start['file']} ({start['image_size']} px, "
            f"best epoch {start['best_epoch']} of {start['epochs']})")  # fmt: skip

    def cached(split):
        recs = [r for r in plan.records if plan.assignment[r.relpath] == split]
        labels = [CLASSES.index(r.label) for r in recs]
        return image_dataset([str(r.path) for r in recs], labels, profile.image_size), len(recs)

    (train_cache, n), (val_cache, _) = cached("train"), cached("val")
    if not profile.fast_path:
        val = eval_batches(val_cache, profile.batch_size)
        return _Inputs(model, model, train_cache, val, n)
    trunk, top = trunk_and_top(model)
    key = trunk_cache_key(trunk, split_csv_text(plan.records, plan.assignment), profile.image_size)
    root = plan.folder.parent / runs.TRUNK_CACHE
    train, val_f, val_y = trunk_cache(trunk, train_cache, val_cache, key, root,
                                      profile.cache_memory_gib, log)  # fmt: skip
    plan.meta["trunk_cache"] = str(root / key)
    val = (
        tf.data.Dataset.from_tensor_slices((np.asarray(val_f), tf.one_hot(val_y, len(CLASSES))))
        .batch(profile.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return _Inputs(model, top, train, val, n)


def fit(plan: RunPlan, inputs: _Inputs, log, verbose: int = 1, stop_after: int | None = None):
    """Train from the last checkpoint (or the start) to the end or ``stop_after`` epochs.

    Returns ``(history, start, best_epoch, finished)``; the best weights are in
    the model when ``finished``.
    """
    from brainlib.data.tfdata import training_stream

    profile, fit_model = plan.profile, inputs.fit_model
    compile_model(fit_model, profile)
    state = checkpoints.resume(plan.folder, fit_model, log)
    if state.start == 0:
        log(f"start: {plan.variant} model, profile {profile.name}, seed {plan.seed}, "
            f"{inputs.n_train} training images")  # fmt: skip
    early, plateau = checkpoints.resumable_callbacks(profile)
    early.restored, plateau.restored = state.early, state.plateau
    history = state.history
    ckpt = checkpoints.epoch_checkpoint(plan.folder, fit_model, early, plateau, history, log)
    end = profile.max_epochs if stop_after is None else min(profile.max_epochs, stop_after)
    start = profile.max_epochs if state.stopped else state.start
    if start < end:
        stream, steps = training_stream(
            inputs.train, inputs.n_train, profile.batch_size, plan.seed, start, end,
            features=profile.fast_path,
        )  # fmt: skip
        fit_model.fit(
            stream,
            steps_per_epoch=steps,
            epochs=end,
            initial_epoch=start,
            validation_data=inputs.val,
            callbacks=[plateau, early, ckpt],
            shuffle=False,  # the stream is shuffled per epoch, by seed
            verbose=verbose,
        )
        best_epoch = int(early.best_epoch) + 1
    else:  # nothing left to train (early stopping had fired before a restart)
        if state.early and state.early.get("best_weights") is not None:
            fit_model.set_weights(state.early["best_weights"])
        best_epoch = int((state.early or {}).get("best_epoch", len(history) - 1)) + 1
    finished = stop_after is None or len(history) >= profile.max_epochs or early.stopped_epoch > 0
    return history, state.start, best_epoch, finished


def finish(plan: RunPlan, inputs: _Inputs, history: list[dict], best_epoch: int, log) -> None:
    """Save the best and last weights, mark run.json complete, drop the checkpoints.

    ``best.weights.h5`` and ``last.weights.h5`` hold the whole model's weights
    and no optimizer state (the per-epoch checkpoints, which a resume needs,
    carry it and are dropped here): about 100 MB at 224 instead of 290.
    """
    wdir = plan.folder / runs.WEIGHTS
    model, fit_model = inputs.model, inputs.fit_model
    best = model.get_weights()  # EarlyStopping restored them
    bare = build_for_profile(plan.profile, plan.variant, weights="none")  # no optimizer

    def save(weights, name):
        bare.set_weights(weights)
        atomic_write(wdir / name, lambda p: bare.save_weights(str(p)))

    save(best, "best.weights.h5")
    if history:
        # the last epoch's weights (only the top's, on the fast path)
        fit_model.load_weights(str(checkpoints.latest_checkpoint(plan.folder)))
        save(model.get_weights(), "last.weights.h5")
        model.set_weights(best)
    plan.meta.update(
        status=runs.COMPLETE,
        finished=runs.now(),
        epochs=len(history),
        best_epoch=best_epoch,
        stopped_early=len(history) < plan.profile.max_epochs,
        train_seconds=round(sum(r["seconds"] for r in history), 3),
        weights_note="best.weights.h5 = model weights of best_epoch (lowest val_loss)",
    )
    runs.write_meta(plan.folder, plan.meta)
    checkpoints.drop_checkpoints(plan.folder)
    log(f"complete: {len(history)} epochs, best epoch {best_epoch}")


def train(
    profile: Profile,
    variant: str,
    runs_root: str | Path = "runs",
    data_dir: str | Path | None = None,
    seed: int | None = None,
    weights: str | None = None,
    allow_mismatch: bool = False,
    verbose: int = 1,
    stop_after_epochs: int | None = None,
    skip_bad: bool = False,
    progress: bool = False,
) -> RunResult:
    """Train ``variant`` under ``profile`` into its run folder; resume if one exists.

    Three steps: :func:`prepare` (data, split, run folder), :func:`fit` (from
    the last checkpoint) and :func:`finish` (weights, run.json complete).
    ``stop_after_epochs`` ends this call after that many epochs in total (the
    run stays resumable); it exists for tests and time-boxed sessions.
    ``skip_bad`` leaves unreadable images out (with a warning) instead of stopping.
    ``progress`` prints the run's log lines as they are written (one line per epoch),
    for a notebook, where Keras' own log (``verbose``) is too long.
    A finished run is not trained again: its folder is returned as it is.
    One process at a time trains into a run folder (:func:`brainlib.runs.locked`).
    """
    from brainlib.config import init_profile

    seed = profile.seed if seed is None else seed
    start = init_profile(profile)
    if start is not None:  # progressive resizing: the lower-resolution run comes first
        first = train(start, variant, runs_root, data_dir, seed, None, allow_mismatch, verbose,
                      None, skip_bad, progress)  # fmt: skip
        if runs.read_meta(first.folder).get("status") != runs.COMPLETE:
            return first
    folder = runs.run_dir(runs_root, profile, variant, seed)
    with runs.locked(folder):
        return _train_locked(profile, variant, runs_root, data_dir, seed, weights,
                             allow_mismatch, skip_bad, verbose, stop_after_epochs,
                             print if progress else None)  # fmt: skip


def _train_locked(profile, variant, runs_root, data_dir, seed, weights, allow_mismatch, skip_bad,
                  verbose, stop_after_epochs, echo) -> RunResult:  # fmt: skip
    import keras

    plan = prepare(profile, variant, runs_root, data_dir, seed, weights, allow_mismatch, skip_bad)
    if plan.complete:
        history = runs.read_history_rows(plan.folder)
        return RunResult(plan.folder, history, len(history), None)
    with checkpoints.run_log(plan.folder, echo) as log:
        keras.backend.clear_session()
        set_determinism(plan.seed, ops=not profile.jit_compile)
        inputs = _inputs(plan, log)
        history, start, best_epoch, finished = fit(plan, inputs, log, verbose, stop_after_epochs)
        if not finished:
            log(f"paused after epoch {len(history)} (stop_after_epochs)")
        else:  # the best weights are in the model (EarlyStopping restored them)
            finish(plan, inputs, history, best_epoch, log)
        return RunResult(plan.folder, history, start, inputs.model)


def train_grid(
    profile: Profile,
    runs_root: str | Path = "runs",
    data_dir: str | Path | None = None,
    weights: str | None = None,
    verbose: int = 1,
    progress: bool = False,
) -> dict[tuple[str, int, str], RunResult]:
    """:func:`train` both models for every pair of :func:`brainlib.runs.grid`; finished
    runs are reused, and no model is kept (``RunResult.model`` is None). ``progress``
    first says how many runs are there already and how many will be trained, then prints
    one line per epoch (:func:`train`)."""
    import keras

    keys = [(split, seed, variant) for split, seed in runs.grid(profile) for variant in VARIANTS]
    if progress:
        done = sum(runs.is_complete(runs.run_dir(runs_root, profile.replace(split=split),
                                                 variant, seed))
                   for split, seed, variant in keys)  # fmt: skip
        todo = len(keys) - done
        print(f"{done} of {len(keys)} runs of profile {profile.name} are finished under "
              f"{runs_root}" + (f"; training {todo} now, one line per epoch"
                                if todo else ": nothing to train"))  # fmt: skip
    out = {}
    for split, seed, variant in keys:
        result = train(profile.replace(split=split), variant, runs_root, data_dir, seed=seed,
                       weights=weights, verbose=verbose, progress=progress)  # fmt: skip
        # one model in memory at a time (a chapter on Binder has 2 GB): the best weights
        # are in the run folder (weights/best.weights.h5)
        out[(split, seed, variant)] = dataclasses.replace(result, model=None)
        del result
        keras.backend.clear_session()  # the finished run's graphs and variables
        gc.collect()
    return out
