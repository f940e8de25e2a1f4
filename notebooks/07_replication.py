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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/07_replication.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/07_replication.ipynb)
#
# ## Overview
#
# 1. Which runs converged, and what that rule is.
# 2. SE against base, as what the data can rule out; the leakage effect with
#    its comparators; the split difference; the external test set; what
#    Grad-CAM looks at; the distance from the paper.
# 3. Tables 1-2 and Figures 1-5 of a converged real-data run.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | Chapters 1-6 | Helpful | this book |
# | Paired bootstrap intervals, McNemar's test | Helpful | Chapters 4-5 |
#
# **Time to run**: about half a minute: it reads exported runs (no
# training) and recomputes every interval from their predictions.
#
# The questions the paper leaves open, answered on the real data by a grid of
# 224 px runs exported as small artifacts (predictions, metrics, training
# curves, the training-set fit and the Grad-CAM numbers of every run; never
# weights). By default that is the grid committed with this repository,
# `results/real224`, trained from random weights on two CPU cores; a build of
# the `paper` profile's grid with ImageNet weights (the published book:
# `brainlib run --results`) points this page at that grid instead. The first
# box below says which runs the page read and what they can answer. Each section
# states the method in a few sentences, then shows one answer of
# `brainlib.answers`: a sentence computed from the numbers, its table, its
# caveats, and the runs it used with the reason they were chosen. Nothing on
# this page picks runs, seeds or splits itself, so the text cannot disagree
# with the numbers; the README's results block is written from the same
# answers. The paper's values come from `brainlib/paper_results.toml`,
# transcribed from {cite:t}`huang2025`. Chapters 3-6 show how each number is
# computed, on this build's own runs.
#
# This page reads `results/`, which comes with the repository, not with the
# package. Opened without the repository (on Colab), it fetches the repository's
# archive at the project's address once and reads the results from there
# (`results.committed`; the address is `brainlib/address.toml`).

# %% tags=["remove-cell"]
# On Colab, or wherever brainlib is not installed yet, install it first.
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
results_dir = "../results/real224"  # the committed grid of 224 px runs
figures_dir = None  # where to save the landing page's figure (the pipeline sets it)

# %% tags=["hide-input"]
from IPython.display import Image, Markdown, display

from brainlib import answers, evaluation, paper, plots, results
from brainlib.display import glue, shown

results_dir = results.committed(results_dir)  # fetched where the repository is not

grid = answers.Grid.open(results_dir)  # loads every run and recomputes its metrics
what = answers.setup(grid)
display(Markdown(f"```{{important}}\n{what.caveats[0]}\n```\n\n{what.sentence}"))

# %% [markdown]
# ## Did the runs converge?
#
# The committed runs train the whole network from random weights, which costs
# about 21 GFLOP per image at 224 px on two CPU cores, so each is trained in
# three stages (progressive resizing): at 64 px from random weights, then at
# 128 px and at 224 px, each stage starting from the previous one's best
# weights and stopping early on the validation loss (chapter 3 has the
# schedule); runs of the `paper` profile fine-tune ImageNet weights in one
# stage at 224 px, as the paper did. Either way, a run counts as
# converged when it **stopped on its early-stopping patience** (not on its
# epoch cap) and its **best weights classify at least 95% of their training
# images** in inference mode (`fit.json`; the accuracy Keras logs during
# training has dropout on and flipped images, and runs lower). Leakage needs
# fitted models: a model that has not learnt its training images cannot
# profit from copies of test images among them. Only converged runs enter the
# answers that follow, and a comparison pairs runs only where they were trained
# on one schedule (every stage's profile, less the split and seed, and the
# precision the machine trained in: bf16 where the CPU has native bfloat16,
# fp32 elsewhere): a run kept from an earlier schedule is shown in the table
# but compared with none of the new ones.

# %% tags=["hide-input"]
a = answers.convergence(grid).show()
glue("n_runs", a.numbers["runs"], display=False)
glue("n_converged", a.numbers["converged"], display=False)

# %% [markdown]
# ## Does SE beat base?
#
# Both models of a split classify the same test images, so the comparison is
# paired by image and by seed: each image's correctness is averaged over the
# seeds, and SE − base gets a paired bootstrap interval that resamples whole
# near-duplicate clusters (copies of one picture are not independent
# evidence). Beside it, the mean of the per-seed differences with a
# t-interval over seeds, which holds the training's variance. A verdict needs
# both intervals on one side of zero. The intervals say which differences the
# data rule out; the minimum detectable difference is the true difference
# these runs would detect four times in five. The paper reported SE ahead by
# 5.8 points of accuracy and 0.012 of AUC.

