"""Train/validation/test splits and their CSV manifests.

Two kinds of split, both seeded and reproducible byte for byte:

- ``paper``: the paper's 80/10/10 split. The paper says only that the data was
  "randomly shuffled and divided"; we stratify by class (each class split
  80/10/10 on its own) so that the small ``normal`` class keeps its share in
  every subset. Per class, ``round(0.1 n)`` images go to validation and to
  test and the rest to training: 90/91/44/84 test images for the real data.
- ``grouped``: the same proportions, but every group of exact or near
  duplicates (:mod:`brainlib.data.audit`) is kept whole inside one subset, so
  no validation or test image has a duplicate in training, by construction.
- ``dedup``: the ``paper`` split with one change: every training image that is
  an exact or near duplicate of a test image is left out (of training, and of
  the run). The test set is the paper split's, image for image, so a model
  trained on ``paper`` and one trained on ``dedup`` are compared on the same
  test images; the difference on test images that had a duplicate in
  training is what duplicate leakage is worth.
- ``given``: a dataset that keeps its own partition (``Training/`` and
  ``Testing/`` folders) keeps it: ``Testing/`` is the test set, and the
  validation set is carved from ``Training/``, stratified, in the proportion
  validation : training of the fractions (1 : 8 by default).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from brainlib.config import CLASSES
from brainlib.data.audit import DEFAULT_MAX_DISTANCE, DuplicateIndex, index_duplicates
from brainlib.data.layout import DataError, ImageRecord
from brainlib.fileio import atomic_write_text

SPLITS: tuple[str, ...] = ("train", "val", "test")
CSV_FIELDS = ("path", "class", "sha256", "split")


def _counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    n_val = round(fractions[1] * n)
    n_test = round(fractions[2] * n)
    return n - n_val - n_test, n_val, n_test


def stratified_split(
    records: Sequence[ImageRecord],
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> dict[str, str]:
    """``relpath -> split`` for the paper's split, stratified by class."""
    assignment: dict[str, str] = {}
    for k, cls in enumerate(CLASSES):
        paths = sorted(r.relpath for r in records if r.label == cls)
        order = np.random.default_rng([seed, k]).permutation(len(paths))
        n_train, n_val, _ = _counts(len(paths), fractions)
        for rank, i in enumerate(order):
            split = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
            assignment[paths[i]] = split
    return assignment


def grouped_split(
    records: Sequence[ImageRecord],
    groups: Iterable[Sequence[str]],
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
) -> dict[str, str]:
    """``relpath -> split`` keeping each group of relpaths inside one split.

    Images in no group are groups of one. Groups are visited largest first
    (ties in seeded random order) and each goes to the subset furthest below
    its target for the group's majority class, so class proportions stay close
    to ``fractions``.
    """
    label = {r.relpath: r.label for r in records}
    seen: set[str] = set()
    units: list[list[str]] = []
    for g in groups:
        members = sorted(p for p in g if p in label and p not in seen)
        if members:
            seen.update(members)
            units.append(members)
    units += [[p] for p in sorted(label) if p not in seen]

    rng = np.random.default_rng([seed, 7919])
    tiebreak = rng.permutation(len(units))
    order = sorted(range(len(units)), key=lambda i: (-len(units[i]), tiebreak[i]))

    totals = {c: sum(v == c for v in label.values()) for c in CLASSES}
    target = {
        (c, s): totals[c] * f for c in CLASSES for s, f in zip(SPLITS, fractions, strict=True)
    }
    filled = dict.fromkeys(target, 0)
    assignment: dict[str, str] = {}
    for i in order:
        members = units[i]
        classes = [label[p] for p in members]
        major = max(CLASSES, key=lambda c: (classes.count(c), -CLASSES.index(c)))
        # the split with the largest remaining share of its target
        split = max(
            SPLITS,
            key=lambda s: (
                (target[major, s] - filled[major, s]) / max(target[major, s], 1e-9),
                -SPLITS.index(s),
            ),
        )
        for p in members:
            assignment[p] = split
            filled[label[p], split] += 1
    return assignment


