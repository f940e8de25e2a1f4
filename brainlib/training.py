"""Training under the paper's protocol, into a resumable run folder.

The protocol (the paper, "Model development and architecture"): Adam with
learning rate 1e-4, categorical cross-entropy, batch 16, at most 100 epochs,
early stopping on validation loss with the best weights restored, and the
learning rate reduced when validation loss plateaus. Every value is a profile
field (:class:`brainlib.config.Profile`).

A run folder (one model, one seed, one profile)::

    runs/<profile>/<variant>-<split>-seed<seed>/
        run.json        provenance: commit, versions, profile, seed, data hash, device, times
        split.csv       the split used (path, class, sha256, split)
        history.csv     epoch, loss, accuracy, val_loss, val_accuracy, learning_rate, seconds
        log.txt         one line per epoch
        weights/best.weights.h5, weights/last.weights.h5      (when complete)
        weights/epoch-NNNN/ckpt.weights.h5 + state.json       (while running)

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
flips, 0.12 GiB for validation.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
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

from brainlib.config import CLASSES, NOT_TRAINING_FIELDS, Profile
from brainlib.data import load_dataset
from brainlib.data.splits import make_split, read_split_csv, split_csv_text
from brainlib.fileio import atomic_write, atomic_write_json, atomic_write_text, read_json

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


def precision_policy(mixed: bool) -> str:
    """``float32``, or the mixed policy this machine supports (bf16 CPU, fp16 GPU)."""
    if not mixed:
        return "float32"
    import tensorflow as tf

    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build models under Keras dtype policy ``name``; restore the old one afterwards."""
    import keras

    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def run_dir(runs_root: str | Path, profile: Profile, variant: str, seed: int) -> Path:
    return Path(runs_root) / profile.name / f"{variant}-{profile.split}-seed{seed}"


def build_for_profile(profile: Profile, variant: str, weights=None):
    """The model of ``variant`` with the profile's size, weights and head settings."""
    import keras

    from brainlib.models import FREEZE_BOUNDARY, build_model

    with dtype_policy(precision_policy(profile.mixed_precision)):
        model = build_model(
            variant,
            weights=weights if weights is not None else profile.weights,
            input_shape=(profile.image_size, profile.image_size, 3),
            se_ratio=profile.se_ratio,
            dropout=profile.dropout,
            trainable_from=FREEZE_BOUNDARY if profile.trainable_from == "paper" else None,
        )
    if profile.bn_momentum is not None:
        # Short runs from scratch: BatchNorm's moving averages must catch up with
        # the batch statistics within a few hundred steps, or inference-mode
        # outputs (validation, test) collapse towards a constant.
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = profile.bn_momentum
    return model


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


def _history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: row[k] for k in HISTORY_FIELDS})
    return buf.getvalue()


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
            atomic_write_text(folder / "history.csv", _history_csv(history))
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


def _split_records(records, assignment):
    by_split = {s: [r for r in records if assignment[r.relpath] == s] for s in ("train", "val")}
    return by_split["train"], by_split["val"]


def _image_cache(records, size):
    from brainlib.data.pipeline import image_dataset

    return image_dataset(
        [str(r.path) for r in records], [CLASSES.index(r.label) for r in records], size
    )


def trunk_features(trunk, cached, batch_size: int, flip: bool = False) -> np.ndarray:
    """The frozen trunk's outputs for every cached image (optionally mirrored)."""
    import tensorflow as tf

    from brainlib.data.pipeline import preprocess

    ds = cached.map(lambda x, y: x[:, ::-1] if flip else x).batch(batch_size)
    ds = ds.map(preprocess).prefetch(tf.data.AUTOTUNE)
    return np.concatenate([trunk(x, training=False).numpy() for x in ds], axis=0)


def _labels(cached) -> np.ndarray:
    return np.concatenate([y.numpy() for _, y in cached.batch(4096)])


