"""Evaluation of a run folder on its test split: predictions, Tables 1-2, bootstrap CIs.

The per-class "Accuracy" column of the paper's Tables 1-2
----------------------------------------------------------
The paper does not define it. Three readings are possible: recall (the share
of a class's images classified correctly), one-vs-rest accuracy (the share of
*all* test images correctly called "this class" or "not this class"), or
something else. The paper's own numbers decide (:func:`accuracy_column_evidence`):

- in all 8 rows of the two tables the column equals the F1 score to two
  decimals (e.g. base glioma: recall 0.87, F1 0.92, "accuracy" 0.92);
- it differs from recall in 6 of 8 rows;
- one-vs-rest accuracy, reconstructed from each row's precision and recall
  and the implied test counts, is above the column in 7 of 8 rows and far
  above it for the base model's tumour classes (glioma 0.954 against 0.92,
  meningioma 0.933 against 0.89, pituitary 0.957 against 0.93).

So the column is the F1 score, and :func:`per_class_table` computes it so
(``accuracy`` = F1), and also reports ``recall`` and ``ovr_accuracy`` beside it.
The overall row's accuracy is the ordinary accuracy (correct / all).

AUC: per class one-vs-rest. Overall: the macro average of the per-class AUCs
(``auc``, which is what a reader would compute from the table) and the micro
average (``auc_micro``, pooling all one-vs-rest decisions); both are shown.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from brainlib import runs
from brainlib.config import CLASS_LABELS, CLASSES, VARIANTS
from brainlib.fileio import atomic_write_json, atomic_write_text, read_json
from brainlib.runs import METRICS_JSON as METRICS_FILE
from brainlib.runs import PREDICTIONS_CSV as PREDICTIONS

PROB_COLUMNS = tuple(f"p_{c}" for c in CLASSES)
TABLE_COLUMNS = ("precision", "recall", "f1", "auc", "accuracy", "ovr_accuracy", "support")


class EvaluationError(RuntimeError):
    """A run folder or predictions file is missing or inconsistent."""


# ------------------------------------------------------------------------ predictions


def subset_rows(folder: Path, subset: str = "test") -> list[dict]:
    from brainlib.data.splits import read_split_csv

    try:
        runs.require_complete(folder)
    except runs.RunError as err:
        raise EvaluationError(str(err)) from err
    path = folder / runs.SPLIT_CSV
    if not path.is_file():
        raise EvaluationError(f"{folder}: no split.csv (not a run folder, or an unfinished one)")
    rows = [r for r in read_split_csv(path) if r["split"] == subset]
    if not rows:
        raise EvaluationError(f"{path}: no {subset} images")
    return rows


def checked_data_root(folder: Path, rows: list[dict], data_dir=None) -> Path:
    """Where the run's images are (``data_dir`` or its ``data_root``), each checked
    against the split's sha256, so predictions never come from other data."""
    from brainlib.data.layout import sha256_file

    root = Path(data_dir) if data_dir else Path(runs.read_meta(folder)["data_root"])
    problems = []
    for r in rows:
        path = root / r["path"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != r["sha256"]:
            problems.append(f"{path}: content differs from split.csv")
    if problems:
        raise EvaluationError(
            f"{rows[0]['split']} images of {folder} do not match its split.csv:\n  "
            + "\n  ".join(problems[:10])
        )
    return root


def predict_split(folder: Path, subset: str, data_dir=None, batch_size: int = 32):
    """The run's best model on one subset of its split (images checked against their sha256)."""
    rows = subset_rows(folder, subset)
    root = checked_data_root(folder, rows, data_dir)
    model = runs.load_trained_model(folder)
    return predict_images(model, root, [r["path"] for r in rows], [r["class"] for r in rows],
                          batch_size)  # fmt: skip


def predict_run(
    folder: str | Path, data_dir: str | Path | None = None, batch_size: int = 32, force=False
):
    """Predicted probabilities of the run's best model on its test split.

    Saved once to ``predictions.csv`` (path, class, one probability column per
    class, predicted class) and read back on later calls. Images are looked up
    under ``data_dir`` (default: the run's ``data_root``) and checked against
    the split's sha256, so predictions never come from other data.
    """
    folder = Path(folder)
    out = folder / PREDICTIONS
    if out.is_file() and not force:
        return read_predictions(folder)
    frame = predict_split(folder, "test", data_dir, batch_size)
    atomic_write_text(out, frame.to_csv(index=False, float_format="%.8g", lineterminator="\n"))
    return frame


def fit_accuracy(folder: str | Path, data_dir: str | Path | None = None, batch_size: int = 32,
                 force: bool = False) -> dict:  # fmt: skip
    """How well the run's best weights fit its *training* images, in inference mode.

    The accuracy Keras logs during training is taken with dropout on and with
    augmented images; this is the plain forward pass (as at test time) over the
    training split, the direct answer to "has the model fitted its training
    images?" (:func:`brainlib.runs.convergence`). Saved once to ``fit.json``
    (``train_accuracy``, ``n_train``, per class ``train_recall``).
    """
    folder = Path(folder)
    out = folder / runs.FIT_JSON
    if out.is_file() and not force:
        return read_json(out)
    frame = predict_split(folder, "train", data_dir, batch_size)
    hit = frame["class"] == frame["predicted"]
    result = {
        **runs.identity(runs.read_meta(folder)),
        "weights": "best",
        "mode": "inference (no dropout, no augmentation)",
        "train_accuracy": float(hit.mean()),
        "n_train": len(frame),
        "train_recall": {c: float(hit[frame["class"] == c].mean()) for c in set(frame["class"])},
    }
    atomic_write_json(out, result)
    return result


def predict_images(model, root, paths, classes, batch_size: int = 32):
    """A predictions frame (path, class, one probability per class, predicted) for images
    ``root/path`` of any size, padded and resized to the model's input as in training."""
    import pandas as pd

    from brainlib.data.tfdata import eval_batches, image_dataset

    size = int(model.input.shape[1])
    labels = [CLASSES.index(c) for c in classes]
    cached = image_dataset([str(Path(root) / p) for p in paths], labels, size)
    proba = model.predict(eval_batches(cached, batch_size), verbose=0).astype(np.float64)
    frame = pd.DataFrame(proba, columns=list(PROB_COLUMNS))
    frame.insert(0, "class", list(classes))
    frame.insert(0, "path", list(paths))
    frame["predicted"] = [CLASSES[i] for i in proba.argmax(axis=1)]
    return frame


def read_predictions(folder: str | Path):
    """``predictions.csv`` of a run folder, checked."""
    import pandas as pd

    path = Path(folder) / PREDICTIONS
    if not path.is_file():
        raise EvaluationError(f"{path} does not exist: run predict_run({folder!s}) first")
    frame = pd.read_csv(path, quoting=csv.QUOTE_MINIMAL)
    missing = [c for c in ("path", "class", *PROB_COLUMNS, "predicted") if c not in frame]
    if missing:
        raise EvaluationError(f"{path}: missing columns {missing}")
    unknown = sorted(set(frame["class"]) - set(CLASSES))
    if unknown:
        raise EvaluationError(f"{path}: unknown classes {unknown}")
    sums = frame[list(PROB_COLUMNS)].sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-3):
        bad = frame.loc[~np.isclose(sums, 1.0, atol=1e-3), "path"].iloc[0]
        raise EvaluationError(f"{path}: probabilities of {bad} do not sum to 1")
    return frame


