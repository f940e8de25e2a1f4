"""Did the runs converge, does SE beat base, and how far are the runs from the paper?"""

from __future__ import annotations

from pathlib import Path

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
    one_schedule_caveat,
    run_name,  # fmt: skip
    side_of_zero,
)
from brainlib.config import CLASSES, VARIANTS, load_profile
from brainlib.display import interval, listing, n_of
from brainlib.paper import headline
from brainlib.statistics import t_interval

# ------------------------------------------------------------------ 1. convergence


def convergence(grid: Grid) -> Answer:
    """Did the runs converge? One row per run, with its schedule."""
    f, v = grid.frame, grid.verdicts
    table = f[["model", "split", "seed"]].assign(
        run=[f"{MODEL[r.model]}, {r.split}, {r.seed}" for r in f.itertuples()],
        schedule=[f"{m}, {p}" for m, p in zip(f["max_epochs"], f["patience"], strict=True)],
        epochs=v["epochs"], best=v["best_epoch"],
        fit=v["train_accuracy"], test=f["accuracy"], external=_external_accuracy(grid),
        minutes=[res.train_minutes(grid.root, d) for d in f["folder"]],
        machine=[_machine(runs.read_meta(d)) for d in f["folder"]],
        verdict=[_short_verdict(r) for r in v.itertuples()])  # fmt: skip
    ok, n = int(v["converged"].sum()), len(f)
    bad = [f"{run_name(r)} ({why})" for r, why in zip(f.itertuples(), v["reason"], strict=True)
           if why != "converged"]  # fmt: skip
    sentence = (f"**{ok} of {n_of(n, 'run')} meet the convergence rule**: each stopped "
                "on its early-stopping patience (not on its epoch cap) and its best weights "
                f"classify at least {runs.MIN_TRAIN_ACCURACY} of its training images in "
                "inference mode. Only these runs enter the answers below.")  # fmt: skip
    if bad:
        sentence += " Left out: " + "; ".join(bad) + "."
    todo = grid_to_train(grid)
    if todo is not None:
        sentence += " " + _grid_sentence(grid, todo)
    headers = {"run": "Run (model, split, seed)", "schedule": "Cap, patience",
               "epochs": "Epochs", "best": "Best",
               "fit": "Train fit", "test": "Test acc.", "external": "External acc.",
               "minutes": "Minutes*", "machine": "CPU, precision",
               "verdict": "Converged"}  # fmt: skip
    minutes = ("\\* Minutes: the whole schedule (every stage the run started from), each "
               "stage's epochs times its median epoch time, so a pause or a shared machine "
               "does not inflate it; on the CPU named (that of its last stage; – where run.json "
               "does not record it), with the precision it trained in (bf16: mixed bfloat16, "
               "which `mixed_precision = auto` chooses on a CPU with native bfloat16; fp32 "
               "elsewhere; runs of two precisions are not compared). CPUs of one name differ "
               "up to 2-3 times in speed; one without native bfloat16 trains several times "
               "slower. "
               "Converged: *no: cap*, it ran out of epochs before its early-stopping "
               f"patience; *no: fit*, its best weights classify fewer than "
               f"{runs.MIN_TRAIN_ACCURACY} of its training images.")  # fmt: skip
    return Answer("Did the runs converge?", sentence,
                  show.table(table, headers, {"seed": 0, "epochs": 0, "best": 0, "minutes": 0}),
                  table_note=minutes, runs=[run_name(r) for r in f.itertuples()], why="every run",
                  numbers={"converged": ok, "runs": n, "to_train": todo})  # fmt: skip


