"""How much duplicate leakage is worth, on a fixed test set; and the split difference."""

from __future__ import annotations

import numpy as np

from brainlib import display as show
from brainlib import pooled as pl
from brainlib import results as res
from brainlib import runs
from brainlib.answers.core import (
    MODEL,
    PRIMARY,
    SECONDARY,
    Answer,
    Grid,
    side_of_zero,  # fmt: skip
)
from brainlib.config import VARIANTS
from brainlib.display import interval, listing, n_of
from brainlib.statistics import t_interval

# --------------------------------------------------------------------- 3. leakage


def leakage(grid: Grid) -> Answer:
    """What the copies of test images in the paper split's training set are worth: each
    model on the paper split against the dedup split, same test images, over the seeds
    whose two runs converged; class-stratified and class-adjusted; exact and near
    duplicates apart; the placebo between two paper-split seeds; residual links."""
    import pandas as pd

    from brainlib import leakage as lk

    question = "How much does duplicate leakage raise test accuracy?"
    rows, numbers, used, text = [], {}, [], []
    mixed = grid.left_out(*([(m, "paper"), (m, "dedup")] for m in VARIANTS))
    for model in VARIANTS:
        seeds = grid.seeds([(model, "paper"), (model, "dedup")])
        if not seeds:
            text.append(not_yet(model, "dedup"))
            continue
        used += [runs.run_name(model, s, x) for x in seeds for s in ("paper", "dedup")]
        pooled = {s: pl.per_image(res.run_predictions(grid.frame, s, (model,), seeds))
                  for s in ("paper", "dedup")}  # fmt: skip
        a, b = (pooled[s][f"correct_{model}"] for s in ("paper", "dedup"))
        if not a.index.equals(b.index):
            raise res.ResultsError(f"{grid.root}: {model}'s paper and dedup runs were tested "
                                   "on other images")  # fmt: skip
        dups = res.duplicate_table(grid.root, "paper").loc[a.index]
        flag, cls = dups["duplicate_in_train"].to_numpy(), pooled["paper"]["class"].to_numpy()
        clusters = res.test_clusters(grid.root, "paper", a.index)
        n = grid.resamples
        raw = lk.leakage_effect(a, b, flag != "none", clusters, n)
        strat = lk.stratified_effect(a, b, flag != "none", cls, clusters, n)
        adj = lk.adjusted_effect(a, b, flag != "none", cls, clusters)
        kind = {k: lk.leakage_effect(a[m], b[m], flag[m] == k, clusters[m], n).loc[lk.EFFECT]
                for k in ("exact", "near")
                for m in [np.isin(flag, [k, "none"])] if (flag == k).any()}  # fmt: skip
        placebo = _placebo(grid, model)
        effect = raw.loc[lk.EFFECT]
        per_seed = [_seed_effect(grid, model, s, flag != "none", a.index) for s in seeds]
        over_seeds = {"difference": float(np.mean(per_seed)), "mc_error": float("nan")}
        over_seeds["low"], over_seeds["high"] = t_interval(per_seed)
        numbers[model] = {"seeds": seeds, "raw": raw, "stratified": strat, "adjusted": adj,
                          "by_kind": kind, "placebo": placebo, "per_seed": per_seed,
                          "over_seeds": over_seeds}  # fmt: skip
        spread = ([(f"Mean of {len(seeds)} seeds' differences (t-interval over seeds)",
                    over_seeds, SECONDARY)] if len(seeds) > 1 else [])  # fmt: skip
        add = [("Difference of differences, pooled", effect, PRIMARY), *spread,
               ("Class-stratified", strat.loc["stratified"], SECONDARY),
               ("Class-adjusted model (clustered errors)", adj, SECONDARY),
               *((f"{k.capitalize()} duplicates only", r, SECONDARY) for k, r in kind.items()),
               *((f"Placebo: paper seed {a_} vs {b_}", r, SECONDARY)
                 for (a_, b_), r in placebo.items())]  # fmt: skip
        rows += [
            {
                "model": MODEL[model],
                "seeds": len(seeds),
                "estimate": name,
                "effect": interval(dict(r)),
                "role": role,
            }
            for name, r, role in add
        ]
        text.append(_leakage_sentence(model, seeds, raw, strat, adj, placebo, per_seed, over_seeds))
    if not rows:
        return Answer(question, " ".join(text), caveats=mixed)
    links = lk.residual_links(res.duplicate_table(grid.root, "dedup"))
    caveats = [*mixed, f"The dedup split removes every training image that is an exact or near "
               f"duplicate of a test image, but {links['linked']} of its "
               f"{links['test_images']} test images are still linked to a training or "
               f"validation image through a chain of near duplicates "
               f"({links['linked_to_train']} to a training image); they count as "
               "'no duplicate' in this comparison."]  # fmt: skip
    single = [MODEL[m] for m, v in numbers.items() if len(v["seeds"]) < 2]
    if single:
        chance = ("the placebo rows show how large a difference two trainings make by chance"
                  if any(v["placebo"] for v in numbers.values()) else
                  "no placebo yet, which needs two converged paper-split seeds of one model "
                  "on one schedule to show how large a difference two trainings make by "
                  "chance")  # fmt: skip
        who = "" if len(single) == len(numbers) else f" for {listing(single)}"
        caveats.append(f"One seed per arm{who}: the intervals hold the test images' variance, "
                       f"not the training's; {chance}.")  # fmt: skip
    frame = show.table(pd.DataFrame(rows), {"model": "Model", "seeds": "Seeds",
                                            "estimate": "Estimate",
                                            "effect": "Leakage effect [95% interval]",
                                            "role": "Interval"}, {"seeds": 0})  # fmt: skip
    return Answer(question, "\n\n".join(text), frame, caveats, used,
                  why="per model, the seeds whose paper-split and dedup-split runs both "
                      "converged, on one schedule",
                  numbers={**numbers, "residual": links})  # fmt: skip


