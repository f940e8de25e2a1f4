"""Each figure function writes a non-empty image with the expected axes and labels."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from brainlib import plots


@pytest.fixture
def histories():
    epochs = np.arange(1, 6)
    h = pd.DataFrame({"epoch": epochs, "loss": 1 / epochs, "val_loss": 1.2 / epochs,
                      "accuracy": 1 - 0.5 / epochs, "val_accuracy": 1 - 0.6 / epochs})  # fmt: skip
    return {"se": h, "base": h.assign(accuracy=h.accuracy - 0.05)}


def _check_saved(fig, tmp_path, name):
    paths = plots.save(fig, tmp_path, name)
    assert [p.suffix for p in paths] == [".png", ".svg"]
    for p in paths:
        assert p.stat().st_size > 2000, p
    return paths


def test_accuracy_and_loss_curves(histories, tmp_path):
    fig = plots.accuracy_curves(histories)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Epoch" and ax.get_ylabel() == "Accuracy"
    assert ax.get_title().startswith("Figure 1")
    assert len(ax.get_lines()) >= 4  # 2 models x (training, validation)
    _check_saved(fig, tmp_path, "f1")
    fig = plots.loss_curves(histories)
    assert fig.axes[0].get_title().startswith("Figure 2")
    assert fig.axes[0].get_ylabel() == "Categorical cross-entropy"
    _check_saved(fig, tmp_path, "f2")


def test_accuracy_gap_marks_the_final_value(histories, tmp_path):
    fig = plots.accuracy_gap(histories, paper_final_gap=0.036)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Figure 3") and ax.get_xlabel() == "Epoch"
    texts = [t.get_text() for t in ax.texts]
    assert "0.020" in texts and "-0.030" in texts  # final gaps: 0.90 - 0.88 and 0.85 - 0.88
    assert any("0.036" in t.get_text() for t in ax.get_legend().get_texts())
    _check_saved(fig, tmp_path, "f3")


def test_accuracy_gap_labels_of_close_final_values_do_not_overlap(histories):
    # the real runs ended 0.043 and 0.048 apart by a few epochs: the labels printed over each
    # other's markers; here both curves end at the same epoch, 0.005 apart
    close = {
        "se": histories["se"],
        "base": histories["se"].assign(accuracy=lambda h: h.accuracy - 0.005),
    }
    fig = plots.accuracy_gap(close)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert len(boxes) == 2 and not boxes[0].overlaps(boxes[1])
    plt.close(fig)


def test_confusion_matrices(tmp_path):
    fig = plots.confusion_matrices([[5, 1, 0, 0], [0, 6, 0, 0], [0, 0, 3, 0], [1, 0, 0, 4]], "SE")
    counts, norm = fig.axes[:2]
    assert counts.get_xlabel() == "Predicted class" and counts.get_ylabel() == "True class"
    assert [t.get_text() for t in counts.get_xticklabels()] == [
        "glioma",
        "meningioma",
        "normal",
        "pituitary",
    ]
    assert "5" in [t.get_text() for t in counts.texts]
    assert "0.83" in [t.get_text() for t in norm.texts]  # 5 / 6
    assert fig._suptitle.get_text().startswith("Figure 4")
    _check_saved(fig, tmp_path, "f4")


def test_roc_curves(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    proba = rng.dirichlet(np.ones(4), 40)
    proba[np.arange(40), y] += 1
    proba /= proba.sum(1, keepdims=True)
    fig = plots.roc_curves(y, proba, "SE")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "False positive rate" and len(ax.get_lines()) == 5
    _check_saved(fig, tmp_path, "roc")


def test_gradcam_figure(tmp_path):
    img = np.zeros((32, 32, 3), np.uint8)
    cam = np.zeros((32, 32))
    cam[10:20, 10:20] = 1
    mask = cam > 0
    items = [{"image": img, "gradcam": cam, "gradcam++": cam, "mask": mask, "caption": "a -> a"}]
    fig = plots.gradcam_figure(items * 2, "Figure 5. test")
    assert len(fig.axes) == 2 * 4
    assert fig.axes[1].get_title() == "Grad-CAM" and fig.axes[2].get_title() == "Grad-CAM++"
    _check_saved(fig, tmp_path, "f5")


def _clashes_with_the_title(fig):
    """Axes and axes titles whose drawn box overlaps the figure's title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig.get_suptitle() and fig._suptitle.get_window_extent(renderer)
    return [ax.get_title() for ax in fig.axes
            if ax.get_window_extent(renderer).overlaps(top)
            or (ax.get_title() and ax.title.get_window_extent(renderer).overlaps(top))]  # fmt: skip


