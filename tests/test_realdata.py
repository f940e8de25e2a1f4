"""The real dataset (../shared/data via BRAINLIB_DATA_DIR): counts, manifest, audit, splits."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from brainlib.config import load_profile
from brainlib.data import DataError, class_counts, load_dataset
from brainlib.data.audit import split_leakage
from brainlib.data.splits import make_split, split_summary

pytestmark = pytest.mark.realdata


def test_loader_counts_the_papers_classes(real_records):
    assert class_counts(real_records) == {
        "glioma_tumor": 901,
        "meningioma_tumor": 913,
        "normal": 438,
        "pituitary_tumor": 844,
    }


def test_real_data_matches_the_packaged_manifest(real_data_dir):
    ds = load_dataset(load_profile("paper"), real_data_dir)
    assert ds.check is not None and ds.check.ok and len(ds.records) == 3096


def test_paper_profile_refuses_changed_data_unless_overridden(real_data_dir, tmp_path):
    copy = tmp_path / "copy"
    for cls_dir in real_data_dir.iterdir():
        if cls_dir.is_dir():
            (copy / cls_dir.name).mkdir(parents=True)
            for f in cls_dir.iterdir():
                os.symlink(f, copy / cls_dir.name / f.name)
    (copy / "normal" / "N_1.jpg").unlink()  # missing
    shutil.copy(real_data_dir / "normal" / "N_2.jpg", copy / "normal" / "N_new.jpg")  # extra
    target = copy / "glioma_tumor" / "G_1.jpg"
    target.unlink()
    shutil.copy(real_data_dir / "glioma_tumor" / "G_2.jpg", target)  # changed
    with pytest.raises(DataError) as err:
        load_dataset(load_profile("paper"), copy)
    text = str(err.value)
    assert "1 missing (normal/N_1.jpg)" in text and "1 extra (normal/N_new.jpg)" in text
    assert "1 changed (glioma_tumor/G_1.jpg)" in text and "--allow-data-mismatch" in text
    with pytest.warns(UserWarning, match="differs from the manifest"):
        ds = load_dataset(load_profile("paper"), copy, allow_mismatch=True)
    assert not ds.check.ok and len(ds.records) == 3096


def test_audit_figures_on_the_real_data(real_index):
    from brainlib.data.audit import audit_report

    report = audit_report(real_index)
    assert report["images"] == 3096
    assert report["exact"]["groups"] == 217 and report["exact"]["files_in_groups"] == 468
    assert report["exact"]["mixed_label_groups"] == 0
    assert report["near"]["groups"] == 360 and report["near"]["cross_label_pairs"] == 10


def test_paper_split_leaks_and_grouped_split_does_not(real_records, real_index):
    paper = make_split(real_records, "paper", 42, index=real_index)
    leak = split_leakage(real_index, paper)
    assert leak["test"]["with_exact_duplicate_in_train"] > 20
    grouped = make_split(real_records, "grouped", 42, index=real_index)
    leak = split_leakage(real_index, grouped)
    for sub in ("val", "test"):
        assert leak[sub]["with_exact_duplicate_in_train"] == 0
        assert leak[sub]["with_near_duplicate_in_train"] == 0
    assert leak["pairs_across_splits"] == 0
    for group in real_index.near_groups + real_index.exact_groups:
        assert len({grouped[p] for p in group}) == 1
    summary = split_summary(real_records, grouped)
    total = {s: sum(c.values()) for s, c in summary.items()}
    assert abs(total["test"] - 310) <= 10 and abs(total["val"] - 310) <= 10


@pytest.mark.slow
def test_paper_profile_code_path_with_backbone_weights_from_a_file(real_data_dir, tmp_path):
    """The `paper` profile, unchanged but for one short epoch, on the real data.

    The backbone weights come from a file in the layout Keras ships for
    ResNet50V2 without top (legacy HDF5), here saved from an untrained model:
    a user with the real ImageNet file needs no code change.
    """
    h5py = pytest.importorskip("h5py")
    keras = pytest.importorskip("keras")
    from keras.src.legacy.saving import legacy_h5_format

    from brainlib import evaluation, runs, training

    donor = keras.applications.ResNet50V2(
        include_top=False, weights=None, input_shape=(224, 224, 3)
    )
    weights = tmp_path / "resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with h5py.File(weights, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, donor)
    profile = load_profile("paper", max_epochs=1, subsample=3)
    assert (profile.image_size, profile.strict_data) == (224, True)
    run = training.train(profile, "se", tmp_path / "runs", real_data_dir, weights=str(weights),
                         verbose=0)  # fmt: skip
    meta = json.loads((run.folder / "run.json").read_text())
    assert meta["status"] == "complete" and meta["profile"]["weights"] == str(weights)
    assert meta["profile"]["name"] == "paper" and len(run.history) == 1
    model = runs.load_trained_model(run.folder)
    np.testing.assert_array_equal(
        model.get_layer("conv1_conv").get_weights()[0],
        donor.get_layer("conv1_conv").get_weights()[0],
    )  # frozen layers keep the file's weights
    metrics = evaluation.evaluate_run(run.folder, n_resamples=20, data_dir=real_data_dir)
    assert metrics["n_test"] == 12  # 3 per class
