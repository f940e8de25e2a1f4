"""Grad-CAM and Grad-CAM++ heatmaps (tf-keras-vis) and their localisation on phantoms.

Heatmaps are taken at the backbone's last feature map, ``post_relu`` (7x7 at
224), for the predicted class, with the softmax replaced by a linear output
(``ReplaceToLinear``, as tf-keras-vis recommends), and upsampled to the image.
tf-keras-vis walks back from a named layer that is not a convolution to the
last ``Conv2D`` before it (``conv5_block3_3_conv``, before the residual sum and
the final BatchNorm-ReLU) unless ``seek_penultimate_conv_layer=False``; it is
passed, so the maps are those of ``post_relu`` itself.

On the phantom data the lesion masks are known, so localisation can be
scored instead of eyeballed:

- *energy in mask*: the share of the heatmap's total mass inside the lesion
  mask (a heatmap spread evenly scores the mask's area fraction);
- *pointing game* (Zhang et al., 2018): whether the heatmap's maximum falls
  inside the mask, dilated by ``tolerance`` pixels.

:func:`random_baseline` gives both scores for random smooth heatmaps on the
same masks; a model that looks at the lesion must beat it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from brainlib.config import CLASSES

LAYER = "post_relu"
METHODS = ("gradcam", "gradcam++")


def heatmaps(
    model,
    images_uint8: np.ndarray,
    class_indices: Sequence[int],
    method: str = "gradcam",
    layer: str = LAYER,
) -> np.ndarray:
    """Heatmaps (N x H x W, each scaled to [0, 1]) for ``class_indices``."""
    import tensorflow as tf
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    from brainlib.data.tfdata import preprocess

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    try:
        model.get_layer(layer)
    except ValueError as err:
        raise ValueError(f"model {model.name} has no layer {layer!r} for Grad-CAM") from err
    cls = Gradcam if method == "gradcam" else GradcamPlusPlus
    x = preprocess(tf.convert_to_tensor(images_uint8)).numpy()
    # The score is taken before the softmax (ReplaceToLinear). tf-keras-vis would clone the
    # model for that (seconds per call for ResNet50V2); the head's activation is swapped on
    # the model itself instead, and put back whatever happens.
    head = model.layers[-1]
    activation = head.activation
    try:
        explainer = cls(model, model_modifier=ReplaceToLinear(), clone=False)
        cams = explainer(
            CategoricalScore(list(map(int, class_indices))),
            x,
            penultimate_layer=layer,
            seek_penultimate_conv_layer=False,  # else it walks back to the last Conv2D
            normalize_cam=False,
            expand_cam=True,
        )
    finally:
        head.activation = activation
    cams = np.maximum(np.asarray(cams, dtype=np.float64), 0)
    peak = cams.reshape(len(cams), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(cams, peak, out=np.zeros_like(cams), where=peak > 0)


def energy_in_mask(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heatmap's mass inside ``mask`` (NaN for an empty heatmap)."""
    total = float(cam.sum())
    return float(cam[mask].sum()) / total if total > 0 else float("nan")


def pointing_hit(cam: np.ndarray, mask: np.ndarray, tolerance: int = 2) -> bool:
    """Whether the heatmap's maximum lies in ``mask`` dilated by ``tolerance`` pixels."""
    region = ndimage.binary_dilation(mask, iterations=tolerance) if tolerance else mask
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return bool(region[y, x])


def random_baseline(masks: Sequence[np.ndarray], seed: int = 0, repeats: int = 20,
                    sigma: float = 4.0, tolerance: int = 2) -> dict:  # fmt: skip
    """Mean energy-in-mask and pointing-game hit rate of random smooth heatmaps."""
    rng = np.random.default_rng(seed)
    energy, hits = [], []
    for mask in masks:
        for _ in range(repeats):
            cam = ndimage.gaussian_filter(rng.random(mask.shape), sigma)
            cam = cam - cam.min()
            energy.append(energy_in_mask(cam, mask))
            hits.append(pointing_hit(cam, mask, tolerance))
    return {"energy_in_mask": float(np.mean(energy)), "pointing_game": float(np.mean(hits))}


def resized_masks(paths: Sequence[str], size: int) -> np.ndarray:
    """Phantom lesion masks, padded and resized exactly as their images are
    (:func:`brainlib.data.tfdata.pad_resize`), then thresholded at half."""
    import tensorflow as tf

    from brainlib.data.phantoms import load_mask
    from brainlib.data.tfdata import pad_resize

    out = []
    for p in paths:
        m = load_mask(p).astype(np.uint8)[..., None] * 255
        out.append(pad_resize(tf.constant(m), size).numpy()[..., 0] > 127)
    return np.stack(out)


