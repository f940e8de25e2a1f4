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
# data, by the grid of converged 224 px runs whose artifacts are committed with
# this repository (`results/real224`: both models, several seeds, the paper's
# random split and the same split without the test images' training
# duplicates); then by the profile this book was built with (named in the
# banner above). Every number on this page is read from run artifacts
# (`run.json`, `history.csv`, `predictions.csv`, `metrics.json`, `fit.json`,
# `saliency.json`) and every sentence that draws a conclusion is computed from
# them (`brainlib.findings`); the paper's values come from
# `brainlib/paper_results.toml`, transcribed from {cite:t}`huang2025`. The
# chapters that follow show how each number is computed.
#
# This page reads the committed results under `results/`, which come with the
# repository, not with the package. On Colab, first run
# `!git clone --depth 1 -b v0.2.0 https://github.com/brainlib/brainlib` and set
# `results_dir = "brainlib/results/real224"` and
# `earlier_dir = "brainlib/results/scratch"` in the parameters cell; the second
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
results_dir = "../results/real224"  # the committed grid of converged 224 px runs
earlier_dir = "../results/scratch"  # the earlier 64 px grid (not converged)
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
# ## The real data: converged models at 224 px

# %% tags=["hide-input"]
frame = replication.load(committed)
replication.check_metrics(committed)  # every accuracy and AUC recomputed from predictions.csv
prof = replication.profile_of(committed)
meta = runs.read_meta(frame["folder"].iloc[0])
splits = [s for s in plots.SPLIT_LABEL if s in set(frame["split"])]
grid = config.load_profile(committed.name)
planned = len(runs.grid(grid)) * len(config.VARIANTS)
glue("n_runs", len(frame), display=False)
glue("n_planned", planned, display=False)
glue("image_size", int(prof["image_size"]), display=False)
display(Markdown(f"```{{important}}\n{findings.weights_caveat(prof, meta['device'])}\n```"))
display(
    Markdown(
        f"Profile `{committed.name}`: {prof.get('description', '')}. "
        + findings.protocol_sentence(prof)
        + ". Splits: "
        + "; ".join(f"`{s}` ({plots.SPLIT_LABEL[s]})" for s in splits)
        + f", each drawn with seed {prof['seed']} (a training seed changes the initial weights, "
        "batch order, augmentation and dropout, not the test images)."
    )
)

# %% [markdown]
# ### The schedule
#
# Whole-network training from random weights costs about 21 GFLOP per image at
# 224 px, so most epochs run at a lower size. Each run is trained in three
# stages (progressive resizing, as in fast.ai's DAWNBench entries and FixRes):
# at 64 px from random weights, then at 128 px and at 224 px, each stage
# starting from the previous one's best weights and stopping early on the
# validation loss. The network is the same at every size (it is fully
# convolutional up to the global pooling); only at 224 px is `post_relu` 7x7
# and the head's 3x3 convolutions see a 4x4 map, as in the paper. Mixed
# bfloat16 is used where the CPU has it. The stages as run (seconds per epoch:
# median over the runs' epochs, on the 2-core machine named in each run.json,
# often sharing it with other work):

# %% tags=["hide-input"]
replication.schedule_table(committed, frame).round(
    {"learning_rate": 5, "epochs_mean": 1, "seconds_per_epoch": 0}
)

# %% [markdown]
# ### Did the runs converge?
#
# A run counts as converged when its lowest validation loss came before its
# last epoch (it stopped improving, rather than running out of epochs) and its
# best weights classify at least 95% of their training images correctly. That
# accuracy is measured in inference mode on the training images (`fit.json`);
# the one Keras logs during training is taken with dropout on and on
# augmented images, and runs lower. A leakage experiment needs fitted models:
# a model that has not learnt its training images cannot profit from copies
# of test images among them.

# %% tags=["hide-input"]
conv = replication.convergence_table(committed, frame)
display(Markdown(findings.convergence_sentence(conv)))
glue("n_converged", int(conv["converged"].sum()), display=False)
missing = planned - len(frame)
if missing:
    display(Markdown(
        f"The grid plans {planned} runs ({len(runs.grid(grid))} split-seed pairs x 2 models); "
        f"{len(frame)} are trained and committed so far, the rest follow with "
        "`make converged` (runs resume, and each is committed as it finishes)."
    ))  # fmt: skip
conv.assign(minutes=conv["minutes_all_stages"].round(1)).drop(columns=["minutes_all_stages"]).round(
    3
)

# %% [markdown]
# ### SE against base, pooled over seeds
#
# Both models of a split classify the same test images, so the comparison is
# paired by image and by seed: each image's correctness is averaged over the
# seeds, and the SE - base difference gets a paired bootstrap interval. Copies
# of one picture would count as independent images, so whole near-duplicate
# clusters are resampled. The macro AUC is that of the seed-averaged
# probabilities, with the same paired bootstrap. McNemar's test pairs the
# predictions of each seed and of the majority vote; per class, Holm's
# correction covers the four tests.