def _check_existing(folder: Path, meta: dict) -> dict | None:
    """The stored run.json if ``folder`` holds a run of the same configuration."""
    path = folder / "run.json"
    if not path.is_file():
        return None
    old = read_json(path)
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
) -> RunResult:
    """Train ``variant`` under ``profile`` into its run folder; resume if one exists.

    ``stop_after_epochs`` ends this call after that many epochs in total (the
    run stays resumable); it exists for tests and time-boxed sessions.
    A finished run is not trained again: its folder is returned as it is.
    """
    import keras
    import tensorflow as tf

    from brainlib.data.pipeline import eval_batches, training_stream
    from brainlib.models import trunk_and_top

    seed = profile.seed if seed is None else seed
    dataset = load_dataset(profile, data_dir, allow_mismatch=allow_mismatch)
    folder = run_dir(runs_root, profile, variant, seed)
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
    old = _check_existing(folder, meta)
    if old and old.get("status") == "complete":
        history = read_history_rows(folder)
        return RunResult(folder, history, len(history), None)

    # the split: written once, checked on resume
    assignment = make_split(
        dataset.records,
        profile.split,
        seed=profile.seed,
        fractions=profile.split_fractions,
        max_distance=profile.near_duplicate_distance,
    )
    records = dataset.records
    if profile.subsample:
        records = subsample(records, assignment, profile.subsample, profile.seed)
        assignment = {r.relpath: assignment[r.relpath] for r in records}
    split_text = split_csv_text(records, assignment)
    if (folder / "split.csv").is_file():
        if (folder / "split.csv").read_text(encoding="utf-8") != split_text:
            raise RunError(f"{folder / 'split.csv'} differs from the split this run would use")
    else:
        atomic_write_text(folder / "split.csv", split_text)
    read_split_csv(folder / "split.csv")  # validates what was written

    run_json = {
        **meta,
        "status": "running",
        "git_commit": git_commit(),
        "versions": package_versions(),
        "device": device_info(),
        "precision_policy": precision_policy(profile.mixed_precision),
        "deterministic": not profile.jit_compile,
        "started": (old or {}).get("started", _now()),
        "command": sys.argv,
    }
    atomic_write_json(folder / "run.json", run_json)
    log_file = open(folder / "log.txt", "a", encoding="utf-8")

    def log(line: str) -> None:
        log_file.write(f"{_now()} {line}\n")
        log_file.flush()

    try:
        keras.backend.clear_session()
        set_determinism(seed, ops=not profile.jit_compile)
        model = build_for_profile(profile, variant, weights)
        train_recs, val_recs = _split_records(records, assignment)
        size = profile.image_size
        train_cache, val_cache = _image_cache(train_recs, size), _image_cache(val_recs, size)
        n = len(train_recs)
        steps = math.ceil(n / profile.batch_size)

        if profile.fast_path:
            trunk, fit_model = trunk_and_top(model)
            t0 = time.perf_counter()
            f = trunk_features(trunk, train_cache, 64)
            f_flip = trunk_features(trunk, train_cache, 64, flip=True)
            y = _labels(train_cache)
            val_f, val_y = trunk_features(trunk, val_cache, 64), _labels(val_cache)
            gib = (f.nbytes * 2 + val_f.nbytes) / 2**30
            log(
                f"fast path: trunk features {f.shape[1:]} for {n} images (+ flips) "
                f"in {time.perf_counter() - t0:.1f}s, {gib:.2f} GiB in memory"
            )
            feat_cache = tf.data.Dataset.from_tensor_slices((f, f_flip, y))
            val_data = (
                tf.data.Dataset.from_tensor_slices((val_f, tf.one_hot(val_y, len(CLASSES))))
                .batch(profile.batch_size)
                .prefetch(tf.data.AUTOTUNE)
            )
        else:
            fit_model = model
            val_data = eval_batches(val_cache, profile.batch_size)
        compile_model(fit_model, profile)

        # resume?
        start, history, early_state, plateau_state = 0, [], None, None
        latest = folder / "weights" / "latest.json"
        if latest.is_file():
            pointer = read_json(latest)
            state = read_json(folder / "weights" / pointer["dir"] / "state.json")
            fit_model.optimizer.build(fit_model.trainable_variables)
            best_epoch = state["early_stopping"]["best_epoch"]
            best_dir = folder / "weights" / f"epoch-{best_epoch + 1:04d}"
            fit_model.load_weights(str(best_dir / "ckpt.weights.h5"))
            early_state = {**state["early_stopping"], "best_weights": fit_model.get_weights()}
            fit_model.load_weights(str(folder / "weights" / pointer["dir"] / "ckpt.weights.h5"))
            _restore_seed_states(fit_model, state["seed_states"])
            start, history, plateau_state = state["epoch"], state["history"], state["reduce_lr"]
            log(f"resuming after epoch {start}")
            if state.get("stop_training"):
                start = profile.max_epochs  # early stopping had already fired
        else:
            log(f"start: {variant} model, profile {profile.name}, seed {seed}, {n} training images")

        early, plateau = _callbacks(profile)
        early.restored, plateau.restored = early_state, plateau_state
        ckpt = _checkpoint_callback(folder, fit_model, early, plateau, history, log)
        end = profile.max_epochs
        if stop_after_epochs is not None:
            end = min(end, stop_after_epochs)
        if start < end:
            cache = feat_cache if profile.fast_path else train_cache
            stream, steps = training_stream(
                cache, n, profile.batch_size, seed, start, end, features=profile.fast_path
            )
            fit_model.fit(
                stream,
                steps_per_epoch=steps,
                epochs=end,
                initial_epoch=start,
                validation_data=val_data,
                callbacks=[plateau, early, ckpt],
                shuffle=False,  # the stream is shuffled per epoch, by seed
                verbose=verbose,
            )
            best_epoch = int(early.best_epoch) + 1
        else:  # nothing left to train (early stopping had fired before a restart)
            if early_state and early_state.get("best_weights") is not None:
                fit_model.set_weights(early_state["best_weights"])
            best_epoch = int((early_state or {}).get("best_epoch", len(history) - 1)) + 1

        finished = (
            stop_after_epochs is None
            or len(history) >= profile.max_epochs
            or (early.stopped_epoch > 0)
        )
        if not finished:
            log(f"paused after epoch {len(history)} (stop_after_epochs)")
            return RunResult(folder, history, start, model)

        # complete: best weights are in the model (EarlyStopping restored them)
        wdir = folder / "weights"
        atomic_write(wdir / "best.weights.h5", lambda p: model.save_weights(str(p)))
        last_dir = wdir / read_json(wdir / "latest.json")["dir"] if history else None
        if last_dir is not None:
            shutil.copyfile(last_dir / "ckpt.weights.h5", wdir / ".last.tmp.weights.h5")
            os.replace(wdir / ".last.tmp.weights.h5", wdir / "last.weights.h5")
        run_json.update(
            status="complete",
            finished=_now(),
            epochs=len(history),
            best_epoch=best_epoch,
            stopped_early=len(history) < profile.max_epochs,
            train_seconds=round(sum(r["seconds"] for r in history), 3),
            weights_note="best.weights.h5 = model weights of best_epoch (lowest val_loss)",
        )
        atomic_write_json(folder / "run.json", run_json)
        for old_ckpt in wdir.glob("epoch-*"):
            shutil.rmtree(old_ckpt, ignore_errors=True)
        latest.unlink(missing_ok=True)
        log(f"complete: {len(history)} epochs, best epoch {best_epoch}")
        return RunResult(folder, history, start, model)
    finally:
        log_file.close()


