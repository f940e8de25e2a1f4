"""The results page's sentences, computed from the results.

Every sentence that draws a conclusion (SE beats base or not, a split
difference, whether the runs fit their training images, the caveat on the
weights) is a function of the tables in :mod:`brainlib.replication`, so the
text cannot disagree with the numbers: change the results and the sentence
changes with them (``tests/test_findings.py`` does exactly that).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainlib.config import load_profile
from brainlib.plots import MODEL_LABEL
from brainlib.statistics import t_interval

#: Training accuracy that counts as "fits its training images" (the paper's SE
#: model passed it by epoch 5).
FIT_ACCURACY = 0.95

SPLIT_WORDS = {
    "paper": "the paper's stratified random split",
    "grouped": "the grouped split, which keeps exact and near duplicates on one side",
}
#: Fields that describe the data or the grid, not the protocol compared with the paper's.
_NOT_PROTOCOL = {"name", "description", "dataset", "data_dir", "strict_data", "split", "seed",
                 "seeds", "splits", "bootstrap_resamples", "extra", "phantoms_per_class",
                 "phantom_size"}  # fmt: skip
_PAPER_WORDS = {
    ("bn_momentum", None): "Keras' 0.99",
    ("trainable_from", "paper"): "from conv5_block1_preact_bn on",
    ("init_from", ""): "none",
}


def pts(x: float) -> str:
    """A difference of proportions in signed percentage points."""
    return f"{100 * x:+.1f} points"


def n_of(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def spread(sd: float, lo: float, hi: float, seeds: int) -> str:
    """', sd x, 95% t-interval [a, b]' in points, or nothing for a single seed."""
    if seeds < 2:
        return ""
    return f", sd {100 * sd:.1f}, 95% t-interval [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def protocol_changes(fields: dict) -> list[str]:
    """How a run's profile fields differ from the ``paper`` profile, as short phrases."""
    paper = load_profile("paper").to_dict()
    out = []
    for key, value in fields.items():
        if key in _NOT_PROTOCOL or key not in paper:
            continue
        ref = paper[key]
        if isinstance(ref, tuple):
            ref = list(ref)
        if value != ref:
            out.append(f"`{key}` {value} (paper: {_PAPER_WORDS.get((key, ref), ref)})")
    return out


def weights_caveat(profile: dict, device: dict) -> str:
    """What the runs' backbone weights allow the page to conclude."""
    weights, size = profile.get("weights"), profile.get("image_size")
    where = f"at {size} px on {device.get('device', 'CPU')} ({device.get('cpu_count', '?')} cores)"
    if weights in (None, "none", ""):
        return (
            "**No ImageNet weights.** Every number in this section comes from ResNet50V2 "
            f"trained from random weights {where}; the paper fine-tuned ImageNet weights at "
            "224 px. These runs test the pipeline, the statistics and the data, not the "
            "paper's question (does SE help a fine-tuned ImageNet network?)."
        )
    if weights == "imagenet":
        return f"ImageNet weights, as in the paper, trained {where}."
    return (
        f"**Backbone weights from the file `{Path(str(weights)).name}`**, not Keras' ImageNet "
        f"download, trained {where}: the numbers are as good as that file is."
    )


def protocol_sentence(profile: dict) -> str:
    changed = protocol_changes(profile)
    if not changed:
        return "The paper's architecture, head and training protocol, unchanged."
    return "The paper's architecture, head and training protocol, except: " + "; ".join(changed)


def se_vs_base_verdict(row) -> str:
    """``"SE beats base"``, ``"base beats SE"`` or ``"no difference shown"`` for one split.

    ``row`` is a row of :func:`brainlib.replication.paired_over_seeds`. With
    two seeds or more the 95% t-interval over seeds decides; with one seed,
    McNemar's test on that seed's paired predictions.
    """
    if int(row["seeds"]) >= 2:
        if row["ci_low"] > 0:
            return "SE beats base"
        if row["ci_high"] < 0:
            return "base beats SE"
        return "no difference shown"
    if int(row["mcnemar_significant"]):
        return "SE beats base" if row["mean"] > 0 else "base beats SE"
    return "no difference shown"


