"""Figures 1-5 of the paper, from the artifacts of a run folder (seaborn / matplotlib).

Figure 1: training and validation accuracy per epoch. Figure 2: loss.
Figure 3: the train - validation accuracy gap per epoch, its final value marked.
Figure 4: the confusion matrix (counts and row-normalised). Extra: ROC curves
per class. Figure 5 (Grad-CAM) is drawn by :func:`gradcam_figure` from
heatmaps computed in :mod:`brainlib.gradcam`.

Every function returns the matplotlib Figure; :func:`save` writes it as PNG
and SVG.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # headless scripts and CI; notebooks keep their inline backend
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from brainlib.config import CLASS_LABELS, CLASSES, VARIANTS

SHORT = {"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "normal": "normal",
         "pituitary_tumor": "pituitary"}  # fmt: skip
MODEL_LABEL = {"se": "ResNet50V2-SE", "base": "ResNet50V2 (base)"}
SPLIT_LABEL = {"paper": "paper's random split", "dedup": "paper's split, duplicates dropped",
               "grouped": "grouped split"}  # fmt: skip


def save(fig, folder: str | Path, name: str) -> list[Path]:
    """Write ``fig`` as ``name.png`` and ``name.svg`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = folder / f"{name}.{ext}"
        fig.savefig(path, dpi=130, bbox_inches="tight")
        paths.append(path)
    return paths


def _history_frame(histories: Mapping[str, pd.DataFrame], a: str, b: str, names: tuple[str, str]):
    rows = []
    for model, h in histories.items():
        for col, label in ((a, names[0]), (b, names[1])):
            rows.append(
                pd.DataFrame(
                    {
                        "epoch": h["epoch"],
                        "value": h[col],
                        "model": MODEL_LABEL.get(model, model),
                        "curve": label,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def _curves(histories, a, b, ylabel, title):
    sns.set_theme(style="whitegrid", context="notebook")
    frame = _history_frame(histories, a, b, ("training", "validation"))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    sns.lineplot(data=frame, x="epoch", y="value", hue="model", style="curve", marker="o",
                 markersize=4, ax=ax)  # fmt: skip
    ax.set(xlabel="Epoch", ylabel=ylabel, title=title)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_curves(histories: Mapping[str, pd.DataFrame]):
    """Figure 1: training and validation accuracy per epoch, for each model."""
    return _curves(histories, "accuracy", "val_accuracy", "Accuracy",
                   "Figure 1. Training and validation accuracy")  # fmt: skip


def loss_curves(histories: Mapping[str, pd.DataFrame]):
    """Figure 2: training and validation loss per epoch, for each model."""
    return _curves(histories, "loss", "val_loss", "Categorical cross-entropy",
                   "Figure 2. Training and validation loss")  # fmt: skip


def accuracy_gap(histories: Mapping[str, pd.DataFrame], paper_final_gap: float | None = None):
    """Figure 3: training minus validation accuracy per epoch; the final value marked."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ends = []
    for model, h in histories.items():
        gap = h["accuracy"] - h["val_accuracy"]
        (line,) = ax.plot(
            h["epoch"], gap, marker="o", markersize=4, label=MODEL_LABEL.get(model, model)
        )
        ends.append((gap.iloc[-1], h["epoch"].iloc[-1], line.get_color()))
        ax.scatter([h["epoch"].iloc[-1]], [gap.iloc[-1]], s=60, color=line.get_color(), zorder=3)
    # the lowest final gap is labelled under its marker, the others above theirs, each on a
    # white box: two curves that end close together do not print over each other's lines
    lowest = min(ends)[0] if len(ends) > 1 else None
    box = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}
    for value, epoch, color in ends:
        below = value == lowest
        ax.annotate(f"{value:.3f}", (epoch, value), textcoords="offset points",
                    xytext=(0, -9 if below else 8), ha="center", va="top" if below else "bottom",
                    color=color, fontsize=9, zorder=4,
                    bbox=box)  # fmt: skip
    if paper_final_gap is not None:
        ax.axhline(paper_final_gap, ls="--", color="grey", lw=1,
                   label=f"paper's final gap ({paper_final_gap})")  # fmt: skip
    ax.axhline(0, color="black", lw=0.6)
    ax.set(xlabel="Epoch", ylabel="Training - validation accuracy",
           title="Figure 3. Training vs validation accuracy gap")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion_matrices(matrix: Sequence[Sequence[int]], title: str):
    """Figure 4: counts and row-normalised confusion matrix side by side."""
    sns.set_theme(style="white", context="notebook")
    m = np.asarray(matrix, dtype=float)
    rows = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    labels = [SHORT[c] for c in CLASSES]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    sns.heatmap(m.astype(int), annot=True, fmt="d", cmap="Blues", cbar=False, ax=axes[0],
                xticklabels=labels, yticklabels=labels)  # fmt: skip
    sns.heatmap(norm, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=axes[1],
                xticklabels=labels, yticklabels=labels)  # fmt: skip
    for ax, sub in zip(axes, ("counts", "row-normalised (recall on the diagonal)"), strict=True):
        ax.set(xlabel="Predicted class", ylabel="True class", title=sub)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(f"Figure 4. Confusion matrix: {title}")
    return fig


def replication_runs(frame: pd.DataFrame, paper_accuracy: Mapping[str, float] | None = None):
    """Test accuracy of every run (one dot per seed) by split and model, with mean +- sd.

    ``frame`` has one row per run (``brainlib.results.load``); with a boolean
    ``converged`` column (:meth:`brainlib.answers.Grid.judged`) the runs that miss the
    convergence rule are drawn hollow and left out of the mean and sd, as the answers
    leave them out. The paper's accuracies, if given, are drawn as dashed lines.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    d = frame.assign(model=frame["model"].map(MODEL_LABEL), split=frame["split"].map(SPLIT_LABEL))
    d["ok"] = d["converged"].astype(bool) if "converged" in d else True
    d["kept"] = d["kept"].astype(bool) | ~d["ok"] if "kept" in d else True
    order = [s for s in SPLIT_LABEL.values() if s in set(d["split"])]
    models = [MODEL_LABEL[v] for v in VARIANTS if MODEL_LABEL[v] in set(d["model"])]
    colours = dict(zip([MODEL_LABEL[v] for v in VARIANTS], sns.color_palette("deep"), strict=False))
    jitter = np.random.default_rng(0)  # the same picture every time
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for j, model in enumerate(models):
        c = colours[model]
        for i, split in enumerate(order):
            x = i + (j - (len(models) - 1) / 2) * 0.3
            runs = d[(d["model"] == model) & (d["split"] == split)]
            ok = runs.loc[runs["ok"] & runs["kept"], "accuracy"]
            if len(ok):
                sd = ok.std(ddof=1) if len(ok) > 1 else 0.0
                ax.errorbar(x, ok.mean(), yerr=sd, fmt="_", markersize=20, color=c, lw=1.5,
                            zorder=2)  # fmt: skip
            xs = x + jitter.uniform(-0.05, 0.05, len(runs))
            same = runs["kept"].to_numpy()  # a converged run of another schedule: a square
            ax.scatter(xs[same], runs["accuracy"][same], s=45, zorder=3, edgecolors=c,
                       facecolors=[c if k else "none" for k in runs["ok"][same]],
                       linewidths=1.5, label=model if i == 0 else None)  # fmt: skip
            ax.scatter(xs[~same], runs["accuracy"][~same], s=40, marker="s", zorder=3,
                       edgecolors=c, facecolors="none", linewidths=1.5)  # fmt: skip
    if not d["ok"].all():
        ax.scatter([], [], s=45, facecolors="none", edgecolors="grey", linewidths=1.5,
                   label="not converged (not in the bars)")  # fmt: skip
    if not d["kept"].all():
        ax.scatter([], [], s=40, marker="s", facecolors="none", edgecolors="grey",
                   linewidths=1.5, label="converged, other schedule (not in the bars)")  # fmt: skip
    for v in VARIANTS:
        if paper_accuracy and v in paper_accuracy:
            ax.axhline(paper_accuracy[v], ls="--", lw=1, color=colours[MODEL_LABEL[v]],
                       label=f"paper, {MODEL_LABEL[v]} ({paper_accuracy[v]:.3f})")  # fmt: skip
    ax.set_xticks(range(len(order)), [textwrap.fill(s, 20) for s in order])
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.grid(False, axis="x")
    title = "Test accuracy per run (dots: seeds; bars: mean ± sd, converged, one schedule)"
    ax.set(xlabel="", ylabel="Test accuracy", title=title)
    # below the axes, so that it never covers a run (dots sit anywhere in the panel)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def roc_curves(y_true, proba, title: str):
    """ROC curve of each class (one-vs-rest) with its AUC."""
    from sklearn.metrics import auc, roc_curve

    sns.set_theme(style="whitegrid", context="notebook")
    y = np.asarray(y_true)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, cls in enumerate(CLASSES):
        if 0 < (y == k).sum() < len(y):
            fpr, tpr, _ = roc_curve(y == k, np.asarray(proba)[:, k])
            ax.plot(fpr, tpr, label=f"{CLASS_LABELS[cls]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title=f"ROC curves: {title}",
           xlim=(0, 1), ylim=(0, 1.01))  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def gradcam_figure(gallery: Sequence[Mapping], title: str, columns=("gradcam", "gradcam++")):
    """Figure 5: rows of (image, Grad-CAM overlay, Grad-CAM++ overlay[, mask]).

    ``gallery`` items: ``image`` (HxWx3 uint8), one HxW heatmap in [0, 1] per
    ``columns`` entry, ``caption``, and optionally ``mask`` (HxW bool).
    """
    n = len(gallery)
    has_mask = any(item.get("mask") is not None for item in gallery)
    ncols = 1 + len(columns) + int(has_mask)
    # constrained layout keeps the title clear of the first row's titles (tight_layout
    # let them overlap from about eight rows on)
    fig, axes = plt.subplots(n, ncols, figsize=(2.4 * ncols, 2.4 * n), squeeze=False,
                             layout="constrained")  # fmt: skip
    for i, item in enumerate(gallery):
        img = np.asarray(item["image"])
        axes[i, 0].imshow(img, cmap="gray")
        axes[i, 0].set_title(item.get("caption", ""), fontsize=7)
        for j, col in enumerate(columns, start=1):
            axes[i, j].imshow(img, cmap="gray")
            axes[i, j].imshow(item[col], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[i, j].set_title(col.replace("gradcam", "Grad-CAM"), fontsize=8)
        if has_mask:
            axes[i, -1].imshow(img, cmap="gray")
            if item.get("mask") is not None and np.any(item["mask"]):
                axes[i, -1].contour(item["mask"], levels=[0.5], colors="lime", linewidths=1)
            axes[i, -1].set_title("lesion mask", fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return fig


def sample_grid(records, per_class: int = 4, seed: int = 0):
    """A few images of each class (rows: classes), as the dataset stores them."""
    from brainlib.data import load_rgb

    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(CLASSES), per_class, figsize=(2 * per_class, 2 * len(CLASSES)),
                             squeeze=False, layout="constrained")  # fmt: skip
    for i, cls in enumerate(CLASSES):
        members = [r for r in records if r.label == cls]
        pick = rng.choice(len(members), size=min(per_class, len(members)), replace=False)
        for j in range(per_class):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(pick):
                ax.imshow(load_rgb(members[pick[j]].path))
                ax.set_title(members[pick[j]].relpath.split("/")[-1], fontsize=7)
        axes[i, 0].set_ylabel(SHORT[cls])
    fig.suptitle("Sample images per class")
    return fig


def class_balance(counts: Mapping[str, int], paper_counts: Mapping[str, int] | None = None):
    """Images per class (bars), with the paper's counts as markers when given."""
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(6, 3))
    names = [SHORT[c] for c in CLASSES]
    sns.barplot(x=names, y=[counts.get(c, 0) for c in CLASSES], color="#4c72b0", ax=ax,
                label="this profile")  # fmt: skip
    if paper_counts:
        ax.scatter(names, [paper_counts[c] for c in CLASSES], marker="D", color="black",
                   zorder=3, label="the paper")  # fmt: skip
    ax.set(ylabel="images", title="Images per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def duplicate_pairs(pairs: Sequence[tuple], root: str | Path, title: str):
    """Pairs of images side by side; ``pairs`` holds ``(path_a, path_b, caption)``."""
    from brainlib.data import load_rgb

    fig, axes = plt.subplots(len(pairs), 2, figsize=(4.4, 2.3 * len(pairs)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for row, (a, b, caption) in zip(axes, pairs, strict=True):
        for ax, rel in zip(row, (a, b), strict=True):
            ax.imshow(load_rgb(Path(root) / rel))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(rel, fontsize=6)
        row[0].set_ylabel(caption, fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig


#: The heatmaps' names in the deletion figure, in its legend's order
HEATMAP_LABEL = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "random": "random",
                 "random_in_brain": "random in brain"}  # fmt: skip


def deletion_curves(table: pd.DataFrame):
    """Accuracy as the most salient pixels are blanked, per heatmap and model (mean over runs).

    ``table`` is :func:`brainlib.answers.saliency_table` (its ``curve`` column maps
    blanked fraction -> accuracy; rows without one are skipped). A heatmap that fewer of a
    model's runs have (the in-brain baseline is missing from older runs) says over how
    many its mean is taken.
    """
    sns.set_theme(style="whitegrid", context="notebook")
    rows = [{"model": MODEL_LABEL[r.model], "heatmap": r.method, "run": r.run, "blanked": f,
             "accuracy": a}
            for r in table.itertuples() if isinstance(r.curve, dict)
            for f, a in r.curve.items()]  # fmt: skip
    d = pd.DataFrame(rows)
    models = list(dict.fromkeys(d["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), sharey=True,
                             squeeze=False)  # fmt: skip
    for ax, model in zip(axes[0], models, strict=True):
        m = d[d["model"] == model]
        runs, most = m.groupby("heatmap")["run"].nunique(), m["run"].nunique()
        names = {h: HEATMAP_LABEL.get(h, h) + ("" if n == most else f" ({n} of {most} runs)")
                 for h, n in runs.items()}  # fmt: skip
        order = [names[h] for h in HEATMAP_LABEL if h in names]
        sns.lineplot(data=m.assign(heatmap=m["heatmap"].map(names)), x="blanked", y="accuracy",
                     hue="heatmap", hue_order=order, marker="o", errorbar=None, ax=ax)  # fmt: skip
        ax.set(title=model, xlabel="share of pixels blanked (most salient first)",
               ylabel="test accuracy")  # fmt: skip
        # the curves fall from the upper left: the lower left corner is free
        ax.legend(title="heatmap", loc="lower left", fontsize=7, title_fontsize=8)
    fig.tight_layout()
    return fig
