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
# # Results beside the paper
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/v0.2.0/notebooks/07_replication.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/v0.2.0?labpath=notebooks/07_replication.ipynb)
#
# The paper's Tables 1-2 and Figures 1-5, regenerated twice: first on the real
# data, by the replication grid whose artifacts are committed with this
# repository (`results/`: both models, several seeds, the paper's random split
# and a duplicate-free split); then by the profile this book was built with
# (named in the banner above). Every number on this page is read from run
# artifacts (`run.json`, `history.csv`, `predictions.csv`, `metrics.json`) and
# every sentence that draws a conclusion is computed from them
# (`brainlib.findings`); the paper's values come from
# `brainlib/paper_results.toml`, transcribed from {cite:t}`huang2025`. The
# chapters that follow show how each number is computed.
#
# This page reads the committed results under `results/`, which come with the
# repository, not with the package. On Colab, first run
# `!git clone --depth 1 -b v0.2.0 https://github.com/brainlib/brainlib` and set
# `results_dir = "brainlib/results/scratch"` in the parameters cell; the second
# half of the page trains the profile's runs itself if chapter 3 has not.

# %% tags=["remove-cell"]
# On Colab, or wherever brainlib is not installed yet, install it first.
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
results_dir = "../results/scratch"  # the committed replication
figures_dir = None  # where to save the landing page's figure (the pipeline sets it)

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from brainlib import (
    config,
    evaluation,
    findings,
    paper,
    plots,
    replication,
    runs,
    statistics,
    training,
)
from brainlib.findings import glue

P = config.load_profile(profile, **overrides)
committed = Path(results_dir)  # replication.load says what is missing, if anything is

# %% [markdown]
# ## The real data: the committed replication

# %% tags=["hide-input"]
frame = replication.load(committed)
replication.check_metrics(committed)  # every accuracy and AUC recomputed from predictions.csv
prof = replication.profile_of(committed)
meta = runs.read_meta(frame["folder"].iloc[0])
seeds = sorted(frame["seed"].unique())
splits = [s for s in ("paper", "grouped") if s in set(frame["split"])]
glue("n_runs", len(frame), display=False)
glue("n_seeds", len(seeds), display=False)
glue("hours", float(frame["train_minutes"].sum() / 60), display=False)
glue("image_size", int(prof["image_size"]), display=False)
display(Markdown(f"```{{important}}\n{findings.weights_caveat(prof, meta['device'])}\n```"))
display(
    Markdown(
        f"Profile `{committed.name}`: {prof.get('description', '')}. "
        + findings.protocol_sentence(prof)
        + ". Both models were trained with seeds "
        + ", ".join(map(str, seeds))
        + " on "
        + " and on ".join(findings.SPLIT_WORDS[s] for s in splits)
        + f" (drawn with seed {prof['seed']}: a training seed changes the initial weights, "
        "batch order, augmentation and dropout, not the test images)."
    )
)

# %% [markdown]
# The grid holds {glue:text}`n_runs` runs ({glue:text}`n_seeds` seeds per split
# and model, {glue:text}`image_size` px), which took {glue:text}`hours:.1f` hours
# of training in all. Test accuracy and macro AUC over seeds:

# %% tags=["hide-input"]
s = replication.summary(frame)
s[["runs", "accuracy_mean", "accuracy_sd", "accuracy_min", "accuracy_max", "auc_mean",
   "auc_sd", "epochs_mean"]].round(3)  # fmt: skip

# %% tags=["hide-input"]
fig = plots.replication_runs(frame)
if figures_dir:
    _ = plots.save(fig, figures_dir, "replication_runs")
glue("replication_runs", fig, display=False)

# %% [markdown]
# ```{glue:figure} replication_runs
# :name: replication-runs
#
# Test accuracy of every run on the real data, by split and model (dots: seeds).
# ```
#
# Every run, with 95% bootstrap intervals over its test images:

# %% tags=["hide-input"]
frame.assign(
    model=frame["model"].map(plots.MODEL_LABEL),
    accuracy=[f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
              zip(frame["accuracy"], frame["accuracy_ci_low"], frame["accuracy_ci_high"], strict=True)],
    auc=[f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
         zip(frame["auc_macro"], frame["auc_ci_low"], frame["auc_ci_high"], strict=True)],
    minutes=frame["train_minutes"].round(1),
    final_train_accuracy=frame["final_train_accuracy"].round(3),
)[["split", "model", "seed", "n_test", "accuracy", "auc", "epochs", "best_epoch",
   "final_train_accuracy", "minutes"]]  # fmt: skip

# %% [markdown]
# ### Does SE beat base?
#
# Both models of a seed classify the same test images, so the difference is
# taken seed by seed; McNemar's test pairs the predictions of each seed.