def localisation_scores(model, images_uint8, masks, class_indices, tolerance: int = 2):
    """Per image and method: energy in mask and pointing-game hit (lesion images only)."""
    import pandas as pd

    rows = []
    keep = [i for i, m in enumerate(masks) if m.any()]
    for method in METHODS:
        cams = batched_heatmaps(
            model, images_uint8[keep], [class_indices[i] for i in keep], method, batch_size=8
        )  # a tape holds every activation
        for j, i in enumerate(keep):
            rows.append(
                {
                    "image": i,
                    "method": method,
                    "energy_in_mask": energy_in_mask(cams[j], masks[i]),
                    "pointing_hit": pointing_hit(cams[j], masks[i], tolerance),
                    "mask_fraction": float(masks[i].mean()),
                }
            )
    return pd.DataFrame(rows)


def pick_gallery(frame, per_class: int = 1, seed: int = 0) -> list[int]:
    """Row indices of ``predictions`` to show: per class, correct and (if any) wrong ones."""
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in CLASSES:
        for correct in (True, False):
            rows = frame.index[(frame["class"] == cls) & ((frame["predicted"] == cls) == correct)]
            if len(rows):
                chosen.extend(rng.choice(rows, size=min(per_class, len(rows)), replace=False))
    return [int(i) for i in chosen]


def load_images(paths: Sequence[str], size: int) -> np.ndarray:
    """Images as the model sees them before scaling: padded, resized uint8 (N x size x size x 3)."""
    import tensorflow as tf

    from brainlib.data.tfdata import load_image

    return np.stack([load_image(tf.constant(str(p)), size).numpy() for p in paths])


def gallery_items(model, frame, root, indices: Sequence[int], with_masks: bool = False) -> list:
    """Items for :func:`brainlib.plots.gradcam_figure`: image, both heatmaps, caption, mask."""
    from pathlib import Path

    size = int(model.input.shape[1])
    rows = frame.loc[list(indices)]
    paths = [str(Path(root) / p) for p in rows["path"]]
    images = load_images(paths, size)
    predicted = [CLASSES.index(c) for c in rows["predicted"]]
    cams = {m: heatmaps(model, images, predicted, m) for m in METHODS}
    masks = resized_masks(paths, size) if with_masks else [None] * len(paths)
    items = []
    for j, (_, row) in enumerate(rows.iterrows()):
        mark = "correct" if row["class"] == row["predicted"] else "WRONG"
        items.append(
            {
                "image": images[j],
                "gradcam": cams["gradcam"][j],
                "gradcam++": cams["gradcam++"][j],
                "mask": masks[j],
                "caption": f"{row['class']} -> {row['predicted']} ({mark})",
            }
        )
    return items


def localisation_summary(model, frame, root, tolerance: int = 2, seed: int = 0, target="true"):
    """Energy in mask and pointing game of the model's heatmaps against random heatmaps.

    Uses every test image with a lesion (phantom data only: needs the masks).
    Heatmaps explain the true class (``target="true"``, as in the pointing
    game) or the predicted one (``"predicted"``).
    One row per method plus ``random``; columns ``energy_in_mask``,
    ``pointing_game`` and ``images``.
    """
    from pathlib import Path

    import pandas as pd

    size = int(model.input.shape[1])
    rows = frame[frame["class"] != "normal"]
    paths = [str(Path(root) / p) for p in rows["path"]]
    images = load_images(paths, size)
    masks = resized_masks(paths, size)
    column = "class" if target == "true" else "predicted"
    explained = [CLASSES.index(c) for c in rows[column]]
    scores = localisation_scores(model, images, masks, explained, tolerance)
    summary = scores.groupby("method").agg(
        energy_in_mask=("energy_in_mask", "mean"),
        pointing_game=("pointing_hit", "mean"),
        images=("image", "count"),
    )
    base = random_baseline([m for m in masks if m.any()], seed=seed, tolerance=tolerance)
    summary.loc["random"] = [
        base["energy_in_mask"],
        base["pointing_game"],
        int(masks.any(axis=(1, 2)).sum()),
    ]
    summary["mask_area_fraction"] = float(np.mean([m.mean() for m in masks if m.any()]))
    return pd.DataFrame(summary)