@pytest.mark.parametrize("rows", [1, 8])
def test_figure5_title_stays_clear_of_the_first_row(rows):
    """Eight rows (a correct and a wrong image per class, as the real runs draw) once put
    the title over the first row's titles with tight_layout."""
    img = np.zeros((64, 64, 3), np.uint8)
    cam = np.random.default_rng(0).random((64, 64))
    caption = "glioma_tumor -> meningioma_tumor (WRONG)"
    item = {"image": img, "gradcam": cam, "gradcam++": cam, "caption": caption}
    fig = plots.gradcam_figure(
        [item] * rows, "Figure 5. Grad-CAM and Grad-CAM++: ResNet50V2 (base)"
    )
    assert _clashes_with_the_title(fig) == []
    plt.close(fig)


def test_other_titled_figures_keep_their_title_clear():
    fig = plots.confusion_matrices(np.eye(4, dtype=int) * 5, "SE")
    assert _clashes_with_the_title(fig) == []
    plt.close(fig)


def test_deletion_curves_name_heatmaps_and_the_runs_behind_each_mean():
    curve = {0.0: 0.9, 0.5: 0.4}
    rows = [{"run": run, "model": "se", "method": h, "curve": curve}
            for run, methods in (("se-paper-seed1", ("gradcam", "random", "random_in_brain")),
                                 ("se-paper-seed2", ("gradcam", "random")))
            for h in methods]  # fmt: skip
    rows.append({"run": "se-paper-seed1", "model": "se", "method": "randomised: top"})
    fig = plots.deletion_curves(pd.DataFrame(rows))
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Grad-CAM", "random", "random in brain (1 of 2 runs)"]
    assert ax.get_title() == "ResNet50V2-SE"
    plt.close(fig)


def test_replication_runs_leaves_unconverged_runs_out_of_the_bars():
    frame = pd.DataFrame({"model": ["se", "se", "se", "base"], "split": ["paper"] * 4,
                          "seed": [1, 2, 3, 1], "accuracy": [0.9, 0.8, 0.5, 0.7],
                          "converged": [True, True, False, True]})  # fmt: skip
    fig = plots.replication_runs(frame)
    (ax,) = fig.axes
    se_bar, base_bar = ax.containers
    assert se_bar.lines[0].get_ydata()[0] == pytest.approx(0.85)  # 0.5 is left out
    assert base_bar.lines[0].get_ydata()[0] == pytest.approx(0.7)
    se_dots = next(c for c in ax.collections if len(c.get_offsets()) == 3)  # SE's 3 runs
    faces = se_dots.get_facecolors()
    assert len(faces) == 3 and faces[2][3] == 0 and faces[0][3] > 0  # the third is hollow
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "not converged (not in the bars)" in labels
    plt.close(fig)


def test_replication_runs_draws_runs_of_another_schedule_as_squares_outside_the_bars():
    frame = pd.DataFrame({"model": ["se"] * 3, "split": ["paper"] * 3, "seed": [1, 2, 3],
                          "accuracy": [0.9, 0.8, 0.5], "converged": [True, True, False],
                          "kept": [True, False, False]})  # fmt: skip
    fig = plots.replication_runs(frame)
    (ax,) = fig.axes
    (bar,) = ax.containers
    assert bar.lines[0].get_ydata()[0] == pytest.approx(0.9)  # 0.8: other schedule; 0.5: hollow
    squares = [c for c in ax.collections if len(c.get_offsets()) == 1
               and c.get_offsets()[0][1] == pytest.approx(0.8)]  # fmt: skip
    assert len(squares) == 1
    faces = squares[0].get_facecolors()
    assert len(faces) == 0 or faces[0][3] == 0  # hollow
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "converged, other schedule (not in the bars)" in labels
    plt.close(fig)
