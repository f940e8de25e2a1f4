"""Grad-CAM: heatmaps at post_relu (tf-keras-vis), localisation scores, a trained phantom model."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from brainlib import gradcam, runs
from brainlib.config import load_profile


def test_energy_and_pointing_by_hand():
    cam = np.zeros((10, 10))
    cam[2:4, 2:4] = 1.0
    cam[8, 8] = 4.0
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:4] = True
    assert gradcam.energy_in_mask(cam, mask) == pytest.approx(4 / 8)
    assert not gradcam.pointing_hit(cam, mask, tolerance=0)  # the peak is at (8, 8)
    cam[8, 8] = 0.5
    assert gradcam.pointing_hit(cam, mask, tolerance=0)
    assert np.isnan(gradcam.energy_in_mask(np.zeros((3, 3)), mask[:3, :3]))


def test_random_baseline_scores_about_the_mask_area():
    mask = np.zeros((64, 64), bool)
    mask[10:26, 10:26] = True  # 6.25% of the image
    base = gradcam.random_baseline([mask], seed=0, repeats=200)
    assert base["energy_in_mask"] == pytest.approx(mask.mean(), abs=0.02)
    assert 0 <= base["pointing_game"] < 0.3


def test_heatmaps_come_from_post_relu_and_are_normalised():
    from brainlib.models import build_model

    model = build_model("se", weights=None, input_shape=(64, 64, 3))
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    for method in gradcam.METHODS:
        cams = gradcam.heatmaps(model, images, [0, 3], method)
        assert cams.shape == (2, 64, 64)
        assert cams.min() >= 0 and cams.max() <= 1
    with pytest.raises(ValueError, match="no layer 'nope'"):
        gradcam.heatmaps(model, images, [0, 0], layer="nope")


def test_pick_gallery_takes_right_and_wrong_per_class():
    import pandas as pd

    frame = pd.DataFrame(
        {"class": ["glioma_tumor"] * 3 + ["normal"] * 2,
         "predicted": ["glioma_tumor", "normal", "glioma_tumor", "normal", "normal"]}
    )  # fmt: skip
    picks = gradcam.pick_gallery(frame, per_class=1, seed=0)
    chosen = frame.loc[picks]
    assert set(chosen["class"]) == {"glioma_tumor", "normal"}
    assert ((chosen["class"] != chosen["predicted"]).sum()) == 1  # the one wrong glioma


@pytest.mark.slow
def test_localisation_of_a_trained_phantom_model_is_scored_against_random(tmp_path):
    """Scores are shares and rates, the random baseline sits at the mask's area, and the
    page's sentence follows them. Whether the heatmaps beat random is what this measures,
    not what it assumes: at post_relu (4x4 at 128 px) the demo model's maps do not, by much."""
    import pandas as pd

    from brainlib import evaluation, findings, training

    profile = load_profile("demo", **LOCALISATION_PROFILE)
    run = training.train(profile, "se", runs_root=tmp_path, verbose=0)
    evaluation.evaluate_run(run.folder, n_resamples=50)
    frame = evaluation.read_predictions(run.folder)
    accuracy = (frame["class"] == frame["predicted"]).mean()
    assert accuracy > 0.5, f"the phantom model did not learn (test accuracy {accuracy:.2f})"
    root = runs.read_meta(run.folder)["data_root"]
    summary = gradcam.localisation_summary(runs.load_trained_model(run.folder), frame, root)
    assert set(summary.index) == {"gradcam", "gradcam++", "random"}
    assert summary[["energy_in_mask", "pointing_game"]].stack().between(0, 1).all()
    area = summary["mask_area_fraction"].iloc[0]
    assert summary.loc["random", "energy_in_mask"] == pytest.approx(area, rel=0.5)
    sentence = findings.localisation_sentence(pd.concat({"SE": summary}))
    best = summary.drop(index="random")["energy_in_mask"].max()
    assert f"{100 * best:.1f}% of its heatmap mass" in sentence


LOCALISATION_PROFILE: dict = {}