def labels_and_proba(frame) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([CLASSES.index(c) for c in frame["class"]])
    return y, frame[list(PROB_COLUMNS)].to_numpy(dtype=np.float64)


# ---------------------------------------------------------------------------- metrics


def per_class_table(y_true, proba):
    """Tables 1-2 layout: one row per class and ``overall``.

    Columns: precision, recall, f1, auc (one-vs-rest), accuracy (the paper's
    column, = F1; see the module docstring), ovr_accuracy, support. The
    overall row holds macro averages of precision/recall/F1, the macro AUC,
    the accuracy (correct / all) and, in ``auc_micro``, the micro AUC. The macro
    averages cover the classes present in ``y_true`` (all four on the project's own
    test sets; an external set without normal images is averaged over three).
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    pred = proba.argmax(axis=1)
    labels = list(range(len(CLASSES)))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    onehot = np.eye(len(CLASSES))[y]
    rows = {}
    aucs = []
    for k, cls in enumerate(CLASSES):
        present = 0 < onehot[:, k].sum() < len(y)
        auc = roc_auc_score(onehot[:, k], proba[:, k]) if present else np.nan
        aucs.append(auc)
        ovr = float(np.mean((pred == k) == (y == k)))
        rows[cls] = {
            "precision": p[k],
            "recall": r[k],
            "f1": f[k],
            "auc": auc,
            "accuracy": f[k],
            "ovr_accuracy": ovr,
            "support": int(s[k]),
        }
    micro = (
        roc_auc_score(onehot.ravel(), proba.ravel()) if 0 < onehot.sum() < onehot.size else np.nan
    )
    present = s > 0
    rows["overall"] = {
        "precision": float(np.mean(p[present])),
        "recall": float(np.mean(r[present])),
        "f1": float(np.mean(f[present])),
        "auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else np.nan,
        "accuracy": accuracy_score(y, pred),
        "ovr_accuracy": np.nan,
        "support": len(y),
        "auc_micro": micro,
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    return table[[*TABLE_COLUMNS, "auc_micro"]]


def confusion(y_true, proba, normalize: str | None = None) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    pred = np.asarray(proba).argmax(axis=1)
    return confusion_matrix(y_true, pred, labels=list(range(len(CLASSES))), normalize=normalize)


def bootstrap_replicates(y_true, proba, n_resamples: int = 1000, seed: int = 0):
    """:func:`per_class_table` of ``n_resamples`` bootstrap samples of the test images
    (with replacement, seeded), stacked: an array ``(n_resamples, rows, columns)``."""
    y = np.asarray(y_true)
    proba = np.asarray(proba)
    rng = np.random.default_rng(seed)
    tables = []
    for _ in range(n_resamples):
        idx = rng.integers(0, len(y), len(y))
        tables.append(per_class_table(y[idx], proba[idx]).to_numpy(dtype=np.float64))
    return np.stack(tables)


def bootstrap_table(y_true, proba, n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
                    mc_error: bool = False):  # fmt: skip
    """Percentile bootstrap CIs over the test images for every cell of :func:`per_class_table`.

    Resamples images with replacement (seeded: the same seed gives the same
    intervals). Returns ``(low, high)`` DataFrames shaped like the table; with
    ``mc_error`` also a third, the Monte Carlo error of each cell's endpoints
    (:func:`brainlib.pooled.endpoint_mc_error`: the digits an endpoint may be printed to).
    """
    import warnings

    import pandas as pd

    from brainlib.pooled import endpoint_mc_error

    stack = bootstrap_replicates(y_true, proba, n_resamples, seed)
    template = per_class_table(np.asarray(y_true), np.asarray(proba))
    alpha = (1 - level) / 2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells (e.g. per-class auc_micro)
        low = np.nanquantile(stack, alpha, axis=0)
        high = np.nanquantile(stack, 1 - alpha, axis=0)
    frames = [pd.DataFrame(a, index=template.index, columns=template.columns) for a in (low, high)]
    if mc_error:
        err = [[endpoint_mc_error(stack[:, i, j], level) for j in range(stack.shape[2])]
               for i in range(stack.shape[1])]  # fmt: skip
        frames.append(pd.DataFrame(err, index=template.index, columns=template.columns))
    return tuple(frames)


def accuracy_column_evidence():
    """Is the paper's per-class "Accuracy" recall, F1 or one-vs-rest accuracy?

    For every row of Tables 1-2: the column, recall, F1, and the one-vs-rest
    accuracy reconstructed from precision, recall and the implied test counts
    (TP = recall x n, FP = TP / precision - TP, FN = n - TP, over N = 309).
    """
    import pandas as pd

    from brainlib.paper import implied_test_counts, reported

    counts = implied_test_counts()
    total = sum(counts.values())
    rows = []
    for variant in VARIANTS:
        for cls in CLASSES:
            row = reported()[variant][cls]
            n = counts[cls]
            tp = row["recall"] * n
            fp = tp / row["precision"] - tp if row["precision"] > 0 else 0.0
            fn = n - tp
            rows.append(
                {
                    "model": variant,
                    "class": cls,
                    "accuracy_column": row["accuracy"],
                    "recall": row["recall"],
                    "f1": row["f1"],
                    "ovr_accuracy_reconstructed": round((total - fp - fn) / total, 3),
                    "equals_f1": row["accuracy"] == row["f1"],
                    "equals_recall": row["accuracy"] == row["recall"],
                }
            )
    return pd.DataFrame(rows)


def paired_predictions(folder_a: str | Path, folder_b: str | Path):
    """``(y, pred_a, pred_b)`` of two runs scored on the same test images, in one order."""
    a, b = read_predictions(folder_a), read_predictions(folder_b)
    if list(a["path"]) != list(b["path"]):
        raise EvaluationError(
            f"{folder_a} and {folder_b} were tested on different images (different splits?)"
        )
    y, pa = labels_and_proba(a)
    _, pb = labels_and_proba(b)
    return y, pa.argmax(axis=1), pb.argmax(axis=1)


GROUPS = (*CLASSES, "overall")
#: The book's names for the table's metrics (per class, "accuracy" is the paper's column,
#: which equals the F1 score: chapter 4; overall it is the accuracy)
METRIC_LABELS = {"precision": "Precision", "recall": "Recall", "f1": "F1", "auc": "AUC",
                 "accuracy": "Accuracy"}  # fmt: skip


def metrics_table(metrics: dict):
    """The per-class table stored in ``metrics.json``, rows in the paper's order."""
    import pandas as pd

    return pd.DataFrame(metrics["table"]).T.reindex(list(GROUPS))


