"""Leakage audit: exact and near duplicates inside the dataset and across splits.

- *Exact duplicates* have identical decoded pixels (8-bit RGB, as the model
  sees them), whatever their file bytes: a re-saved copy of a JPEG with the
  same pixels counts.
- *Near duplicates* have 64-bit perceptual hashes (pHash: the sign pattern of
  the lowest 8x8 DCT coefficients, via ``imagehash``) within a Hamming
  distance ``max_distance``, 4 by default. The threshold is calibrated on the
  real data by :func:`distance_calibration`, which checks pairs at each
  distance against an independent measure, the Pearson correlation of their
  64x64 grayscale thumbnails. On the 3,096 images the median correlation is
  1.00 at distance 0, 0.98 at 2 and 0.90 at 4 (83% of pairs above 0.8: the
  same slice re-encoded, re-windowed or slightly shifted), then 0.85 at 6
  (62% above 0.8) and 0.66 at 8, where distinct neighbouring slices dominate.
  At 6 the union-find chains 121 images into one group; at 4 the largest
  group has 9. (pHash distances on this data are all even.)

Groups are the connected components of the duplicate graph (union-find), so a
chain a~b~c makes one group even if a and c are further apart; the grouped
split needs exactly that (no edge may cross two subsets).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import imagehash
import numpy as np
from tqdm.auto import tqdm

from brainlib.data.layout import ImageRecord, load_rgb

DEFAULT_MAX_DISTANCE = 4


@dataclass(frozen=True)
class Fingerprint:
    relpath: str
    label: str
    pixel_sha256: str
    phash: int  # 64-bit perceptual hash


def fingerprint(record: ImageRecord) -> Fingerprint:
    img = load_rgb(record.path)
    arr = np.asarray(img)
    digest = hashlib.sha256(np.asarray(arr.shape, dtype=np.int64).tobytes() + arr.tobytes())
    ph = int(str(imagehash.phash(img, hash_size=8)), 16)
    return Fingerprint(record.relpath, record.label, digest.hexdigest(), ph)


def fingerprints(records: Sequence[ImageRecord], progress: bool = False) -> list[Fingerprint]:
    it = tqdm(records, desc="fingerprints", disable=not progress, unit="img")
    return [fingerprint(r) for r in it]


def hamming_matrix(hashes: Sequence[int]) -> np.ndarray:
    """Pairwise Hamming distances of 64-bit hashes (uint8, n x n)."""
    h = np.asarray([np.uint64(x) for x in hashes], dtype=np.uint64)
    return np.bitwise_count(h[:, None] ^ h[None, :]).astype(np.uint8)


def near_pairs(fps: Sequence[Fingerprint], max_distance: int) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for all i < j with pHash distance <= ``max_distance``."""
    d = hamming_matrix([f.phash for f in fps])
    i, j = np.nonzero(np.triu(d <= max_distance, k=1))
    return [(int(a), int(b), int(d[a, b])) for a, b in zip(i, j, strict=True)]


def exact_pairs(fps: Sequence[Fingerprint]) -> list[tuple[int, int]]:
    by_hash: dict[str, list[int]] = defaultdict(list)
    for k, f in enumerate(fps):
        by_hash[f.pixel_sha256].append(k)
    return [(g[0], k) for g in by_hash.values() for k in g[1:]]


