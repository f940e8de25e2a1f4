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
# # The data, its split, and its leakage
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/v0.2.0/notebooks/01_data.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/v0.2.0?labpath=notebooks/01_data.ipynb)
#
# The paper trains on the Kaggle *Brain Tumors 256x256* dataset: 3,096 MRI
# slices in four folders (glioma, meningioma, no tumour, pituitary). It says
# the images were "randomly shuffled and divided" 80/10/10 into training,
# validation and test sets, resized to 224x224 "while preserving their
# original aspect ratios", and that the training images were augmented by
# horizontal flips.
#
# This chapter loads the data of the chosen profile, checks it against the
# project's manifest, draws the split, and audits it for duplicates: an image
# whose copy sits in the training set is not a fair test image.

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

from brainlib import config, data, paper, plots, runs
from brainlib.data import audit, splits
from brainlib.display import shown, table

P = config.load_profile(profile, **overrides)
ds = data.load_dataset(P, data_dir, allow_mismatch=True)
print(f"profile {P.name}: {len(ds.records)} images in the folder {ds.root.name}/")
print(ds.check.summary() if ds.check else "synthetic data: no manifest to check against")

# %% [markdown]
# ## Images per class
#
# The paper's counts are 901 glioma, 913 meningioma, 438 normal and 844
# pituitary images. The demo profile uses synthetic phantoms instead, the
# same number per class.

# %%
counts = data.class_counts(ds.records)
fig = plots.class_balance(counts, paper.reported()["dataset"])
pd.DataFrame({"images": counts, "paper": paper.reported()["dataset"]}).drop(
    index="total", errors="ignore"
)

# %% [markdown]
# The normal class is half the size of the others: a model that never said
# "normal" would still be right on 86% of the paper's images. This is why the
# split below is stratified by class, and why Tables 1-2 report each class.

# %%
fig = plots.sample_grid(ds.records, per_class=5, seed=P.seed)

# %% [markdown]
# ## Preprocessing
#
# Every image is scaled to fit 224x224 (the profile's `image_size`) with its
# aspect ratio kept and the rest padded black, then given three channels and
# ResNet50V2's scaling to [-1, 1] (`brainlib.data.pipeline`). Training images
# are flipped left-right at random, with a seed per epoch, so a resumed run
# sees the same batches as an uninterrupted one.
#
# ## The split
#
# The paper's split is random. Ours is stratified by class (each class split
# 80/10/10 on its own) with a fixed seed, which keeps the small normal class in
# proportion; the same seed always gives the same manifest, byte for byte.

# %%
index = data.index_duplicates(ds.records, P.near_duplicate_distance)
kinds = {
    kind: splits.make_split(
        ds.records, kind, P.seed, P.split_fractions, P.near_duplicate_distance, index
    )
    for kind in dict.fromkeys(["paper", "grouped", *(s for s in P.splits if s != "given")])
}
per_class = pd.concat(
    {kind: pd.DataFrame(splits.split_summary(ds.records, a)) for kind, a in kinds.items()},
    axis=1,
)
per_class.loc["total"] = per_class.sum()
per_class

# %% [markdown]
# ## Leakage: duplicates inside the dataset and across the split
#
# *Exact duplicates* have identical decoded pixels. *Near duplicates* have
# perceptual hashes (pHash, 64 bits) within a small Hamming distance. The
# threshold is calibrated below: for pairs at each distance, how alike are
# their pixels (correlation of 64x64 thumbnails)?

# %%
report = audit.audit_report(index, kinds)
summary = pd.DataFrame(
    {k: {m: report[k][m] for m in ("groups", "files_in_groups", "redundant_files",
                                   "largest_group", "mixed_label_groups")}
     for k in ("exact", "near")}
)  # fmt: skip
summary

# %%
pd.DataFrame(audit.distance_calibration(ds.records, index.fingerprints, max_distance=12))

# %% [markdown]
# What the two kinds look like, side by side: pairs whose decoded pixels are
# identical, then pairs that differ but whose pHashes lie within the
# threshold.

# %%
exact = [(g[0], g[1], "identical pixels") for g in index.exact_groups[:3]]
near = [(a, b, f"pHash distance {d}") for a, b, d in index.near_edges if d > 0][:3]
for title, pairs in (("Exact duplicates", exact), ("Near duplicates", near)):
    if pairs:
        fig = plots.duplicate_pairs(pairs, ds.root, f"{title} in the {P.name} data")
    else:
        print(f"{title}: none in the {P.name} data (the phantoms are drawn one by one).")

# %% [markdown]
# The threshold is the largest distance whose median thumbnail correlation
# stays at or above 0.9. How many validation and test images have a copy in
# training, under the paper's random split and under the *grouped* split,
# which keeps every duplicate group inside one subset?

# %%
flags = audit.write_duplicate_flags(runs.data_stage_dir(runs_dir, P), index, kinds)  # for export
leak = pd.DataFrame(
    [{"split": kind, "subset": sub, **report["splits"][kind][sub]}
     for kind in ("paper", "grouped") for sub in ("val", "test")]
)  # fmt: skip
shown(table(leak, {"split": "Split", "subset": "Subset", "images": "Images",
                   "with_exact_duplicate_in_train": "Exact duplicate in training",
                   "with_near_duplicate_in_train": "Exact or near duplicate in training",
                   "share_with_near_duplicate_in_train": "Share"}))  # fmt: skip

# %%
pd.DataFrame(report["near"]["cross_label_examples"])

# %% [markdown]
# Near-duplicate pairs that carry *different* labels (above) are the same
# slice filed under two tumour types: label noise that no model can get right
# on both copies. With the paper's random split, a test image with a copy in
# training measures memory, not generalisation; the replication chapter
# compares the two splits.
#
# ## Exercises
#
# 1. Raise the threshold: run this chapter with
#    `overrides = {"near_duplicate_distance": 8}` (the parameters cell, or
#    `brainlib run --set near_duplicate_distance=8`). How many near-duplicate
#    groups are there now, how large is the largest, and what does the
#    calibration table say about pairs at distance 8?
# 2. Change the split seed (`overrides = {"seed": 7}`): how many test images
#    have a near duplicate in training under the paper's split now? Is the
#    grouped split still free of them?
# 3. With the real data (`profile = "scratch"`), find a cross-label pair in
#    the table above and show it with `plots.duplicate_pairs([(a, b, "?")],
#    ds.root, "...")`. Which label would you trust?
