"""External validation: trained runs scored on a test set from another dataset.

The paper names external validation as its main limitation. Another public
MRI set usually comes in the Kaggle layout with its own class names
(``no_tumor`` for ``normal``), images of many sizes, and often its own
``Training/`` and ``Testing/`` folders. :func:`load_external` reads the test
images of such a folder (``Testing/`` when there is one) through a class
map; :func:`evaluate_external` scores a run on them exactly as on its own
test set (predictions, Tables 1-2 with bootstrap intervals, the confusion
matrix) into ``<run>/external/<name>/``; :func:`overlap_with_training` counts
the external images that are exact or near duplicates of the run's training
images, since a test set that overlaps training is not external.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainlib import runs
from brainlib.config import CLASSES
from brainlib.data.layout import DataError, ImageRecord, parse_class_map, scan_dataset
from brainlib.evaluation import predict_images, scores
from brainlib.fileio import atomic_write_json, atomic_write_text

EXTERNAL = "external"  # <run>/external/<name>/
TEST_FOLDERS = ("testing", "test")


def test_root(root: str | Path) -> Path:
    """``root/Testing`` (or ``Test``, any case) when the dataset keeps its own partition."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"external data folder {root} does not exist or is not a folder")
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and entry.name.lower() in TEST_FOLDERS:
            return entry
    return root


def load_external(root: str | Path, class_map: str | None = None, on_bad: str = "raise"):
    """``(test folder, records)`` of an external dataset; ``class_map`` as ``FOLDER=CLASS,...``.

    A set without some of the four classes is read with the classes it has (scored on
    those: :func:`evaluate_external` says which metrics that leaves out)."""
    folder = test_root(root)
    return folder, scan_dataset(folder, on_bad=on_bad, folders=parse_class_map(class_map),
                                missing_classes="skip")  # fmt: skip


def _training_records(folder: Path, data_dir: str | Path) -> list[ImageRecord]:
    from brainlib.data.splits import read_split_csv

    rows = read_split_csv(folder / runs.SPLIT_CSV)
    return [ImageRecord(r["path"], r["class"], r["sha256"], Path(data_dir))
            for r in rows if r["split"] == "train"]  # fmt: skip


def overlap_with_training(
    records: list[ImageRecord],
    training: list[ImageRecord],
    max_distance: int,
    examples: int = 5,
) -> dict:
    """How many external images are exact or near (pHash) duplicates of training images."""
    from brainlib.data.audit import fingerprints

    ext, train = fingerprints(records), fingerprints(training)
    train_pixels = {f.pixel_sha256 for f in train}
    exact = [f.relpath for f in ext if f.pixel_sha256 in train_pixels]
    a = np.asarray([np.uint64(f.phash) for f in ext], dtype=np.uint64)
    b = np.asarray([np.uint64(f.phash) for f in train], dtype=np.uint64)
    distance = np.bitwise_count(a[:, None] ^ b[None, :]).min(axis=1)
    near = [f.relpath for f, d in zip(ext, distance, strict=True) if d <= max_distance]
    flags = {p: "near" for p in near} | {p: "exact" for p in exact}
    return {
        "images": len(records),
        "exact_duplicates_of_training": len(exact),
        "near_duplicates_of_training": len(near),  # exact ones included
        "max_distance": max_distance,
        "examples": near[:examples],
        # per image: "exact", "near" or "none" (predictions.csv carries it)
        "flags": {f.relpath: flags.get(f.relpath, "none") for f in ext},
    }


def classes_left_out(records: list[ImageRecord]) -> dict:
    """Which of the four classes an external set lacks, and what that leaves unmeasured."""
    missing = [c for c in CLASSES if not any(r.label == c for r in records)]
    return {
        "classes_missing": missing,
        "metrics_left_out": [f"{m} of {c}" for c in missing for m in ("recall", "AUC")]
        + (["the macro averages over all four classes (they cover the classes present)"]
           if missing else []),
    }  # fmt: skip


def evaluate_external(
    folder: str | Path,
    test_folder: Path,
    records: list[ImageRecord],
    name: str,
    overlap: dict | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Score the run in ``folder`` on the external images; writes ``external/<name>/``."""
    folder = Path(folder)
    meta = runs.require_complete(folder)
    model = runs.load_trained_model(folder)
    frame = predict_images(model, test_folder, [r.relpath for r in records],
                           [r.label for r in records])  # fmt: skip
    overlap = dict(overlap) if overlap else None
    if overlap and "flags" in overlap:
        frame["duplicate_in_train"] = frame["path"].map(overlap.pop("flags"))
    out = folder / EXTERNAL / name
    csv_text = frame.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    atomic_write_text(out / runs.PREDICTIONS_CSV, csv_text)
    result = {
        **runs.identity(meta),
        "external": {"name": name, "folder": test_folder.name,
                     "per_class": {c: sum(r.label == c for r in records) for c in CLASSES},
                     **classes_left_out(records)},
        "overlap_with_training": overlap,
        **scores(frame, n_resamples, seed),
    }  # fmt: skip
    atomic_write_json(out / runs.METRICS_JSON, result)
    return result


def evaluate_grid_external(
    profile,
    runs_root: str | Path,
    external: str | Path,
    class_map: str | None = None,
    name: str | None = None,
    data_dir: str | Path | None = None,
    on_bad: str = "raise",
    partial: bool = False,
) -> dict:
    """:func:`evaluate_external` for every run of the profile's grid (its completed runs
    with ``partial``).

    The overlap with training is computed once per training set (per split);
    the training images are read where the profile finds its data.
    """
    from brainlib.data import resolve_data_dir

    test_folder, records = load_external(external, class_map, on_bad)
    name = name or Path(external).resolve().name
    data_root = resolve_data_dir(profile, data_dir)
    overlaps: dict[str, dict] = {}
    out = {}
    for key, folder in runs.grid_folders(runs_root, profile, partial).items():
        split_text = (folder / runs.SPLIT_CSV).read_text(encoding="utf-8")
        if split_text not in overlaps:
            overlaps[split_text] = overlap_with_training(
                records, _training_records(folder, data_root), profile.near_duplicate_distance
            )
        out[key] = evaluate_external(folder, test_folder, records, name, overlaps[split_text],
                                     profile.bootstrap_resamples, profile.seed)  # fmt: skip
    return out
