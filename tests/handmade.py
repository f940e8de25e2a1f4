"""A hand-made grid of exported runs: predictions chosen image by image, so every answer
has a value worked out in the comments of the tests that use it.

Data: 5 images per class and an exact copy ``A`` of the training image G_0; per class
2 training, 1 validation and 2 test images (8 test images; ``A`` is the one with a
duplicate in training). Three splits share that assignment: ``paper``, ``dedup`` (the
same test images) and ``grouped``. Each run's history converges under the smoke
profile's patience of 2 (best epoch 2 of 4) and its fit.json says 0.97, unless a test
changes that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from brainlib import evaluation
from brainlib import runs as runs_mod
from brainlib.config import CLASSES, load_profile
from brainlib.data.splits import split_csv_text
from tests.conftest import write_image

SEEDS = (1, 2)
# Test images: "A" (G_dup) is a byte copy of the training image G_0.
A, B = "glioma_tumor/G_dup.jpg", "glioma_tumor/G_3.jpg"
C, D = "meningioma_tumor/M_3.jpg", "meningioma_tumor/M_4.jpg"
# The test images each run gets wrong.
MISSES = {
    ("paper", 1, "se"): set(), ("paper", 2, "se"): {A},
    ("paper", 1, "base"): {A, B}, ("paper", 2, "base"): {A, C},
    ("dedup", 1, "se"): {A, C}, ("dedup", 2, "se"): {A, D},
    ("dedup", 1, "base"): {A, B}, ("dedup", 2, "base"): {A, B, C},
    ("grouped", 1, "se"): {C, D}, ("grouped", 2, "se"): {A, C, D},
    ("grouped", 1, "base"): {A, B, C, D}, ("grouped", 2, "base"): {B, C, D},
}  # fmt: skip
HISTORY = ("epoch,accuracy,loss,val_accuracy,val_loss,learning_rate,seconds\n"
           "1,0.5,1.2,0.5,1.3,0.001,30\n2,0.8,0.8,0.7,0.9,0.001,30\n"
           "3,0.9,0.6,0.7,1.0,0.001,30\n4,0.95,0.5,0.7,1.1,0.001,30\n")  # fmt: skip


def dataset(root: Path) -> tuple[Path, dict[str, str]]:
    assignment = {}
    for k, cls in enumerate(CLASSES):
        for i in range(5):
            rel = f"{cls}/{cls[0].upper()}_{i}.jpg"
            write_image(root / rel, seed=10 * k + i, size=(64, 64))
            assignment[rel] = {0: "train", 1: "train", 2: "val"}.get(i, "test")
    shutil.copyfile(root / "glioma_tumor/G_0.jpg", root / A)
    assignment["glioma_tumor/G_4.jpg"] = "train"
    assignment[A] = "test"
    return root, assignment


def predictions_text(split_text: str, misses: set[str]) -> str:
    rows = ["path,class," + ",".join(evaluation.PROB_COLUMNS) + ",predicted"]
    tests = [r.split(",") for r in split_text.splitlines()[1:] if r.endswith(",test")]
    for path, cls, *_ in tests:
        k = CLASSES.index(cls)
        guess = (k + 1) % 4 if path in misses else k
        proba = [0.7 if j == guess else 0.1 for j in range(4)]
        rows.append(f"{path},{cls}," + ",".join(map(str, proba)) + f",{CLASSES[guess]}")
    return "\n".join(rows) + "\n"


def write_run(folder: Path, meta: dict, split_text: str, misses: set[str]) -> None:
    folder.mkdir(parents=True)
    (folder / "split.csv").write_text(split_text)
    (folder / "run.json").write_text(json.dumps(meta))
    (folder / "log.txt").write_text("hand-made\n")
    (folder / "weights").mkdir()
    (folder / "weights" / "best.weights.h5").write_bytes(b"not exported")
    (folder / "history.csv").write_text(HISTORY)
    (folder / "fit.json").write_text(json.dumps({"train_accuracy": 0.97}))
    (folder / "predictions.csv").write_text(predictions_text(split_text, misses))
    evaluation.evaluate_run(folder, n_resamples=5)  # reads predictions.csv; the answers resample


def make_grid(tmp_path: Path, splits=("paper", "dedup", "grouped")):
    """Write the runs and the data stage's flags; export them. ``(profile, runs, out)``."""
    from brainlib.data import index_duplicates, scan_dataset
    from brainlib.data.audit import write_duplicate_flags
    from brainlib.results import export

    data, assignment = dataset(tmp_path / "data")
    split_text = split_csv_text(scan_dataset(data), assignment)
    profile = load_profile("smoke", seeds=SEEDS, splits=splits, seed=1)
    runs = tmp_path / "runs"
    for (split, seed, variant), misses in MISSES.items():
        if split not in splits:
            continue
        p = profile.replace(split=split)
        meta = {"variant": variant, "seed": seed, "profile": p.to_dict(), "status": "complete",
                "epochs": 4, "best_epoch": 2, "train_seconds": 120.0, "data_root": str(data),
                "device": {"cpu_count": 2, "machine": "x86_64"},
                "versions": {"tensorflow-cpu": "2.21.0", "keras": "3.15.1"}}  # fmt: skip
        write_run(runs_mod.run_dir(runs, p, variant, seed), meta, split_text, misses)
    index = index_duplicates(scan_dataset(data))  # the data stage's flags
    write_duplicate_flags(runs_mod.data_stage_dir(runs, profile), index,
                          dict.fromkeys(splits, assignment))  # fmt: skip
    return profile, runs, export(runs, profile, tmp_path / "results")
