"""Training under the paper's protocol, into a resumable run folder.

The protocol (the paper, "Model development and architecture"): Adam with
learning rate 1e-4, categorical cross-entropy, batch 16, at most 100 epochs,
early stopping on validation loss with the best weights restored, and the
learning rate reduced when validation loss plateaus. Every value is a profile
field (:class:`brainlib.config.Profile`).

The run folder's layout and run.json belong to :mod:`brainlib.runs`; while a
run trains, ``weights/epoch-NNNN/`` (ckpt.weights.h5 + state.json) holds its
checkpoints. ``train`` is three steps: :func:`prepare`, :func:`fit`, :func:`finish`.

Every file is written atomically. After each epoch a checkpoint (weights with
the optimizer state, the callbacks' state, the dropout RNG state and the
history) goes into ``weights/epoch-NNNN/`` and ``weights/latest.json`` is
then switched to it; a run killed at any moment (even ``kill -9``) resumes
from its last completed epoch when the same command is run again, and ends
with the history it would have had, since each epoch's shuffle and flips
depend only on ``(seed, epoch)`` (:mod:`brainlib.data.pipeline`).

Fast path (``fast_path = true``): the trunk below ``conv5_block1_preact_bn`` is
frozen and deterministic (BatchNorm in inference mode, no dropout), and the
only augmentation is a horizontal flip, so its outputs for every training
image and its mirror image are computed once and kept in memory; each epoch
then runs only the trainable top. At 224 the trunk's output is 7x7x1024
float32 (196 KiB) per image: 0.95 GiB for the 2,478 training images and their
flips, 0.12 GiB for validation. The cache is written once as ``.npy`` files
under ``<runs>/<profile>/trunk-cache/<key>/``, where the key hashes the
trunk's weights and the images, so runs with the same frozen trunk (both
models, and every seed, on ImageNet weights) share it; it is read into memory
up to ``cache_memory_gib`` and memory-mapped from disk beyond.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from brainlib import runs
from brainlib.config import CLASSES, VARIANTS, Profile
from brainlib.data import load_dataset
from brainlib.data.splits import make_split, read_split_csv, split_csv_text
from brainlib.fileio import atomic_write, atomic_write_json, atomic_write_text, read_json
from brainlib.models import build_for_profile, precision_policy
from brainlib.runs import RunError

# ----------------------------------------------------------------------------- set-up


def set_determinism(seed: int, ops: bool = True) -> None:
    """Seed Python, NumPy and TensorFlow/Keras; make TensorFlow ops deterministic.

    Op determinism and XLA exclude each other in Keras (it silently drops
    ``jit_compile``), so a profile with ``jit_compile`` passes ``ops=False``
    and its run.json says ``"deterministic": false``.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)  # random, numpy, tensorflow, keras
    if ops:
        tf.config.experimental.enable_op_determinism()


def compile_model(model, profile: Profile):
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=profile.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=bool(profile.jit_compile),
    )
    return model


# ------------------------------------------------------------------------ provenance


