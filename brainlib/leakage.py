"""What duplicate leakage is worth, measured on one fixed test set.

The paper's random split puts exact and near copies of many test images in its
training set. A model trained on that split (*with copies*) and the same model
trained on the same split minus every training image that duplicates a test image
(the ``dedup`` split, *without copies*) are scored on the same test images. On the
test images that had a copy in training, leakage can raise accuracy; on the others
it cannot. The difference of the two differences (:func:`leakage_effect`) is what
the copies are worth. Three checks keep it honest:

- the classes are not spread evenly over the two groups (normal images are a third
  of the duplicated test images and a twelfth of the others), so a class effect of
  the comparator would enter the difference: :func:`stratified_effect` takes the
  difference within each class, and :func:`adjusted_effect` fits a linear
  probability model with class terms for both arms, errors clustered by duplicate
  cluster (statsmodels);
- two trainings of the same split differ by chance: the same difference of
  differences between two seeds on the paper's split, where no copies differ, is a
  placebo that shows how large a difference chance alone makes;
- the ``dedup`` split removes the test images' direct duplicates from training, but a
  chain of near duplicates can still link a test image to a training image:
  :func:`residual_links` counts them.

Per-image scores are shares of seeds right (:func:`brainlib.pooled.per_image`);
intervals are percentile bootstraps over duplicate clusters.
"""

from __future__ import annotations

import numpy as np

from brainlib.pooled import _cluster_sums, cluster_weights, endpoint_mc_error, paired_difference

EFFECT = "leakage effect (difference of differences)"


def leakage_effect(with_copies, without_copies, has_duplicate, clusters=None,
                   n_resamples: int = 2000, seed: int = 0, level: float = 0.95):  # fmt: skip
    """What training on the duplicates of the test images is worth, on the same test images.

    ``with_copies`` and ``without_copies``: per-image scores (share of seeds
    right) of a model trained on the paper split and on the same split minus
    the training duplicates of the test images. ``has_duplicate``: whether the
    image had an exact or near duplicate in the paper split's training set.
    Rows: the two groups (difference with its paired interval) and the
    difference of the differences (its interval from the same cluster resamples).
    """
    import pandas as pd
    from scipy.stats import bootstrap

    a, b = np.asarray(with_copies, float), np.asarray(without_copies, float)
    dup = np.asarray(has_duplicate, bool)
    clusters = np.arange(len(a)) if clusters is None else np.asarray(clusters)
    rows = []
    for name, m in (("duplicate in training", dup), ("no duplicate in training", ~dup)):
        if m.any():
            r = paired_difference(a[m], b[m], clusters[m], n_resamples, seed, level)
            rows.append({"group": name, "images": int(m.sum()), "with_copies": a[m].mean(),
                         "without_copies": b[m].mean(), "difference": r["difference"],
                         "low": r["low"], "high": r["high"],
                         "mc_error": r["mc_error"]})  # fmt: skip
    if dup.any() and (~dup).any():
        d = a - b
        sums = _cluster_sums(np.unique(clusters, return_inverse=True)[1], d * dup, dup,
                             d * ~dup, ~dup)  # fmt: skip

        def did(d1, n1, d0, n0, axis=-1):
            return d1.sum(axis) / n1.sum(axis) - d0.sum(axis) / n0.sum(axis)

        res = bootstrap(tuple(sums), did, paired=True, vectorized=True, n_resamples=n_resamples,
                        confidence_level=level, method="percentile",
                        rng=np.random.default_rng(seed))  # fmt: skip
        rows.append({"group": EFFECT, "images": len(a), "with_copies": np.nan,
                     "without_copies": np.nan,
                     "difference": difference_of_differences(a, b, dup),
                     "low": float(res.confidence_interval.low),
                     "high": float(res.confidence_interval.high),
                     "mc_error": endpoint_mc_error(res.bootstrap_distribution, level)})  # fmt: skip
    return pd.DataFrame(rows).set_index("group")


def difference_of_differences(with_copies, without_copies, has_duplicate) -> float:
    """The leakage effect's point value: the gain from the copies on the test images with
    a training duplicate minus the gain on the others (no interval: one number per seed,
    for the spread over seeds)."""
    a, b = np.asarray(with_copies, float), np.asarray(without_copies, float)
    dup = np.asarray(has_duplicate, bool)
    return float((a - b)[dup].mean() - (a - b)[~dup].mean())


def _did_by_class(d, dup, classes, w):
    """Per class, the difference of differences for each row of weights ``w``."""
    out = {}
    for c in np.unique(classes):
        m1, m0 = (classes == c) & dup, (classes == c) & ~dup
        if not m1.any() or not m0.any():
            continue
        n1, n0 = w @ m1, w @ m0
        with np.errstate(invalid="ignore", divide="ignore"):
            out[c] = (w @ (d * m1)) / n1 - (w @ (d * m0)) / n0
    return out