def grid_to_train(grid: Grid) -> list[tuple[str, str, int]] | None:
    """The cells ``(model, split, seed)`` of the grid the runs were trained for (their
    profile's ``splits`` x ``seeds``, both models) without a converged run on the schedule
    the profile has today (:func:`brainlib.results.on_current_schedule`): what is left to
    train, or to train again. ``None`` where ``profiles.toml`` no longer has the profile."""
    ok = grid.converged()
    if ok["today"].isna().any():  # a grid of a profile renamed or removed since
        return None
    done = {(r.model, r.split, int(r.seed)) for r in ok.itertuples() if r.today}
    splits, seeds = _grid_axes(grid)
    return [(m, s, seed) for s in splits for seed in seeds for m in VARIANTS
            if (m, s, seed) not in done]  # fmt: skip


def _grid_axes(grid: Grid) -> tuple[list[str], list[int]]:
    """The splits and seeds of the grid the runs were trained for (their profile's)."""
    p = res.exported_profile(grid.root)
    return p["splits"] or [p["split"]], [int(s) for s in p["seeds"] or [p["seed"]]]


def _grid_sentence(grid: Grid, todo) -> str:
    """Where the grid stands, in one sentence: its size, and what is left to train."""
    splits, seeds = _grid_axes(grid)
    cells = len(VARIANTS) * len(splits) * len(seeds)
    size = (f"The grid is {len(VARIANTS)} models x {len(splits)} splits x "
            f"{n_of(len(seeds), 'seed')} = {cells} runs")  # fmt: skip
    if not todo:
        return size + ", every one converged on today's schedule."
    parts = []
    for split in splits:
        seeds_left = []
        for seed in seeds:
            models = [MODEL[m] for m in VARIANTS if (m, split, seed) in todo]
            if models:
                named = "" if len(models) == len(VARIANTS) else f" ({listing(models)})"
                seeds_left.append(f"{seed}{named}")
        if seeds_left:
            parts.append(f"{split} {listing(seeds_left)}")
    return (f"{size}; {cells - len(todo)} converged on today's schedule, "
            f"{len(todo)} to train or train again (both models unless named): "
            f"{'; '.join(parts)}.")  # fmt: skip


def _machine(meta: dict) -> str:
    """The CPU (or GPU) a run's last stage trained on and its precision, in a few words."""
    device = meta.get("device", {})
    precision = PRECISION.get(meta.get("precision_policy"), meta.get("precision_policy"))
    if device.get("device") == "GPU":
        name = "GPU"
    elif not device.get("cpu"):
        name = "–"  # run.json from before the CPU was recorded
    else:
        name = str(device["cpu"])
        for noise in ("(R)", "(TM)", " Processor", " CPU"):
            name = name.replace(noise, "")
        cores = device.get("cpu_count")
        name = name.split(" @ ")[0].strip() + (f", {cores} cores" if cores else "")
    return f"{name}, {precision}" if precision else name


#: The precision a run trained in (``run.json``'s ``precision_policy``), in short.
PRECISION = {"mixed_bfloat16": "bf16", "mixed_float16": "fp16", "float32": "fp32"}


def _short_verdict(v) -> str:
    """The convergence verdict in a few words: "yes", or "no" and which rule failed
    (``cap``: it ran out of epochs before its patience; ``fit``: below the fit rule)."""
    if v.converged:
        return "yes"
    return "no: " + ", ".join([*([] if v.stopped_on_patience else ["cap"]),
                               *([] if v.fitted else ["fit"])])  # fmt: skip


def _external_accuracy(grid: Grid) -> list[float]:
    names = res.external_sets(grid.frame)
    out = []
    for d in grid.frame["folder"]:
        p = res.external_predictions(d, names[0]) if names else None
        out.append(float((p["class"] == p["predicted"]).mean()) if p is not None else np.nan)
    return out


# ------------------------------------------------------------------- 2. SE vs base


#: The paper's SE - base differences (abstract: 98.4% against 92.6%, AUC 0.999 against 0.987).
def paper_difference() -> dict:
    se, base = headline("se"), headline("base")
    return {"accuracy": se["accuracy"] - base["accuracy"], "auc": se["auc"] - base["auc"]}


def _pooled(grid: Grid, split: str, seeds):
    preds = res.run_predictions(grid.frame, split, seeds=seeds)
    table = pl.per_image(preds)
    return preds, table, res.test_clusters(grid.root, split, table.index)