def git_commit(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd or Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0:
            return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("brainlib", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def device_info() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": [g.name for g in gpus],
        "device": "GPU" if gpus else "CPU",
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- callbacks


def _callbacks(profile: Profile):
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        """EarlyStopping whose counters survive a restart."""

        restored: dict | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.restored:
                self.wait = self.restored["wait"]
                self.best = self.restored["best"]
                self.best_epoch = self.restored["best_epoch"]
                self.best_weights = self.restored.get("best_weights")

        def state(self) -> dict:
            return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch}

    class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
        """ReduceLROnPlateau whose counters survive a restart."""

        restored: dict | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.restored:
                self.best = self.restored["best"]
                self.wait = self.restored["wait"]
                self.cooldown_counter = self.restored["cooldown_counter"]

        def state(self) -> dict:
            return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    early = ResumableEarlyStopping(
        monitor="val_loss",
        patience=profile.early_stopping_patience,
        restore_best_weights=True,
    )
    plateau = ResumableReduceLROnPlateau(
        monitor="val_loss",
        factor=profile.reduce_lr_factor,
        patience=profile.reduce_lr_patience,
        min_lr=profile.min_learning_rate,
    )
    return early, plateau


def _seed_states(model) -> dict[str, list[int]]:
    """The RNG states (dropout) that ``save_weights`` leaves out."""
    weights = {id(w) for w in model.weights}
    return {
        v.path: np.asarray(v.numpy()).tolist()
        for v in model.variables
        if id(v) not in weights and "seed_generator" in v.path
    }


def _restore_seed_states(model, states: dict[str, list[int]]) -> None:
    by_path = {v.path: v for v in model.variables}
    for path, value in states.items():
        if path not in by_path:
            raise RunError(f"checkpoint names an RNG state {path!r} the model does not have")
        by_path[path].assign(np.asarray(value, dtype=by_path[path].dtype))


def _checkpoint_callback(folder: Path, fit_model, early, plateau, history: list[dict], log):
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """After each epoch: history, log line and an atomic resumable checkpoint."""

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()
            self._lr = float(keras.ops.convert_to_numpy(fit_model.optimizer.learning_rate))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            row = {
                "epoch": epoch + 1,
                "loss": float(logs["loss"]),
                "accuracy": float(logs["accuracy"]),
                "val_loss": float(logs["val_loss"]),
                "val_accuracy": float(logs["val_accuracy"]),
                "learning_rate": self._lr,
                "seconds": round(time.perf_counter() - self._t0, 3),
            }
            history.append(row)
            weights_dir = folder / "weights"
            ckpt = weights_dir / f"epoch-{epoch + 1:04d}"
            ckpt.mkdir(parents=True, exist_ok=True)
            atomic_write(ckpt / "ckpt.weights.h5", lambda p: fit_model.save_weights(str(p)))
            state = {
                "epoch": epoch + 1,
                "early_stopping": early.state(),
                "reduce_lr": plateau.state(),
                "seed_states": _seed_states(fit_model),
                "history": history,
                "stop_training": bool(fit_model.stop_training),
            }
            atomic_write_json(ckpt / "state.json", state)
            # the switch: from here on a restart resumes after this epoch
            atomic_write_json(weights_dir / "latest.json", {"epoch": epoch + 1, "dir": ckpt.name})
            runs.write_history(folder, history)
            keep = {ckpt.name, f"epoch-{early.best_epoch + 1:04d}"}
            for old in weights_dir.glob("epoch-*"):
                if old.name not in keep:
                    shutil.rmtree(old, ignore_errors=True)
            log(
                f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
                f"lr {row['learning_rate']:.2e}  {row['seconds']:.1f}s"
            )

    return EpochCheckpoint()


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


def trunk_features(trunk, cached, batch_size: int, flip: bool = False, out=None) -> np.ndarray:
    """The frozen trunk's outputs for every cached image (optionally mirrored).

    ``out``: an array (a memory map) to fill batch by batch instead of a new one.
    """
    import tensorflow as tf

    from brainlib.data.pipeline import preprocess

    ds = cached.map(lambda x, y: x[:, ::-1] if flip else x).batch(batch_size)
    ds = ds.map(preprocess).prefetch(tf.data.AUTOTUNE)
    if out is None:
        return np.concatenate([trunk(x, training=False).numpy() for x in ds], axis=0)
    k = 0
    for x in ds:
        rows = trunk(x, training=False).numpy()
        out[k : k + len(rows)] = rows
        k += len(rows)
    return out


def trunk_cache_key(trunk, split_text: str, image_size: int) -> str:
    """What the trunk's outputs depend on: its weights, the images (paths and sha256 of
    the split) and their size. Runs that share it (both models on ImageNet weights, every
    seed of a frozen pre-trained trunk) share one cache."""
    import hashlib

    digest = hashlib.sha256(f"{image_size}\n{split_text}".encode())
    for w in trunk.weights:
        digest.update(w.path.encode())
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    return digest.hexdigest()[:20]


def trunk_cache(trunk, train_cache, val_cache, key: str, root: Path, budget_gib: float, log):
    """The trunk's outputs for the training images (and their mirror images) and the
    validation images, computed once into ``root/<key>/`` as ``.npy`` files.

    Loaded into memory when they fit ``budget_gib``, else memory-mapped from disk
    (the page cache keeps what fits). Returns ``(FeatureArrays, val features, val labels)``.
    """
    import json

    from brainlib.data.pipeline import FeatureArrays

    folder = root / key
    names = ("train", "train-flip", "train-labels", "val", "val-labels")
    t0 = time.perf_counter()
    if not (folder / "done.json").is_file():
        tmp = root / f".tmp-{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        probe = trunk(np.zeros((1, *trunk.input.shape[1:]), "float32"), training=False)
        shape, dtype = tuple(probe.shape[1:]), probe.numpy().dtype
        for split, data in (("train", train_cache), ("val", val_cache)):
            labels = _labels(data)
            np.save(tmp / f"{split}-labels.npy", labels)
            flips = (False, True) if split == "train" else (False,)
            for flip in flips:
                name = f"{split}-flip" if flip else split
                out = np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype,
                                                shape=(len(labels), *shape))  # fmt: skip
                trunk_features(trunk, data, 64, flip=flip, out=out)
                out.flush()
                del out
        (tmp / "done.json").write_text(json.dumps({"key": key, "shape": shape,
                                                   "dtype": str(dtype)}))  # fmt: skip
        try:
            tmp.rename(folder)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)
        how = f"computed in {time.perf_counter() - t0:.1f}s"
    else:
        how = "reused"
    size = sum((folder / f"{n}.npy").stat().st_size for n in names)
    in_memory = size <= budget_gib * 2**30
    mode = None if in_memory else "r"
    arrays = {n: np.load(folder / f"{n}.npy", mmap_mode=mode) for n in names}
    train = FeatureArrays(arrays["train"], arrays["train-flip"], arrays["train-labels"])
    where = "in memory" if in_memory else f"memory-mapped from disk (over {budget_gib:g} GiB)"
    log(f"fast path: trunk features {train.features.shape[1:]} of {len(train)} training images "
        f"(+ mirror images) and {len(arrays['val-labels'])} validation images, "
        f"{size / 2**30:.2f} GiB at {folder.resolve()}, {how}, {where}")  # fmt: skip
    return train, arrays["val"], arrays["val-labels"]