def stratified_effect(with_copies, without_copies, has_duplicate, classes, clusters=None,
                      n_resamples: int = 2000, seed: int = 0, level: float = 0.95):  # fmt: skip
    """The difference of differences within each class, and their average weighted by each
    class's number of duplicated test images (the effect on the images that had a copy,
    with the class mix held fixed). Classes with no image in one of the two groups are
    left out (``images`` says how many are used). A frame: one row per class, then
    ``stratified``."""
    import pandas as pd

    a, b = np.asarray(with_copies, float), np.asarray(without_copies, float)
    dup, classes = np.asarray(has_duplicate, bool), np.asarray(classes)
    clusters = np.arange(len(a)) if clusters is None else np.asarray(clusters)
    d = a - b
    full = _did_by_class(d, dup, classes, np.ones((1, len(a))))
    boot = _did_by_class(d, dup, classes, cluster_weights(clusters, n_resamples, seed))
    weight = {c: int(((classes == c) & dup).sum()) for c in full}
    alpha = (1 - level) / 2
    rows = []
    for c in full:
        rows.append({"stratum": c, "duplicated": weight[c],
                     "others": int(((classes == c) & ~dup).sum()),
                     "difference": float(full[c][0]),
                     "low": float(np.nanquantile(boot[c], alpha)),
                     "high": float(np.nanquantile(boot[c], 1 - alpha)),
                     "mc_error": endpoint_mc_error(boot[c], level)})  # fmt: skip
    if full:
        total = sum(weight.values())
        est = sum(weight[c] * full[c][0] for c in full) / total
        stats = np.nansum([weight[c] * boot[c] for c in full], axis=0) / total
        rows.append({"stratum": "stratified", "duplicated": total,
                     "others": int(sum(r["others"] for r in rows)), "difference": float(est),
                     "low": float(np.nanquantile(stats, alpha)),
                     "high": float(np.nanquantile(stats, 1 - alpha)),
                     "mc_error": endpoint_mc_error(stats, level)})  # fmt: skip
    return pd.DataFrame(rows).set_index("stratum")


def adjusted_effect(with_copies, without_copies, has_duplicate, classes, clusters=None,
                    level: float = 0.95) -> dict:  # fmt: skip
    """The leakage effect from a linear probability model with class terms, errors
    clustered by duplicate cluster (statsmodels OLS, ``cov_type="cluster"``).

    Two rows per test image, one per arm, ``y`` its share of seeds right::

        y ~ copies * duplicate + C(cls) + C(cls):copies

    The coefficient of ``copies:duplicate`` is the difference of differences with each
    class allowed its own effect of training with the copies, which a comparator that
    fits one class worse than the other arm would otherwise push into the estimate.
    """
    import pandas as pd
    import statsmodels.formula.api as smf

    a, b = np.asarray(with_copies, float), np.asarray(without_copies, float)
    n = len(a)
    clusters = np.arange(n) if clusters is None else np.asarray(clusters)
    data = pd.DataFrame(
        {
            "y": np.concatenate([a, b]),
            "copies": np.repeat([1.0, 0.0], n),
            "duplicate": np.tile(np.asarray(has_duplicate, float), 2),
            "cls": np.tile(np.asarray(classes), 2),
            "cluster": np.tile(np.unique(clusters, return_inverse=True)[1], 2),
        }
    )
    fit = smf.ols("y ~ copies * duplicate + C(cls) + C(cls):copies", data).fit(
        cov_type="cluster", cov_kwds={"groups": data["cluster"]})  # fmt: skip
    term = "copies:duplicate"
    low, high = fit.conf_int(alpha=1 - level).loc[term]
    return {"difference": float(fit.params[term]), "low": float(low), "high": float(high),
            "p": float(fit.pvalues[term]), "images": n,
            "clusters": int(data["cluster"].nunique()), "level": level,
            "model": "OLS: y ~ copies * duplicate + C(class) + C(class):copies, "
                     "errors clustered by duplicate cluster"}  # fmt: skip


def residual_links(duplicates) -> dict:
    """Test images of a split that a chain of near duplicates still links to a training or
    validation image: their duplicate cluster (``cluster``) holds an image of another
    subset. ``duplicates`` is the split's duplicate table (path index, ``split``,
    ``cluster``)."""
    subsets = duplicates.groupby("cluster")["split"].agg(set)
    test = duplicates[duplicates["split"] == "test"]
    linked = test["cluster"].map(lambda c: bool(subsets[c] - {"test"}))
    to_train = test["cluster"].map(lambda c: "train" in subsets[c])
    return {"test_images": len(test), "linked": int(linked.sum()),
            "linked_to_train": int(to_train.sum()),
            "examples": sorted(test.index[linked])[:5]}  # fmt: skip