def se_vs_base_sentence(split: str, row) -> str:
    verdict = se_vs_base_verdict(row)
    seeds = int(row["seeds"])
    basis = (
        "the 95% interval over seeds excludes zero"
        if verdict != "no difference shown" and seeds >= 2
        else "the interval over seeds includes zero"
        if seeds >= 2
        else "one seed only"
    )
    interval = spread(row["sd"], row["ci_low"], row["ci_high"], seeds)
    return (
        f"**{split} split: {verdict}** ({basis}). SE - base = {pts(row['mean'])} of test "
        f"accuracy (mean over {n_of(seeds, 'seed')}{interval}); "
        f"SE was ahead with {int(row['seeds_favouring_se'])} of {seeds}. McNemar's test (paired) "
        f"finds a difference at p < 0.05 with {int(row['mcnemar_significant'])} of them, the "
        f"paper's two-proportion z-test with {int(row['z_test_significant'])}."
    )


def split_difference_sentence(model: str, row) -> str:
    """Paper split minus grouped split for one model (a row of ``split_difference``)."""
    seeds = int(row["seeds"])
    lo, hi = row["ci_low"], row["ci_high"]
    if seeds >= 2 and lo > 0:
        verdict = "higher on the paper's split"
    elif seeds >= 2 and hi < 0:
        verdict = "lower on the paper's split"
    else:
        verdict = "no split difference shown"
    return (
        f"**{MODEL_LABEL[model]}: {verdict}.** {row['paper_split']:.3f} on the paper's split "
        f"against {row['grouped_split']:.3f} on the grouped split: {pts(row['split_difference'])} "
        f"(paired by seed, {n_of(seeds, 'seed')}{spread(row['sd'], lo, hi, seeds)})."
    )


def split_by_image_sentence(model: str, table) -> str:
    """The split difference image by image (:func:`brainlib.replication.
    split_difference_by_image`): all test images, then only those with no duplicate
    anywhere, and how much of a shown difference those keep (what leakage cannot explain)."""
    every = table.loc[(model, "all test images")]
    alone = table.loc[(model, "no duplicate anywhere")]

    def numbers(r):
        lo, hi = 100 * r["low"], 100 * r["high"]
        return (f"{r['paper_split']:.3f} against {r['grouped_split']:.3f}, "
                f"{pts(r['difference'])} [{lo:+.1f}, {hi:+.1f}]")  # fmt: skip

    if every["low"] > 0:
        verdict = "higher on the paper's split"
    elif every["high"] < 0:
        verdict = "lower on the paper's split"
    else:
        verdict = "no split difference shown"
    text = (
        f"**{MODEL_LABEL[model]}, image by image** ({n_of(int(every['seeds']), 'seed')} pooled; "
        f"unpaired bootstrap over each test set's duplicate clusters): {verdict}, "
        f"{numbers(every)}. On the {int(alone['paper_images'])} and "
        f"{int(alone['grouped_images'])} test images with no duplicate anywhere in the data, "
        f"where leakage is impossible: {numbers(alone)}"
    )
    if verdict != "no split difference shown" and alone["difference"] * every["difference"] > 0:
        share = min(alone["difference"] / every["difference"], 1.0)
        text += (f"; {100 * share:.0f}% of the difference remains there, so that much is not "
                 "leakage but the two splits holding different images")  # fmt: skip
    return text + "."


def duplicate_sentence(model: str, by_dup) -> str:
    """Accuracy on test images with a duplicate in training against those without."""
    with_dup = by_dup.loc[(model, "duplicate in train")]
    without = by_dup.loc[(model, "no duplicate in train")]
    gap = with_dup["accuracy_mean"] - without["accuracy_mean"]
    word = "higher" if gap > 0 else "lower" if gap < 0 else "the same"
    return (
        f"**{MODEL_LABEL[model]}**: {with_dup['accuracy_mean']:.3f} on the "
        f"{int(with_dup['images'])} test images with a duplicate in training against "
        f"{without['accuracy_mean']:.3f} on the {int(without['images'])} without "
        f"({pts(gap)}: {word} where a copy was seen in training)."
    )


