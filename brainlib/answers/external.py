"""The converged runs on another dataset's test images."""

from __future__ import annotations

from brainlib import display as show
from brainlib import pooled as pl
from brainlib import results as res
from brainlib import runs
from brainlib.answers.core import (
    MODEL,
    SECONDARY,
    Answer,
    Grid,
    one_schedule_caveat,  # fmt: skip
)
from brainlib.config import CLASSES
from brainlib.display import listing

# --------------------------------------------------------------- 5. external test set


def external(grid: Grid) -> Answer:
    """The converged runs scored on an external test set, pooled over seeds per model and
    split: accuracy and macro AUC, on all images and on those with no exact or near
    duplicate among the run's training images."""
    import pandas as pd

    question = "How do the models fare on another dataset's test images?"
    names = res.external_sets(grid.frame)
    if not names:
        return Answer(question, "Not measured yet: no run was scored on an external "
                                "test set (`brainlib evaluate --external`).")  # fmt: skip
    name, rows, used, numbers, left = names[0], [], [], {}, []
    for (split, model), g in grid.converged().groupby(["split", "model"], sort=False):
        scored = {r.folder: res.external_predictions(r.folder, name) for r in g.itertuples()}
        g, rest = grid.one_schedule_and_rest(g[[scored[f] is not None for f in g["folder"]]])
        left += rest
        preds = {int(r.seed): scored[r.folder] for r in g.itertuples()}  # one schedule
        if not preds:
            continue
        used += [runs.run_name(model, split, s) for s in preds]
        table = pl.per_image({(model, s): p for s, p in preds.items()})
        first = next(iter(preds.values())).set_index("path").loc[table.index]
        clean = (first.get("duplicate_in_train", pd.Series("none", index=first.index))
                 == "none").to_numpy()  # fmt: skip
        proba = table[[f"p_{model}_{c}" for c in CLASSES]].to_numpy()
        acc = pl.mean_interval(table[f"correct_{model}"], n_resamples=grid.resamples)
        auc = pl.auc_interval(table["y"], proba, n_resamples=grid.resamples)
        acc_clean = pl.mean_interval(table[f"correct_{model}"][clean], n_resamples=grid.resamples)
        internal = float(g["accuracy"].mean())  # the same runs' own test set
        numbers[(model, split)] = {
            "accuracy": acc,
            "auc": auc,
            "clean": acc_clean,
            "overlapping": int((~clean).sum()),
            "seeds": sorted(preds),
        }
        rows.append({"model": MODEL[model], "split": split, "seeds": len(preds),
                     "images": len(table), "accuracy": _value(acc), "auc": _value(auc, 1, 3),
                     "clean": f"{_value(acc_clean)} ({int(clean.sum())})",
                     "internal": internal})  # fmt: skip
    if not rows:
        return Answer(question, f"Not measured yet: no converged run was scored on {name}.")
    meta = res.external_meta(grid.frame, name)
    frame = show.table(pd.DataFrame(rows), {
        "model": "Model", "split": "Trained on", "seeds": "Seeds", "images": "Images",
        "accuracy": "Accuracy [95%]", "auc": "Macro AUC [95%]",
        "clean": "Accuracy, no overlap with training [95%] (images)",
        "internal": "Own test set"}, {"seeds": 0, "images": 0})  # fmt: skip
    missing = meta.get("classes_missing", [])
    sentence = (f"**{name}** ({meta.get('n_test', '?')} images"
                + (f"; no {listing(missing)} images, so their recall and AUC are not measured"
                   if missing else "") + "): "
                + "; ".join(f"{r['model']} trained on the {r['split']} split, accuracy "
                            f"{r['accuracy']} against {r['internal']:.3f} on its own test set"
                            for r in rows) + ".")  # fmt: skip
    caveats = [
        "Another public dataset's test images (other scanners, sizes and "
        "preprocessing, its own labelling), with the same four classes. A drop from the "
        "own test set shows how much of that accuracy is specific to the source "
        "dataset (its duplicates included); it cannot tell which cause (label "
        "conventions, acquisition, leakage) is behind it. "
        + _overlap_words(numbers)
        + f" Intervals: bootstrap over images, pooled over seeds; {SECONDARY}.",
        *one_schedule_caveat(left),
    ]
    return Answer(question, sentence, frame, caveats, used,
                  "every converged run scored on the external set, pooled per model and "
                  "training split, of one schedule", numbers)  # fmt: skip


def _overlap_words(numbers: dict) -> str:
    """How many external images the overlap audit flags, per training split (runs of one
    split share their training images, so their count)."""
    per_split = {split: v["overlapping"] for (_, split), v in numbers.items()}
    if set(per_split.values()) == {0}:
        return "No external image is an exact or near duplicate of a training image."
    counts = [f"{n} for the {split} split" for split, n in per_split.items()]
    return (
        "The overlap audit finds external images that are exact or near duplicates of "
        f"training images: {listing(counts)}; the overlap column leaves them out."
    )


def _value(r: dict, scale: float = 1.0, digits: int = 3) -> str:
    d = min(digits, show.decimals(r.get("mc_error"), scale=1))
    return f"{r['value']:.{d}f} {show.bracket(r['low'], r['high'], d)}"