def make_split(
    records: Sequence[ImageRecord],
    kind: str,
    seed: int,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    max_distance: int = DEFAULT_MAX_DISTANCE,
    index: DuplicateIndex | None = None,
) -> dict[str, str]:
    """The ``paper``, ``grouped`` or ``given`` split of ``records`` (``relpath -> split``)."""
    if kind == "given":
        return given_split(records, seed, fractions)
    if kind == "paper":
        return stratified_split(records, seed, fractions)
    if kind == "grouped":
        index = index or index_duplicates(records, max_distance)
        return grouped_split(records, index.groups_for_split(), seed, fractions)
    if kind == "dedup":
        index = index or index_duplicates(records, max_distance)
        return deduplicated_split(stratified_split(records, seed, fractions), index)
    raise ValueError(
        f"unknown split kind {kind!r} (expected 'paper', 'grouped', 'dedup' or 'given')"
    )


def deduplicated_split(assignment: dict[str, str], index: DuplicateIndex) -> dict[str, str]:
    """``assignment`` without the training images that duplicate a test image.

    A training image goes when it is an exact copy of a test image or within
    the near-duplicate distance of one (a direct pair, as the audit flags
    them; not merely in the same cluster). Validation and test are untouched.
    The images left out are absent from the returned mapping.
    """
    partners: dict[str, set[str]] = {}
    for group in index.exact_groups:
        for p in group:
            partners.setdefault(p, set()).update(q for q in group if q != p)
    for a, b, _ in index.near_edges:
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    return {
        p: s
        for p, s in assignment.items()
        if not (s == "train" and any(assignment.get(q) == "test" for q in partners.get(p, ())))
    }


def given_split(
    records: Sequence[ImageRecord], seed: int, fractions: Sequence[float] = (0.8, 0.1, 0.1)
) -> dict[str, str]:
    """The dataset's own partition: ``Testing/`` is test; validation carved from ``Training/``."""
    from brainlib.data.layout import PARTITIONS

    part = {r.relpath: PARTITIONS.get(r.relpath.split("/", 1)[0].lower()) for r in records}
    if not any(v == "test" for v in part.values()) or not any(v == "train" for v in part.values()):
        raise DataError(
            "split 'given' needs a dataset with Training/ and Testing/ folders "
            "(use split 'paper' or 'grouped' for one folder per class)"
        )
    val_share = fractions[1] / (fractions[0] + fractions[1])
    training = [r for r in records if part[r.relpath] == "train"]
    assignment = stratified_split(training, seed, (1 - val_share, val_share, 0.0))
    assignment.update({p: "test" for p, v in part.items() if v == "test"})
    return assignment


def split_rows(records: Sequence[ImageRecord], assignment: dict[str, str]) -> list[dict[str, str]]:
    missing = [r.relpath for r in records if r.relpath not in assignment]
    if missing:
        raise DataError(f"{len(missing)} image(s) have no split, e.g. {missing[0]}")
    return [
        {"path": r.relpath, "class": r.label, "sha256": r.sha256, "split": assignment[r.relpath]}
        for r in sorted(records, key=lambda r: r.relpath)
    ]


def split_csv_text(records: Sequence[ImageRecord], assignment: dict[str, str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(split_rows(records, assignment))
    return buf.getvalue()


def write_split_csv(path: str | Path, records, assignment) -> Path:
    """Save a split as CSV (path, class, sha256, split), sorted by path."""
    return atomic_write_text(path, split_csv_text(records, assignment))


def read_split_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a split manifest, checked: known columns, classes and splits."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split manifest {path} does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise DataError(
                f"{path}: columns {reader.fieldnames} are not the expected {list(CSV_FIELDS)}"
            )
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        if row["class"] not in CLASSES or row["split"] not in SPLITS:
            raise DataError(f"{path}, line {line}: unknown class or split in {row}")
    return rows


def split_summary(records: Sequence[ImageRecord], assignment: dict[str, str]) -> dict:
    """Images per class and split: ``{split: {class: n}}`` (images the split leaves out, as
    a ``dedup`` split does, are not counted)."""
    out = {s: dict.fromkeys(CLASSES, 0) for s in SPLITS}
    for r in records:
        if r.relpath in assignment:
            out[assignment[r.relpath]][r.label] += 1
    return out