def se_vs_base(grid: Grid, split: str = "paper") -> Answer:
    """SE against base on ``split``: pooled over the converged seeds of both models, paired
    by image; the spread over seeds; what the interval rules out, against the paper."""
    question = f"Does SE beat base ({split} split)?"
    seeds = grid.seeds([("se", split), ("base", split)])
    mixed = grid.left_out([("se", split), ("base", split)])
    if not seeds:
        return Answer(question, f"Not measured yet: no seed of the {split} split has a "
                                "converged run of both models on one schedule.",
                      caveats=mixed)  # fmt: skip
    preds, table, clusters = _pooled(grid, split, seeds)
    n = grid.resamples
    acc = pl.paired_difference(table["correct_se"], table["correct_base"], clusters, n)
    auc_se_base = {m: table[[f"p_{m}_{c}" for c in CLASSES]].to_numpy() for m in VARIANTS}
    auc = pl.auc_difference(table["y"], auc_se_base["se"], auc_se_base["base"], clusters, n)
    per_seed = [float((preds[("se", s)]["predicted"] == preds[("se", s)]["class"]).mean()
                      - (preds[("base", s)]["predicted"] == preds[("base", s)]["class"]).mean())
                for s in seeds]  # fmt: skip
    lo_t, hi_t = t_interval(per_seed)
    paper = paper_difference()
    mde = pl.minimum_detectable(acc["low"], acc["high"])
    role = PRIMARY if split == "paper" else SECONDARY
    rows = [
        {"measure": "Accuracy, pooled (paired bootstrap over clusters)",
         "se": acc_mean(table, "se"),
         "base": acc_mean(table, "base"), "difference": interval(acc), "paper": paper["accuracy"],
         "role": role},
        {"measure": f"Accuracy, mean of {n_of(len(seeds), 'seed')} (t-interval over seeds)",
         "se": np.nan, "base": np.nan,
         "difference": interval({"difference": float(np.mean(per_seed)), "low": lo_t,
                                 "high": hi_t, "mc_error": float("nan")}),
         "paper": paper["accuracy"], "role": SECONDARY},
        {"measure": "Macro AUC of the seed-averaged probabilities", "se": auc["auc_a"],
         "base": auc["auc_b"], "difference": interval(auc, scale=1, unit=""),
         "paper": paper["auc"], "role": SECONDARY},
    ]  # fmt: skip
    import pandas as pd

    frame = show.table(
        pd.DataFrame(rows),
        {
            "measure": "Measure",
            "se": "SE",
            "base": "Base",
            "difference": "SE − base [95% interval]",
            "paper": "Paper's SE − base",
            "role": "Interval",
        },
    )
    sentence = _se_vs_base_sentence(split, seeds, acc, auc, (lo_t, hi_t), mde, paper)
    caveats = list(mixed)
    if len(seeds) < 3:
        caveats.append(f"{n_of(len(seeds), 'seed')}: the seed-to-seed spread is barely measured.")
    return Answer(question, sentence, frame, caveats,
                  runs=[runs.run_name(m, split, s) for s in seeds for m in VARIANTS],
                  why=f"the seeds of the {split} split with a converged run of both models "
                      f"on one schedule ({listing(seeds)})",
                  numbers={"seeds": seeds, "accuracy": acc, "auc": auc, "per_seed": per_seed,
                           "t_interval": (lo_t, hi_t), "mde": mde,
                           "mcnemar": pl.mcnemar_by_seed(preds)})  # fmt: skip


def acc_mean(table, model: str) -> float:
    return float(table[f"correct_{model}"].mean())