def fit_sentence(frame, paper_training: dict) -> str:
    """Whether the runs fit their training images, which leakage needs to pay off."""
    fit = frame.groupby("model", sort=False)["final_train_accuracy"]
    lowest, highest = fit.min().min(), fit.max().max()
    values = " and ".join(f"{m:.3f} ({MODEL_LABEL[v]})" for v, m in fit.mean().items())
    paper = (
        f"the paper's SE model passed {FIT_ACCURACY} by epoch "
        f"{paper_training['train_accuracy_above_095_by_epoch']}"
    )
    if highest < FIT_ACCURACY:
        return (
            f"These runs end at a mean training accuracy of {values}, every one below "
            f"{FIT_ACCURACY} ({paper}): they have not fitted their training images, so they "
            "cannot profit much from copies of them in the test set, and they cannot show how "
            "much leakage inflates a fitted model's accuracy."
        )
    if lowest >= FIT_ACCURACY:
        return (
            f"These runs end at a mean training accuracy of {values}, every one at or above "
            f"{FIT_ACCURACY}, as {paper}: they fit their training images, so copies of those "
            "in the test set can pay off."
        )
    return (
        f"These runs end at a mean training accuracy of {values}; some are below "
        f"{FIT_ACCURACY} ({paper}), so not every run has fitted its training images."
    )


def distance_sentence(model: str, row) -> str:
    return (
        f"**{MODEL_LABEL[model]}** (paper's split, mean of {n_of(int(row['seeds']), 'seed')}): "
        f"accuracy {row['replication_accuracy']:.3f} against the paper's "
        f"{row['paper_accuracy']:.3f} ({pts(row['accuracy_gap'])}); macro AUC "
        f"{row['replication_auc']:.3f} against {row['paper_auc']:.3f}."
    )


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


# ------------------------------------------------------------------ the converged grid


def _interval(r: dict, points: bool = True) -> str:
    """``+x.x points [a, b]`` for a difference of proportions, ``+0.xxx [a, b]`` for AUCs."""
    d, lo, hi = r["difference"], r["low"], r["high"]
    if points:
        return f"{100 * d:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def _direction(r: dict, a: str, b: str) -> str:
    if r["low"] > 0:
        return f"{a} ahead"
    if r["high"] < 0:
        return f"{b} ahead"
    return "no difference shown"


def convergence_sentence(table) -> str:
    """How many runs meet :func:`brainlib.runs.convergence`, and why the others do not."""
    ok = table[table["converged"]]
    bad = table[~table["converged"]]
    measured = table["fitted_accuracy"].notna().sum()
    out = (
        f"{len(ok)} of {n_of(len(table), 'run')} {'meets' if len(table) == 1 else 'meet'} the "
        "convergence rule (best validation loss "
        f"before the last epoch, training accuracy at least {FIT_ACCURACY}"
    )
    out += (
        ", read from the best weights in inference mode)."
        if measured == len(table)
        else f"; the best weights' training accuracy measured for {measured} of them, the "
        "logged one for the rest)."
    )
    if len(ok) and measured:
        out += (
            f" Training accuracy of the best weights: {table['fitted_accuracy'].min():.3f} to "
            f"{table['fitted_accuracy'].max():.3f}; the accuracy Keras logged at those epochs "
            f"(dropout on, augmented images) was {table['logged_train_accuracy'].min():.3f} to "
            f"{table['logged_train_accuracy'].max():.3f}."
        )
    for r in bad.itertuples():
        out += f" Not converged: {r.model}-{r.split}-seed{r.seed} ({r.reason})."
    return out


def pooled_sentence(res: dict) -> str:
    """SE against base from :func:`brainlib.replication.pooled_se_vs_base`."""
    acc, auc, seeds = res["accuracy"], res["auc"], res["seeds"]
    pooled = f"pooled over {n_of(len(seeds), 'seed')} ({', '.join(map(str, seeds))})"
    return (
        f"**{res['split']} split, {pooled}: {_direction(acc, 'SE', 'base')} in accuracy, "
        f"{_direction(auc, 'SE', 'base')} in macro AUC.** Accuracy {res['accuracy_se']:.3f} (SE) "
        f"against {res['accuracy_base']:.3f} (base): SE - base = {_interval(acc)} (95% paired "
        f"bootstrap over {acc['clusters']} duplicate clusters of {acc['images']} test images). "
        f"Macro AUC of the seed-averaged probabilities {auc['auc_a']:.3f} against "
        f"{auc['auc_b']:.3f}: {_interval(auc, points=False)}."
    )


