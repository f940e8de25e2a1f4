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
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    from brainlib.data.tfdata import preprocess

    for method, cls in zip(gradcam.METHODS, (Gradcam, GradcamPlusPlus), strict=True):
        cams = gradcam.heatmaps(model, images, [0, 3], method)
        assert cams.shape == (2, 64, 64)
        assert cams.min() >= 0 and cams.max() <= 1
        # the head's softmax is swapped for the score and put back: the same maps as
        # tf-keras-vis on a clone, and the model predicts as before
        assert model.get_layer("predictions").activation.__name__ == "softmax"
        library = cls(model, model_modifier=ReplaceToLinear(), clone=True)(
            CategoricalScore([0, 3]), preprocess(images).numpy(), penultimate_layer="post_relu",
            seek_penultimate_conv_layer=False, normalize_cam=False, expand_cam=True,
        )  # fmt: skip
        peak = np.max(library, axis=(1, 2), keepdims=True)
        expected = np.divide(library, peak, out=np.zeros_like(library), where=peak > 0)
        np.testing.assert_allclose(cams, expected, rtol=0, atol=1e-6)
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
    not what it assumes, so the model need not be good: a few epochs of a small demo
    (post_relu 3x3 at 96 px) check the plumbing; chapter 6 shows the demo's own model."""
    import pandas as pd

    from brainlib import evaluation, training

    profile = load_profile("demo", **LOCALISATION_PROFILE)
    run = training.train(profile, "se", runs_root=tmp_path, verbose=0)
    evaluation.evaluate_run(run.folder, n_resamples=5)
    frame = evaluation.read_predictions(run.folder)
    root = runs.read_meta(run.folder)["data_root"]
    summary = gradcam.localisation_summary(runs.load_trained_model(run.folder), frame, root)
    assert set(summary.index) == {"gradcam", "gradcam++", "random"}
    assert summary[["energy_in_mask", "pointing_game"]].stack().between(0, 1).all()
    area = summary["mask_area_fraction"].iloc[0]
    assert summary.loc["random", "energy_in_mask"] == pytest.approx(area, rel=0.5)
    sentence = gradcam.localisation_sentence(pd.concat({"SE": summary}))
    best = summary.drop(index="random")["energy_in_mask"].max()
    assert f"{100 * best:.1f}% of its heatmap mass" in sentence


LOCALISATION_PROFILE: dict = {"max_epochs": 3, "phantoms_per_class": 20, "image_size": 96}


def test_brain_mask_keeps_the_largest_bright_region_with_its_holes_filled():
    img = np.zeros((40, 40, 3), np.uint8)
    img[5:35, 5:35] = 120  # the head
    img[15:20, 15:20] = 0  # a dark ventricle inside: filled
    img[0:2, 38:40] = 200  # a bright speck elsewhere: dropped
    mask = gradcam.brain_mask(img)
    assert mask[17, 17] and mask[5, 5] and not mask[0, 39] and not mask[2, 2]
    assert mask.sum() == 30 * 30
    assert not gradcam.brain_mask(np.zeros((8, 8, 3), np.uint8)).any()


def test_deletion_curve_falls_fast_for_a_heatmap_on_the_evidence_and_slowly_for_random():
    """A stand-in classifier that is right while its evidence (the top-left 8x8 patch) is
    intact; a heatmap on that patch beats random heatmaps of Grad-CAM's coarseness."""
    n, size = 20, 32
    images = np.full((n, size, size, 3), 100, np.uint8)
    labels = np.arange(n) % 4

    def predict(x):
        intact = (x[:, :8, :8].reshape(len(x), -1) > 0).mean(axis=1) > 0.5
        proba = np.full((len(x), 4), 0.1)
        proba[np.arange(len(x)), np.where(intact, labels, (labels + 1) % 4)] = 0.7
        return proba

    on_target = np.zeros((n, size, size))
    on_target[:, :8, :8] = 1.0
    fractions = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
    good = gradcam.deletion_curve(predict, images, on_target, labels, fractions)
    rand = gradcam.deletion_curve(predict, images, gradcam.random_heatmaps(n, size), labels,
                                  fractions)  # fmt: skip
    assert good["accuracy"].iloc[0] == 1.0 == rand["accuracy"].iloc[0]
    assert good.set_index("fraction").loc[0.05, "accuracy"] == 0.0  # 51 of 64 evidence pixels
    assert gradcam.deletion_area(good) < gradcam.deletion_area(rand) - 0.3
    cams = gradcam.random_heatmaps(3, 224, seed=1)
    assert cams.shape == (3, 224, 224) and cams.min() == 0 and np.allclose(cams.max((1, 2)), 1)


