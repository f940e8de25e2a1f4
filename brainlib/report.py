"""The book's results page, written from the artifacts of the run folders.

Every number on the page is read from a run folder (``metrics.json``,
``predictions.csv``, ``history.csv``) or from the paper's data file; every
figure is a file a notebook saved there. Nothing is typed in by hand.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from brainlib.config import Profile
from brainlib.evaluation import paired_predictions, paper_comparison, read_metrics
from brainlib.fileio import read_json
from brainlib.paper import headline, reported
from brainlib.statistics import compare_models, reconstruct_paper_ztests
from brainlib.training import read_history, seed_runs

FIGURES = (
    ("figure1_accuracy", "Figure 1. Training and validation accuracy per epoch."),
    ("figure2_loss", "Figure 2. Training and validation loss per epoch."),
    ("figure3_gap", "Figure 3. Training minus validation accuracy per epoch."),
    ("figure4_confusion", "Figure 4. Confusion matrix on the test set."),
    ("figure5_gradcam", "Figure 5. Grad-CAM and Grad-CAM++ on test images."),
)

TEST_COLUMNS = ["n", "se_correct", "base_correct", "z_test_p", "only_se_right",
                "only_base_right", "mcnemar_p"]  # fmt: skip
ZTEST_COLUMNS = ["n", "se_correct", "base_correct", "z", "p", "paper_p", "paper_says_significant",
                 "significance_agrees", "rounds_to_paper_p_of"]  # fmt: skip


def _md(frame, floatfmt=".3f") -> str:
    """A Markdown table; floats formatted here so integer columns stay integers."""
    digits = floatfmt.strip(".f")
    if frame.index.nlevels > 1 or frame.index.name is not None:
        frame = frame.reset_index()
    shown = frame.astype(object).map(
        lambda v: f"{v:.{digits}f}" if isinstance(v, float) and v == v else ("" if v != v else v)
    )
    return shown.to_markdown(index=False)


def results_markdown(runs_dir: str | Path, profile: Profile, figures_out: Path) -> str:
    """Markdown for the results page; figures are copied into ``figures_out``."""
    import pandas as pd

    folders = seed_runs(runs_dir, profile)
    metrics = {v: read_metrics(f) for v, f in folders.items()}
    lines = []
    rows = []
    for v, label in (("se", "SE model"), ("base", "Base model")):
        paper = headline(v)
        m = metrics[v]
        lo, hi = m["ci_low"]["overall"], m["ci_high"]["overall"]
        rows.append(
            {
                "model": label,
                "paper accuracy": paper["accuracy"],
                "replication accuracy": m["accuracy"],
                "95% CI": f"[{lo['accuracy']:.3f}, {hi['accuracy']:.3f}]",
                "paper AUC": paper["auc"],
                "replication AUC (macro)": m["auc_macro"],
                "AUC 95% CI": f"[{lo['auc']:.3f}, {hi['auc']:.3f}]",
                "epochs": len(read_history(folders[v])),
            }
        )
    lines += ["### Headline", "", _md(pd.DataFrame(rows).set_index("model")), ""]
    for v, title in (("se", "Table 1. SE model"), ("base", "Table 2. Base model")):
        lines += [
            f"### {title}: paper and replication",
            "",
            "Per class; *accuracy* is the paper's column, which is the F1 score "
            "(see the evaluation chapter); the overall row's precision, recall and F1 are macro "
            "averages and its AUC the macro one-vs-rest AUC. `difference` = replication - paper; "
            "the interval is a 95% bootstrap interval over the test images.",
            "",
            _md(paper_comparison(metrics[v])),
            "",
        ]
    y, pred_se, pred_base = paired_predictions(folders["se"], folders["base"])
    tests = compare_models(y, pred_se, pred_base)
    lines += [
        "### SE against base on the same test images",
        "",
        "The paper's two-proportion z-test (unpaired) and McNemar's test (paired).",
        "",
        _md(tests[TEST_COLUMNS], floatfmt=".4f"),
        "",
        "### The paper's z-tests, redone from its own tables",
        "",
        _md(reconstruct_paper_ztests()[ZTEST_COLUMNS], floatfmt=".4f"),
        "",
        f"The paper's SE model trained for {reported()['training']['epochs']} epochs and ended "
        f"with a train-validation accuracy gap of {reported()['training']['final_accuracy_gap']}.",
        "",
    ]
    figures_out.mkdir(parents=True, exist_ok=True)
    lines += ["### Figures 1-5", ""]
    for name, caption in FIGURES:
        for v in ("se", "base"):
            src = folders[v] / "figures" / f"{name}.png"
            if name in ("figure1_accuracy", "figure2_loss", "figure3_gap") and v == "base":
                continue  # one figure holds both models
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing: run the notebooks first")
            dst = figures_out / f"{v}_{name}.png"
            shutil.copyfile(src, dst)
            both = name.startswith(("figure1", "figure2", "figure3"))
            who = "both models" if both else ("SE model" if v == "se" else "base model")
            lines += [
                f"```{{figure}} {figures_out.name}/{dst.name}",
                f":name: {v}-{name}",
                ":width: 90%",
                "",
                f"{caption} ({who})",
                "```",
                "",
            ]
    return "\n".join(lines)


# ------------------------------------------------------------ the committed replication


def _table(frame) -> str:
    """Markdown of ``frame`` as formatted here (no re-parsing of numbers)."""
    return frame.to_markdown(index=False, disable_numparse=True)


def _pm(mean: float, sd: float, digits: int = 3) -> str:
    return f"{mean:.{digits}f} +- {sd:.{digits}f}" if sd == sd else f"{mean:.{digits}f}"


def _pts(x: float) -> str:
    """A difference of proportions in percentage points, signed."""
    return f"{100 * x:+.1f} points"


def _figure(path: Path, name: str, caption: str) -> list[str]:
    return [f"```{{figure}} {path.parent.name}/{path.name}", f":name: {name}", ":width: 90%", "",
            caption, "```", ""]  # fmt: skip


SPLIT_WORDS = {
    "paper": "the paper's stratified random split",
    "grouped": "the grouped split, which keeps exact and near duplicates on one side",
}
#: Fields that describe the data or the grid, not the protocol compared with the paper's.
_NOT_PROTOCOL = {"name", "description", "dataset", "data_dir", "strict_data", "split", "seed",
                 "seeds", "splits", "bootstrap_resamples", "extra", "phantoms_per_class",
                 "phantom_size"}  # fmt: skip


def protocol_changes(fields: dict) -> list[str]:
    """How a run's profile fields differ from the ``paper`` profile, as short phrases."""
    from brainlib.config import load_profile

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