def localisation_sentence(summary) -> str:
    """What the heatmaps of each model find on the phantoms, against random heatmaps.

    ``summary`` is :func:`brainlib.gradcam.localisation_summary` per model,
    concatenated with the model's label as the outer index level.
    """
    out = []
    for model, rows in summary.groupby(level=0, sort=False):
        rows = rows.droplevel(0)
        rand = rows.loc["random"]
        best = rows.drop(index="random")["energy_in_mask"].idxmax()
        ratio = rows.loc[best, "energy_in_mask"] / rand["energy_in_mask"]
        verdict = (
            "finds the lesion" if ratio >= 1.5
            else "finds the lesion weakly" if ratio >= 1.1
            else "does no better than random heatmaps"
        )  # fmt: skip
        out.append(
            f"- **{model}**: {best} {verdict}: {100 * rows.loc[best, 'energy_in_mask']:.1f}% of "
            f"its heatmap mass lies on the lesion against {100 * rand['energy_in_mask']:.1f}% for "
            f"random heatmaps ({ratio:.1f} times); its peak hits the lesion in "
            f"{100 * rows.loc[best, 'pointing_game']:.0f}% of {int(rand['images'])} images "
            f"(random: {100 * rand['pointing_game']:.0f}%)."
        )
    return "\n".join(out)


# ------------------------------------------------- what a heatmap looks at, without masks


def brain_mask(image_uint8: np.ndarray, level: float = 0.1) -> np.ndarray:
    """Where the head is in an MRI slice: the real data has no lesion masks, but its
    background (and the padding) is black. Pixels brighter than ``level`` of the
    image's brightest, holes filled, the largest connected region kept."""
    gray = np.asarray(image_uint8, float)
    gray = gray.mean(axis=-1) if gray.ndim == 3 else gray
    if gray.max() <= 0:
        return np.zeros(gray.shape, bool)
    regions, n = ndimage.label(ndimage.binary_fill_holes(gray > level * gray.max()))
    if n == 0:
        return np.zeros(gray.shape, bool)
    sizes = ndimage.sum(np.ones_like(gray), regions, index=range(1, n + 1))
    return regions == 1 + int(np.argmax(sizes))


def random_heatmaps(n: int, size: int, grid: int = 7, seed: int = 0) -> np.ndarray:
    """Heatmaps of the same coarseness as Grad-CAM's at ``post_relu`` (``grid`` x ``grid``
    uniform noise, upsampled bilinearly to ``size``), scaled to [0, 1]: the baseline."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (n, grid, grid))
    cams = np.stack([ndimage.zoom(c, size / grid, order=1)[:size, :size] for c in coarse])
    cams -= cams.min(axis=(1, 2), keepdims=True)
    peak = cams.max(axis=(1, 2), keepdims=True)  # 0 for a 1x1 grid: a flat map, all ones
    return np.divide(cams, peak, out=np.ones_like(cams), where=peak > 0)


def deletion_curve(predict, images_uint8: np.ndarray, cams: np.ndarray, labels: Sequence[int],
                   fractions: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
                   seed: int = 0):  # fmt: skip
    """Accuracy as the most salient pixels are blanked (set to black, as the padding is).

    ``predict(images_uint8) -> probabilities``; ``cams`` as :func:`heatmaps` gives them.
    At each fraction ``f`` the ``f`` share of each image's pixels with the highest heatmap
    values (ties broken at random) are blanked. A heatmap that points at what the model
    uses makes accuracy fall faster than :func:`random_heatmaps` do. Returns a frame of
    ``fraction``, ``accuracy`` and ``mean_true_probability``.
    """
    import pandas as pd

    images = np.asarray(images_uint8)
    labels = np.asarray(labels)
    n, h, w = cams.shape
    if n == 0:  # every heatmap blank (e.g. a model that predicts one class): nothing to score
        nan = float("nan")
        return pd.DataFrame([{"fraction": float(f), "accuracy": nan, "mean_true_probability": nan}
                             for f in fractions])  # fmt: skip
    jitter = np.random.default_rng(seed).uniform(0, 1e-9, cams.shape)
    order = np.argsort(-(cams + jitter).reshape(n, -1), axis=1)  # most salient first
    rows = []
    for f in fractions:
        k = round(f * h * w)
        blanked = images.copy()
        for i in range(n):
            ys, xs = np.unravel_index(order[i, :k], (h, w))
            blanked[i, ys, xs] = 0
        proba = np.asarray(predict(blanked))
        true_p = proba[np.arange(n), labels]
        rows.append({"fraction": float(f),
                     "accuracy": float(np.mean(proba.argmax(axis=1) == labels)),
                     "mean_true_probability": float(np.mean(true_p))})  # fmt: skip
    return pd.DataFrame(rows)


def deletion_area(curve) -> float:
    """Area under a deletion curve (accuracy against blanked fraction, trapezoids), per unit
    of the fractions' range: lower means the heatmap found what the model relies on."""
    x, y = curve["fraction"].to_numpy(), curve["accuracy"].to_numpy()
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2) / (x[-1] - x[0]))