def read_history_rows(folder: Path) -> list[dict]:
    path = folder / "history.csv"
    if not path.is_file():
        raise RunError(f"{folder} has no history.csv")
    with path.open(newline="") as fh:
        return [
            {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def read_history(folder: str | Path):
    """``history.csv`` of a run folder as a DataFrame."""
    import pandas as pd

    return pd.DataFrame(read_history_rows(Path(folder)))


def run_folders(runs_root: str | Path, profile: Profile, seeds=None) -> dict[str, list[Path]]:
    """Completed run folders of ``profile`` per variant (all seeds, or ``seeds``)."""
    out: dict[str, list[Path]] = {}
    base = Path(runs_root) / profile.name
    for variant in ("se", "base"):
        found = []
        for folder in sorted(base.glob(f"{variant}-{profile.split}-seed*")):
            meta = folder / "run.json"
            if meta.is_file() and read_json(meta).get("status") == "complete":
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
    missing = [v for v in ("se", "base") if v not in found]
    if missing:
        raise RunError(
            f"no completed run of {missing} for profile {profile.name}, seed {seed} "
            f"under {runs_root}"
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


def train_grid(
    profile: Profile,
    runs_root: str | Path = "runs",
    data_dir: str | Path | None = None,
    weights: str | None = None,
    verbose: int = 1,
) -> dict[tuple[str, int, str], RunResult]:
    """:func:`train` both models for every pair of :func:`grid`; finished runs are reused."""
    return {
        (split, seed, variant): train(
            profile.replace(split=split), variant, runs_root, data_dir, seed=seed,
            weights=weights, verbose=verbose,
        )
        for split, seed in grid(profile)
        for variant in ("se", "base")
    }  # fmt: skip


def grid_folders(runs_root: str | Path, profile: Profile) -> dict[tuple[str, int, str], Path]:
    """The completed run folder of every (split, seed, model) of the grid.

    Raises :class:`RunError` naming the runs that are missing or unfinished.
    """
    found, missing = {}, []
    for split, seed in grid(profile):
        runs = run_folders(runs_root, profile.replace(split=split), seeds=[seed])
        for variant in ("se", "base"):
            if runs[variant]:
                found[(split, seed, variant)] = runs[variant][0]
            else:
                missing.append(f"{variant}-{split}-seed{seed}")
    if missing:
        raise RunError(
            f"no completed run for {', '.join(missing)} of profile {profile.name} under "
            f"{runs_root}; train them first (brainlib train, or the training notebook)"
        )
    return found


def load_trained_model(folder: str | Path, which: str = "best"):
    """Rebuild the model of a run folder and load its ``best`` or ``last`` weights."""
    from brainlib.config import load_profile

    folder = Path(folder)
    meta_path = folder / "run.json"
    if not meta_path.is_file():
        raise RunError(f"{folder} is not a run folder (no run.json)")
    meta = read_json(meta_path)
    path = folder / "weights" / f"{which}.weights.h5"
    if not path.is_file():
        raise RunError(
            f"{folder}: no {path.name} (is the run complete? status: {meta.get('status')})"
        )
    fields = dict(meta["profile"])
    name = fields.pop("name")
    fields.pop("extra", None)
    fields["weights"] = "none"  # the file holds every weight
    profile = load_profile(name, **{k: v for k, v in fields.items() if v is not None})
    model = build_for_profile(profile, meta["variant"], weights="none")
    model.load_weights(str(path), skip_mismatch=False)
    return model
