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

from brainlib import config, evaluation, gradcam, plots, training
from brainlib.data import resolve_data_dir

P = config.load_profile(profile, **overrides)
root = resolve_data_dir(P, data_dir)
folders = training.seed_runs(runs_dir, P)
trained = {v: training.load_trained_model(f) for v, f in folders.items()}
predictions = {v: evaluation.read_predictions(f) for v, f in folders.items()}
phantoms = P.dataset == "phantoms"

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
(
    pd.concat(
        {
            plots.MODEL_LABEL[v]: gradcam.localisation_summary(
                model, predictions[v], root, seed=P.seed
            )
            for v, model in trained.items()
        }
    )
    if phantoms
    else "The real data has no lesion masks: localisation is scored on the phantoms only."
)

# %% [markdown]
# Read this table before trusting Figure 5: a heatmap that lands on the
# lesion no more often than a random one shows where the gradient flows, not
# where the tumour is. On the demo phantoms, trained from random weights, the
# heatmaps at `post_relu` find the lesion weakly at best, although the models
# classify most test images correctly: a correct label is no proof that the
# model looked at the lesion, and one well-placed heatmap (the paper's single
# glioma) is no evidence either.