def _labels(cached) -> np.ndarray:
    return np.concatenate([y.numpy() for _, y in cached.batch(4096)])


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
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": device_info(),
        "precision_policy": precision_policy(profile.mixed_precision),
        "deterministic": not profile.jit_compile,
        "started": (old or {}).get("started", _now()),
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

    from brainlib.data.pipeline import eval_batches, image_dataset
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


@dataclass
class _Resume:
    start: int = 0  # epochs done
    history: list = None
    early: dict | None = None
    plateau: dict | None = None
    stopped: bool = False  # early stopping had fired before the restart


def _resume(folder: Path, fit_model, log) -> _Resume:
    """The state of the last completed epoch's checkpoint, loaded into ``fit_model``."""
    latest = folder / runs.WEIGHTS / "latest.json"
    if not latest.is_file():
        return _Resume(history=[])
    wdir = folder / runs.WEIGHTS
    pointer = read_json(latest)
    state = read_json(wdir / pointer["dir"] / "state.json")
    fit_model.optimizer.build(fit_model.trainable_variables)
    best_dir = wdir / f"epoch-{state['early_stopping']['best_epoch'] + 1:04d}"
    fit_model.load_weights(str(best_dir / "ckpt.weights.h5"))
    early = {**state["early_stopping"], "best_weights": fit_model.get_weights()}
    fit_model.load_weights(str(wdir / pointer["dir"] / "ckpt.weights.h5"))
    _restore_seed_states(fit_model, state["seed_states"])
    log(f"resuming after epoch {state['epoch']}")
    return _Resume(state["epoch"], state["history"], early, state["reduce_lr"],
                   bool(state.get("stop_training")))  # fmt: skip