def components(n: int, pairs) -> list[list[int]]:
    """Connected components with more than one member (union-find)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, *_ in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for k in range(n):
        groups[find(k)].append(k)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def nearest_distance_histogram(fps: Sequence[Fingerprint]) -> dict[int, int]:
    """How many images have their nearest other image at each pHash distance."""
    d = hamming_matrix([f.phash for f in fps]).astype(np.int16)
    np.fill_diagonal(d, 999)
    return dict(sorted(Counter(int(x) for x in d.min(axis=1)).items()))


def thumbnails(records: Sequence[ImageRecord], size: int = 64) -> np.ndarray:
    """Standardised grayscale thumbnails (n x size*size), for calibration."""
    arr = np.stack(
        [
            np.asarray(load_rgb(r.path).convert("L").resize((size, size)), dtype=np.float64).ravel()
            for r in records
        ]
    )
    return (arr - arr.mean(1, keepdims=True)) / (arr.std(1, keepdims=True) + 1e-9)


def distance_calibration(
    records: Sequence[ImageRecord],
    fps: Sequence[Fingerprint],
    max_distance: int = 12,
    sample: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """Per pHash distance: number of pairs and how alike their pixels are.

    For up to ``sample`` pairs at each distance, the Pearson correlation of
    64x64 grayscale thumbnails: its median, and the shares above 0.9 and 0.8.
    The near-duplicate threshold is the largest distance whose median stays
    at or above 0.9.
    """
    thumbs = thumbnails(records)
    d = hamming_matrix([f.phash for f in fps])
    iu = np.triu_indices(len(fps), 1)
    dd = d[iu]
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(max_distance + 1):
        sel = np.nonzero(dd == t)[0]
        if len(sel) == 0:
            continue
        pairs = len(sel)
        if pairs > sample:
            sel = rng.choice(sel, sample, replace=False)
        corr = (thumbs[iu[0][sel]] * thumbs[iu[1][sel]]).mean(1)
        rows.append(
            {
                "distance": t,
                "pairs": int(pairs),
                "median_correlation": round(float(np.median(corr)), 3),
                "share_above_0_9": round(float((corr > 0.9).mean()), 3),
                "share_above_0_8": round(float((corr > 0.8).mean()), 3),
            }
        )
    return rows


@dataclass
class DuplicateIndex:
    """Exact and near duplicate structure of one dataset."""

    fingerprints: list[Fingerprint]
    max_distance: int
    exact_groups: list[list[str]]
    near_groups: list[list[str]]  # groups of the union of exact and near edges
    near_edges: list[tuple[str, str, int]]

    def groups_for_split(self) -> list[list[str]]:
        """The groups a leakage-free split must keep whole."""
        return self.near_groups


def index_duplicates(
    records: Sequence[ImageRecord],
    max_distance: int = DEFAULT_MAX_DISTANCE,
    progress: bool = False,
    fps: Sequence[Fingerprint] | None = None,
) -> DuplicateIndex:
    fps = list(fps) if fps is not None else fingerprints(records, progress=progress)
    names = [f.relpath for f in fps]
    ex = exact_pairs(fps)
    near = near_pairs(fps, max_distance)
    exact_groups = [[names[k] for k in g] for g in components(len(fps), ex)]
    near_groups = [[names[k] for k in g] for g in components(len(fps), ex + near)]
    edges = [(names[a], names[b], d) for a, b, d in near]
    return DuplicateIndex(fps, max_distance, exact_groups, near_groups, edges)


def _group_stats(groups: list[list[str]], label: dict[str, str]) -> dict:
    files = sum(len(g) for g in groups)
    return {
        "groups": len(groups),
        "files_in_groups": files,
        "redundant_files": files - len(groups),
        "largest_group": max((len(g) for g in groups), default=0),
        "mixed_label_groups": sum(len({label[p] for p in g}) > 1 for g in groups),
    }


def duplicates_in_train(index: DuplicateIndex, assignment: dict[str, str]) -> dict[str, str]:
    """For every image: ``"exact"`` if an exact copy is in the training set, else
    ``"near"`` if a near duplicate is, else ``"none"``."""
    exact_of: dict[str, set[str]] = defaultdict(set)
    for g in index.exact_groups:
        for p in g:
            exact_of[p].update(q for q in g if q != p)
    near_of: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in index.near_edges:
        near_of[a].add(b)
        near_of[b].add(a)
    out = {}
    for p in assignment:
        if any(assignment.get(q) == "train" for q in exact_of[p]):
            out[p] = "exact"
        elif any(assignment.get(q) == "train" for q in near_of[p]):
            out[p] = "near"
        else:
            out[p] = "none"
    return out


def duplicate_clusters(index: DuplicateIndex) -> dict[str, str]:
    """``path -> cluster``: the first path (sorted) of its exact-or-near duplicate group, or
    itself. Copies of one picture share a cluster, which a bootstrap resamples as one."""
    out = {f.relpath: f.relpath for f in index.fingerprints}
    for group in index.near_groups:
        first = min(group)
        out.update(dict.fromkeys(group, first))
    return out


def duplicate_flags_text(index: DuplicateIndex, assignment: dict[str, str]) -> str:
    """CSV ``path,split,duplicate_in_train,cluster`` for every image of a split:
    exact / near / none, and the image's duplicate cluster (:func:`duplicate_clusters`)."""
    dup = duplicates_in_train(index, assignment)
    cluster = duplicate_clusters(index)
    lines = ["path,split,duplicate_in_train,cluster"]
    lines += [f'"{p}",{assignment[p]},{dup[p]},"{cluster.get(p, p)}"' for p in sorted(assignment)]
    return "\n".join(lines) + "\n"


