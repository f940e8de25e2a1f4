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
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/02_model.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/02_model.ipynb)
#
# ## Overview
#
# 1. What the squeeze-and-excitation block computes, in equations and in a
#    worked example small enough to check by hand.
# 2. The SE block and the paper's head written out in Keras, checked equal
#    to `brainlib.models`.
# 3. Shapes, parameter counts and the frozen boundary of both models.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | Convolutional networks, ResNet | Necessary | [Keras applications](https://keras.io/api/applications/resnet/) |
# | The Keras functional API | Helpful | [Keras guide](https://keras.io/guides/functional_api/) |
#
# **Time to run**: under a minute (it builds four ResNet50V2 models; no
# training).
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
import keras
import numpy as np
import pandas as pd

from brainlib import config, models

P = config.load_profile(profile, **overrides)

# %% [markdown]
# ## The SE block and the head, in code
#
# Both are a few Keras layers. The copies below are what `brainlib.models`
# builds (a test and the check after them hold the two to the same outputs);
# every layer has a name, so Grad-CAM and the frozen boundary can find it.

# %% tags=["method"]
from keras import layers


def se_block(x, ratio=16, name="se"):
    channels = x.shape[-1]
    # squeeze: one mean per channel
    z = layers.GlobalAveragePooling2D(name=f"{name}_squeeze")(x)
    # excite: W1, b1 and ReLU, then W2, b2 and a sigmoid give one gain in (0, 1) per channel
    s = layers.Dense(channels // ratio, activation="relu", name=f"{name}_reduce")(z)
    s = layers.Dense(channels, activation="sigmoid", name=f"{name}_expand")(s)
    s = layers.Reshape((1, 1, channels), name=f"{name}_reshape")(s)
    # scale: each channel of x by its gain
    return layers.Multiply(name=f"{name}_scale")([x, s])


def paper_head(x, dropout=0.5, n_classes=4):
    for filters in (32, 64, 128):  # "same" padding: a 7x7 map survives three blocks
        conv = layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"head_conv{filters}"
        )
        x = conv(x)
        x = layers.BatchNormalization(name=f"head_bn{filters}")(x)
        x = layers.MaxPooling2D(padding="same", name=f"head_pool{filters}")(x)  # 7 > 4 > 2 > 1
    x = layers.GlobalAveragePooling2D(name="head_gap")(x)
    x = layers.Dense(128, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    # float32 output, also under mixed precision, for a stable softmax
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)


# %% [markdown]
# Same weights, same outputs: the notebook's SE block and head against the
# package's, on random 7x7x2048 feature maps (what `post_relu` gives at 224).

# %%
features = keras.Input((7, 7, 2048))
ours = keras.Model(features, paper_head(se_block(features)))
package = keras.Model(features, models.paper_head(models.se_block(features)))
package.set_weights(ours.get_weights())
maps = np.random.default_rng(0).normal(size=(2, 7, 7, 2048)).astype("float32")
gap = np.abs(ours.predict(maps, verbose=0) - package.predict(maps, verbose=0)).max()
assert gap <= 1e-6, gap
print(f"largest difference between the notebook's and the package's outputs: {gap:.1e}")

# %% [markdown]
# ## Squeeze, excite, rescale: a worked example
#
# A 2x2 map with 4 channels and a reduction ratio of 2, with weights chosen by
# hand, computed first with NumPy, line by line as in the equations above,
# then with `se_block`:

# %%
x = np.arange(16, dtype="float32").reshape(1, 2, 2, 4) / 10  # channel c holds c/10, c/10 + 0.4, ...
W1 = np.array([[1, 0], [0, 1], [1, 0], [0, -1]], "float32")  # C x C/r
b1 = np.zeros(2, "float32")
W2 = np.array([[1, -1, 0, 2], [0, 1, -1, 1]], "float32")  # C/r x C
b2 = np.array([0, 0, 0, -1], "float32")
z = x.mean(axis=(1, 2))  # squeeze
s = 1 / (1 + np.exp(-(np.maximum(z @ W1 + b1, 0) @ W2 + b2)))  # excite
y = x * s[:, None, None, :]  # rescale
inp = keras.Input((2, 2, 4))
tiny = keras.Model(inp, se_block(inp, ratio=2))
tiny.set_weights([W1, b1, W2, b2])
print("z (squeeze) =", z.round(3), "\ns (gains)   =", s.round(3))
print("y[0, :, :, c] per channel:\n", np.moveaxis(y[0], -1, 0).round(3))
print("se_block agrees:", np.allclose(tiny.predict(x, verbose=0), y, atol=1e-6))

# %% [markdown]
# Channel 3 has the largest mean, yet its gain is the smallest: the gains
# are learned, input-dependent weights, not the channel means themselves.
#
# ## The two models at the paper's size
#
# At 224x224 the backbone's output, `post_relu`, is 7x7x2048, and the SE block
# keeps that shape while passing through a 2048-vector and a 128-vector:

# %%
at_224 = {v: models.build_model(v, weights="none", input_shape=(224, 224, 3))
          for v in config.VARIANTS}  # fmt: skip
se_names = ["post_relu", "se_squeeze", "se_reduce", "se_expand", "se_reshape", "se_scale",
            "head_pool32", "head_pool64", "head_pool128", "predictions"]  # fmt: skip
pd.DataFrame(
    {"output shape": [str(tuple(at_224["se"].get_layer(n).output.shape)) for n in se_names]},
    index=se_names,
)

# %%
counts = pd.DataFrame({v: models.parameter_counts(m) for v, m in at_224.items()})
counts["SE adds"] = counts["se"] - counts["base"]
counts

# %% [markdown]
# The SE block adds $2 \cdot 2048^2/16 + 128 + 2048 = 526{,}464$ parameters,
# all of them trainable; the frozen part (8,594,368 parameters, before
# `conv5_block1_preact_bn`) is the same in both models.
#
# This book's profile builds the models at its own image size; the
# architecture does not depend on the weights, so they are built here
# without downloading any:

# %%
built = {v: models.build_for_profile(P, v, weights="none") for v in config.VARIANTS}
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

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# Change the reduction ratio to $r = 8$. How many parameters does the SE
# block add on the 7x7x2048 map now? Check against $2C^2/r + C/r + C$.

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
maps_in = keras.Input((7, 7, 2048))
C, r = 2048, 8
added = keras.Model(maps_in, se_block(maps_in, ratio=r)).count_params()
print(f"r = {r}: the SE block adds {added:,} parameters; 2C^2/r + C/r + C = "
      f"{2 * C**2 // r + C // r + C:,}")  # fmt: skip

# %% [markdown]
# ### Exercise 2
#
# In the worked example, set `b2` to zeros. Which channel's gain changes, and
# why only that one?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
s_zero = 1 / (1 + np.exp(-(np.maximum(z @ W1 + b1, 0) @ W2)))  # b2 = 0
print("gains with b2:", s.round(3), "\ngains with b2 = 0:", s_zero.round(3))
print("only channel 3 had a bias (-1), so only its gain moves")

# %% [markdown]
# ### Exercise 3
#
# Move the frozen boundary: with `trainable_from=None` every layer trains (the
# real-data profiles do this). How many trainable parameters does the SE model
# have then, against the paper's frozen trunk?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
shape = (P.image_size, P.image_size, 3)
frozen = models.build_model("se", weights="none", input_shape=shape)
everything = models.build_model("se", weights="none", input_shape=shape, trainable_from=None)
pd.DataFrame({"paper's frozen trunk": models.parameter_counts(frozen),
              "every layer trained": models.parameter_counts(everything)})  # fmt: skip