_PAPER_WORDS = {
    ("bn_momentum", None): "Keras' 0.99",
    ("trainable_from", "paper"): "from conv5_block1_preact_bn on",
}


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _spread(sd: float, lo: float, hi: float, seeds: int) -> str:
    """', sd x, 95% t-interval [a, b]' in points, or nothing for a single seed."""
    if seeds < 2:
        return ""
    return f", sd {100 * sd:.1f}, 95% t-interval [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def replication_markdown(root: str | Path, figures_out: Path) -> str:
    """Markdown for the replication on the real data, read from ``results/<profile>/``.

    Every number comes from the exported artifacts (see :mod:`brainlib.replication`);
    figures are drawn from them into ``figures_out``.
    """
    import pandas as pd

    from brainlib import plots, replication

    root = Path(root)
    frame = replication.load(root)
    prof = replication.profile_of(root)
    meta = read_json(frame["folder"].iloc[0] / "run.json")
    seeds = sorted(frame["seed"].unique())
    splits = [s for s in ("paper", "grouped") if s in set(frame["split"])]
    hours = frame["train_minutes"].sum() / 60
    dev, ver = meta.get("device", {}), meta.get("versions", {})
    tf_version = ver.get("tensorflow") or ver.get("tensorflow-cpu") or "?"
    changed = protocol_changes(prof)
    lines = [
        "```{important}",
        "No ImageNet weights: every number in this section comes from ResNet50V2 trained "
        f"from random weights, at {prof['image_size']} px, on {dev.get('cpu_count', '?')} CPU "
        "cores. The paper fine-tuned ImageNet weights at 224 px on a GPU.",
        "```",
        "",
        f"Profile `{root.name}`: {prof.get('description', '')}. The paper's architecture, head "
        "and training protocol, except: " + "; ".join(changed) + ". "
        f"Both models were trained with seeds {', '.join(map(str, seeds))} on "
        + " and on ".join(SPLIT_WORDS[s] for s in splits)
        + f" (drawn with seed {prof['seed']}: the training seeds change initial weights, batch "
        f"order, augmentation and dropout, not the test images). {len(frame)} runs took "
        f"{hours:.1f} h of training on a {dev.get('machine', '?')} machine with "
        f"{dev.get('cpu_count', '?')} cores (TensorFlow {tf_version}, Keras "
        f"{ver.get('keras', '?')}). The artifacts are in `{root.parent.name}/{root.name}/` of the "
        "repository.",
        "",
        "### Accuracy and AUC over seeds, beside the paper",
        "",
    ]
    s = replication.summary(frame)
    rows = []
    for (split, model), r in s.iterrows():
        paper = headline(model)
        rows.append(
            {
                "split": split,
                "model": plots.MODEL_LABEL[model],
                "runs": int(r["runs"]),
                "accuracy (mean +- sd)": _pm(r["accuracy_mean"], r["accuracy_sd"]),
                "range": f"{r['accuracy_min']:.3f} - {r['accuracy_max']:.3f}",
                "paper accuracy": f"{paper['accuracy']:.3f}",
                "macro AUC (mean +- sd)": _pm(r["auc_mean"], r["auc_sd"]),
                "paper AUC": f"{paper['auc']:.3f}",
            }
        )
    lines += [pd.DataFrame(rows).pipe(_table), ""]
    fig = plots.replication_runs(frame, {v: headline(v)["accuracy"] for v in ("se", "base")})
    figures_out.mkdir(parents=True, exist_ok=True)
    plots.save(fig, figures_out, "replication_runs")
    lines += _figure(figures_out / "replication_runs.png", "replication-runs",
                     "Test accuracy of every run on the real data (from random weights), by split "
                     "and model; dashed lines: the paper's pre-trained models.")  # fmt: skip
    runs = frame.assign(
        model=frame["model"].map(plots.MODEL_LABEL),
        accuracy=[
            f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
            for a, lo, hi in zip(
                frame["accuracy"], frame["accuracy_ci_low"], frame["accuracy_ci_high"], strict=True
            )
        ],
        auc=[
            f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
            for a, lo, hi in zip(
                frame["auc_macro"], frame["auc_ci_low"], frame["auc_ci_high"], strict=True
            )
        ],
        minutes=frame["train_minutes"].round(1),
    )[["split", "model", "seed", "n_test", "accuracy", "auc", "epochs", "best_epoch", "minutes"]]
    lines += [
        "Every run, with 95% bootstrap intervals over its test images "
        f"({read_metrics(frame['folder'].iloc[0])['bootstrap']['resamples']} resamples):",
        "",
        runs.rename(columns={"accuracy": "accuracy [95% CI]", "auc": "macro AUC [95% CI]",
                             "minutes": "train minutes"}).pipe(_table),
        "",
    ]  # fmt: skip

    # SE against base
    per_seed = replication.se_vs_base(root, frame)
    over = replication.paired_over_seeds(per_seed)
    lines += ["### Does SE beat base?", ""]
    for split in splits:
        o = over.loc[split]
        spread = _spread(o["sd"], o["ci_low"], o["ci_high"], int(o["seeds"]))
        lines.append(
            f"- **{split} split**: SE - base = {_pts(o['mean'])} of test accuracy (mean over "
            f"{_n(int(o['seeds']), 'seed')}{spread}); SE was ahead with "
            f"{int(o['seeds_favouring_se'])} of {int(o['seeds'])} seeds. McNemar's test "
            f"(paired) finds a difference at p < 0.05 with {int(o['mcnemar_significant'])} of "
            f"them, the paper's two-proportion z-test with {int(o['z_test_significant'])}."
        )
    shown = per_seed.assign(
        se_accuracy=per_seed["se_accuracy"].round(3),
        base_accuracy=per_seed["base_accuracy"].round(3),
        difference=per_seed["difference"].map(_pts),
        z_test_p=per_seed["z_test_p"].map(lambda p: f"{p:.4f}"),
        mcnemar_p=per_seed["mcnemar_p"].map(lambda p: f"{p:.4f}"),
    )
    lines += ["", "Seed by seed, on the same test images:", "",
              shown.pipe(_table), ""]  # fmt: skip

    # leakage
    if len(splits) == 2:
        leak = replication.leakage_inflation(frame)
        lines += ["### How much does duplicate leakage inflate test accuracy?", ""]
        for model, r in leak.iterrows():
            lines.append(
                f"- **{plots.MODEL_LABEL[model]}**: {r['paper_split']:.3f} on the paper's split "
                f"against {r['grouped_split']:.3f} on the grouped split: {_pts(r['inflation'])} "
                f"(paired by seed, {_n(int(r['seeds']), 'seed')}"
                f"{_spread(r['sd'], r['ci_low'], r['ci_high'], int(r['seeds']))})."
            )
        lines.append("")
        try:
            by_dup = replication.accuracy_by_duplicate(root, "paper", frame)
        except replication.ReplicationError:
            by_dup = None
        if by_dup is not None:
            d = by_dup.reset_index()
            d["model"] = d["model"].map(plots.MODEL_LABEL)
            d["accuracy (mean +- sd)"] = [
                _pm(m, s) for m, s in zip(d["accuracy_mean"], d["accuracy_sd"], strict=True)
            ]
            lines += [
                "Within the paper's split, the test images that have an exact or near "
                "duplicate (pHash distance <= "
                f"{prof['near_duplicate_distance']}) in the training set against those that "
                "have none:",
                "",
                d[["model", "group", "images", "accuracy (mean +- sd)"]].pipe(_table),
                "",
            ]  # fmt: skip
        fit = frame.groupby("model", sort=False)["final_train_accuracy"].mean()
        train = reported()["training"]
        lines += [
            "The two splits have different test images, so part of a difference between "
            "them can come from which images each test set drew; the within-split comparison "
            "above holds the test set fixed. Leakage pays a model that fits its training "
            "images: these runs end at a training accuracy of "
            + " and ".join(f"{fit[v]:.3f} ({plots.MODEL_LABEL[v]})" for v in fit.index)
            + f", while the paper's SE model passed 0.95 by epoch "
            f"{train['train_accuracy_above_095_by_epoch']} and trained for {train['epochs']}. "
            "A model that fits its training images, as the paper's does, has more to gain "
            "from near copies of them in the test set than these under-trained ones.",
            "",
        ]

    # the paper
    dist = replication.distance_from_paper(frame)
    lines += ["### How far from the paper's pre-trained models?", ""]
    for model, r in dist.iterrows():
        lines.append(
            f"- **{plots.MODEL_LABEL[model]}** (paper's split, mean of "
            f"{_n(int(r['seeds']), 'seed')}): accuracy {r['replication_accuracy']:.3f} "
            "against the paper's "
            f"{r['paper_accuracy']:.3f} ({_pts(r['accuracy_gap'])}); macro AUC "
            f"{r['replication_auc']:.3f} against {r['paper_auc']:.3f}."
        )
    lines += [
        "",
        f"From random weights, in {prof['max_epochs']} epochs at most at {prof['image_size']} px, "
        "the network cannot learn what "
        "ImageNet pre-training gives the paper's models; the gap measures this protocol, not "
        "the paper's claim, which needs the `paper` profile on a GPU.",
        "",
    ]

    # Figures 1-4 of the first seed on the paper split
    seed = seeds[0]
    hist = replication.histories(frame, "paper", seed)
    lines += [f"### Figures 1-4 on the real data (paper's split, seed {seed})", ""]
    for fig, name, caption in (
        (plots.accuracy_curves(hist), "figure1_accuracy", "Figure 1 on the real data."),
        (plots.loss_curves(hist), "figure2_loss", "Figure 2 on the real data."),
        (plots.accuracy_gap(hist, reported()["training"]["final_accuracy_gap"]), "figure3_gap",
         "Figure 3 on the real data."),
    ):  # fmt: skip
        plots.save(fig, figures_out, f"real_{name}")
        lines += _figure(figures_out / f"real_{name}.png", f"real-{name}", caption)
    for v in ("se", "base"):
        m = read_metrics(replication.run_of(frame, "paper", seed, v))
        fig = plots.confusion_matrices(m["confusion_matrix"], plots.MODEL_LABEL[v])
        plots.save(fig, figures_out, f"real_{v}_figure4_confusion")
        caption = f"Figure 4 on the real data ({plots.MODEL_LABEL[v]})."
        path = figures_out / f"real_{v}_figure4_confusion.png"
        lines += _figure(path, f"real-{v}-figure4", caption)
    gradcam = replication.run_of(frame, "paper", seed, "se") / "figure5_gradcam.png"
    if gradcam.is_file():
        shutil.copyfile(gradcam, figures_out / "real_figure5_gradcam.png")
        cells = -(-int(prof["image_size"]) // 32)  # post_relu is 1/32 of the input, rounded up
        caption = (
            "Figure 5 on the real data: Grad-CAM and Grad-CAM++ of the SE model. At "
            f"{prof['image_size']} px the `post_relu` map has {cells}x{cells} cells, so a heatmap "
            "can point at a region of the slice, not at a lesion's outline; a blank heatmap "
            "means the gradient-weighted activation map was zero or negative in every cell."
        )
        lines += _figure(figures_out / "real_figure5_gradcam.png", "real-figure5", caption)
    else:
        lines += [
            "Figure 5 (Grad-CAM) needs the trained weights, which are not committed; the "
            "Grad-CAM notebook draws it when the profile's runs are at hand.",
            "",
        ]
    return "\n".join(lines)
