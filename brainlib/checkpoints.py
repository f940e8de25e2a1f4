"""Resumable training: the protocol's callbacks with state that survives a restart.

After each epoch a checkpoint (weights with the optimizer state, the callbacks'
counters, the dropout RNG state and the history) goes into
``weights/epoch-NNNN/`` (``ckpt.weights.h5`` + ``state.json``) and
``weights/latest.json`` is then switched to it. Every file is written
atomically, so a run killed at any moment (even ``kill -9``) resumes from its
last completed epoch and ends with the history it would have had: each
epoch's shuffle and flips depend only on ``(seed, epoch)``
(:mod:`brainlib.data.tfdata`). Only the latest epoch and the best one (which
early stopping restores) are kept.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainlib import protocol, runs
from brainlib.config import Profile
from brainlib.fileio import atomic_write, atomic_write_json, read_json
from brainlib.runs import RunError

LATEST = "latest.json"


def resumable_callbacks(profile: Profile):
    """``(EarlyStopping, ReduceLROnPlateau)`` with :mod:`brainlib.protocol`'s settings,
    whose counters can be set back to a checkpoint's (``.restored``) and read (``.state()``)."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
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
        restored: dict | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            if self.restored:
                self.best = self.restored["best"]
                self.wait = self.restored["wait"]
                self.cooldown_counter = self.restored["cooldown_counter"]

        def state(self) -> dict:
            return {"best": self.best, "wait": self.wait, "cooldown_counter": self.cooldown_counter}

    early = ResumableEarlyStopping(**protocol.early_stopping_settings(profile))
    plateau = ResumableReduceLROnPlateau(**protocol.reduce_lr_settings(profile))
    return early, plateau


def seed_states(model) -> dict[str, list[int]]:
    """The RNG states (dropout) that ``save_weights`` leaves out."""
    weights = {id(w) for w in model.weights}
    return {
        v.path: np.asarray(v.numpy()).tolist()
        for v in model.variables
        if id(v) not in weights and "seed_generator" in v.path
    }


def restore_seed_states(model, states: dict[str, list[int]]) -> None:
    by_path = {v.path: v for v in model.variables}
    for path, value in states.items():
        if path not in by_path:
            raise RunError(f"checkpoint names an RNG state {path!r} the model does not have")
        by_path[path].assign(np.asarray(value, dtype=by_path[path].dtype))


def epoch_checkpoint(folder: Path, fit_model, early, plateau, history: list[dict], log):
    """A callback that, after each epoch, appends to ``history`` (and history.csv), writes
    the log line and an atomic resumable checkpoint, and drops the ones no longer needed."""
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
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
            weights_dir = folder / runs.WEIGHTS
            ckpt = weights_dir / f"epoch-{epoch + 1:04d}"
            ckpt.mkdir(parents=True, exist_ok=True)
            atomic_write(ckpt / "ckpt.weights.h5", lambda p: fit_model.save_weights(str(p)))
            state = {
                "epoch": epoch + 1,
                "early_stopping": early.state(),
                "reduce_lr": plateau.state(),
                "seed_states": seed_states(fit_model),
                "history": history,
                "stop_training": bool(fit_model.stop_training),
            }
            atomic_write_json(ckpt / "state.json", state)
            # the switch: from here on a restart resumes after this epoch
            atomic_write_json(weights_dir / LATEST, {"epoch": epoch + 1, "dir": ckpt.name})
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


@dataclass
class Resume:
    start: int = 0  # epochs done
    history: list = field(default_factory=list)
    early: dict | None = None
    plateau: dict | None = None
    stopped: bool = False  # early stopping had fired before the restart


def resume(folder: Path, fit_model, log) -> Resume:
    """The state of the last completed epoch's checkpoint, loaded into ``fit_model``
    (a compiled model); the best epoch's weights go to early stopping's ``best_weights``."""
    wdir = folder / runs.WEIGHTS
    if not (wdir / LATEST).is_file():
        return Resume()
    pointer = read_json(wdir / LATEST)
    state = read_json(wdir / pointer["dir"] / "state.json")
    fit_model.optimizer.build(fit_model.trainable_variables)
    best_dir = wdir / f"epoch-{state['early_stopping']['best_epoch'] + 1:04d}"
    fit_model.load_weights(str(best_dir / "ckpt.weights.h5"))
    early = {**state["early_stopping"], "best_weights": fit_model.get_weights()}
    fit_model.load_weights(str(wdir / pointer["dir"] / "ckpt.weights.h5"))
    restore_seed_states(fit_model, state["seed_states"])
    log(f"resuming after epoch {state['epoch']}")
    return Resume(state["epoch"], state["history"], early, state["reduce_lr"],
                  bool(state.get("stop_training")))  # fmt: skip


def latest_checkpoint(folder: Path) -> Path:
    """The weights file of the last completed epoch."""
    wdir = folder / runs.WEIGHTS
    return wdir / read_json(wdir / LATEST)["dir"] / "ckpt.weights.h5"


def drop_checkpoints(folder: Path) -> None:
    """Remove the per-epoch checkpoints once the run is finished."""
    wdir = folder / runs.WEIGHTS
    for old in wdir.glob("epoch-*"):
        shutil.rmtree(old, ignore_errors=True)
    (wdir / LATEST).unlink(missing_ok=True)


@contextlib.contextmanager
def run_log(folder: Path, echo=None):
    """``log(line)``: a time-stamped line appended to the run's log.txt, and passed to
    ``echo`` (``print``, say) after the run's name when given."""
    with open(folder / runs.LOG_TXT, "a", encoding="utf-8") as fh:

        def log(line: str) -> None:
            fh.write(f"{runs.now()} {line}\n")
            fh.flush()
            if echo is not None:
                echo(f"{folder.parent.name}/{folder.name}: {line}")

        yield log
