# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Training: the paper's protocol
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/03_training.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/03_training.ipynb)
#
# ## Overview
#
# 1. The paper's protocol in plain Keras: `compile`, `fit`, early stopping
#    with the best weights restored, a smaller learning rate on a plateau;
#    checked equal to what `brainlib` trains with.
# 2. The fast path: a frozen trunk's outputs computed once (feature
#    extraction), why that is exact, and what it saves, measured.
# 3. Both models trained into resumable run folders; Figures 1-3.
# 4. How the real-data runs are scheduled (progressive resizing), and when a
#    run counts as converged.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | The model and its frozen boundary | Necessary | Chapter 2 |
# | The split (train, validation, test) | Necessary | Chapter 1 |
# | Keras `Model.compile` and `Model.fit` | Helpful | [Keras guide](https://keras.io/guides/training_with_built_in_methods/) |
#
# **Time to run**: about 1-2 minutes on the `demo` profile with 2 CPU cores
# (training is most of it; a second run reuses the finished runs), seconds on
# `smoke`. The real-data grid of the results page takes hours per run.

# %% tags=["remove-cell"]
# On Colab, or wherever brainlib is not installed yet, install it first.
# The data comes with the profile: phantoms are generated, the real data is
# downloaded with kagglehub (a Kaggle account may be needed).
import importlib
import importlib.util

if importlib.util.find_spec("brainlib") is None:
    # %pip install -q "brainlib-replication @ git+https://github.com/brainlib/brainlib@main"
    importlib.invalidate_caches()
    if importlib.util.find_spec("brainlib") is None:  # pip printed why above
        raise ModuleNotFoundError(
            "brainlib is not installed and the install above did not work: read pip's "
            "message above this error (network, Python version or a conflict), fix what "
            "it names and run this cell again."
        )

# %% tags=["parameters", "remove-cell"]
profile = "demo"
data_dir = None
runs_dir = "../_build/demo/runs"
weights = None
overrides = {}

# %%
import time
from pathlib import Path

import numpy as np
import pandas as pd

from brainlib import (
    checkpoints,
    config,
    data,
    display,
    models,
    paper,
    plots,
    protocol,
    runs,
    training,
)
from brainlib.data import tfdata

P = config.load_profile(profile, **overrides)

# %% [markdown]
# ## The protocol in Keras
#
# The paper trains with Adam at a learning rate of $10^{-4}$ on categorical
# cross-entropy, in batches of 16 for at most 100 epochs. Two callbacks
# watch the validation loss after every epoch: `ReduceLROnPlateau`
# multiplies the learning rate by a factor when the loss has not improved for
# a few epochs, and `EarlyStopping` ends training when it has not improved
# for more, then puts back the weights of the best epoch
# (`restore_best_weights=True`). The paper names both callbacks but not their
# patience or factor; every number is a field of the profile. In Keras:

# %% tags=["method"]
import keras