#: The blanked shares of each image for :func:`saliency_summary`'s deletion curves.
DELETION_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def _mean_interval(values, seed: int, n_resamples: int) -> dict:
    """Mean of per-image values with a 95% percentile bootstrap interval over images."""
    from scipy.stats import bootstrap

    values = np.asarray(values, float)
    if len(values) < 2:  # nothing to resample
        mean = float(values.mean()) if len(values) else float("nan")
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan")}
    res = bootstrap((values,), np.mean, n_resamples=n_resamples, method="percentile",
                    random_state=np.random.default_rng(seed))  # fmt: skip
    ci = res.confidence_interval
    return {"mean": float(values.mean()), "ci_low": float(ci.low), "ci_high": float(ci.high)}


def saliency_summary(model, frame, root, seed: int = 0, batch_size: int = 16,
                     fractions: Sequence[float] = DELETION_FRACTIONS,
                     n_resamples: int = 2000, sanity_images: int = 48) -> dict:  # fmt: skip
    """What the heatmaps of a real-data model look at, in numbers (no lesion masks needed).

    Over every image of ``frame`` (a run's predictions: path, class, predicted), the
    heatmaps explain the predicted class. Scores, each against random heatmaps of the
    same coarseness (:func:`random_heatmaps`), and against the same random heatmaps kept
    inside the brain (``random_in_brain``: zero outside :func:`brain_mask`, so their
    deletion blanks brain first, never the black background before it):

    - ``energy_in_brain``: the share of each heatmap's mass inside :func:`brain_mask`
      (mean over the images whose heatmap is not blank, 95% bootstrap interval, and
      the count of blank ones); a heatmap spread at random scores about the mask's
      area share (``brain_area``);
    - ``deletion``: :func:`deletion_curve` (accuracy against the true classes as the
      most salient pixels are blanked) and its :func:`deletion_area`, over the
      images on which no method's heatmap is blank (a blank heatmap orders the pixels
      by noise): ``deletion_images`` of them. Lower than random means the heatmap
      found pixels the model relies on;
    - ``randomisation``: :func:`randomisation_check` on ``sanity_images`` images.

    JSON-ready; the images pass through the model in batches of ``batch_size``.
    """
    from pathlib import Path

    from brainlib.data.tfdata import preprocess

    size = int(model.input.shape[1])
    images = load_images([str(Path(root) / p) for p in frame["path"]], size)
    labels = np.asarray([CLASSES.index(c) for c in frame["class"]])
    explained = [CLASSES.index(c) for c in frame["predicted"]]
    cams = {m: batched_heatmaps(model, images, explained, m, batch_size) for m in METHODS}
    cells = int(model.get_layer(LAYER).output.shape[1])
    masks = np.stack([brain_mask(im) for im in images])
    cams["random"] = random_heatmaps(len(images), size, grid=cells, seed=seed)
    cams["random_in_brain"] = cams["random"] * masks

    def predict(batch):
        return model.predict(preprocess(batch), batch_size=batch_size, verbose=0)

    blank = {m: ~(cams[m].reshape(len(images), -1).max(axis=1) > 0) for m in cams}
    keep = ~np.any([blank[m] for m in METHODS], axis=0)
    energy, deletion = {}, {}
    for method, maps in cams.items():
        shares = np.array([energy_in_mask(c, m) for c, m in zip(maps, masks, strict=True)])
        energy[method] = _mean_interval(shares[~blank[method]], seed, n_resamples)
        energy[method]["blank_heatmaps"] = int(blank[method].sum())
        curve = deletion_curve(predict, images[keep], maps[keep], labels[keep], fractions,
                               seed=seed)  # fmt: skip
        deletion[method] = {**curve.to_dict(orient="list"), "area": deletion_area(curve)}
    pick = np.random.default_rng(seed).permutation(len(images))[:sanity_images]
    return {
        "images": len(images),
        "explained": "predicted class",
        "layer": LAYER,
        "cells": cells,
        "brain_area": _mean_interval(masks.mean(axis=(1, 2)), seed, n_resamples),
        "energy_in_brain": energy,
        "deletion_images": int(keep.sum()),
        "deletion": deletion,
        "randomisation": randomisation_check(
            model, images[pick], [explained[i] for i in pick], seed=seed
        ),
    }


