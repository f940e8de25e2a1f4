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
# # Grad-CAM: where do the models look? (Figure 5)
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/brainlib/brainlib/blob/main/notebooks/06_gradcam.ipynb)
# [![Launch Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/brainlib/brainlib/main?labpath=notebooks/06_gradcam.ipynb)
#
# ## Overview
#
# 1. Grad-CAM written out with `tf.GradientTape`, checked against
#    tf-keras-vis.
# 2. Figure 5: Grad-CAM and Grad-CAM++ on correct and wrong test images.
# 3. Where the heatmaps point: on the phantoms, against the known lesions.
#
# ## Prerequisites
#
# | Concept | Importance | Where |
# | --- | --- | --- |
# | Chapter 3's trained runs | Necessary | Chapter 3 (trained here if missing) |
# | Gradients with `tf.GradientTape` | Helpful | [keras-io: Grad-CAM](https://keras.io/examples/vision/grad_cam/) |
#
# **Time to run**: under a minute once chapter 3's runs exist.
#
# Grad-CAM (Selvaraju et al., 2017) weights the channels of a convolutional
# feature map by the average gradient of a class score with respect to each
# of them, sums them, and keeps the positive part: a coarse map of where the
# evidence for that class lies. Grad-CAM++ (Chattopadhay et al., 2018) weights
# the gradients pixel by pixel, which spreads the map over several regions.
# Both are computed at the backbone's last feature map, `post_relu`, for the
# predicted class (tf-keras-vis), and drawn over the test image.
#
# The paper shows one glioma and concludes that the model "primarily focuses
# on tumor-affected regions". Below: for each model and each class, test
# images it classified correctly and, where there are any, wrongly.

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
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from brainlib import config, evaluation, gradcam, plots, runs, training
from brainlib.data import resolve_data_dir

P = config.load_profile(profile, **overrides)
root = resolve_data_dir(P, data_dir)
# chapters 3-4's runs and predictions (made here if this chapter runs on its own)
training.train_grid(P, runs_dir, data_dir, weights=weights, verbose=0, progress=True)
evaluation.evaluate_grid(P, runs_dir, data_dir)
folders = runs.seed_runs(runs_dir, P)
trained = {v: runs.load_trained_model(f, float32=True) for v, f in folders.items()}
predictions = {v: evaluation.read_predictions(f) for v, f in folders.items()}
phantoms = P.dataset == "phantoms"

# %% [markdown]
# ## Grad-CAM by hand
#
# For a class score $y^c$ (before the softmax) and the feature maps $A^k$ of
# `post_relu`: the weight of channel $k$ is the mean gradient
# $\alpha_k = \frac{1}{HW}\sum_{i,j} \partial y^c / \partial A^k_{ij}$, and
# the map is $\mathrm{ReLU}(\sum_k \alpha_k A^k)$. One `tf.GradientTape`
# does it:

# %% tags=["method"]
import keras
import tensorflow as tf


def grad_cam(model, images, class_index, layer="post_relu"):
    """Grad-CAM maps (N x h x w, at the resolution of ``layer``) for one class."""
    head = model.get_layer("predictions")
    softmax, head.activation = head.activation, keras.activations.linear  # score before softmax
    try:
        grab = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
        with tf.GradientTape() as tape:
            maps, scores = grab(images, training=False)
            score = scores[:, class_index]
        grads = tape.gradient(score, maps)  # d y^c / d A^k_ij
    finally:
        head.activation = softmax
    alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one weight per channel
    return tf.nn.relu(tf.reduce_sum(alpha * maps, axis=-1)).numpy()  # ReLU(sum_k alpha_k A^k)


# %% [markdown]
# The same maps from tf-keras-vis, the library used for the figures below, for
# this build's SE model (both before upsampling). tf-keras-vis walks back from
# a layer that is not a convolution to the last `Conv2D` before it unless told
# not to; without `seek_penultimate_conv_layer=False` its maps would be those
# of `conv5_block3_3_conv`, before the last residual sum and BatchNorm-ReLU.

# %%
from tf_keras_vis.gradcam import Gradcam
from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
from tf_keras_vis.utils.scores import CategoricalScore

from brainlib.data.tfdata import preprocess

first = predictions["se"].iloc[:8]  # eight test images, every class as the target
images = preprocess(gradcam.load_images([str(root / p) for p in first["path"]], P.image_size))
explainer = Gradcam(trained["se"], model_modifier=ReplaceToLinear(), clone=True)
peak, gap = 0.0, 0.0
for k in range(len(config.CLASSES)):
    by_hand = grad_cam(trained["se"], images, k)
    library = explainer(
        CategoricalScore([k] * len(first)), images.numpy(), penultimate_layer="post_relu",
        seek_penultimate_conv_layer=False,  # else it silently moves to the last Conv2D layer
        normalize_cam=False, expand_cam=False,
    )  # fmt: skip
    peak, gap = max(peak, float(np.max(library))), max(gap, float(np.abs(by_hand - library).max()))