def not_yet(model: str, other: str) -> str:
    return (f"**{MODEL[model]}:** not measured yet (no seed with converged runs on both the "
            f"paper and the {other} split, on one schedule).")  # fmt: skip


def _seed_effect(grid: Grid, model: str, seed: int, has_duplicate, index) -> float:
    """One seed's difference of differences (its paper-split run against its dedup run)."""
    from brainlib import leakage as lk

    one = {s: pl.per_image(res.run_predictions(grid.frame, s, (model,), [seed]))
           .loc[index, f"correct_{model}"] for s in ("paper", "dedup")}  # fmt: skip
    return lk.difference_of_differences(one["paper"], one["dedup"], has_duplicate)


def _placebo(grid: Grid, model: str) -> dict:
    """The difference of differences between two converged paper-split seeds of ``model``
    (no copies differ between them), for each pair of seeds."""
    from brainlib import leakage as lk

    ok = grid.converged("paper", model)
    schedule = dict(zip(ok["seed"], ok["schedule"], strict=True))
    seeds = sorted(schedule)
    out = {}
    for i, s in enumerate(seeds):
        for t in seeds[i + 1 :]:
            if schedule[s] != schedule[t]:
                continue  # two schedules: the difference would measure them too
            p = pl.per_image(res.run_predictions(grid.frame, "paper", (model,), [s]))
            q = pl.per_image(res.run_predictions(grid.frame, "paper", (model,), [t]))
            dup = res.duplicate_table(grid.root, "paper").loc[p.index, "duplicate_in_train"]
            clusters = res.test_clusters(grid.root, "paper", p.index)
            table = lk.leakage_effect(p[f"correct_{model}"], q[f"correct_{model}"], dup != "none",
                                      clusters, grid.resamples)  # fmt: skip
            out[(s, t)] = table.loc[lk.EFFECT]
    return out