def test_randomised_copy_reinitialises_only_the_named_layers():
    from brainlib.models import build_model

    model = build_model("se", weights=None, input_shape=(64, 64, 3))
    top = gradcam.top_layers(model)
    assert top[0] == "se_reduce" and top[-1] == "predictions" and "post_relu" not in top
    assert "conv5_block3_3_conv" in gradcam.stage_layers(model, "conv5")
    copy = gradcam.randomised(model, top, seed=1)
    for layer in (layer for layer in model.layers if layer.weights):
        for w, v in zip(layer.get_weights(), copy.get_layer(layer.name).get_weights(), strict=True):
            if layer.name in top and w.ndim == 2:  # dense kernels: drawn anew
                assert not np.allclose(w, v), layer.name
            elif layer.name not in top:
                np.testing.assert_array_equal(w, v)
    with pytest.raises(ValueError, match="no layers"):
        gradcam.randomised(model, ["nope"])


def test_rank_correlation_by_hand():
    a = np.arange(16, dtype=float).reshape(4, 4)
    assert gradcam.rank_correlation(a, a, step=1) == pytest.approx(1.0)
    assert gradcam.rank_correlation(a, -a, step=1) == pytest.approx(-1.0)
    assert gradcam.rank_correlation(a, a**3, step=1) == pytest.approx(1.0)  # ranks, not values
    assert np.isnan(gradcam.rank_correlation(a, np.zeros((4, 4)), step=1))  # a blank map


def test_the_randomisation_check_sees_heatmaps_change_with_the_weights():
    """On an untrained 64 px model (post_relu 2x2) the check runs end to end; comparing a
    model with itself (nothing re-initialised) gives a correlation of one."""
    from brainlib.models import build_model

    model = build_model("base", weights=None, input_shape=(64, 64, 3))
    images = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    same = gradcam.batched_heatmaps(gradcam.randomised(model, [], seed=3), images, [0, 1, 2, 3])
    ref = gradcam.batched_heatmaps(model, images, [0, 1, 2, 3])
    np.testing.assert_allclose(same, ref, atol=1e-6)
    check = gradcam.randomisation_check(model, images, [0, 1, 2, 3], seed=0)
    assert check["images"] == 4 and set(check["stages"]) == set(
        gradcam.RANDOMISATION_STAGES) | {"random heatmaps"}  # fmt: skip
    for stage in check["stages"].values():
        assert stage["compared"] + stage["constant"] == 4


def test_deletion_curve_of_no_images_is_nan_not_an_error():
    """Every heatmap blank (a model that predicts one class for all): nothing to delete,
    so the curve and its area are NaN and the run's summary can still be written."""
    never = lambda x: pytest.fail("no images: the model is not called")  # noqa: E731
    curve = gradcam.deletion_curve(never, np.zeros((0, 8, 8, 3), np.uint8),
                                   np.zeros((0, 8, 8)), [], (0.0, 0.5))  # fmt: skip
    assert curve["fraction"].tolist() == [0.0, 0.5]
    assert curve["accuracy"].isna().all() and np.isnan(gradcam.deletion_area(curve))