def compile_like_the_paper(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def callbacks_like_the_paper(patience, lr_patience, lr_factor, min_lr):
    return [  # the learning rate is cut before early stopping looks at the same epoch
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=lr_factor, patience=lr_patience, min_lr=min_lr
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
    ]


# training is then one call:
#   model.fit(train, validation_data=val, epochs=max_epochs, callbacks=callbacks)

# %% [markdown]
# `brainlib` trains with the same settings, written once in
# `brainlib.protocol`, and with callbacks that can also resume after an
# interruption (`brainlib.checkpoints`). Compiled on the same model, the two
# set-ups agree field by field:

# %%
model = models.build_for_profile(P, "se", weights)
written_out = protocol.settings(
    compile_like_the_paper(model, P.learning_rate),
    callbacks_like_the_paper(P.early_stopping_patience, P.reduce_lr_patience,
                             P.reduce_lr_factor, P.min_learning_rate),
)  # fmt: skip
early, plateau = checkpoints.resumable_callbacks(P)
package = protocol.settings(protocol.compile_model(model, P), [plateau, early])
assert written_out == package, (written_out, package)
pd.DataFrame({"This page": written_out, "brainlib": package}).astype(str)

# %% [markdown]
# ## The fast path: compute the frozen trunk once
#
# Every layer below `conv5_block1_preact_bn` is frozen (chapter 2). A frozen
# layer's weights do not change, and Keras runs a frozen BatchNormalization
# layer in inference mode even while training, with its stored mean and
# variance; the trunk has no dropout. So the trunk gives the same output for
# an image in every epoch, and the only augmentation, a horizontal flip, gives
# one more output per image. The fast path (`fast_path = true`) computes these
# once, keeps them (in memory or on disk, `brainlib.trunk_cache`) and trains
# only the top on them: feature extraction, as the Keras transfer-learning
# guide calls it, except that here it is exact: the top sees the numbers the
# whole network would have given it. `models.trunk_and_top` splits the model
# at the boundary, sharing its layers and weights:

# %%
trunk, top = models.trunk_and_top(model)
ds = data.load_dataset(P, data_dir)
# eight images: an eager call holds every layer's output until it returns
paths = [str(r.path) for r in ds.records[:8]]
images = tfdata.preprocess(np.stack([tfdata.load_image(p, P.image_size) for p in paths]))
features = trunk(images, training=True)  # training mode: a frozen trunk ignores it
same_trunk = np.abs(features - trunk(images, training=False)).max()
same_model = np.abs(top(features, training=False) - model(images, training=False)).max()
pd.DataFrame(
    {"largest difference": [float(same_trunk), float(same_model)]},
    index=["trunk, training vs inference mode", "top(trunk(x)) vs model(x)"],
)

# %% [markdown]
# What that saves, timed on 8 images on this machine: each epoch of the whole
# network runs the trunk forward for every image, while the fast path runs it
# twice per image once (the image and its mirror) and then the top alone.

# %%
reps = 3
t0 = time.perf_counter()
for _ in range(reps):
    trunk(images, training=False)
trunk_ms = (time.perf_counter() - t0) / reps / len(images) * 1000
t0 = time.perf_counter()
for _ in range(reps):
    top(features, training=False)
top_ms = (time.perf_counter() - t0) / reps / len(images) * 1000
share = trunk_ms / (trunk_ms + top_ms)
print(f"{runs.cpu_model()}, {P.image_size} px, forward pass per image:")
print(f"trunk {trunk_ms:.1f} ms, top {top_ms:.1f} ms: the trunk is {share:.0%} of it,")
print("which the fast path pays twice per image, not once per image and epoch")

# %% [markdown]
# ## Training both models
#
# Each model trains into its own run folder (split, history, weights and
# provenance, every file written atomically). After every epoch a checkpoint
# is written; a run that is interrupted resumes from its last completed epoch
# when this notebook, or `brainlib train`, runs again, and a finished run is
# reused. A profile with `seeds` and `splits` (the `real224` grid) trains both
# models for every (split, seed) pair; the figures below show the profile's
# own pair. One line per epoch (collapsed in the book). The model built above
# for the demonstration is let go first, so that the chapter runs in the 2 GB
# a Binder session has:

# %% tags=["hide-output"]
del model, trunk, top, features, images
keras.backend.clear_session()
grid = training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=0, progress=True)
own = {v: grid[(P.split, P.seed, v)] for v in config.VARIANTS}  # the profile's own seed
histories = {v: runs.read_history(r.folder) for v, r in own.items()}

# %%
summary = pd.DataFrame([
    {"model": v, "epochs": len(h), "best": int(h["val_loss"].idxmin()) + 1,
     "train": h["accuracy"].iloc[-1], "val": h["val_accuracy"].iloc[-1],
     "seconds": h["seconds"].sum()}
    for v, h in histories.items()
])  # fmt: skip
display.shown(display.table(summary, {
    "model": "Model", "epochs": "Epochs", "best": "Best epoch (lowest validation loss)",
    "train": "Final training accuracy", "val": "Final validation accuracy",
    "seconds": "Training time (s)"}, digits={"seconds": 0}))  # fmt: skip

# %% [markdown]
# ## Figure 1: accuracy per epoch
#
# The paper's SE model trained for 27 epochs, passing 95% training accuracy
# by epoch 5; its validation accuracy settled above 95%.

# %%
fig1 = plots.accuracy_curves(histories)
for r in own.values():
    _ = plots.save(fig1, r.folder / "figures", "figure1_accuracy")

# %% [markdown]
# ## Figure 2: loss per epoch

# %%
fig2 = plots.loss_curves(histories)
for r in own.values():
    _ = plots.save(fig2, r.folder / "figures", "figure2_loss")

# %% [markdown]
# ## Figure 3: the train - validation accuracy gap
#
# The paper reads a final gap of 0.036 as "minimal overfitting" (dashed line).

# %%
fig3 = plots.accuracy_gap(histories, paper.reported()["training"]["final_accuracy_gap"])
for r in own.values():
    _ = plots.save(fig3, r.folder / "figures", "figure3_gap")

