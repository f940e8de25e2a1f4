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
    lines += ["## Headline", "", _md(pd.DataFrame(rows).set_index("model")), ""]
    for v, title in (("se", "Table 1. SE model"), ("base", "Table 2. Base model")):
        lines += [
            f"## {title}: paper and replication",
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
        "## SE against base on the same test images",
        "",
        "The paper's two-proportion z-test (unpaired) and McNemar's test (paired).",
        "",
        _md(tests[TEST_COLUMNS], floatfmt=".4f"),
        "",
        "## The paper's z-tests, redone from its own tables",
        "",
        _md(reconstruct_paper_ztests()[ZTEST_COLUMNS], floatfmt=".4f"),
        "",
        f"The paper's SE model trained for {reported()['training']['epochs']} epochs and ended "
        f"with a train-validation accuracy gap of {reported()['training']['final_accuracy_gap']}.",
        "",
    ]
    figures_out.mkdir(parents=True, exist_ok=True)
    lines += ["## Figures 1-5", ""]
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