# %% tags=["hide-input"]
per_seed = replication.se_vs_base(committed, frame)
over = replication.paired_over_seeds(per_seed)
display(Markdown("\n".join(f"- {findings.se_vs_base_sentence(sp, over.loc[sp])}" for sp in splits)))
per_seed.round(4)

# %% [markdown]
# ### The split difference, and duplicates within a split
#
# The paper's random split and the grouped split draw *different* test
# images, so their difference mixes leakage with which images each test set
# holds: it is a split difference, not a measure of leakage. Within the
# paper's split the test set is fixed, and the images with an exact or near
# duplicate in training can be set against those without.

# %% tags=["hide-input"]
if len(splits) == 2:
    leak = replication.split_difference(frame)
    display(Markdown("\n".join(f"- {findings.split_difference_sentence(m, r)}"
                               for m, r in leak.iterrows())))  # fmt: skip
by_dup = replication.accuracy_by_duplicate(committed, "paper", frame)
display(Markdown("\n".join(f"- {findings.duplicate_sentence(m, by_dup)}" for m in config.VARIANTS)))
display(Markdown(findings.fit_sentence(frame, paper.reported()["training"])))
by_dup.round(3)

# %% [markdown]
# ### How far from the paper's fine-tuned models?
#
# Not comparable numbers, set side by side only to measure the distance:

# %% tags=["hide-input"]
dist = replication.distance_from_paper(frame)
display(Markdown("\n".join(f"- {findings.distance_sentence(m, r)}" for m, r in dist.iterrows())))

# %% [markdown]
# ### Figures 1-5 on the real data (paper's split, first seed)

# %% tags=["hide-input"]
seed = seeds[0]
hist = replication.histories(frame, "paper", seed)
glue("real_fig1", plots.accuracy_curves(hist), display=False)
glue("real_fig2", plots.loss_curves(hist), display=False)
glue("real_fig3", plots.accuracy_gap(hist, paper.reported()["training"]["final_accuracy_gap"]),
     display=False)  # fmt: skip
for v in config.VARIANTS:
    m = evaluation.read_metrics(replication.run_of(frame, "paper", seed, v))
    glue(f"real_fig4_{v}", plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v]),
         display=False)  # fmt: skip
gradcam_png = replication.run_of(frame, "paper", seed, "se") / "figure5_gradcam.png"
cells = -(-int(prof["image_size"]) // 32)  # post_relu is 1/32 of the input, rounded up
glue("real_fig5", Image(filename=str(gradcam_png)) if gradcam_png.is_file() else
     Markdown("(no Grad-CAM figure exported)"), display=False)  # fmt: skip
glue("post_relu_cells", cells, display=False)

# %% [markdown]
# ```{glue:figure} real_fig1
# :name: real-figure1
#
# Figure 1 on the real data: training and validation accuracy per epoch.
# ```
#
# ```{glue:figure} real_fig2
# :name: real-figure2
#
# Figure 2 on the real data: training and validation loss per epoch.
# ```
#
# ```{glue:figure} real_fig3
# :name: real-figure3
#
# Figure 3 on the real data: training minus validation accuracy (dashed: the paper's final gap).
# ```
#
# ```{glue:figure} real_fig4_se
# :name: real-figure4-se
#
# Figure 4 on the real data: confusion matrix of the SE model.
# ```
#
# ```{glue:figure} real_fig4_base
# :name: real-figure4-base
#
# Figure 4 on the real data: confusion matrix of the base model.
# ```
#
# ```{glue:figure} real_fig5
# :name: real-figure5
#
# Figure 5 on the real data: Grad-CAM and Grad-CAM++ of the SE model. Here the
# `post_relu` map has {glue:text}`post_relu_cells` x {glue:text}`post_relu_cells`
# cells, so a heatmap can point at a region of the slice, not at a lesion's
# outline; a blank heatmap means the gradient-weighted map was zero or negative
# in every cell.
# ```

# %% [markdown]
# ## This build's runs beside the paper
#
# The profile in the banner, one seed, the paper's split. With the default
# `demo` profile these are synthetic phantoms: they show that every step runs,
# not how well the method works.

# %% tags=["hide-input"]
# chapters 3-4's runs and predictions (made here if this chapter runs on its own)
training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=0)
evaluation.evaluate_grid(P, runs_dir, data_dir)
folders = runs.seed_runs(runs_dir, P)
metrics = {v: evaluation.read_metrics(f) for v, f in folders.items()}
pd.DataFrame(
    {
        plots.MODEL_LABEL[v]: {
            "paper accuracy": paper.headline(v)["accuracy"],
            "accuracy": round(m["accuracy"], 3),
            "95% CI": f"[{m['ci_low']['overall']['accuracy']:.3f}, "
                      f"{m['ci_high']['overall']['accuracy']:.3f}]",
            "paper AUC": paper.headline(v)["auc"],
            "macro AUC": round(m["auc_macro"], 3),
            "epochs": len(runs.read_history(folders[v])),
        }
        for v, m in metrics.items()
    }
).T  # fmt: skip