# %% tags=["hide-input"]
pooled = {s: replication.pooled_se_vs_base(committed, frame, s, prof["bootstrap_resamples"])
          for s in splits if replication.paired_seeds(frame, s)}  # fmt: skip
display(Markdown("\n".join(f"- {findings.pooled_sentence(r)}" for r in pooled.values())))
if "paper" in pooled:
    glue("se_base_paper", findings.pooled_sentence(pooled["paper"]), display=False)
    display(pooled["paper"]["mcnemar"].round(4))
    display(pooled["paper"]["per_class"].round(4))

# %% [markdown]
# ### Leakage on one fixed test set
#
# The paper's random split puts exact and near copies of many test images in
# the training set. To measure what that is worth, each model is also
# trained on the same split minus every training image that is an exact or
# near duplicate of a test image (`dedup`), and both are scored on the same
# test images. On test images that had a copy in training, leakage can raise
# accuracy; on those without one it cannot. The difference of the two
# differences is the leakage effect.

# %% tags=["hide-input"]
leak_rows = []
for m in config.VARIANTS:
    try:
        table, seeds_used = replication.leakage(committed, frame, m,
                                                n_resamples=prof["bootstrap_resamples"])  # fmt: skip
    except replication.ReplicationError as err:
        display(Markdown(f"- **{plots.MODEL_LABEL[m]}**: not measured yet ({err})."))
        continue
    compared = conv[(conv["model"] == m) & conv["split"].isin(["paper", "dedup"])
                    & conv["seed"].isin(seeds_used)]  # fmt: skip
    caveat = findings.compared_runs_caveat(compared)
    display(Markdown(f"- {findings.leakage_sentence(m, table, seeds_used)} {caveat}"))
    leak_rows.append(table.assign(model=m))
if leak_rows:
    display(pd.concat(leak_rows).round(4))

# %% [markdown]
# ### The split difference
#
# The grouped split keeps every near-duplicate group on one side, so its test
# set holds *other* images than the paper's: paper minus grouped mixes
# leakage with which images each test set holds. It is a split difference,
# not a measure of leakage (the fixed test set above measures that). Two
# views: by seed (each seed's two runs share their initial weights and batch
# order), and image by image, where the test images that have no duplicate
# anywhere in the data show how much of the difference remains where leakage
# is impossible. The earlier 64 px grid, whose runs had not fitted their
# training images, follows for contrast.

# %% tags=["hide-input"]
# this grid once every model has run on both splits; the earlier grid after it, for contrast
both_splits = all({"paper", "grouped"} <= set(frame.loc[frame["model"] == m, "split"])
                  for m in config.VARIANTS)  # fmt: skip
views = [(committed, frame[frame["split"].isin(["paper", "grouped"])])] if both_splits else []
if not views or Path(earlier_dir).resolve() != committed.resolve():
    views.append((Path(earlier_dir), replication.load(earlier_dir)))
for split_dir, split_grid in views:
    gprof = replication.profile_of(split_dir)  # each grid's intervals from its own profile
    by_seed = replication.split_difference(split_grid)
    by_image = pd.concat([replication.split_difference_by_image(split_dir, split_grid, m,
                                                                gprof["bootstrap_resamples"])
                          for m in config.VARIANTS])  # fmt: skip
    text = "\n".join(f"- {findings.split_difference_sentence(m, r)} "
                     f"{findings.split_by_image_sentence(m, by_image)}"
                     for m, r in by_seed.iterrows())  # fmt: skip
    if split_dir is committed:
        compared = conv[conv["split"].isin(["paper", "grouped"])
                        & conv["seed"].isin(split_grid.loc[split_grid["split"] == "grouped",
                                                           "seed"])]  # fmt: skip
        display(Markdown(text + "\n\n" + findings.compared_runs_caveat(
            compared, "so part of the difference may be how far each run got")))  # fmt: skip
    else:
        lead = ("For contrast, the earlier grid" if both_splits else
                f"The grouped split has no {int(prof['image_size'])} px run of both models yet. "
                "The earlier grid")  # fmt: skip
        display(Markdown(
            f"{lead} (`{split_dir.name}`: {int(gprof['image_size'])} px, at most "
            f"{gprof['max_epochs']} epochs, {split_grid['seed'].nunique()} seeds per split) "
            "gives:\n\n" + text + "\n\n"
            + findings.fit_sentence(split_grid, paper.reported()["training"])
        ))  # fmt: skip
    display(by_image.round(4))