def fit(plan: RunPlan, inputs: _Inputs, log, verbose: int = 1, stop_after: int | None = None):
    """Train from the last checkpoint (or the start) to the end or ``stop_after`` epochs.

    Returns ``(history, start, best_epoch, finished)``; the best weights are in
    the model when ``finished``.
    """
    from brainlib.data.pipeline import training_stream

    profile, fit_model = plan.profile, inputs.fit_model
    compile_model(fit_model, profile)
    state = _resume(plan.folder, fit_model, log)
    if state.start == 0:
        log(f"start: {plan.variant} model, profile {profile.name}, seed {plan.seed}, "
            f"{inputs.n_train} training images")  # fmt: skip
    early, plateau = _callbacks(profile)
    early.restored, plateau.restored = state.early, state.plateau
    history = state.history
    ckpt = _checkpoint_callback(plan.folder, fit_model, early, plateau, history, log)
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
        last_dir = wdir / read_json(wdir / "latest.json")["dir"]
        fit_model.load_weights(str(last_dir / "ckpt.weights.h5"))  # the top, on the fast path
        save(model.get_weights(), "last.weights.h5")
        model.set_weights(best)
    plan.meta.update(
        status=runs.COMPLETE,
        finished=_now(),
        epochs=len(history),
        best_epoch=best_epoch,
        stopped_early=len(history) < plan.profile.max_epochs,
        train_seconds=round(sum(r["seconds"] for r in history), 3),
        weights_note="best.weights.h5 = model weights of best_epoch (lowest val_loss)",
    )
    runs.write_meta(plan.folder, plan.meta)
    for old_ckpt in wdir.glob("epoch-*"):
        shutil.rmtree(old_ckpt, ignore_errors=True)
    (wdir / "latest.json").unlink(missing_ok=True)
    log(f"complete: {len(history)} epochs, best epoch {best_epoch}")


@contextlib.contextmanager
def _run_log(folder: Path):
    """``log(line)``: a time-stamped line appended to the run's log.txt."""
    with open(folder / runs.LOG_TXT, "a", encoding="utf-8") as fh:

        def log(line: str) -> None:
            fh.write(f"{_now()} {line}\n")
            fh.flush()

        yield log


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
) -> RunResult:
    """Train ``variant`` under ``profile`` into its run folder; resume if one exists.

    Three steps: :func:`prepare` (data, split, run folder), :func:`fit` (from
    the last checkpoint) and :func:`finish` (weights, run.json complete).
    ``stop_after_epochs`` ends this call after that many epochs in total (the
    run stays resumable); it exists for tests and time-boxed sessions.
    ``skip_bad`` leaves unreadable images out (with a warning) instead of stopping.
    A finished run is not trained again: its folder is returned as it is.
    One process at a time trains into a run folder (:func:`brainlib.runs.locked`).
    """
    from brainlib.config import init_profile

    seed = profile.seed if seed is None else seed
    start = init_profile(profile)
    if start is not None:  # progressive resizing: the lower-resolution run comes first
        first = train(start, variant, runs_root, data_dir, seed, None, allow_mismatch, verbose,
                      None, skip_bad)  # fmt: skip
        if runs.read_meta(first.folder).get("status") != runs.COMPLETE:
            return first
    folder = runs.run_dir(runs_root, profile, variant, seed)
    with runs.locked(folder):
        return _train_locked(profile, variant, runs_root, data_dir, seed, weights,
                             allow_mismatch, skip_bad, verbose, stop_after_epochs)  # fmt: skip


def _train_locked(profile, variant, runs_root, data_dir, seed, weights, allow_mismatch, skip_bad,
                  verbose, stop_after_epochs) -> RunResult:  # fmt: skip
    import keras

    plan = prepare(profile, variant, runs_root, data_dir, seed, weights, allow_mismatch, skip_bad)
    if plan.complete:
        history = runs.read_history_rows(plan.folder)
        return RunResult(plan.folder, history, len(history), None)
    with _run_log(plan.folder) as log:
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
) -> dict[tuple[str, int, str], RunResult]:
    """:func:`train` both models for every pair of :func:`brainlib.runs.grid`; finished
    runs are reused."""
    return {
        (split, seed, variant): train(
            profile.replace(split=split), variant, runs_root, data_dir, seed=seed,
            weights=weights, verbose=verbose,
        )
        for split, seed in runs.grid(profile)
        for variant in VARIANTS
    }  # fmt: skip