# %% [markdown]
# ### Table 1. SE model: paper and replication
#
# Per class; *accuracy* is the paper's column, which is the F1 score (see the
# evaluation chapter); the overall row's precision, recall and F1 are macro
# averages and its AUC the macro one-vs-rest AUC. `difference` = replication -
# paper; the interval is a 95% bootstrap interval over the test images.

# %% tags=["hide-input"]
evaluation.paper_comparison(metrics["se"])

# %% [markdown]
# ### Table 2. Base model: paper and replication

# %% tags=["hide-input"]
evaluation.paper_comparison(metrics["base"])

# %% [markdown]
# ### SE against base on the same test images
#
# The paper's two-proportion z-test (unpaired) and McNemar's test (paired),
# then the paper's own z-tests redone from its Tables 1-2:

# %% tags=["hide-input"]
y, pred_se, pred_base = evaluation.paired_predictions(folders["se"], folders["base"])
statistics.compare_models(y, pred_se, pred_base)[
    ["n", "se_correct", "base_correct", "z_test_p", "only_se_right", "only_base_right",
     "mcnemar_p"]].round(4)  # fmt: skip

# %% tags=["hide-input"]
statistics.reconstruct_paper_ztests()[
    ["n", "se_correct", "base_correct", "z", "p", "paper_p", "paper_says_significant",
     "significance_agrees", "rounds_to_paper_p_of"]]  # fmt: skip

# %% tags=["hide-input"]
histories = {v: runs.read_history(f) for v, f in folders.items()}
glue("fig1", plots.accuracy_curves(histories), display=False)
glue("fig2", plots.loss_curves(histories), display=False)
glue("fig3", plots.accuracy_gap(histories, paper.reported()["training"]["final_accuracy_gap"]),
     display=False)  # fmt: skip
for v, m in metrics.items():
    glue(f"fig4_{v}", plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v]),
         display=False)  # fmt: skip
    glue(f"fig5_{v}", Image(filename=str(folders[v] / runs.FIGURES / "figure5_gradcam.png")),
         display=False)  # fmt: skip
glue("paper_epochs", int(paper.reported()["training"]["epochs"]), display=False)
glue("paper_gap", float(paper.reported()["training"]["final_accuracy_gap"]), display=False)

# %% [markdown]
# ### Figures 1-5
#
# The paper's SE model trained for {glue:text}`paper_epochs` epochs and ended
# with a train-validation accuracy gap of {glue:text}`paper_gap`.
#
# ```{glue:figure} fig1
# :name: figure1
#
# Figure 1. Training and validation accuracy per epoch (both models).
# ```
#
# ```{glue:figure} fig2
# :name: figure2
#
# Figure 2. Training and validation loss per epoch (both models).
# ```
#
# ```{glue:figure} fig3
# :name: figure3
#
# Figure 3. Training minus validation accuracy per epoch (both models).
# ```
#
# ```{glue:figure} fig4_se
# :name: figure4-se
#
# Figure 4. Confusion matrix on the test set (SE model).
# ```
#
# ```{glue:figure} fig4_base
# :name: figure4-base
#
# Figure 4. Confusion matrix on the test set (base model).
# ```
#
# ```{glue:figure} fig5_se
# :name: figure5-se
#
# Figure 5. Grad-CAM and Grad-CAM++ on test images (SE model).
# ```
#
# ```{glue:figure} fig5_base
# :name: figure5-base
#
# Figure 5. Grad-CAM and Grad-CAM++ on test images (base model).
# ```

# %% [markdown]
# ## Exercises
#
# 1. Run `brainlib run --no-book --set seeds=42,43,44,45,46 --profile scratch`
#    (about two hours on two cores), then `brainlib export --profile scratch
#    --runs _build/scratch/runs`, and rebuild: which sentences above change
#    with a fifth seed?
# 2. In `brainlib/findings.py`, `se_vs_base_verdict` decides with a 95%
#    t-interval over seeds. Change the level in `replication._t_interval` to
#    0.8: does any verdict flip?
# 3. `FIT_ACCURACY` (0.95) decides whether the runs "fit their training
#    images". Look up the final training accuracies in the table of runs and
#    say what a model must reach before a leakage experiment can show
#    anything.