def _se_vs_base_sentence(split, seeds, acc, auc, t_int, mde, paper) -> str:
    head = f"**{split} split, {n_of(len(seeds), 'seed')} pooled:** "
    if len(seeds) < 2:
        return (
            head + f"SE - base = {interval(acc)} in accuracy, {interval(auc, 1, '')} in "
            "macro AUC, from one seed: no verdict (a verdict needs the spread over seeds)."
        )
    # a verdict needs both intervals on one side of zero: the pooled one (test images) and
    # the one over seeds (trainings)
    over = {"low": t_int[0], "high": t_int[1]}
    side = {side_of_zero(acc), side_of_zero(over)}
    word = ("SE ahead" if side == {1} else "base ahead" if side == {-1} else
            "no difference shown" if side == {0} else
            "no difference shown beyond the spread over seeds")  # fmt: skip
    text = (f"{head}{word} in accuracy, SE - base = {interval(acc)} (paired bootstrap over "
            f"{acc['clusters']} duplicate clusters); over seeds the mean difference has a "
            f"95% t-interval [{100 * t_int[0]:+.1f}, {100 * t_int[1]:+.1f}]. ")  # fmt: skip
    if len(side) > 1 or side == {0}:
        high = max(acc["high"], t_int[1])  # the wider reach of the two intervals
        excl = ("Both intervals rule out" if high < paper["accuracy"] else
                "At least one interval does not rule out")  # fmt: skip
        text += (f"{excl} the paper's +{100 * paper['accuracy']:.1f} points; "
                 f"with these runs a true difference of about {100 * mde:.1f} points would be "
                 "detected 80% of the time (minimum detectable difference, pooled). ")  # fmt: skip
    auc_excl = "rules out" if auc["high"] < paper["auc"] else "does not rule out"
    return text + (f"Macro AUC: SE - base = {interval(auc, 1, '')}, which {auc_excl} the "
                   f"paper's +{paper['auc']:.3f}.")  # fmt: skip


# ---------------------------------------------------- 7. distance from the paper


def distance_from_paper(grid: Grid) -> Answer:
    """The converged paper-split runs' mean accuracy and AUC against the paper's: per
    model, the runs of one schedule (:meth:`Grid.one_schedule`), so a mean does not mix two."""
    import pandas as pd

    rows, used, left = [], [], []
    for model in VARIANTS:
        ok, rest = grid.one_schedule_and_rest(grid.converged("paper", model))
        left += rest
        used += [run_name(r) for r in ok.itertuples()]
        if ok.empty:
            continue
        paper = headline(model)
        rows.append({"model": MODEL[model], "seeds": len(ok), "paper_acc": paper["accuracy"],
                     "acc": ok["accuracy"].mean(), "paper_auc": paper["auc"],
                     "auc": ok["auc_macro"].mean()})  # fmt: skip
    question = "How far are these runs from the paper's?"
    if not rows:
        return Answer(question, "Not measured yet: no converged run on the paper's split.")
    frame = pd.DataFrame(rows)
    sentence = " ".join(f"**{r.model}** (mean of {n_of(r.seeds, 'seed')}): accuracy {r.acc:.3f} "
                        f"against the paper's {r.paper_acc:.3f} "
                        f"({100 * (r.acc - r.paper_acc):+.1f} points), macro AUC {r.auc:.3f} "
                        f"against {r.paper_auc:.3f}." for r in frame.itertuples())  # fmt: skip
    caveats = [_distance_caveat(grid), *one_schedule_caveat(left)]
    return Answer(question, sentence, show.table(frame, {
        "model": "Model", "seeds": "Seeds", "paper_acc": "Paper accuracy", "acc": "Accuracy",
        "paper_auc": "Paper AUC", "auc": "Macro AUC"}, {"seeds": 0}),
        caveats, used,
        "every converged run on the paper's split, of one schedule per model (today's "
        "where it has one)")  # fmt: skip


def _distance_caveat(grid: Grid) -> str:
    kind = weights_kind(
        res.exported_profile(grid.root), runs.read_meta(grid.frame["folder"].iloc[0])
    )
    if kind == "stand-in":
        return ("These runs start from stand-in backbone weights, not ImageNet's: the "
                "distance measures the rehearsal, not the paper's protocol.")  # fmt: skip
    if kind == "none":
        return ("The paper fine-tuned ImageNet weights; these runs start from random weights, "
                "so the distance is measured, not explained.")  # fmt: skip
    return (
        "Both start from ImageNet weights; what remains is the data split, the seeds, "
        "the software and the hardware (the paper does not report its seed or split)."
    )