def paper_comparison(metrics: dict, metrics_shown=("precision", "recall", "f1", "auc", "accuracy")):
    """Long format for the book: rows (group, metric); paper, replication, difference, 95% CI."""
    import pandas as pd

    from brainlib.paper import table as paper_table

    paper = paper_table(metrics["variant"])
    ours = metrics_table(metrics)
    rows = []
    for group in GROUPS:
        for m in metrics_shown:
            value = ours.loc[group, m]
            reported_value = paper.loc[group, m]
            lo, hi = metrics["ci_low"][group].get(m), metrics["ci_high"][group].get(m)
            rows.append(
                {
                    "group": group,
                    "metric": m,
                    "paper": reported_value,
                    "replication": value,
                    "difference": None if pd.isna(reported_value) else value - reported_value,
                    "95% CI": _interval_cell(
                        lo, hi, metrics.get("ci_mc_error", {}).get(group, {}).get(m)
                    ),
                }
            )
    return pd.DataFrame(rows).set_index(["group", "metric"])


def shown_mc_errors(metrics: dict, metrics_shown=("precision", "recall", "f1", "auc", "accuracy")):
    """The Monte Carlo errors of the interval endpoints :func:`paper_table` shows (none
    for a ``metrics.json`` that keeps no errors)."""
    err = metrics.get("ci_mc_error", {})
    return [err[g][m] for g in GROUPS if g in err for m in metrics_shown
            if err[g].get(m) is not None]  # fmt: skip


