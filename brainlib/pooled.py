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
- what duplicate leakage is worth is in :mod:`brainlib.leakage`;
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


def endpoint_mc_error(stats, level: float = 0.95, batches: int = 20) -> float:
    """Monte Carlo standard error of a percentile interval's endpoints, from the
    bootstrap distribution ``stats`` (batch method: the endpoints of ``batches``
    equal parts, their spread over the square root of their number). The larger of
    the two endpoints' errors: an endpoint printed to a digit far above it does not
    move when the bootstrap is re-run with another seed."""
    s = np.asarray(stats, float)
    s = s[np.isfinite(s)]
    if len(s) < 10 * batches:
        return float("nan")
    alpha = (1 - level) / 2
    parts = np.array_split(s, batches)
    q = np.array([np.quantile(b, [alpha, 1 - alpha]) for b in parts])
    return float(np.max(q.std(axis=0, ddof=1) / np.sqrt(batches)))


def minimum_detectable(low: float, high: float, level: float = 0.95, power: float = 0.8) -> float:
    """The smallest true difference that a test at ``level`` would detect with ``power``,
    given a ``level`` interval ``[low, high]`` (its half-width in standard errors:
    ``(z_(1-alpha/2) + z_power) * se``)."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    return float((z + norm.ppf(power)) * (high - low) / (2 * z))


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
                "images": len(a), "clusters": len(d), "level": level,
                "mc_error": float("nan")}  # fmt: skip
    res = bootstrap((d, n), lambda d, n, axis=-1: d.sum(axis) / n.sum(axis), paired=True,
                    vectorized=True, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
    low, high = res.confidence_interval
    return {"difference": float(np.mean(a - b)), "low": float(low), "high": float(high),
            "images": len(a), "clusters": len(d), "level": level,
            "mc_error": endpoint_mc_error(res.bootstrap_distribution, level)}  # fmt: skip


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
           "level": level, "mc_error": float("nan")}  # fmt: skip
    if len(sa) < 2 or len(sb) < 2:  # nothing to resample on one side
        return out

    def diff(ia, ib, axis=-1):
        ia, ib = ia.astype(int), ib.astype(int)
        return sa[ia].sum(axis) / na[ia].sum(axis) - sb[ib].sum(axis) / nb[ib].sum(axis)

    res = bootstrap((np.arange(len(sa)), np.arange(len(sb))), diff, paired=False,
                    vectorized=True, n_resamples=n_resamples, confidence_level=level,
                    method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
    out["low"], out["high"] = map(float, res.confidence_interval)
    out["mc_error"] = endpoint_mc_error(res.bootstrap_distribution, level)
    return out


def macro_auc(y, proba) -> float:
    """Macro one-vs-rest AUC (scikit-learn), over the classes present in ``y``."""
    from sklearn.metrics import roc_auc_score

    y, proba = np.asarray(y), np.asarray(proba, float)
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    return float(np.mean([roc_auc_score(y == k, proba[:, k]) for k in present]))


def weighted_macro_auc(y, proba, weights) -> np.ndarray:
    """Macro one-vs-rest AUC of ``proba`` for each row of ``weights`` (resamples x images):
    an image drawn ``k`` times in a bootstrap resample has weight ``k``. Equal to
    :func:`macro_auc` on the repeated images (ties count one half), computed for all
    resamples at once from each class's sorted scores. Classes absent from a resample
    (or from ``y``) are left out of its mean."""
    y, proba = np.asarray(y), np.asarray(proba, float)
    w = np.atleast_2d(np.asarray(weights, float))
    aucs = []
    for k in np.unique(y):
        scores = proba[:, k]
        levels, group = np.unique(scores, return_inverse=True)
        onehot = np.zeros((len(scores), len(levels)))
        onehot[np.arange(len(scores)), group] = 1
        pos = (w * (y == k)) @ onehot  # resamples x score levels
        neg = (w * (y != k)) @ onehot
        below = np.cumsum(neg, axis=1) - neg
        num = np.sum(pos * (below + 0.5 * neg), axis=1)
        den = pos.sum(axis=1) * neg.sum(axis=1)
        aucs.append(np.divide(num, den, out=np.full(len(w), np.nan), where=den > 0))
    return np.nanmean(np.stack(aucs), axis=0) if aucs else np.full(len(w), np.nan)


def cluster_weights(clusters, n_resamples: int, seed: int = 0) -> np.ndarray:
    """Bootstrap weights per image (resamples x images): whole clusters drawn with
    replacement, as many as there are, each image weighted by its cluster's draws."""
    _, ids = np.unique(np.asarray(clusters), return_inverse=True)
    k = ids.max() + 1
    draws = np.random.default_rng(seed).multinomial(k, np.full(k, 1 / k), size=n_resamples)
    return draws[:, ids].astype(float)


def auc_difference(y, proba_a, proba_b, clusters=None, n_resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> dict:  # fmt: skip
    """Macro AUC of ``a`` minus that of ``b`` on the same images, with a paired bootstrap
    interval over images (or ``clusters``) and the share of resamples at or below zero."""
    y, proba_a, proba_b = np.asarray(y), np.asarray(proba_a, float), np.asarray(proba_b, float)
    clusters = np.arange(len(y)) if clusters is None else np.asarray(clusters)
    w = cluster_weights(clusters, n_resamples, seed)
    stats = weighted_macro_auc(y, proba_a, w) - weighted_macro_auc(y, proba_b, w)
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
        "clusters": len(np.unique(clusters)),
        "level": level,
        "mc_error": endpoint_mc_error(stats, level),
    }


def auc_interval(y, proba, clusters=None, n_resamples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> dict:  # fmt: skip
    """Macro AUC of ``proba`` with a bootstrap interval over images (or ``clusters``)."""
    y = np.asarray(y)
    clusters = np.arange(len(y)) if clusters is None else np.asarray(clusters)
    stats = weighted_macro_auc(y, proba, cluster_weights(clusters, n_resamples, seed))
    alpha = (1 - level) / 2
    return {"value": macro_auc(y, proba), "low": float(np.nanquantile(stats, alpha)),
            "high": float(np.nanquantile(stats, 1 - alpha)), "level": level,
            "mc_error": endpoint_mc_error(stats, level)}  # fmt: skip


def mean_interval(values, clusters=None, n_resamples: int = 2000, seed: int = 0,
                  level: float = 0.95) -> dict:  # fmt: skip
    """Mean of per-image ``values`` (correct 0/1, a share of seeds right) with a percentile
    bootstrap interval over images (or ``clusters``, each mean a ratio of weighted sums)."""
    v = np.asarray(values, float)
    clusters = np.arange(len(v)) if clusters is None else np.asarray(clusters)
    w = cluster_weights(clusters, n_resamples, seed)
    stats = (w @ v) / w.sum(axis=1)
    alpha = (1 - level) / 2
    return {"value": float(v.mean()), "low": float(np.quantile(stats, alpha)),
            "high": float(np.quantile(stats, 1 - alpha)), "images": len(v), "level": level,
            "mc_error": endpoint_mc_error(stats, level)}  # fmt: skip


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