# %% [markdown]
# ### How far from the paper's fine-tuned models?
#
# The runs above start from random weights, the paper's from ImageNet: the
# numbers are not comparable, and are set against each other only to measure
# the distance.

# %% tags=["hide-input"]
dist = replication.distance_from_paper(frame)
display(Markdown("\n".join(f"- {findings.distance_sentence(m, r)}" for m, r in dist.iterrows()
                           if r["seeds"])))  # fmt: skip

# %% tags=["hide-input"]
fig = plots.replication_runs(frame)
if figures_dir:
    _ = plots.save(fig, figures_dir, "replication_runs")
glue("replication_runs", fig, display=False)

# %% [markdown]
# ```{glue:figure} replication_runs
# :name: replication-runs
#
# Test accuracy of every converged-grid run on the real data, by split and
# model (dots: seeds).
# ```

# %% [markdown]
# ### Figures 1-5 on the real data (paper's split, first seed)

# %% tags=["hide-input"]
seed = int(frame.loc[frame["split"] == "paper", "seed"].min())
have = {v: replication.run_of(frame, "paper", seed, v) for v in config.VARIANTS
        if not frame[(frame["split"] == "paper") & (frame["seed"] == seed)
                     & (frame["model"] == v)].empty}  # fmt: skip
hist = {v: replication.full_history(committed, f) for v, f in have.items()}
gap = paper.reported()["training"]["final_accuracy_gap"]
glue("real_fig1", plots.accuracy_curves(hist), display=False)
glue("real_fig2", plots.loss_curves(hist), display=False)
glue("real_fig3", plots.accuracy_gap(hist, gap), display=False)
for v in config.VARIANTS:
    m = evaluation.read_metrics(have[v]) if v in have else None
    glue(f"real_fig4_{v}", plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v])
         if m else Markdown(f"(no {plots.MODEL_LABEL[v]} run yet)"), display=False)  # fmt: skip
    drawn = [have[v] / f"figure5_gradcam.{e}" for e in ("jpg", "png")] if v in have else []
    drawn = [f for f in drawn if f.is_file()]
    glue(f"real_fig5_{v}", Image(filename=str(drawn[0])) if drawn else
         Markdown("(no Grad-CAM figure exported)"), display=False)  # fmt: skip
stages = hist[next(iter(hist))].groupby("stage", sort=False)["epoch"].max()
glue("stage_ends", ", ".join(f"{e} ({s})" for s, e in stages.items()), display=False)

# %% [markdown]
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
# ### What do the heatmaps look at?
#
# The real data has no lesion masks, so the paper's "focuses on
# tumor-affected regions" cannot be checked image by image. Two numbers
# stand in, over every test image, each against random heatmaps of the same
# coarseness (7x7 noise, upsampled): the share of the heatmap inside the
# brain (a mask from thresholding the slice, holes filled), and a deletion
# curve: test accuracy as the most salient pixels are blanked. A heatmap
# that finds what the model relies on makes accuracy fall faster than a
# random one.

# %% tags=["hide-input"]
sal = replication.saliency_table(frame)
if sal.empty:
    display(Markdown("(no run's `saliency.json` exported yet: `brainlib analyse`)"))
    glue("deletion", Markdown("(no deletion curves yet)"), display=False)
else:
    display(Markdown(findings.saliency_sentence(sal)))
    glue("deletion", plots.deletion_curves(sal), display=False)
    display(sal.drop(columns=["deletion_curve"]).groupby(["model", "method"], sort=False)
            .mean(numeric_only=True).drop(columns=["seed"]).round(3))  # fmt: skip

# %% [markdown]
# ```{glue:figure} deletion
# :name: real-deletion
#
# Deletion curves on the real test images (mean over runs): accuracy as the
# most salient pixels of each heatmap are blanked.
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
built = runs.read_meta(folders["se"])
display(Markdown(f"```{{note}}\n{findings.weights_caveat(built['profile'], built['device'])}\n```"))
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
# 1. Train one more seed of the converged grid (`make converged GRID="paper:45"`,
#    about two hours on two cores, with `--set seeds=42,43,44,45` in the
#    profile), then `brainlib evaluate`, `brainlib analyse` and `brainlib export`
#    with `--profile real224 --runs _build/real224/runs --partial`, and
#    rebuild: which sentences above change?
# 2. `replication.pooled_se_vs_base` resamples whole near-duplicate clusters.
#    Call `brainlib.pooled.paired_difference` on the same per-image scores
#    with `clusters=None` (every image its own unit): how much narrower is the
#    interval, and why is the clustered one the honest one?
# 3. `runs.convergence` judges the training accuracy of the best weights in
#    inference mode (`fit.json`). Call it without `fitted_accuracy`, so that it
#    reads the accuracy Keras logged during training: which runs would no
#    longer count as converged, and why is the logged number lower?
