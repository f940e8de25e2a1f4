"""The dataset manifest: every file's relative path, class and sha256.

The project keeps the manifest of the paper's 3,096 images
(``manifests/brain-tumors-256x256.csv``). :func:`verify` compares a scanned
folder with it and reports missing, extra and changed files; the ``paper``
profile refuses data that does not match unless told otherwise.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from brainlib.data.layout import DataError, ImageRecord

MANIFEST_DIR = Path(__file__).with_name("manifests")
FIELDS = ("path", "class", "sha256")


def packaged_manifest(dataset: str) -> Path | None:
    path = MANIFEST_DIR / f"{dataset}.csv"
    return path if path.is_file() else None


def manifest_text(records: Sequence[ImageRecord]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in sorted(records, key=lambda r: r.relpath):
        w.writerow((r.relpath, r.label, r.sha256))
    return buf.getvalue()


def manifest_hash(records: Sequence[ImageRecord]) -> str:
    """sha256 of the manifest text: one number that names the exact data used."""
    return hashlib.sha256(manifest_text(records).encode()).hexdigest()


def read_manifest(path: str | Path) -> dict[str, tuple[str, str]]:
    """``relpath -> (class, sha256)``."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if tuple(header or ()) != FIELDS:
            raise DataError(f"{path}: header {header} is not {list(FIELDS)}")
        out: dict[str, tuple[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            if len(row) != 3:
                raise DataError(f"{path}, line {line}: expected 3 fields, got {len(row)}")
            out[row[0]] = (row[1], row[2])
    return out


@dataclass
class ManifestCheck:
    """The differences between a folder and its manifest."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # same path, other content or class

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def summary(self, limit: int = 5) -> str:
        if self.ok:
            return "data matches the manifest"
        parts = []
        for name in ("missing", "extra", "changed"):
            items = getattr(self, name)
            if items:
                shown = ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")
                parts.append(f"{len(items)} {name} ({shown})")
        return "data differs from the manifest: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "missing": self.missing,
            "extra": self.extra,
            "changed": self.changed,
        }


def verify(records: Sequence[ImageRecord], manifest: dict[str, tuple[str, str]]) -> ManifestCheck:
    found = {r.relpath: (r.label, r.sha256) for r in records}
    return ManifestCheck(
        missing=sorted(set(manifest) - set(found)),
        extra=sorted(set(found) - set(manifest)),
        changed=sorted(p for p in set(found) & set(manifest) if found[p] != manifest[p]),
    )
