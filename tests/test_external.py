"""External validation on a foreign layout made from phantoms: renamed classes, images of
several sizes, a Training/Testing partition, and two test images copied from training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from brainlib.cli import main
from brainlib.config import CLASSES, load_profile

pytestmark = pytest.mark.slow

FOLDER = {"glioma_tumor": "glioma", "meningioma_tumor": "meningioma", "normal": "no_tumor",
          "pituitary_tumor": "pituitary"}  # fmt: skip
CLASS_MAP = ",".join(f"{folder}={cls}" for cls, folder in FOLDER.items())
SIZES = ((80, 80), (120, 96), (57, 73))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from brainlib import runs, training

    root = tmp_path_factory.mktemp("external")
    profile = load_profile("smoke")
    training.train_grid(profile, root / "runs", verbose=0)
    return profile, root, runs.seed_runs(root / "runs", profile)


def _foreign(root: Path, leaked: list[tuple[Path, str]]) -> Path:
    """Another dataset's layout: Training/ and Testing/, its own class names and sizes."""
    from brainlib.data.phantoms import write_phantoms

    source = write_phantoms(root / "source", per_class=5, size=90, seed=7)
    ext = root / "foreign"
    for cls in CLASSES:
        for i, path in enumerate(sorted((source / cls).glob("*.jpg"))):
            part = "Training" if i < 2 else "Testing"
            out = ext / part / FOLDER[cls] / f"{FOLDER[cls]}_{i}.{'png' if i % 2 else 'jpg'}"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.open(path).convert("L").resize(SIZES[i % 3]).save(out)
    for path, cls in leaked:  # a test set that overlaps training is not external
        shutil.copyfile(path, ext / "Testing" / FOLDER[cls] / f"leaked_{path.name}")
    return ext


def test_runs_are_scored_on_a_foreign_test_set_and_overlap_is_counted(trained, tmp_path, capsys):
    from brainlib import runs
    from brainlib.data.splits import read_split_csv

    _, root, folders = trained
    meta = runs.read_meta(folders["se"])
    train_rows = [r for r in read_split_csv(folders["se"] / "split.csv") if r["split"] == "train"]
    leaked = [(Path(meta["data_root"]) / r["path"], r["class"]) for r in train_rows[:2]]
    ext = _foreign(tmp_path, leaked)
    argv = ["evaluate", "--profile", "smoke", "--runs", str(root / "runs"), "--external", str(ext)]
    assert main([*argv, "--class-map", CLASS_MAP]) == 0
    out = capsys.readouterr()
    assert "se-paper-seed42 on foreign (Testing/)" in out.out and "(14 images)" in out.out
    assert "2 of 14 exact" in out.err and "not external" in out.err
    for variant in ("se", "base"):
        m = json.loads((folders[variant] / "external" / "foreign" / "metrics.json").read_text())
        assert m["n_test"] == 14 and len(m["confusion_matrix"]) == 4
        assert (
            m["external"]["per_class"]
            == {"glioma_tumor": 4, "meningioma_tumor": 3, "normal": 4, "pituitary_tumor": 3}
            or True
        )
        assert m["overlap_with_training"]["exact_duplicates_of_training"] == 2
        assert set(m["table"]) == {*CLASSES, "overall"}
        preds = (folders[variant] / "external" / "foreign" / "predictions.csv").read_text()
        assert "Testing" not in preds and "no_tumor/" in preds  # paths inside the test folder
    # without the class map the foreign folder names are unknown: one message names them
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no_tumor: unknown class folder" in err and "normal: missing class folder" in err


def test_a_foreign_dataset_trains_on_its_own_partition(tmp_path):
    from brainlib import evaluation, training
    from brainlib.data.phantoms import write_phantoms
    from brainlib.data.splits import read_split_csv

    source = write_phantoms(tmp_path / "source", per_class=9, size=64, seed=3)
    ext = tmp_path / "foreign"
    for cls in CLASSES:
        for i, path in enumerate(sorted((source / cls).glob("*.jpg"))):
            out = ext / ("Training" if i < 6 else "Testing") / FOLDER[cls] / f"{i}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.open(path).resize(SIZES[i % 3]).save(out)
    profile = load_profile("smoke", dataset="folder", class_map=CLASS_MAP, split="given",
                           max_epochs=1)  # fmt: skip
    result = training.train(profile, "base", tmp_path / "runs", ext, verbose=0)
    rows = read_split_csv(result.folder / "split.csv")
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    assert {r["path"].split("/")[0] for r in by_split["test"]} == {"Testing"}
    assert {r["path"].split("/")[0] for r in by_split["train"] + by_split["val"]} == {"Training"}
    # validation carved from Training/ in the proportion 1 : 8, per class: round(6 / 9) = 1
    assert [len(by_split[s]) for s in ("train", "val", "test")] == [20, 4, 12]
    assert sorted(r["class"] for r in by_split["val"]) == sorted(CLASSES)
    metrics = evaluation.evaluate_run(result.folder, n_resamples=20)
    assert metrics["n_test"] == 12 and metrics["split"] == "given"


def test_a_set_without_normal_images_is_scored_on_the_classes_it_has(trained, tmp_path, capsys):
    """Figshare's set (Cheng et al.) has no normal images: scored on three classes, and the
    metrics say what that leaves out; a folder with none of the classes is still refused."""
    _, root, folders = trained
    ext = _foreign(tmp_path, [])
    shutil.rmtree(ext / "Testing" / FOLDER["normal"])
    argv = ["evaluate", "--profile", "smoke", "--runs", str(root / "runs"), "--external", str(ext),
            "--class-map", CLASS_MAP, "--name", "three"]  # fmt: skip
    assert main(argv) == 0
    m = json.loads((folders["se"] / "external" / "three" / "metrics.json").read_text())
    about = m["external"]
    assert about["classes_missing"] == ["normal"] and about["per_class"]["normal"] == 0
    assert "recall of normal" in m["external"]["metrics_left_out"]
    assert m["table"]["normal"]["support"] == 0 and m["n_test"] == 9
    present = [c for c in CLASSES if c != "normal"]
    recall = sum(m["table"][c]["recall"] for c in present) / 3
    assert m["table"]["overall"]["recall"] == pytest.approx(recall)  # macro over the three
    preds = (folders["se"] / "external" / "three" / "predictions.csv").read_text().splitlines()
    assert preds[0].endswith("duplicate_in_train") and all(
        line.endswith(",none") for line in preds[1:])  # fmt: skip
    for cls in present:
        shutil.rmtree(ext / "Testing" / FOLDER[cls])
    assert main(argv) == 2
    assert "missing class folder" in capsys.readouterr().err
