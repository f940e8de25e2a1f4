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
# # Evaluation: Tables 1-2 and Figure 4, beside the paper
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/04_evaluation.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/04_evaluation.ipynb)
#
# ## Overview
#
# 1. What the paper's per-class "Accuracy" column is (the F1 score).
# 2. Accuracy, the confusion matrix and a bootstrap interval by hand,
#    checked against the package.
# 3. Tables 1-2 beside the paper's, Figure 4 and the ROC curves.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | Chapter 3's trained runs | Necessary | Chapter 3 (trained here if missing) |
# | Precision, recall, F1, ROC AUC | Necessary | [scikit-learn: model evaluation](https://scikit-learn.org/stable/modules/model_evaluation.html) |
# | The bootstrap | Helpful | Efron & Tibshirani, *An Introduction to the Bootstrap* (1993) |
#
# **Time to run**: under a minute once chapter 3's runs exist (predicting the
# test images and 1,000 bootstrap resamples per model).
#
# Each trained model predicts the test images once (`predictions.csv` in its
# run folder). From those probabilities: per-class precision, recall, F1 and
# one-vs-rest AUC, the overall accuracy and AUC, and 95% bootstrap confidence
# intervals (test images resampled with replacement, seeded).
#
# **What is the paper's per-class "Accuracy" column?** The paper does not
# say. In all eight rows of its two tables the column equals the F1 score; it
# differs from recall in six; and one-vs-rest accuracy, rebuilt from each
# row's precision and recall, is well above it for the base model's tumour
# classes. So the column is the F1 score, and it is computed so here:

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
import pandas as pd

from brainlib import config, evaluation, plots, runs, training
from brainlib.display import shown, table

P = config.load_profile(profile, **overrides)
shown(table(evaluation.accuracy_column_evidence(), {
    "model": "Model", "class": "Class", "accuracy_column": "Paper's column", "recall": "Recall",
    "f1": "F1", "ovr_accuracy_reconstructed": "One-vs-rest accuracy (rebuilt)",
    "equals_f1": "= F1", "equals_recall": "= recall"}))  # fmt: skip

# %%
# the runs of chapter 3 (trained here if this chapter runs on its own, e.g. on Colab)
training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=0, progress=True)
grid = evaluation.evaluate_grid(P, runs_dir, data_dir)  # every run of the profile's grid
folders = runs.seed_runs(runs_dir, P)
metrics = {v: grid[(P.split, P.seed, v)] for v in config.VARIANTS}
pd.DataFrame(
    {
        v: {"test images": m["n_test"], "accuracy": m["accuracy"], "AUC (macro)": m["auc_macro"],
            "AUC (micro)": m["auc_micro"]}
        for v, m in metrics.items()
    }
)  # fmt: skip

# %% [markdown]
# ## Accuracy, the confusion matrix and a bootstrap interval, by hand
#
# Accuracy is the share of test images whose most probable class is the true
# one. The confusion matrix counts the images of each true class (row) by
# the class predicted (column); its diagonal holds the correct ones. A
# percentile bootstrap interval redraws the test set: as many images as it
# has, drawn with replacement, the statistic computed on each redraw, and the
# middle 95% of the redraws kept. It measures how much the score depends on
# which test images happened to be drawn, not how much it would move with
# another training run.

# %% tags=["method"]
import numpy as np


def accuracy(y_true, y_pred):
    return np.mean(y_true == y_pred)


def confusion_matrix(y_true, y_pred, n_classes=4):
    counts = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)  # one count per image: row true, column predicted
    return counts


def bootstrap_values(statistic, y_true, y_pred, resamples=1000, seed=0):
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(y_true), len(y_true))  # test images, with replacement
        values.append(statistic(y_true[drawn], y_pred[drawn]))
    return np.array(values)


def bootstrap_interval(statistic, y_true, y_pred, resamples=1000, seed=0, level=0.95):
    values = bootstrap_values(statistic, y_true, y_pred, resamples, seed)
    return np.quantile(values, [(1 - level) / 2, (1 + level) / 2])


# %% [markdown]
# The package computes the same with scikit-learn (`brainlib.evaluation`); on
# the SE model's predictions, and with the same resamples and seed, the three
# agree (to the ten decimals `metrics.json` keeps):

