"""Evaluation metrics against hand-computed cases; the paper's accuracy column; CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlib.config import CLASSES
from brainlib.evaluation import (
    PROB_COLUMNS,
    EvaluationError,
    accuracy_column_evidence,
    bootstrap_table,
    confusion,
    paper_comparison,
    paper_table,
    per_class_table,
    read_predictions,
)
from brainlib.evaluation import scores as _scores


@pytest.fixture
def hand_case():
    # 4 classes, 10 images; predictions: class 0 perfect, one 1 -> 2, one 3 -> 1
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 1])
    proba = np.full((10, 4), 0.1)
    proba[np.arange(10), pred] = 0.7
    return y, proba


def test_per_class_table_by_hand(hand_case):
    y, proba = hand_case
    t = per_class_table(y, proba)
    # class 1: TP 2, FP 1 (the 3 -> 1), FN 1 (the 1 -> 2)
    assert t.loc["meningioma_tumor", "precision"] == pytest.approx(2 / 3)
    assert t.loc["meningioma_tumor", "recall"] == pytest.approx(2 / 3)
    assert t.loc["meningioma_tumor", "f1"] == pytest.approx(2 / 3)
    # class 2: TP 2, FP 1, FN 0 -> precision 2/3, recall 1, F1 0.8
    assert t.loc["normal", "precision"] == pytest.approx(2 / 3)
    assert t.loc["normal", "f1"] == pytest.approx(0.8)
    # the paper's "accuracy" column is the F1 score
    assert (t.loc[list(CLASSES), "accuracy"] == t.loc[list(CLASSES), "f1"]).all()
    # one-vs-rest accuracy of class 3: 9 of 10 decisions right
    assert t.loc["pituitary_tumor", "ovr_accuracy"] == pytest.approx(0.9)
    assert t.loc["overall", "accuracy"] == pytest.approx(0.8)
    assert t.loc["glioma_tumor", "auc"] == pytest.approx(1.0)
    assert t.loc["overall", "support"] == 10
    np.testing.assert_array_equal(
        confusion(y, proba), [[3, 0, 0, 0], [0, 2, 1, 0], [0, 0, 2, 0], [0, 1, 0, 1]]
    )


def test_macro_and_micro_auc_both_reported(hand_case):
    y, proba = hand_case
    t = per_class_table(y, proba)
    from sklearn.metrics import roc_auc_score

    onehot = np.eye(4)[y]
    assert t.loc["overall", "auc"] == pytest.approx(roc_auc_score(onehot, proba, average="macro"))
    assert t.loc["overall", "auc_micro"] == pytest.approx(
        roc_auc_score(onehot, proba, average="micro")
    )


def test_bootstrap_is_seeded_and_brackets_the_estimate(hand_case):
    y, proba = hand_case
    lo1, hi1 = bootstrap_table(y, proba, n_resamples=200, seed=3)
    lo2, hi2 = bootstrap_table(y, proba, n_resamples=200, seed=3)
    lo3, _ = bootstrap_table(y, proba, n_resamples=200, seed=4)
    pd.testing.assert_frame_equal(lo1, lo2)
    pd.testing.assert_frame_equal(hi1, hi2)
    assert not lo1.equals(lo3)
    point = per_class_table(y, proba)
    acc = point.loc["overall", "accuracy"]
    assert lo1.loc["overall", "accuracy"] <= acc <= hi1.loc["overall", "accuracy"]
    assert hi1.loc["overall", "accuracy"] - lo1.loc["overall", "accuracy"] > 0.1  # n = 10: wide


def test_the_papers_accuracy_column_is_f1():
    ev = accuracy_column_evidence()
    assert ev["equals_f1"].all()
    assert (~ev["equals_recall"]).sum() == 6
    base = ev[ev.model == "base"].set_index("class")
    glioma = base.loc["glioma_tumor"]  # one-vs-rest accuracy is well above the column
    assert glioma["ovr_accuracy_reconstructed"] == pytest.approx(0.954, abs=1e-3)
    assert glioma["accuracy_column"] == glioma["f1"] == 0.92
    assert (base["ovr_accuracy_reconstructed"] > base["accuracy_column"]).sum() >= 3


def test_paper_table_puts_paper_and_replication_together(hand_case):
    y, proba = hand_case
    frame = pd.DataFrame(proba, columns=list(PROB_COLUMNS)).assign(
        **{"class": [CLASSES[k] for k in y]})  # fmt: skip
    metrics = {"variant": "se", **_scores(frame, n_resamples=50)}
    long = paper_comparison(metrics)
    assert long.loc[("glioma_tumor", "precision"), "paper"] == 0.99
    assert long.loc[("overall", "auc"), "paper"] == 0.999
    row = long.loc[("glioma_tumor", "recall")]
    assert row["difference"] == pytest.approx(row["replication"] - row["paper"])
    human = paper_table(metrics)
    assert list(human.columns) == ["Class", "Metric", "Paper", "Replication", "Difference",
                                   "95% interval"]  # fmt: skip
    assert "nan" not in human.to_string().lower() and human["Class"].iloc[0] == "Glioma tumor"
    assert list(human["Metric"].iloc[:5]) == ["Precision", "Recall", "F1", "AUC", "Accuracy"]
    assert all(d == "–" or d[0] in "+-" for d in human["Difference"])  # signed


def test_paper_table_prints_each_interval_to_the_digits_its_monte_carlo_error_allows(hand_case):
    y, proba = hand_case
    frame = pd.DataFrame(proba, columns=list(PROB_COLUMNS)).assign(
        **{"class": [CLASSES[k] for k in y]})  # fmt: skip
    metrics = {"variant": "se", **_scores(frame, n_resamples=400)}
    err = metrics["ci_mc_error"]
    assert set(err) == set(metrics["ci_low"]) and err["overall"]["accuracy"] >= 0
    lo, hi = metrics["ci_low"]["overall"]["accuracy"], metrics["ci_high"]["overall"]["accuracy"]
    err["overall"]["accuracy"], err["overall"]["auc"] = 0.004, 0.0001  # 2 x 0.004 < 0.01
    err["glioma_tumor"]["recall"] = 0.03  # 2 x 0.03 >= 0.01: one decimal
    human = paper_table(metrics).set_index(["Class", "Metric"])["95% interval"]
    assert human[("Overall", "Accuracy")] == f"[{lo:.2f}, {hi:.2f}]"
    assert len(human[("Overall", "AUC")].split(",")[0]) == len("[0.123")
    assert len(human[("Glioma tumor", "Recall")].split(",")[0]) == len("[0.1")
    from brainlib.evaluation import shown_mc_errors

    assert len(shown_mc_errors(metrics)) == 5 * 5 and 0.03 in shown_mc_errors(metrics)
    del metrics["ci_mc_error"]  # a metrics.json from before the errors were kept: three
    assert paper_table(metrics).set_index(["Class", "Metric"])["95% interval"][
        ("Overall", "Accuracy")] == f"[{lo:.3f}, {hi:.3f}]"  # fmt: skip
    assert shown_mc_errors(metrics) == []


def test_the_stored_monte_carlo_errors_are_those_of_the_bootstrap_replicates():
    from brainlib.evaluation import bootstrap_replicates
    from brainlib.pooled import endpoint_mc_error

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 120)
    proba = rng.dirichlet(np.ones(4), 120)
    proba[np.arange(80), y[:80]] += 1.0
    _, _, err = bootstrap_table(y, proba, n_resamples=200, seed=1, mc_error=True)
    stack = bootstrap_replicates(y, proba, 200, seed=1)
    col = list(err.columns).index("accuracy")
    expected = endpoint_mc_error(stack[:, -1, col])
    assert err.loc["overall", "accuracy"] == pytest.approx(expected) and expected > 0.002


def _write_predictions(folder, frame):
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "predictions.csv", index=False)


def test_predictions_file_problems_are_named(tmp_path):
    with pytest.raises(EvaluationError, match=r"predictions\.csv does not exist"):
        read_predictions(tmp_path)
    probs = {c: [0.25] for c in PROB_COLUMNS}
    good = pd.DataFrame({"path": ["a.jpg"], "class": ["normal"], **probs, "predicted": ["normal"]})
    _write_predictions(tmp_path / "ok", good)
    assert len(read_predictions(tmp_path / "ok")) == 1
    _write_predictions(tmp_path / "cols", good.drop(columns=["p_normal"]))
    with pytest.raises(EvaluationError, match=r"missing columns \['p_normal'\]"):
        read_predictions(tmp_path / "cols")
    bad = good.copy()
    bad["p_normal"] = 0.9
    _write_predictions(tmp_path / "sum", bad)
    with pytest.raises(EvaluationError, match=r"a\.jpg do not sum to 1"):
        read_predictions(tmp_path / "sum")
    alien = good.copy()
    alien["class"] = "astrocytoma"
    _write_predictions(tmp_path / "cls", alien)
    with pytest.raises(EvaluationError, match="unknown classes"):
        read_predictions(tmp_path / "cls")


def test_run_folder_problems_are_named(tmp_path, small_dataset):
    import json

    from brainlib.data import scan_dataset
    from brainlib.data.splits import stratified_split, write_split_csv
    from brainlib.evaluation import predict_run

    folder = tmp_path / "run"
    folder.mkdir()
    with pytest.raises(EvaluationError, match="not a run folder"):
        predict_run(folder)
    (folder / "run.json").write_text(json.dumps({"status": "running", "data_root": "x"}))
    with pytest.raises(EvaluationError, match="not complete"):
        predict_run(folder)
    (folder / "run.json").write_text(
        json.dumps({"status": "complete", "data_root": str(small_dataset)})
    )
    with pytest.raises(EvaluationError, match=r"no split\.csv"):
        predict_run(folder)
    records = scan_dataset(small_dataset)
    write_split_csv(folder / "split.csv", records, stratified_split(records, 0, (0.4, 0.2, 0.4)))
    victim = next(r for r in records if r.relpath.startswith("normal/"))
    rows = [line.split(",") for line in (folder / "split.csv").read_text().splitlines()[1:]]
    test_normal = next(r[0] for r in rows if r[1] == "normal" and r[3] == "test")
    test_glioma = next(r[0] for r in rows if r[1] == "glioma_tumor" and r[3] == "test")
    (small_dataset / test_normal).write_bytes(victim.path.read_bytes() + b"\0")
    (small_dataset / test_glioma).unlink()
    with pytest.raises(EvaluationError) as err:
        predict_run(folder)
    text = str(err.value)
    assert f"{test_normal}: content differs from split.csv" in text
    assert f"{test_glioma}: missing" in text