def _interval_cell(lo, hi, mc_error) -> str:
    """``[0.93, 0.98]``: an interval to the decimals its Monte Carlo error allows
    (:func:`brainlib.display.decimals`; three where ``metrics.json`` keeps no error)."""
    from brainlib.display import bracket, decimals

    if lo is None or hi is None:
        return "n/a"
    return bracket(lo, hi, decimals(mc_error, scale=1))


def paper_table(metrics: dict):
    """:func:`paper_comparison` as the book shows it: human headers, three decimals (the
    paper's), the difference signed, each interval to the decimals its Monte Carlo error
    allows, the paper's missing values as a dash."""
    from brainlib.display import signed, table

    frame = paper_comparison(metrics).reset_index()
    frame["difference"] = [
        "–" if v is None or not np.isfinite(v) else signed(v, 3) for v in frame["difference"]
    ]
    frame["group"] = frame["group"].map(lambda g: CLASS_LABELS.get(g, "Overall"))
    frame["metric"] = frame["metric"].map(lambda m: METRIC_LABELS.get(m, m))
    return table(frame, {"group": "Class", "metric": "Metric", "paper": "Paper",
                         "replication": "Replication", "difference": "Difference",
                         "95% CI": "95% interval"})  # fmt: skip


def evaluate_run(
    folder: str | Path,
    n_resamples: int = 1000,
    seed: int = 0,
    data_dir: str | Path | None = None,
    force: bool = False,
) -> dict:
    """Predictions, the table, its bootstrap CIs and the confusion matrix -> ``metrics.json``.

    A ``metrics.json`` newer than the run's predictions and made with the same
    bootstrap settings is returned as it is (``force`` recomputes it).
    """
    folder = Path(folder)
    done = folder / METRICS_FILE
    if not force and done.is_file() and (folder / PREDICTIONS).is_file():
        old = read_json(done)
        same = old.get("bootstrap", {}) == {"resamples": n_resamples, "seed": seed, "level": 0.95}
        if (
            same
            and "ci_mc_error" in old
            and done.stat().st_mtime >= (folder / PREDICTIONS).stat().st_mtime
        ):
            return old
    frame = predict_run(folder, data_dir=data_dir)
    result = {**runs.identity(runs.read_meta(folder)), **scores(frame, n_resamples, seed)}
    atomic_write_json(folder / METRICS_FILE, result)
    return result


