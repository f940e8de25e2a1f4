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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/01_data.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/01_data.ipynb)
#
# ## Overview
#
# 1. The dataset of the profile, checked against the project's manifest.
# 2. The preprocessing, with the aspect-kept resize written out in Pillow.
# 3. The stratified 80/10/10 split, and the grouped and deduplicated splits.
# 4. The duplicate audit: exact copies, near duplicates by perceptual hash
#    (written out), and how many test images have a copy in training.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | Training, validation and test sets | Necessary | [scikit-learn: cross-validation](https://scikit-learn.org/stable/modules/cross_validation.html) |
# | NumPy arrays and Pillow images | Helpful | [Pillow tutorial](https://pillow.readthedocs.io/en/stable/handbook/tutorial.html) |
#
# **Time to run**: under a minute on the `demo` profile with 2 CPU cores;
# about two minutes on the real data (hashing 3,096 images).
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
# Every image is scaled to fit the profile's `image_size` (224 in the paper)
# with its aspect ratio kept and the rest padded black, then given three
# channels and ResNet50V2's scaling to [-1, 1]. Training images are flipped
# left-right at random, with a seed per epoch, so a resumed run sees the same
# batches as an uninterrupted one. The resize, in Pillow:

# %% tags=["method"]
import numpy as np
from PIL import Image


def pad_resize(image, size):
    """Fit ``image`` into size x size, its aspect ratio kept, the rest black."""
    width, height, side = np.float32(image.width), np.float32(image.height), np.float32(size)
    ratio = max(width / side, height / side)  # float32, as TensorFlow computes it
    w, h = width / ratio, height / ratio
    small = image.convert("RGB").resize((int(w), int(h)), Image.Resampling.BILINEAR)  # floored
    canvas = Image.new("RGB", (size, size))  # black
    canvas.paste(small, (int((side - w) // 2), int((side - h) // 2)))
    return np.asarray(canvas)


# %% [markdown]
# The package does it in TensorFlow (`brainlib.data.tfdata.load_image`, with
# `tf.image.resize_with_pad`), inside the input pipeline, and the cell above
# copies its arithmetic: the scale in float32, both sides floored, the padding
# split evenly. On this profile's images (Pillow and TensorFlow round pixel
# values differently, so a difference well under one gray level is
# agreement):

# %%
from brainlib.data import tfdata

sample = ds.records[:: max(1, len(ds.records) // 24)]
gaps = [np.abs(pad_resize(Image.open(r.path), P.image_size).astype(int)
               - tfdata.load_image(str(r.path), P.image_size).numpy().astype(int)).mean()
        for r in sample]  # fmt: skip
white = Image.new("RGB", (256, 256), "white")
line = int((pad_resize(white, 224)[:, 112, 0] == 0).sum())
print(f"{len(sample)} images at {P.image_size} px: mean absolute difference "
      f"{np.mean(gaps):.2f} gray levels (largest {np.max(gaps):.2f})")  # fmt: skip
ratio = np.float32(256) / (np.float32(256) / np.float32(224))
print(f"In float32, 256 / (256 / 224) = {ratio:.5f}: a 256 x 256 image becomes")
print(f"{224 - line} x {224 - line} pixels and {line} black line(s) at 224 px, where the paper")
print("resized to 224 x 224.")

# %% [markdown]
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
#
# The perceptual hash (Zauner 2010, as `imagehash.phash` computes it) keeps
# the coarse shape of an image and drops its fine detail and its brightness
# scale: shrink the image to 32x32 gray pixels, take the 2-D discrete cosine
# transform, keep its 8x8 lowest frequencies, and set one bit per frequency:
# above their median or not. Two images are near duplicates when few of the 64
# bits differ (the Hamming distance).

# %% tags=["method"]
from scipy.fft import dctn


def phash(image, bits=8):
    """64 bits: the lowest 8x8 DCT frequencies of a 32x32 gray image, above their median."""
    gray = image.convert("L").resize((4 * bits, 4 * bits), Image.Resampling.LANCZOS)
    low = dctn(np.asarray(gray, dtype=float))[:bits, :bits]
    return (low > np.median(low)).flatten()


def hamming(a, b):
    return int(np.count_nonzero(a != b))


# %% [markdown]
# The audit (`brainlib.data.audit.fingerprint`) keeps each hash as a 64-bit
# integer; the bits above, read as a binary number, give the same integers:

# %%
same = [int("".join("1" if bit else "0" for bit in phash(Image.open(r.path).convert("RGB"))), 2)
        == audit.fingerprint(r).phash for r in sample]  # fmt: skip
print(f"{sum(same)} of {len(same)} hashes equal the audit's")

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

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# Raise the near-duplicate threshold from the profile's distance to 8. How
# many near-duplicate groups are there then, and how large is the largest?
# What does the calibration table above say about pairs at distance 8?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
wider = audit.audit_report(data.index_duplicates(ds.records, 8, fps=index.fingerprints), kinds)
print(f"distance <= {P.near_duplicate_distance}: {report['near']['groups']} groups, largest "
      f"{report['near']['largest_group']}; distance <= 8: {wider['near']['groups']} groups, "
      f"largest {wider['near']['largest_group']}")  # fmt: skip

# %% [markdown]
# ### Exercise 2
#
# Draw the split with another seed (7). How many test images have an exact or
# near duplicate in training under the paper's split now? Is the grouped split
# still free of them?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
seven = {kind: splits.make_split(ds.records, kind, 7, P.split_fractions,
                                 P.near_duplicate_distance, index)
         for kind in ("paper", "grouped")}  # fmt: skip
for kind, leak in audit.audit_report(index, seven)["splits"].items():
    print(f"{kind}, seed 7: {leak['test']['with_near_duplicate_in_train']} of "
          f"{leak['test']['images']} test images with a duplicate in training")  # fmt: skip

# %% [markdown]
# ### Exercise 3
#
# With `phash` and `hamming` from the method cell, compute the distance
# between the two images of the closest near-duplicate pair the audit found
# (`index.near_edges` lists them with their distance; where it is empty, take
# any two images). Does your distance equal the audit's?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
a, b, audit_distance = (index.near_edges[0] if index.near_edges else
                        (ds.records[0].relpath, ds.records[1].relpath, None))  # fmt: skip
bits = [phash(Image.open(ds.root / rel).convert("RGB")) for rel in (a, b)]
found = "not a near-duplicate pair" if audit_distance is None else f"{audit_distance}"
print(f"{a} and {b}: {hamming(*bits)} bits differ (the audit: {found})")