# %%
y, proba = evaluation.labels_and_proba(evaluation.read_predictions(folders["se"]))
y_pred = proba.argmax(axis=1)
m, boot = metrics["se"], metrics["se"]["bootstrap"]
low, high = bootstrap_interval(accuracy, y, y_pred, boot["resamples"], boot["seed"])
assert accuracy(y, y_pred) == m["accuracy"]
assert (confusion_matrix(y, y_pred) == np.array(m["confusion_matrix"])).all()
package = (m["ci_low"]["overall"]["accuracy"], m["ci_high"]["overall"]["accuracy"])
assert np.allclose((low, high), package, rtol=0, atol=1e-9)  # JSON: 10 decimals
print(f"accuracy {accuracy(y, y_pred):.3f}; its 95% interval from {boot['resamples']:,} "
      "resamples is printed below, to the digits it holds; confusion matrix:")  # fmt: skip
confusion_matrix(y, y_pred)

# %% [markdown]
# ## How many digits an interval holds
#
# A bootstrap interval is itself drawn at random: with another seed its
# endpoints move a little. Their Monte Carlo error says by how much. Split the
# resamples into 20 equal parts, take the endpoints of each part, and divide
# their spread by the square root of 20 (the batch method). The book prints a
# digit of an endpoint only where it is more than twice that error, so that a
# re-run with another seed leaves the printed interval as it is
# (`brainlib.display.decimals`; Tables 1-2 below follow it).


# %% tags=["method"]
def endpoint_mc_error(values, level=0.95, batches=20):
    parts = np.array_split(np.asarray(values), batches)
    ends = np.array([np.quantile(p, [(1 - level) / 2, (1 + level) / 2]) for p in parts])
    return np.max(ends.std(axis=0, ddof=1) / np.sqrt(batches))  # the larger endpoint's


def decimals(mc_error, most=3):
    return next((d for d in range(most, -1, -1) if 2 * mc_error < 10.0**-d), 0)


# %%
values = bootstrap_values(accuracy, y, y_pred, boot["resamples"], boot["seed"])
error = endpoint_mc_error(values)
assert np.isclose(error, m["ci_mc_error"]["overall"]["accuracy"], rtol=0, atol=1e-9)
d = decimals(error)
print(
    f"Monte Carlo error of the endpoints {error:.4f}: the interval holds {d} decimal{'s' * (d != 1)}, "
    f"[{low:.{d}f}, {high:.{d}f}]"
)

# %% [markdown]
# ## Table 1: the SE model, paper and replication
#
# `difference` = replication - paper. The overall row's precision, recall and
# F1 are macro averages (the paper gives none). Each interval is printed to the
# decimals its own Monte Carlo error allows.

# %%
shown(evaluation.paper_table(metrics["se"]))

# %% [markdown]
# ## Table 2: the base model, paper and replication

# %%
shown(evaluation.paper_table(metrics["base"]))

# %% [markdown]
# ## Figure 4: confusion matrices
#
# Rows are the true classes; the right-hand matrix is normalised by row, so
# its diagonal is each class's recall.

# %%
for v, m in metrics.items():
    fig = plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v])
    _ = plots.save(fig, folders[v] / "figures", "figure4_confusion")

# %% [markdown]
# ## ROC curves (one-vs-rest)

# %%
for v, f in folders.items():
    y, proba = evaluation.labels_and_proba(evaluation.read_predictions(f))
    fig = plots.roc_curves(y, proba, plots.MODEL_LABEL[v])
    _ = plots.save(fig, f / "figures", "roc")

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# With `bootstrap_interval` from the method cell, compute the accuracy's
# interval with 200 resamples and with the profile's number, each with four
# seeds. Which printed digits move with the seed?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
for resamples in (200, boot["resamples"]):
    ends = [bootstrap_interval(accuracy, y, y_pred, resamples, seed) for seed in range(4)]
    print(f"{resamples:>6,} resamples:", "  ".join(f"[{lo:.3f}, {hi:.3f}]" for lo, hi in ends))

# %% [markdown]
# ### Exercise 2
#
# The paper's "accuracy" column is the F1 score. In how many of the paper's
# eight rows does that column differ from the paper's own recall by more than
# 0.02 (`paper.reported()`)?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
from brainlib import paper

rows = [paper.reported()[v][c] for v in config.VARIANTS for c in config.CLASSES]
far = sum(abs(row["accuracy"] - row["recall"]) > 0.02 for row in rows)
print(f"{far} of {len(rows)} rows: the column is not recall")

# %% [markdown]
# ### Exercise 3
#
# From the SE model's confusion matrix, compute each class's recall by hand
# (the diagonal over the row sums) and check it against Table 1's recall.

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
cm = confusion_matrix(y, y_pred)
recall = cm.diagonal() / np.maximum(cm.sum(axis=1), 1)
pd.DataFrame({"by hand": recall,
              "Table 1": [metrics["se"]["table"][c]["recall"] for c in config.CLASSES]},
             index=config.CLASSES)  # fmt: skip