def scores(frame, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Tables 1-2 of a predictions frame, its bootstrap CIs and confusion matrix (JSON-ready)."""
    y, proba = labels_and_proba(frame)
    table = per_class_table(y, proba)
    low, high, mc_error = bootstrap_table(y, proba, n_resamples, seed, mc_error=True)

    def clean(df):
        return json.loads(df.to_json(orient="index"))

    return {
        "n_test": len(y),
        "accuracy": float(table.loc["overall", "accuracy"]),
        "auc_macro": float(table.loc["overall", "auc"]),
        "auc_micro": float(table.loc["overall", "auc_micro"]),
        "table": clean(table),
        "ci_low": clean(low),
        "ci_high": clean(high),
        "ci_mc_error": clean(mc_error),
        "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95},
        "confusion_matrix": confusion(y, proba).tolist(),
        "classes": list(CLASSES),
    }


def read_metrics(folder: str | Path) -> dict:
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        raise EvaluationError(f"{path} does not exist: run evaluate_run({folder!s}) first")
    return read_json(path)


def evaluate_grid(profile, runs_root: str | Path, data_dir: str | Path | None = None,
                  partial: bool = False) -> dict:  # fmt: skip
    """:func:`evaluate_run` for every run of the profile's grid (see :func:`brainlib.runs.grid`);
    with ``partial``, for its completed runs only.

    Images are read from ``data_dir``, else from where the profile finds its
    data (``$BRAINLIB_DATA_DIR``, ...), not from the folder each run recorded:
    runs trained elsewhere evaluate here. Their sha256 is checked either way.
    """
    from brainlib.data import resolve_data_dir

    data_dir = data_dir if data_dir is not None else resolve_data_dir(profile)
    return {
        key: evaluate_run(folder, profile.bootstrap_resamples, seed=profile.seed, data_dir=data_dir)
        for key, folder in runs.grid_folders(runs_root, profile, partial).items()
    }