# %% tags=["hide-input"]
_ = answers.se_vs_base(grid, "paper").show()

# %% [markdown]
# ## How much does duplicate leakage raise test accuracy?
#
# The paper's random split puts exact and near copies of many test images in
# its training set. Each model is also trained on the same split minus every
# training image that duplicates a test image (`dedup`), and both are scored on
# the same test images. Where a test image had a copy in training, leakage
# can raise accuracy; where it had none, it cannot: the difference of the two
# differences is the leakage effect. Because the classes are spread unevenly
# over the two groups, the effect is also taken within each class and from a
# linear probability model with class terms; a placebo, the same measure
# between two trainings on the paper's split, shows the size of chance alone.
# Each seed gives its own difference of differences: their t-interval holds
# the training's variance, and a verdict needs it and the pooled interval on
# one side of zero.

# %% tags=["hide-input"]
_ = answers.leakage(grid).show()

# %% [markdown]
# ## How far apart are the paper's split and a duplicate-free split?
#
# The grouped split keeps every near-duplicate group on one side, so its test
# set holds *other* images than the paper's. Paper minus grouped therefore
# mixes leakage with the choice of test images; the test images that have no
# duplicate anywhere in the data show how much remains where leakage is
# impossible.

# %% tags=["hide-input"]
_ = answers.split_difference(grid).show()

# %% [markdown]
# ## How do the models fare on another dataset's test images?
#
# The paper names the lack of external validation as its main limitation.
# Every converged run is scored on the Testing part of another public
# brain-MRI dataset (Kaggle `sartajbhuvaji/brain-tumor-classification-mri`,
# 394 images of the same four classes, other sizes and sources), on all its
# images and on those with no exact or near duplicate among the run's
# training images.

# %% tags=["hide-input"]
_ = answers.external(grid).show()

# %% [markdown]
# ## What do the Grad-CAM heatmaps look at?
#
# The real data has no lesion masks, so the paper's "focuses on
# tumor-affected regions" cannot be checked image by image. Three numbers
# stand in, over every test image: the share of the heatmap inside the brain
# (a mask from thresholding the slice); a deletion curve, test accuracy as the
# most salient pixels are blanked, against random heatmaps of the same
# coarseness and against random heatmaps kept inside the brain (which blank
# brain first, as Grad-CAM does); and the model-randomisation sanity check
# {cite:p}`adebayo2018`: heatmaps that explain a model must change when its
# trained weights are replaced by random ones.

# %% tags=["hide-input"]
a = answers.saliency(grid).show()
glue("deletion", plots.deletion_curves(answers.saliency_table(grid)) if a.table is not None
     else Markdown("(no deletion curves yet)"), display=False)  # fmt: skip

# %% [markdown]
# ```{glue:figure} deletion
# :name: real-deletion
#
# Deletion curves on the real test images (mean over the converged runs):
# accuracy as the most salient pixels of each heatmap are blanked.
# ```

# %% [markdown]
# ## How far are these runs from the paper's?
#
# The mean accuracy and AUC of the converged paper-split runs beside the
# paper's. The caveat says what the distance can mean: runs from random
# weights measure it without explaining it; runs from ImageNet weights leave
# the split, the seeds and the software as the differences.

# %% tags=["hide-input"]
_ = answers.distance_from_paper(grid).show()
fig = plots.replication_runs(grid.judged())
if figures_dir:
    _ = plots.save(fig, figures_dir, "replication_runs")
glue("replication_runs", fig, display=False)

# %% [markdown]
# ```{glue:figure} replication_runs
# :name: replication-runs
#
# Test accuracy of every run the page read, by split and model (dots: seeds;
# hollow: runs that miss the convergence rule, left out of the bars as of the answers;
# squares: converged runs of another schedule, left out of the bars so that a mean
# holds one schedule).
# ```

# %% [markdown]
# ## Tables 1-2 and Figures 1-5 on the real data
#
# One run of each model, the converged paper-split run with the lowest seed
# (named below): the paper's per-class table beside it, with 95% bootstrap
# intervals over the test images (the paper's "accuracy" column is the F1
# score: chapter 4), its training curves over the whole schedule, its
# confusion matrix and its Grad-CAM gallery. Values carry the paper's three
# decimals; each interval is printed to the decimals its Monte Carlo error
# allows (the endpoints' errors at these runs' resamples: {glue:text}`table_mc`;
# a digit is printed where it is more than twice the error). The intervals
# are per run and per cell, unadjusted: descriptive, not tests.

