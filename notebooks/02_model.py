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
# # The models: ResNet50V2 with and without squeeze-and-excitation
#
# Both models start from ResNet50V2 without its classifier. The paper
# freezes every layer before `conv5_block1_preact_bn` and trains the rest
# (the last residual stage) together with a new head:
#
# 1. the **SE block** (SE model only);
# 2. three convolutions of 32, 64 and 128 filters (3x3, ReLU), each followed
#    by batch normalisation and 2x2 max pooling;
# 3. global average pooling, a dense layer of 128 units (ReLU), dropout, and a
#    four-way softmax.
#
# The base model is the same without step 1.
#
# ## What the SE block computes
#
# Squeeze-and-excitation (Hu, Shen & Sun, 2018) re-weights the channels of a
# feature map $x \in \mathbb{R}^{H \times W \times C}$ (here the backbone's
# $7 \times 7 \times 2048$ output):
#
# $$z_c = \frac{1}{HW} \sum_{h,w} x_{h,w,c} \qquad \text{(squeeze)}$$
#
# $$s = \sigma\left(W_2\, \mathrm{ReLU}(W_1 z + b_1) + b_2\right),\quad
#   W_1 \in \mathbb{R}^{C/r \times C},\ W_2 \in \mathbb{R}^{C \times C/r} \qquad \text{(excitation)}$$
#
# $$y_{h,w,c} = s_c\, x_{h,w,c} \qquad \text{(scale)}$$
#
# With $C = 2048$ and the reduction ratio $r = 16$ it adds
# $2C^2/r + C/r + C = 526{,}464$ parameters: a learned, input-dependent gain
# per channel, computed from the whole image.

# %% tags=["remove-cell"]
# On Colab, or wherever brainlib is not installed yet, install it first.
# The data comes with the profile: phantoms are generated, the real data is
# downloaded with kagglehub (a Kaggle account may be needed).
import importlib.util

if importlib.util.find_spec("brainlib") is None:
    # %pip install -q "brainlib @ git+https://github.com/brainlib/brainlib"
    pass

# %% tags=["parameters"]
profile = "demo"
data_dir = None
runs_dir = "../_build/demo/runs"
weights = None
overrides = {}

# %%
import pandas as pd

from brainlib import config, models, training

P = config.load_profile(profile, **overrides)
# The architecture does not depend on the weights: build without downloading any.
built = {v: training.build_for_profile(P, v, weights="none") for v in models.VARIANTS}
pd.DataFrame({v: models.parameter_counts(m) for v, m in built.items()})

# %% [markdown]
# The head of the SE model, layer by layer (the backbone in one row):

# %%
models.summary_table(built["se"])

# %% [markdown]
# ## Choices the paper leaves open
#
# - **Padding** of the head's convolutions: `same`. At 224 the backbone's
#   map is 7x7; valid 3x3 convolutions with pooling would shrink it below 1x1.
# - **Flatten or global pooling** before the dense layer: global average
#   pooling. At 224 the map is 1x1x128 after three poolings, where the two are
#   the same function with the same parameters; global pooling keeps the head
#   the same size for the smaller images of the demo and from-scratch profiles.
# - **Dropout rate**: 0.5 (profile field `dropout`).
#
# The frozen boundary, checked on the built model:

# %%
m = built["se"]
names = [layer.name for layer in m.layers]
cut = names.index(models.FREEZE_BOUNDARY)
pd.DataFrame(
    [{"layer": layer.name, "trainable": layer.trainable} for layer in m.layers[cut - 2 : cut + 3]]
)