def weights_kind(profile: dict, meta: dict) -> str:
    """``stand-in``, ``none``, ``imagenet`` or ``file``: what the runs started from
    (``meta``: a run's ``run.json``, which marks a stand-in weights file)."""
    weights = profile.get("weights")
    if meta.get("weights_stand_in"):
        return "stand-in"
    if weights in (None, "none", ""):
        return "none"
    return "imagenet" if weights == "imagenet" else "file"


# ------------------------------------------------------------------ 0. what was run

SPLIT_WORDS = {
    "paper": "the paper's stratified random split",
    "dedup": "the paper's split minus every training image that duplicates a test image, "
    "with the same test images",
    "grouped": "a split that keeps exact and near duplicates on one side, with other test images",
}


def setup(grid: Grid) -> Answer:
    """What the runs are: their weights (and so what they can answer), the
    protocol's departures from the paper's, and the splits."""
    prof = res.exported_profile(grid.root)
    meta = runs.read_meta(grid.frame["folder"].iloc[0])
    splits = [s for s in res.SPLIT_ORDER if s in set(grid.frame["split"])]
    sentence = (f"Profile `{grid.root.name}`: {prof.get('description', '')}. "
                + protocol_sentence(prof) + ". Splits: "
                + "; ".join(f"`{s}`, {SPLIT_WORDS.get(s, s)}" for s in splits)
                + f", each drawn with seed {prof['seed']}; a training seed changes the initial "
                  "weights, batch order, flips and dropout, not the test images.")  # fmt: skip
    return Answer("What was run?", sentence, caveats=[weights_caveat(prof, meta)],
                  numbers={"profile": prof})  # fmt: skip


#: Fields that describe the data or the grid, not the protocol compared with the paper's.
_NOT_PROTOCOL = {"name", "description", "dataset", "data_dir", "strict_data", "split", "seed",
                 "seeds", "splits", "bootstrap_resamples", "extra", "phantoms_per_class",
                 "phantom_size", "fast_path", "cache_memory_gib", "jit_compile"}  # fmt: skip
_PAPER_WORDS = {
    ("bn_momentum", None): "Keras' 0.99",
    ("trainable_from", "paper"): "from conv5_block1_preact_bn on",
    ("init_from", ""): "none",
}


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
            if key == "weights":  # a file: its name, not the path on the machine that ran it
                value = Path(str(value)).name
            out.append(f"`{key}` {value} (paper: {_PAPER_WORDS.get((key, ref), ref)})")
    return out


def weights_caveat(profile: dict, meta: dict) -> str:
    """What the runs' backbone weights allow the page to conclude (``meta``: a run's
    ``run.json``, which says where the device and a stand-in weights file were)."""
    weights, size = profile.get("weights"), profile.get("image_size")
    device = meta.get("device", {})
    where = f"at {size} px on {device.get('device', 'CPU')} ({device.get('cpu_count', '?')} cores)"
    kind = weights_kind(profile, meta)
    if kind == "stand-in":
        return (
            f"**Stand-in backbone weights** ({meta['weights_stand_in']}), trained {where}: "
            "a rehearsal of the protocol's code path. No number in this section says "
            "anything about the paper's question (does SE help a fine-tuned ImageNet network?)."
        )
    if kind == "none":
        return (
            "**No ImageNet weights.** Every number in this section comes from ResNet50V2 "
            f"trained from random weights {where}; the paper fine-tuned ImageNet weights at "
            "224 px. These runs test the pipeline, the statistics and the data, not the "
            "paper's question (does SE help a fine-tuned ImageNet network?)."
        )
    if kind == "imagenet":
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