def _leakage_sentence(model, seeds, raw, strat, adj, placebo, per_seed, over_seeds) -> str:
    from brainlib.leakage import EFFECT

    e, dup, clean = raw.loc[EFFECT], raw.loc["duplicate in training"], \
        raw.loc["no duplicate in training"]  # fmt: skip
    # a verdict needs both intervals on one side of zero: the pooled one (test images)
    # and the one over seeds (trainings); one seed has no spread over trainings
    side = {side_of_zero(e), side_of_zero(over_seeds)}
    word = ("one seed, no verdict" if len(seeds) < 2 else
            "training on the copies raised accuracy on their test twins" if side == {1} else
            "training on the copies lowered accuracy on their test twins" if side == {-1} else
            "no leakage effect shown" if side == {0} else
            "not shown beyond the spread over seeds")  # fmt: skip
    text = (f"**{MODEL[model]} ({n_of(len(seeds), 'seed')}): {word}.** On the "
            f"{int(dup['images'])} test images with a duplicate in the paper split's training "
            f"set, accuracy {dup['with_copies']:.3f} with the copies and "
            f"{dup['without_copies']:.3f} without; on the other {int(clean['images'])}, "
            f"{clean['with_copies']:.3f} and {clean['without_copies']:.3f}. Difference of "
            f"differences {interval(dict(e))}; within classes "
            f"{interval(dict(strat.loc['stratified']))}; "
            f"class-adjusted {interval(adj)}.")  # fmt: skip
    if len(seeds) > 1:
        text += (f" Seed by seed it reads {listing(f'{100 * v:+.1f}' for v in per_seed)} "
                 f"points: over the seeds, {interval(over_seeds)} (t-interval).")  # fmt: skip
    if placebo:
        values = [f"{interval(dict(r))} for seeds {a} and {b}" for (a, b), r in placebo.items()]
        text += (
            f" Between two paper-split seeds, where no copies differ, the same measure "
            f"reads {listing(values)}: what chance alone makes of two trainings."
        )
    return text


# ----------------------------------------------------------- 4. the split difference


def split_difference(grid: Grid) -> Answer:
    """The paper's split against the grouped split (other test images), image by image:
    on all test images and on those with no duplicate anywhere in the data."""
    import pandas as pd

    question = "How far apart are the paper's split and a duplicate-free split?"
    rows, text, used = [], [], []
    mixed = grid.left_out(*([(m, "paper"), (m, "grouped")] for m in VARIANTS))
    for model in VARIANTS:
        seeds = grid.seeds([(model, "paper"), (model, "grouped")])
        if not seeds:
            text.append(not_yet(model, "grouped"))
            continue
        used += [runs.run_name(model, s, x) for x in seeds for s in ("paper", "grouped")]
        scores = {}
        for split in ("paper", "grouped"):
            table = pl.per_image(res.run_predictions(grid.frame, split, (model,), seeds))
            dups = res.duplicate_table(grid.root, split)
            alone = dups.groupby("cluster")["split"].transform("size").loc[table.index] == 1
            scores[split] = (
                table[f"correct_{model}"].to_numpy(),
                res.test_clusters(grid.root, split, table.index),
                alone.to_numpy(),
            )
        for name, only in (("all test images", False), ("no duplicate anywhere", True)):
            (a, ca, ka), (b, cb, kb) = scores["paper"], scores["grouped"]
            if not only:
                ka, kb = np.ones_like(ka), np.ones_like(kb)
            r = pl.two_sample_difference(a[ka], b[kb], ca[ka], cb[kb], grid.resamples)
            rows.append({"model": MODEL[model], "seeds": len(seeds), "images": name,
                         "n": f"{r['images_a']} / {r['images_b']}", "paper": a[ka].mean(),
                         "grouped": b[kb].mean(), "difference": interval(r)})  # fmt: skip
        every, alone = rows[-2], rows[-1]
        text.append(f"**{MODEL[model]} ({n_of(len(seeds), 'seed')}):** {every['paper']:.3f} on "
                    f"the paper's split against {every['grouped']:.3f} on the grouped split, "
                    f"{every['difference']}; on the test images with no duplicate anywhere "
                    f"in the data, {alone['difference']}.")  # fmt: skip
    if not rows:
        return Answer(question, " ".join(text), caveats=mixed)
    frame = show.table(pd.DataFrame(rows), {"model": "Model", "seeds": "Seeds",
                                            "images": "Test images",
                                            "n": "Images (paper / grouped)",
                                            "paper": "Paper split", "grouped": "Grouped split",
                                            "difference": "Paper − grouped [95% interval]"},
                       {"seeds": 0})  # fmt: skip
    return Answer(question, "\n\n".join(text), frame,
                  [*mixed, "The two splits test *different* images, so this mixes leakage with "
                   "which images each test set holds: a split difference, not a measure of leakage "
                   "(the fixed test set above measures that). Intervals: unpaired bootstrap "
                   f"over each test set's duplicate clusters; {SECONDARY}."],
                  used, "per model, the seeds whose paper-split and grouped-split runs both "
                        "converged, on one schedule")  # fmt: skip