# %% [markdown]
# ## The real-data schedule, and when a run has converged
#
# From random weights, the whole network must train (a frozen random trunk is
# a fixed random projection, so the fast path does not apply), and at 224 px
# one epoch over the 2,478 training images costs 2-5 minutes on two CPU
# cores. The results page's runs are therefore trained by *progressive
# resizing*: most epochs at 64 px, then 128, then 224, each stage starting
# from the best weights of the one before (`init_from`). The network is
# fully convolutional up to its global pooling, so the same weights run at
# every size. Each stage stops on its own validation loss. The 224 px stage
# first allowed 16 epochs with a patience of 3: two of eight runs ran into the
# cap, and both runs on the `dedup` split stopped at 0.94 of their training
# images. It now has a patience of 5, so the learning rate is cut twice
# (patience 2, x0.2) before early stopping can fire, and a cap of 40 that no
# run is meant to reach:

# %%
stages = {name: config.load_profile(name) for name in ("real64", "real128", "real224")}
schedule = pd.DataFrame([
    {"stage": name, "size": s.image_size, "from": s.init_from or "random weights",
     "lr": s.learning_rate, "batch": s.batch_size, "cap": s.max_epochs,
     "patience": s.early_stopping_patience, "cut": s.reduce_lr_patience}
    for name, s in stages.items()
])  # fmt: skip
display.shown(display.table(schedule, {
    "stage": "Stage", "size": "Image size (px)", "from": "Starts from",
    "lr": "Learning rate", "batch": "Batch", "cap": "Epoch cap",
    "patience": "Early-stopping patience", "cut": "Learning rate cut after"},
    digits={"lr": 4}))  # fmt: skip

# %% [markdown]
# A run counts as converged (`brainlib.runs.convergence`) when it stopped on
# its patience, not on the epoch cap, and its best weights classify at least
# 95% of their training images in inference mode. A leakage experiment needs
# both: a model that has not fitted its training images cannot profit from
# copies of test images among them, and one that ran out of epochs may still
# have been improving. This build's runs, judged by the rule on the accuracy
# Keras logged (the results page uses the inference-mode fit):

# %%
verdicts = pd.DataFrame([
    {"model": v, **runs.convergence(runs.read_history_rows(r.folder),
                                    patience=P.early_stopping_patience)}
    for v, r in own.items()
])  # fmt: skip
display.shown(display.table(verdicts, {
    "model": "Model", "epochs": "Epochs", "best_epoch": "Best epoch",
    "stopped_on_patience": "Stopped on patience", "train_accuracy": "Training accuracy",
    "converged": "Converged", "reason": "Why"}))  # fmt: skip

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# Train the SE model again with a learning rate ten times lower. How many
# epochs does it run before early stopping fires, against the run above? A
# run folder's name holds the model, split and seed but not the other
# settings (`brainlib` refuses to resume a folder trained with other
# settings), so give the new run a folder of its own.

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
slower = P.replace(learning_rate=P.learning_rate / 10)
exercise_runs = Path(runs_dir).parent / "exercise-runs" / "learning-rate-divided-by-10"
slow = training.train(slower, "se", exercise_runs, data_dir, weights=weights, verbose=0)
print(f"learning rate {P.learning_rate:g}: {len(own['se'].history)} epochs; "
      f"{slower.learning_rate:g}: {len(slow.history)} epochs")  # fmt: skip

# %% [markdown]
# ### Exercise 2
#
# Early stopping restored the best weights. From the SE model's history, which
# epoch's weights did it keep, and how many epochs did it train after that
# one? How does that relate to the profile's `early_stopping_patience`?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
h = histories["se"]
kept = int(h["val_loss"].idxmin()) + 1
print(f"kept epoch {kept} of {len(h)}: {len(h) - kept} more epochs trained "
      f"(patience {P.early_stopping_patience}; fewer only if the epoch cap came first)")  # fmt: skip

# %% [markdown]
# ### Exercise 3
#
# Every run keeps a log (`log.txt` in its run folder). In the SE run's log,
# find the line the fast path wrote: how long did computing the trunk's
# outputs take, against the run's mean epoch? (On a profile without the fast
# path there is no such line: why?)

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
log = (own["se"].folder / "log.txt").read_text().splitlines()
print("\n".join(line for line in log if "fast path" in line) or "no fast path in this profile")
print(f"mean epoch: {histories['se']['seconds'].mean():.1f} s")