def write_duplicate_flags(folder, index: DuplicateIndex, splits: dict[str, dict[str, str]]):
    """The data stage's per-image flags, one ``<kind>-duplicates.csv`` per split kind.

    Later stages (the export of a replication) read them instead of hashing the
    images again. Returns the paths written.
    """
    from pathlib import Path

    from brainlib.fileio import atomic_write_text

    return [
        atomic_write_text(Path(folder) / f"{kind}-duplicates.csv", duplicate_flags_text(index, a))
        for kind, a in splits.items()
    ]


def split_leakage(index: DuplicateIndex, assignment: dict[str, str]) -> dict:
    """How many validation/test images have an exact or near duplicate in training."""
    dup = duplicates_in_train(index, assignment)
    out: dict = {}
    for split in ("val", "test"):
        members = [p for p, s in assignment.items() if s == split]
        exact = sum(dup[p] == "exact" for p in members)
        near = sum(dup[p] != "none" for p in members)
        out[split] = {
            "images": len(members),
            "with_exact_duplicate_in_train": exact,
            "with_near_duplicate_in_train": near,
            "share_with_near_duplicate_in_train": round(near / max(len(members), 1), 4),
        }
    crossing = [
        (a, b) for a, b, _ in index.near_edges if assignment.get(a) != assignment.get(b)
    ] + [(g[0], q) for g in index.exact_groups for q in g[1:]
         if assignment.get(g[0]) != assignment.get(q)]  # fmt: skip
    out["pairs_across_splits"] = len(crossing)
    return out


def audit_report(
    index: DuplicateIndex,
    splits: dict[str, dict[str, str]] | None = None,
    examples: int = 10,
) -> dict:
    """The audit as a JSON-ready dict. Keys:

    - ``images``: number of images audited; ``max_distance``: the pHash threshold;
    - ``exact`` / ``near``: ``groups``, ``files_in_groups``, ``redundant_files``
      (files beyond the first of each group), ``largest_group``,
      ``mixed_label_groups`` (groups whose members carry different classes);
      ``near`` also has ``pairs`` (near pairs, exact ones included when their
      hashes are close, as they always are) and ``cross_label_pairs`` with up to
      ``examples`` of them listed in ``cross_label_examples``;
    - ``nearest_distance_histogram``: images per distance to their nearest other image;
    - ``splits``: per split kind, per subset, images with an exact / near
      duplicate in training, and ``pairs_across_splits``.
    """
    label = {f.relpath: f.label for f in index.fingerprints}
    cross = [(a, b, d) for a, b, d in index.near_edges if label[a] != label[b]]
    report = {
        "images": len(index.fingerprints),
        "max_distance": index.max_distance,
        "exact": _group_stats(index.exact_groups, label),
        "near": {
            **_group_stats(index.near_groups, label),
            "pairs": len(index.near_edges),
            "cross_label_pairs": len(cross),
            "cross_label_examples": [
                {"a": a, "b": b, "distance": d, "class_a": label[a], "class_b": label[b]}
                for a, b, d in cross[:examples]
            ],
        },
        "nearest_distance_histogram": {
            str(k): v for k, v in nearest_distance_histogram(index.fingerprints).items()
        },
    }
    if splits:
        report["splits"] = {name: split_leakage(index, a) for name, a in splits.items()}
    return report