# %% tags=["hide-input"]
drawn = {v: answers.figures_run(grid, v) for v in ("se", "base")}
drawn_metrics = {v: evaluation.read_metrics(f) for v, f in drawn.items() if f}
display(Markdown("Runs drawn: " + ", ".join(f"`{f.name}`" if f else f"no converged {v} run"
                                            for v, f in drawn.items()) + "."))  # fmt: skip
for v, folder in drawn.items():
    name = "1. SE" if v == "se" else "2. Base"
    if folder is None:
        glue(f"table_{v}", Markdown(f"(no converged {v} run on the paper's split yet)"))
        continue
    glue(f"table_{v}", shown(evaluation.paper_table(drawn_metrics[v])),
         display=False)  # fmt: skip
mc = [e for m in drawn_metrics.values() for e in evaluation.shown_mc_errors(m)]
glue("table_mc", f"{min(mc):.4f} to {max(mc):.4f}" if mc else "not recorded", display=False)
hist = {v: results.full_history(grid.root, f) for v, f in drawn.items() if f}
gap = paper.reported()["training"]["final_accuracy_gap"]
if hist:
    glue("real_fig1", plots.accuracy_curves(hist), display=False)
    glue("real_fig2", plots.loss_curves(hist), display=False)
    glue("real_fig3", plots.accuracy_gap(hist, gap), display=False)
    glue("stage_ends", results.stage_ends(hist, plots.MODEL_LABEL), display=False)
else:  # no converged run on the paper's split: the figures say so, not a stale picture
    for key in ("real_fig1", "real_fig2", "real_fig3"):
        glue(key, Markdown("(no converged run on the paper's split)"), display=False)
    glue("stage_ends", "(none)", display=False)
for v, folder in drawn.items():
    m = drawn_metrics.get(v)
    glue(f"real_fig4_{v}", plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v])
         if m else Markdown("(no run)"), display=False)  # fmt: skip
    jpg = [folder / f"figure5_gradcam.{e}" for e in ("jpg", "png")] if folder else []
    jpg = [f for f in jpg if f.is_file()]
    glue(f"real_fig5_{v}", Image(filename=str(jpg[0])) if jpg else
         Markdown("(no Grad-CAM figure exported)"), display=False)  # fmt: skip

# %% [markdown]
# ### Table 1. SE model: paper and replication
#
# ```{glue:} table_se
# ```
#
# ### Table 2. Base model: paper and replication
#
# ```{glue:} table_base
# ```
#
# ```{glue:figure} real_fig1
# :name: real-figure1
#
# Figure 1 on the real data: training and validation accuracy per epoch over
# the whole schedule (stages end at epochs {glue:text}`stage_ends`).
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
# ```{glue:figure} real_fig5_se
# :name: real-figure5
#
# Figure 5 on the real data: Grad-CAM and Grad-CAM++ at `post_relu` (7x7) of
# the SE model, a correctly and a wrongly classified test image of each class
# where there is one.
# ```
#
# ```{glue:figure} real_fig5_base
# :name: real-figure5-base
#
# Figure 5 on the real data: the same for the base model.
# ```

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# `answers.se_vs_base(grid, "grouped")` asks the same question on the grouped
# split. How many seeds does it use, and why do its sentence and the
# interval's role say what they say?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
_ = answers.se_vs_base(grid, "grouped").show()

# %% [markdown]
# ### Exercise 2
#
# Open the grid with fewer bootstrap resamples,
# `answers.Grid.open(results_dir, resamples=1000)`, and print the leakage
# answer again. Which digits change, and how does `brainlib.display.decimals`
# decide how many to print?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
coarse = answers.Grid.open(results_dir, resamples=1000)
print(answers.leakage(coarse).sentence)

# %% [markdown]
# ### Exercise 3
#
# `brainlib.runs.convergence` judges the training accuracy of the best
# weights in inference mode. Call it on every committed run's history without
# that number, so that it reads the accuracy Keras logged while training: for
# which runs does the verdict change, and why is the logged number lower?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
import pandas as pd

from brainlib import runs

logged = [runs.convergence(runs.read_history_rows(r.folder), patience=r.patience)
          for r in grid.frame.itertuples()]  # fmt: skip
pd.DataFrame({
    "run": [f.name for f in grid.frame["folder"]],
    "logged accuracy": [v["train_accuracy"] for v in logged],
    "converged (logged)": [v["converged"] for v in logged],
    "inference-mode accuracy": grid.verdicts["train_accuracy"].to_numpy(),
    "converged": grid.verdicts["converged"].to_numpy(),
}).round(3)  # fmt: skip
# Keras logs the mean over the epoch's batches in training mode: dropout on, flipped
# images, and weights that are still moving; fit.json scores the best weights once.
