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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/v0.2.0/notebooks/03_training.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/v0.2.0?labpath=notebooks/03_training.ipynb)
#
# Adam with learning rate $10^{-4}$, categorical cross-entropy, batches of 16,
# at most 100 epochs; early stopping on validation loss (best weights
# restored) and a smaller learning rate when validation loss stalls. Every
# value is a field of the profile; the demo profile shortens the run.
#
# Each model trains into its own run folder (history, weights, split and
# provenance, written atomically). A run that is interrupted resumes from its
# last completed epoch when this notebook, or `brainlib train`, runs again;
# a finished run is reused.
#
# A profile with `seeds` and `splits` (the `real224` grid) trains both
# models for every (split, seed) pair of its grid; the figures below show the
# profile's own pair.

# %% tags=["remove-cell"]
# On Colab, or wherever brainlib is not installed yet, install it first.
# The data comes with the profile: phantoms are generated, the real data is
# downloaded with kagglehub (a Kaggle account may be needed).
import importlib.util

if importlib.util.find_spec("brainlib") is None:
    # %pip install -q "brainlib @ git+https://github.com/brainlib/brainlib@v0.2.0"
    pass

# %% tags=["parameters", "remove-cell"]
profile = "demo"
data_dir = None
runs_dir = "../_build/demo/runs"
weights = None
overrides = {}

# %%
import pandas as pd

from brainlib import config, paper, plots, runs, training

P = config.load_profile(profile, **overrides)
grid = training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=2)
own = {v: grid[(P.split, P.seed, v)] for v in config.VARIANTS}  # the profile's own seed
histories = {v: runs.read_history(r.folder) for v, r in own.items()}
pd.DataFrame(
    {
        v: {
            "epochs": len(h),
            "best epoch (lowest val_loss)": int(h["val_loss"].idxmin()) + 1,
            "final train accuracy": h["accuracy"].iloc[-1],
            "final val accuracy": h["val_accuracy"].iloc[-1],
            "train seconds": h["seconds"].sum(),
        }
        for v, h in histories.items()
    }
)

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
# a fixed random projection), and at 224 px one epoch over the 2,478 training
# images costs 2-5 minutes on two CPU cores. The results page's runs are
# therefore trained by *progressive resizing*: most epochs at 64 px, then 128,
# then 224, each stage starting from the best weights of the one before
# (`init_from`). Each stage stops on its own validation loss. The 224 px stage
# first allowed 16 epochs with a patience of 3: two of eight runs ran into the
# cap, and both runs on the `dedup` split stopped at 0.94 of their training
# images. It now has a patience of 5, so the learning rate is cut twice
# (patience 2, x0.2) before early stopping can fire, and a cap of 40 that no
# run is meant to reach:

# %%
stages = {name: config.load_profile(name) for name in ("real64", "real128", "real224")}
pd.DataFrame({name: {"image size": s.image_size, "starts from": s.init_from or "random",
                     "learning rate": s.learning_rate, "batch": s.batch_size,
                     "epoch cap": s.max_epochs, "patience": s.early_stopping_patience,
                     "LR cut after": s.reduce_lr_patience}
              for name, s in stages.items()}).T  # fmt: skip

# %% [markdown]
# A run counts as converged (`brainlib.runs.convergence`) when it stopped on
# its patience, not on the epoch cap, and its best weights classify at least
# 95% of their training images in inference mode. A leakage experiment needs
# both: a model that has not fitted its training images cannot profit from
# copies of test images among them. This build's runs, judged by the rule on
# the accuracy Keras logged (the results page uses the inference-mode fit):

# %%
pd.DataFrame({v: runs.convergence(runs.read_history_rows(r.folder),
                                  patience=P.early_stopping_patience)
              for v, r in own.items()}).T[["epochs", "best_epoch", "stopped_on_patience",
                                           "train_accuracy", "converged", "reason"]]  # fmt: skip

# %% [markdown]
# ## Exercises
#
# 1. Lower the learning rate to the paper's: `overrides = {"learning_rate": 1e-4}`.
#    How many more epochs does the demo need before early stopping fires?
# 2. Set `overrides = {"early_stopping_patience": 2}`: which epoch's weights
#    does each model keep, and how does Figure 3 change?
# 3. Interrupt `brainlib train --profile demo` with Ctrl-C after a few
#    epochs and run it again: compare `history.csv` with an uninterrupted
#    run's (`--runs` another folder).