print(f"{len(first)} images x {len(config.CLASSES)} classes, maps of {by_hand.shape[1:]} cells: "
      f"largest value {peak:.4g}, largest difference by hand vs tf-keras-vis {gap:.1e}")  # fmt: skip

# %% [markdown]
# The library then upsamples the map to the image, and Grad-CAM++ (which
# weights the gradients pixel by pixel) comes with it; both are used from
# here on.

# %%
for v, model in trained.items():
    picks = gradcam.pick_gallery(predictions[v], per_class=1, seed=P.seed)
    items = gradcam.gallery_items(model, predictions[v], root, picks, with_masks=phantoms)
    fig = plots.gradcam_figure(items, f"Figure 5. Grad-CAM and Grad-CAM++: {plots.MODEL_LABEL[v]}")
    _ = plots.save(fig, folders[v] / "figures", "figure5_gradcam")

# %% [markdown]
# ## Do the heatmaps find the lesion? (phantoms only)
#
# On the phantoms the lesion masks are known, so localisation can be measured
# instead of judged by eye: the share of each heatmap's mass inside the
# lesion (*energy in mask*), and whether its peak falls on the lesion
# (*pointing game*), over every test image with a lesion. Random smooth
# heatmaps on the same masks are the baseline; a heatmap spread evenly would
# score the mask's area fraction.

# %%
if phantoms:
    localisation = pd.concat(
        {
            plots.MODEL_LABEL[v]: gradcam.localisation_summary(
                model, predictions[v], root, seed=P.seed
            )
            for v, model in trained.items()
        }
    )
    display(Markdown(gradcam.localisation_sentence(localisation)))
    display(localisation)
else:
    print("The real data has no lesion masks: localisation is scored on the phantoms only.")

# %% [markdown]
# Read this table before trusting Figure 5: a heatmap that lands on the
# lesion no more often than a random one shows where the gradient flows, not
# where the tumour is. A model can classify most test images correctly
# without its heatmaps landing on the lesion: a correct label is no proof that
# the model looked at the lesion, and one well-placed heatmap (the paper's
# single glioma) is no evidence either.

# %% [markdown]
# ## Exercises
#
# Write your answer in the empty cell below each exercise; the solution
# is folded away under it (click to open).

# %% [markdown]
# ### Exercise 1
#
# In Grad-CAM, replace the weights `alpha` by ones: what is left is the
# class-agnostic "average activation" of `post_relu`. Does that map change
# with the class, as Grad-CAM's maps do?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
activations = keras.Model(trained["se"].inputs, trained["se"].get_layer("post_relu").output)
average = tf.nn.relu(tf.reduce_sum(activations(images, training=False), axis=-1)).numpy()
maps = [grad_cam(trained["se"], images, k) for k in range(len(config.CLASSES))]
spread = max(float(np.abs(a - b).max()) for a in maps for b in maps)
print(f"the average activation has one map per image, {average.shape[1:]}; Grad-CAM's "
      f"maps for different classes differ by up to {spread:.3g}")  # fmt: skip

# %% [markdown]
# ### Exercise 2
#
# Take Grad-CAM one block earlier, at `conv5_block2_out`. What resolution do
# the maps have, and why is it the same as at `post_relu`?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
earlier = grad_cam(trained["se"], images, 0, layer="conv5_block2_out")
print(f"conv5_block2_out: {earlier.shape[1:]}; post_relu: {by_hand.shape[1:]} (ResNet50V2's "
      "last stage keeps its resolution: it downsamples at the end of conv4)")  # fmt: skip

# %% [markdown]
# ### Exercise 3
#
# On the phantoms, raise the pointing game's `tolerance` in
# `gradcam.localisation_summary` from 2 to 8 pixels: how much of the score is
# owed to the tolerance, for the models and for random heatmaps?

# %%
# Write your code here.

# %% tags=["solution", "hide-cell"]
if phantoms:
    display(
        pd.concat(
            {
                f"tolerance {t} px": gradcam.localisation_summary(
                    trained["se"], predictions["se"], root, tolerance=t, seed=P.seed
                )
                for t in (2, 8)
            }
        )
    )
else:
    print("The real data has no lesion masks: run this chapter on a phantom profile.")