def batched_heatmaps(model, images, class_indices, method: str = "gradcam",
                     batch_size: int = 16) -> np.ndarray:  # fmt: skip
    """:func:`heatmaps` in batches of ``batch_size`` images."""
    return np.concatenate([heatmaps(model, images[i:i + batch_size],
                                    class_indices[i:i + batch_size], method)
                           for i in range(0, len(images), batch_size)])  # fmt: skip


# ------------------------------------------------ the model-randomisation sanity check


def top_layers(model, after: str = LAYER) -> list[str]:
    """The names of the layers with weights after ``after`` (the SE block and the head)."""
    names = [layer.name for layer in model.layers]
    return [l.name for l in model.layers[names.index(after) + 1 :] if l.weights]  # noqa: E741


def stage_layers(model, prefix: str) -> list[str]:
    """The names of the layers with weights whose name starts with ``prefix`` (``conv5``)."""
    return [layer.name for layer in model.layers if layer.name.startswith(prefix) and layer.weights]


def randomised(model, layer_names: Sequence[str], seed: int = 0):
    """A copy of ``model`` whose ``layer_names`` are re-initialised (their initialisers,
    seeded; BatchNorm back to identity statistics) and every other layer keeps its
    trained weights: the cascading model randomisation of Adebayo et al. (2018)."""
    import keras

    keras.utils.set_random_seed(seed)
    fresh = keras.models.clone_model(model)  # new layers, freshly initialised
    fresh.build(model.input.shape)
    chosen = set(layer_names)
    unknown = chosen - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"model {model.name} has no layers {sorted(unknown)}")
    for layer in model.layers:
        if layer.weights and layer.name not in chosen:
            fresh.get_layer(layer.name).set_weights(layer.get_weights())
    return fresh


def rank_correlation(a: np.ndarray, b: np.ndarray, step: int = 8) -> float:
    """Spearman's rank correlation of two heatmaps, on every ``step``-th pixel (NaN when
    one of them is constant, e.g. blank)."""
    from scipy.stats import spearmanr

    x, y = a[::step, ::step].ravel(), b[::step, ::step].ravel()
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


#: The cascade of :func:`randomisation_check`: the head (and SE block), then conv5 as well.
RANDOMISATION_STAGES = ("top", "top+conv5")


def randomisation_check(model, images_uint8, class_indices, seed: int = 0,
                        method: str = "gradcam") -> dict:  # fmt: skip
    """The model-randomisation sanity check (Adebayo et al., NeurIPS 2018): heatmaps that
    explain a model must change when its trained weights are replaced by random ones.

    The top layers (after ``post_relu``: the SE block and the head) are re-initialised,
    then conv5 as well (cascading, top down), and the heatmaps of the same images and
    classes are compared with the trained model's by Spearman rank correlation per image
    (:func:`rank_correlation`). A reference: the correlation of the trained heatmaps
    with random heatmaps of the same coarseness. Returns per stage the median and
    quartiles over images, and how many pairs had a constant (flat or blank) map.
    """
    size, cells = int(model.input.shape[1]), int(model.get_layer(LAYER).output.shape[1])
    trained = batched_heatmaps(model, images_uint8, list(class_indices), method)
    top = top_layers(model)
    variants = {"top": top, "top+conv5": top + stage_layers(model, "conv5") + ["post_bn"]}
    maps = {name: batched_heatmaps(randomised(model, layers, seed), images_uint8,
                                   list(class_indices), method)
            for name, layers in variants.items()}  # fmt: skip
    maps["random heatmaps"] = random_heatmaps(len(trained), size, grid=cells, seed=seed + 1)
    out = {"method": method, "images": len(trained), "stages": {}}
    for name, other in maps.items():
        rho = np.array([rank_correlation(a, b) for a, b in zip(trained, other, strict=True)])
        ok = rho[~np.isnan(rho)]
        q = np.quantile(ok, [0.25, 0.5, 0.75]) if len(ok) else [float("nan")] * 3
        out["stages"][name] = {
            "layers": len(variants.get(name, [])),
            "median_spearman": float(q[1]),
            "quartiles": [float(q[0]), float(q[2])],
            "compared": len(ok),
            "constant": int(np.isnan(rho).sum()),  # a flat or blank map has no ranks
        }
    return out
