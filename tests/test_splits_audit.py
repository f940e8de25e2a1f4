"""Splits (stratified, grouped, reproducible) and the duplicate audit on hand-made cases."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brainlib.config import CLASSES
from brainlib.data import ImageRecord, scan_dataset
from brainlib.data.audit import (
    audit_report,
    components,
    hamming_matrix,
    index_duplicates,
    split_leakage,
)
from brainlib.data.splits import (
    grouped_split,
    make_split,
    read_split_csv,
    split_csv_text,
    split_summary,
    stratified_split,
    write_split_csv,
)
from tests.conftest import write_image


def _records(counts: dict[str, int]) -> list[ImageRecord]:
    return [
        ImageRecord(f"{c}/{i}.jpg", c, f"{k:02d}{i:06d}", root=None)
        for k, (c, n) in enumerate(counts.items())
        for i in range(n)
    ]


PAPER_COUNTS = {"glioma_tumor": 901, "meningioma_tumor": 913, "normal": 438, "pituitary_tumor": 844}


def test_stratified_split_has_the_papers_per_class_test_counts():
    records = _records(PAPER_COUNTS)
    summary = split_summary(records, stratified_split(records, seed=42))
    assert summary["test"] == {
        "glioma_tumor": 90,
        "meningioma_tumor": 91,
        "normal": 44,
        "pituitary_tumor": 84,
    }
    assert summary["val"] == summary["test"]
    assert sum(summary["train"].values()) == 3096 - 2 * 309


def test_same_seed_same_manifest_byte_for_byte(tmp_path):
    records = _records(PAPER_COUNTS)
    a = write_split_csv(tmp_path / "a.csv", records, stratified_split(records, 7))
    b = write_split_csv(tmp_path / "b.csv", records, stratified_split(records, 7))
    assert a.read_bytes() == b.read_bytes()
    other = split_csv_text(records, stratified_split(records, 8))
    assert other != a.read_text()
    rows = read_split_csv(a)
    assert len(rows) == 3096 and set(rows[0]) == {"path", "class", "sha256", "split"}


def test_grouped_split_keeps_groups_whole_and_proportions_close():
    records = _records(PAPER_COUNTS)
    rng = np.random.default_rng(0)
    paths = list(rng.permutation([r.relpath for r in records]))
    groups, k = [], 0
    for _ in range(150):  # disjoint groups of 2..9, as duplicate components are
        size = int(rng.integers(2, 10))
        groups.append(paths[k : k + size])
        k += size
    assignment = grouped_split(records, groups, seed=1)
    for g in groups:
        assert len({assignment[p] for p in g}) == 1
    summary = split_summary(records, assignment)
    for cls, n in PAPER_COUNTS.items():
        assert abs(summary["test"][cls] - 0.1 * n) <= 8
        assert abs(summary["val"][cls] - 0.1 * n) <= 8


def test_hamming_and_components_by_hand():
    d = hamming_matrix([0b0000, 0b0011, 0b1111, (1 << 63) | 1])
    assert d[0, 1] == 2 and d[0, 2] == 4 and d[1, 2] == 2 and d[0, 3] == 2 and d[3, 3] == 0
    assert components(5, [(0, 1, 0), (1, 2, 0), (3, 4, 0)]) == [[0, 1, 2], [3, 4]]


def test_audit_finds_exact_and_near_duplicates(small_dataset):
    src = small_dataset / "glioma_tumor" / "G_0.jpg"
    pixels = np.asarray(Image.open(src))
    # exact: same pixels, other file bytes (PNG)
    Image.fromarray(pixels).save(small_dataset / "glioma_tumor" / "G_0_copy.png")
    # near: the same picture, slightly brightened and re-encoded, filed under another class
    near = np.clip(pixels.astype(int) + 6, 0, 255).astype(np.uint8)
    Image.fromarray(near).save(small_dataset / "normal" / "N_near.jpg", quality=80)
    records = scan_dataset(small_dataset)
    index = index_duplicates(records, max_distance=4)
    assert index.exact_groups == [["glioma_tumor/G_0.jpg", "glioma_tumor/G_0_copy.png"]]
    assert ["glioma_tumor/G_0.jpg", "glioma_tumor/G_0_copy.png", "normal/N_near.jpg"] in (
        index.near_groups
    )
    report = audit_report(index)
    assert report["exact"]["groups"] == 1 and report["exact"]["redundant_files"] == 1
    assert report["near"]["cross_label_pairs"] == 2
    assert report["near"]["mixed_label_groups"] >= 1


def test_split_leakage_counts_by_hand(small_dataset):
    src = small_dataset / "glioma_tumor" / "G_0.jpg"
    Image.fromarray(np.asarray(Image.open(src))).save(small_dataset / "glioma_tumor" / "dup.png")
    records = scan_dataset(small_dataset)
    index = index_duplicates(records, max_distance=0)
    assignment = {r.relpath: "train" for r in records}
    assignment["glioma_tumor/dup.png"] = "test"
    leak = split_leakage(index, assignment)
    assert leak["test"]["with_exact_duplicate_in_train"] == 1
    assert leak["test"]["images"] == 1 and leak["pairs_across_splits"] >= 1
    grouped = make_split(records, "grouped", seed=0, max_distance=0, index=index)
    assert grouped["glioma_tumor/G_0.jpg"] == grouped["glioma_tumor/dup.png"]


def test_split_csv_round_trips_odd_file_names(small_dataset, tmp_path):
    write_image(small_dataset / "normal" / 'a, b "c" é.jpg', seed=77)
    records = scan_dataset(small_dataset)
    path = write_split_csv(tmp_path / "s.csv", records, stratified_split(records, 0))
    rows = read_split_csv(path)
    assert {r["path"] for r in rows} == {r.relpath for r in records}
    assert {r["class"] for r in rows} == set(CLASSES)


def test_dedup_split_drops_exactly_the_training_duplicates_of_test_images():
    from brainlib.data.audit import DuplicateIndex
    from brainlib.data.splits import deduplicated_split

    paper = {"a": "train", "b": "test", "c": "train", "d": "val", "e": "train", "f": "train"}
    index = DuplicateIndex(
        fingerprints=[],
        max_distance=4,
        exact_groups=[["a", "b"], ["e", "d"]],  # a copies test b; e copies validation d
        near_groups=[],
        near_edges=[("c", "b", 3), ("f", "c", 2)],  # c near test b; f near c only (not b)
    )
    dedup = deduplicated_split(paper, index)
    assert set(paper) - set(dedup) == {"a", "c"}  # f is only a duplicate of a duplicate
    assert all(dedup[p] == paper[p] for p in dedup)
    assert [p for p, s in dedup.items() if s == "test"] == ["b"]


def test_dedup_split_keeps_the_paper_test_set(small_dataset):
    src = small_dataset / "glioma_tumor" / "G_0.jpg"
    for i in range(3):  # copies of one image: whichever is a test image, its copies in training go
        Image.fromarray(np.asarray(Image.open(src))).save(
            small_dataset / "glioma_tumor" / f"c{i}.png"
        )
    records = scan_dataset(small_dataset)
    index = index_duplicates(records, max_distance=0)
    paper = make_split(records, "paper", seed=1, index=index)
    dedup = make_split(records, "dedup", seed=1, index=index)
    test = {p for p, s in paper.items() if s == "test"}
    assert {p for p, s in dedup.items() if s == "test"} == test
    copies = {"glioma_tumor/G_0.jpg", *(f"glioma_tumor/c{i}.png" for i in range(3))}
    dropped = set(paper) - set(dedup)
    if copies & test:
        assert dropped == {p for p in copies if paper[p] == "train"}
    else:
        assert dropped == set()