def leakage_sentence(model: str, table, seeds) -> str:
    """The leakage effect for one model from :func:`brainlib.replication.leakage`."""
    did = table.loc["leakage effect (difference of differences)"]
    dup, clean = table.loc["duplicate in training"], table.loc["no duplicate in training"]
    verdict = (
        "training on the copies raised accuracy on their test twins"
        if did["low"] > 0
        else "training on the copies lowered accuracy on their test twins"
        if did["high"] < 0
        else "no leakage effect shown"
    )
    return (
        f"**{MODEL_LABEL[model]} ({n_of(len(seeds), 'seed')}): {verdict}.** On the "
        f"{int(dup['images'])} test images with a duplicate in the paper split's training set, "
        f"accuracy {dup['with_copies']:.3f} when trained with the duplicates and "
        f"{dup['without_copies']:.3f} without ({_interval(dup)}); on the {int(clean['images'])} "
        f"without one, {clean['with_copies']:.3f} and {clean['without_copies']:.3f} "
        f"({_interval(clean)}). Difference of the differences: {_interval(did)}."
    )


LEAKAGE_CONSEQUENCE = (
    "so this measures what the copies are worth to a model that has not fully fitted its "
    "training images"
)


def compared_runs_caveat(table, consequence: str = LEAKAGE_CONSEQUENCE) -> str:
    """Names the runs of a comparison (rows of :func:`brainlib.replication.convergence_table`)
    that do not meet the convergence rule, then what that means for the comparison
    (``consequence``, a clause); empty when all do."""
    bad = table[~table["converged"]]
    if bad.empty:
        return ""
    names = "; ".join(f"{r.model}-{r.split}-seed{r.seed}: {r.reason}" for r in bad.itertuples())
    return f"Not every run compared has converged ({names}), {consequence}."


def deletion_verdict(gaps) -> str:
    """How a heatmap's deletion area compares with random heatmaps', from the per-run gaps
    (random area minus the heatmap's; positive: accuracy falls faster). The verdict rests
    on the spread over runs (a 95% t-interval), so a single run gets none."""
    g = np.asarray(gaps, dtype=float)
    if len(g) < 2:
        return f"random minus heatmap {g.mean():+.3f} in the one run; a verdict needs two runs"
    lo, hi = t_interval(g)
    if lo > 0:
        word = "accuracy falls faster: the heatmap finds pixels the model relies on"
    elif hi < 0:
        word = "accuracy falls slower than with random heatmaps"
    else:
        word = "no faster than random shown"
    return (f"{word}; random minus heatmap {g.mean():+.3f}, 95% t-interval over "
            f"{len(g)} runs [{lo:+.3f}, {hi:+.3f}]")  # fmt: skip


def saliency_sentence(table) -> str:
    """What the real-data heatmaps look at (:func:`brainlib.replication.saliency_table`),
    averaged over runs per model: energy in the brain and deletion area against random,
    the deletion verdict from the spread of the per-run gaps (:func:`deletion_verdict`)."""
    out = []
    areas = table.pivot_table(index=["model", "split", "seed"], columns="method",
                              values="deletion_area")  # fmt: skip
    for model, rows in table.groupby("model", sort=False):
        m = rows.groupby("method").mean(numeric_only=True)
        rand = m.loc["random"]
        per_run = areas.loc[model]
        parts = []
        for method in ("gradcam", "gradcam++"):
            if method not in m.index:
                continue
            r = m.loc[method]
            inside = r["energy_in_brain"] - rand["energy_in_brain"]
            gaps = (per_run["random"] - per_run[method]).dropna()
            parts.append(
                f"{method}: {100 * r['energy_in_brain']:.1f}% of the heatmap inside the brain "
                f"({pts(inside)} against random heatmaps), deletion area {r['deletion_area']:.3f} "
                f"against {rand['deletion_area']:.3f} ({deletion_verdict(gaps)})"
            )
        runs_n = len(per_run)
        brain = 100 * rand["brain_area"]
        out.append(f"- **{MODEL_LABEL[model]}** ({n_of(runs_n, 'run')}, brain {brain:.1f}% of "
                   "the image): " + "; ".join(parts) + ".")  # fmt: skip
    if table["model"].nunique() > 1:  # the question is the heatmap's, not the model's
        both = [f"{method}: {deletion_verdict((areas['random'] - areas[method]).dropna())}"
                for method in ("gradcam", "gradcam++") if method in areas]  # fmt: skip
        out.append(f"- **Both models' runs together** ({n_of(len(areas), 'run')}): "
                   + "; ".join(both) + ".")  # fmt: skip
    return "\n".join(out)


def glue(name: str, value, display: bool = False) -> None:
    """myst-nb's ``glue`` (the book's inline numbers and figures) where the book stack is
    installed; elsewhere (Colab without the ``book`` extra) the value is shown in place."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        from IPython.display import display as show

        show(value)
        return
    myst_glue(name, value, display=display)
