"""One pooled, paired analysis of a grid: every seed of both models on the same test images.

A seed is a draw of the training (initial weights, batch order, flips,
dropout), and the runs of one split share their test images, so the
comparison of two models is paired twice: by image and by seed. Counting
the seeds with p < 0.05 throws most of that away. Here:

- :func:`per_image` pools the seeds: for each test image and model, the
  share of seeds that classify it correctly, the mean predicted
  probabilities (the seed ensemble) and the majority vote;
- :func:`paired_difference` is the difference in accuracy between two
  models (or two trainings) with a paired bootstrap interval over images,
  or over duplicate clusters when near-duplicate test images would
  otherwise count as independent (``scipy.stats.bootstrap`` on cluster
  sums);
- :func:`auc_difference` does the same for the macro one-vs-rest AUC of the
  ensembled probabilities (a paired bootstrap over images or clusters);
- :func:`mcnemar_by_seed` gives McNemar's test for each seed and for the
  majority vote, and :func:`per_class_tests` the per-class tests with
  Holm's correction across the four classes;
- :func:`leakage_effect` compares a model trained with and without the
  training duplicates of the test images, on the same test images, split by
  whether an image had a duplicate in training: the difference of the two
  differences is what duplicate leakage is worth;
- :func:`two_sample_difference` compares accuracies on two *different*
  test sets (the paper's split against the grouped one), resampling each
  set's duplicate clusters on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from brainlib.config import CLASSES
from brainlib.statistics import mcnemar_test

PROBA = [f"p_{c}" for c in CLASSES]


class PoolingError(ValueError):
    """Runs that cannot be pooled: other test images, or none."""


# ---------------------------------------------------------------------------- pooling


def per_image(predictions: Mapping[tuple[str, int], object]):
    """Pool the seeds of each model, image by image.

    ``predictions`` maps ``(model, seed)`` to a predictions frame (``path``,
    ``class``, ``p_<class>`` ..., ``predicted``). Every run must hold the same
    test images. Returns a frame indexed by ``path`` with ``class``, ``y``
    (class index) and, per model ``m``: ``correct_m`` (share of seeds right),
    ``vote_m`` (majority vote; ties go to the larger mean probability),
    ``vote_correct_m`` and ``p_m_<class>`` (mean probabilities over seeds).
    """
    import pandas as pd

    if not predictions:
        raise PoolingError("no runs to pool")
    frames = {k: f.set_index("path").sort_index() for k, f in predictions.items()}
    first = next(iter(frames.values()))
    for key, f in frames.items():
        if not f.index.equals(first.index) or not (f["class"] == first["class"]).all():
            raise PoolingError(f"run {key} was tested on other images than {next(iter(frames))}")
    out = pd.DataFrame({"class": first["class"]})
    out["y"] = out["class"].map(CLASSES.index)
    for model in dict.fromkeys(m for m, _ in frames):
        runs = [f for (m, _), f in frames.items() if m == model]
        proba = np.mean([f[PROBA].to_numpy(float) for f in runs], axis=0)
        votes = np.zeros((len(out), len(CLASSES)))
        for f in runs:
            votes[np.arange(len(out)), f["predicted"].map(CLASSES.index).to_numpy()] += 1
        vote = np.argmax(votes + 1e-6 * proba, axis=1)  # ties: the larger mean probability
        out[f"correct_{model}"] = np.mean([f["predicted"] == f["class"] for f in runs], axis=0)
        out[f"vote_{model}"] = [CLASSES[k] for k in vote]
        out[f"vote_correct_{model}"] = vote == out["y"].to_numpy()
        for c, col in zip(CLASSES, proba.T, strict=True):
            out[f"p_{model}_{c}"] = col
    return out


def cluster_ids(paths: Sequence[str], groups: Sequence[Sequence[str]] = ()) -> np.ndarray:
    """An integer per path: the index of its duplicate group, or a group of its own."""
    where = {}
    for k, group in enumerate(groups):
        for p in group:
            where[p] = k
    ids, fresh = [], len(groups)
    for p in paths:
        if p in where:
            ids.append(where[p])
        else:
            ids.append(fresh)
            fresh += 1
    _, dense = np.unique(ids, return_inverse=True)
    return dense


def _cluster_sums(clusters, *columns):
    clusters = np.asarray(clusters)
    k = clusters.max() + 1
    return [np.bincount(clusters, weights=np.asarray(c, float), minlength=k) for c in columns]


# ------------------------------------------------------------------------ differences


def paired_difference(a, b, clusters=None, n_resamples: int = 2000, seed: int = 0,
                      level: float = 0.95) -> dict:  # fmt: skip
    """``mean(a) - mean(b)`` over the same images, with a paired bootstrap interval.

    ``a`` and ``b`` are per-image scores (correct 0/1, or the share of seeds
    right). With ``clusters`` (an id per image) whole clusters are resampled,
    so copies of one picture count once; the statistic is then the ratio
    of the resampled sums, which equals the image mean on the full sample.
    Percentile intervals from ``scipy.stats.bootstrap``.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise PoolingError("a and b must be per-image scores of the same images")
    clusters = np.arange(len(a)) if clusters is None else np.asarray(clusters)
    d, n = _cluster_sums(clusters, a - b, np.ones_like(a))
    if len(d) < 2:  # one cluster: nothing to resample
        return {"difference": float(np.mean(a - b)), "low": float("nan"), "high": float("nan"),
                "images": len(a), "clusters": len(d), "level": level}  # fmt: skip
    res = bootstrap((d, n), lambda d, n, axis=-1: d.sum(axis) / n.sum(axis), paired=True,
                    vectorized=True, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
    low, high = res.confidence_interval
    return {"difference": float(np.mean(a - b)), "low": float(low), "high": float(high),
            "images": len(a), "clusters": len(d), "level": level}  # fmt: skip


def two_sample_difference(a, b, clusters_a=None, clusters_b=None, n_resamples: int = 2000,
                          seed: int = 0, level: float = 0.95) -> dict:  # fmt: skip
    """``mean(a) - mean(b)`` of scores on two different sets of images, with an unpaired
    bootstrap interval: each set's clusters (an id per image; default: each image its own)
    are resampled independently, and each mean is the ratio of its resampled cluster sums.
    """
    from scipy.stats import bootstrap

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 1 or b.ndim != 1 or not len(a) or not len(b):
        raise PoolingError("a and b must be non-empty per-image scores")
    ca = np.arange(len(a)) if clusters_a is None else np.unique(clusters_a, return_inverse=True)[1]
    cb = np.arange(len(b)) if clusters_b is None else np.unique(clusters_b, return_inverse=True)[1]
    sa, na = _cluster_sums(ca, a, np.ones_like(a))
    sb, nb = _cluster_sums(cb, b, np.ones_like(b))
    out = {"difference": float(a.mean() - b.mean()), "low": float("nan"), "high": float("nan"),
           "images_a": len(a), "images_b": len(b), "clusters_a": len(sa), "clusters_b": len(sb),
           "level": level}  # fmt: skip
    if len(sa) < 2 or len(sb) < 2:  # nothing to resample on one side
        return out

    def diff(ia, ib, axis=-1):
        ia, ib = ia.astype(int), ib.astype(int)
        return sa[ia].sum(axis) / na[ia].sum(axis) - sb[ib].sum(axis) / nb[ib].sum(axis)

    res = bootstrap((np.arange(len(sa)), np.arange(len(sb))), diff, paired=False,
                    vectorized=True, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
    out["low"], out["high"] = map(float, res.confidence_interval)
    return out


def macro_auc(y, proba) -> float:
    """Macro one-vs-rest AUC (scikit-learn), over the classes present in ``y``."""
    from sklearn.metrics import roc_auc_score

    y, proba = np.asarray(y), np.asarray(proba, float)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([roc_auc_score(y == k, proba[:, k]) for k in present]))


def auc_difference(y, proba_a, proba_b, clusters=None, n_resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> dict:  # fmt: skip
    """Macro AUC of ``a`` minus that of ``b`` on the same images, with a paired bootstrap
    interval over images (or ``clusters``) and the share of resamples at or below zero."""
    y, proba_a, proba_b = np.asarray(y), np.asarray(proba_a, float), np.asarray(proba_b, float)
    clusters = np.arange(len(y)) if clusters is None else np.asarray(clusters)
    members = [np.flatnonzero(clusters == c) for c in np.unique(clusters)]
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_resamples):
        idx = np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
        stats.append(macro_auc(y[idx], proba_a[idx]) - macro_auc(y[idx], proba_b[idx]))
    stats = np.asarray(stats)
    alpha = (1 - level) / 2
    auc_a, auc_b = macro_auc(y, proba_a), macro_auc(y, proba_b)
    return {
        "auc_a": auc_a,
        "auc_b": auc_b,
        "difference": auc_a - auc_b,
        "low": float(np.nanquantile(stats, alpha)),
        "high": float(np.nanquantile(stats, 1 - alpha)),
        "share_at_or_below_zero": float(np.mean(stats <= 0)),
        "images": len(y),
        "clusters": len(members),
        "level": level,
    }


# ------------------------------------------------------------------------------ tests


def mcnemar_by_seed(predictions: Mapping[tuple[str, int], object], a: str = "se",
                    b: str = "base"):  # fmt: skip
    """McNemar's test of model ``a`` against ``b`` for each seed and for the majority vote."""
    import pandas as pd

    seeds = sorted({s for m, s in predictions if m == a} & {s for m, s in predictions if m == b})
    rows = []
    for s in seeds:
        fa = predictions[(a, s)].set_index("path").sort_index()
        fb = predictions[(b, s)].set_index("path").sort_index()
        res = mcnemar_test(fa["predicted"] == fa["class"], fb["predicted"] == fb["class"])
        rows.append({"runs": f"seed {s}", "only_a_right": res["b"], "only_b_right": res["c"],
                     "p": res["p"], "exact": res["exact"]})  # fmt: skip
    pooled = per_image({k: v for k, v in predictions.items() if k[0] in (a, b)})
    res = mcnemar_test(pooled[f"vote_correct_{a}"], pooled[f"vote_correct_{b}"])
    rows.append({"runs": f"majority vote of {len(seeds)} seeds", "only_a_right": res["b"],
                 "only_b_right": res["c"], "p": res["p"], "exact": res["exact"]})  # fmt: skip
    return pd.DataFrame(rows).set_index("runs")


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (statsmodels), for a family of tests."""
    from statsmodels.stats.multitest import multipletests

    return multipletests(np.asarray(pvalues, float), method="holm")[1]


def per_class_tests(pooled, a: str = "se", b: str = "base", clusters=None,
                    n_resamples: int = 2000, seed: int = 0):  # fmt: skip
    """Per class: the pooled difference in recall with its paired bootstrap interval, and
    McNemar's test on the majority votes, Holm-adjusted across the classes."""
    import pandas as pd

    clusters = np.arange(len(pooled)) if clusters is None else np.asarray(clusters)
    rows = []
    for c in CLASSES:
        m = (pooled["class"] == c).to_numpy()
        if not m.any():
            continue
        diff = paired_difference(pooled[f"correct_{a}"][m], pooled[f"correct_{b}"][m],
                                 clusters[m], n_resamples, seed)  # fmt: skip
        mc = mcnemar_test(pooled[f"vote_correct_{a}"][m], pooled[f"vote_correct_{b}"][m])
        rows.append({"class": c, "images": int(m.sum()),
                     f"recall_{a}": pooled[f"correct_{a}"][m].mean(),
                     f"recall_{b}": pooled[f"correct_{b}"][m].mean(),
                     "difference": diff["difference"], "low": diff["low"], "high": diff["high"],
                     "mcnemar_p": mc["p"]})  # fmt: skip
    out = pd.DataFrame(rows).set_index("class")
    out["holm_p"] = holm(out["mcnemar_p"])
    return out


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
                         "low": r["low"], "high": r["high"]})  # fmt: skip
    if dup.any() and (~dup).any():
        d = a - b
        sums = _cluster_sums(clusters, d * dup, dup, d * ~dup, ~dup)

        def did(d1, n1, d0, n0, axis=-1):
            return d1.sum(axis) / n1.sum(axis) - d0.sum(axis) / n0.sum(axis)

        res = bootstrap(tuple(sums), did, paired=True, vectorized=True, n_resamples=n_resamples,
                        confidence_level=level, method="percentile",
                        rng=np.random.default_rng(seed))  # fmt: skip
        rows.append({"group": "leakage effect (difference of differences)", "images": len(a),
                     "with_copies": np.nan, "without_copies": np.nan,
                     "difference": float(d[dup].mean() - d[~dup].mean()),
                     "low": float(res.confidence_interval.low),
                     "high": float(res.confidence_interval.high)})  # fmt: skip
    return pd.DataFrame(rows).set_index("group")
