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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/v0.2.0/notebooks/04_evaluation.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/v0.2.0?labpath=notebooks/04_evaluation.ipynb)
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

from brainlib import config, evaluation, plots, runs, training
from brainlib.display import shown, table

P = config.load_profile(profile, **overrides)
shown(table(evaluation.accuracy_column_evidence(), {
    "model": "Model", "class": "Class", "accuracy_column": "Paper's column", "recall": "Recall",
    "f1": "F1", "ovr_accuracy_reconstructed": "One-vs-rest accuracy (rebuilt)",
    "equals_f1": "= F1", "equals_recall": "= recall"}))  # fmt: skip

# %%
# the runs of chapter 3 (trained here if this chapter runs on its own, e.g. on Colab)
training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=0)
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
# ## Table 1: the SE model, paper and replication
#
# `difference` = replication - paper. The overall row's precision, recall and
# F1 are macro averages (the paper gives none).

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
# 1. Set `overrides = {"bootstrap_resamples": 200}` and compare the intervals
#    with those above: which digits move?
# 2. The paper's "accuracy" column is the F1 score. In
#    `evaluation.paper_comparison(metrics["se"])`, compare the paper's
#    `accuracy` rows with our `recall` rows instead: how many would then
#    disagree by more than 0.02?
# 3. From `metrics["se"]["confusion_matrix"]`, compute the glioma recall by
#    hand and check it against Table 1's `recall`.
