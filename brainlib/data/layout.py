"""Find and check the images of a dataset in the Kaggle layout.

The layout is one folder per class (:data:`brainlib.config.CLASSES`) holding
image files. :func:`scan_dataset` walks it, opens every image once with Pillow
(which catches truncated and corrupt files that TensorFlow would decode
silently into grey) and returns one :class:`ImageRecord` per usable image.

What is accepted, and what is not (each problem names the file):

- JPEG and PNG images in any of the modes Pillow reads: RGB, grayscale,
  palette, RGBA/LA (alpha is composited on black), 16-bit grayscale (scaled
  to 8 bits). Everything becomes 8-bit RGB before the model sees it.
- File names with spaces or non-ASCII characters are fine.
- Hidden files (``.DS_Store``, ``._x.jpg``) and ``Thumbs.db``/``desktop.ini``
  are ignored, as a file browser would.
- A file that is not an image, a corrupt or truncated image, an image with a
  non-identity EXIF orientation (the model would see it turned), an image
  above Pillow's decompression-bomb limit, a missing or empty class folder,
  a folder inside a class folder (a link to one too), or an unknown folder at
  the top level is a problem; all of them are reported together.
  By default problems raise :class:`DataError` listing every one of them;
  with ``on_bad="skip"`` bad *files* are left out with a warning (folder
  problems always raise). Nothing on disk is ever changed or deleted.
"""

from __future__ import annotations

import hashlib
import unicodedata
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from brainlib.config import CLASSES

IMAGE_FORMATS = ("JPEG", "PNG")
IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", "manifest.tsv", "readme.md"})


class DataError(ValueError):
    """The data cannot be used as it is. The message names each file and problem."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()):
        self.problems = list(problems)
        if self.problems:
            lines = "\n".join(f"  {path}: {why}" for path, why in self.problems)
            message = f"{message}\n{lines}"
        super().__init__(message)


@dataclass(frozen=True)
class ImageRecord:
    """One image: path relative to the dataset root (POSIX, NFC), class, content hash."""

    relpath: str
    label: str
    sha256: str
    root: Path

    @property
    def path(self) -> Path:
        return self.root / self.relpath


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: EXIF tag 0x0112: how a camera says the stored pixels should be turned for display.
EXIF_ORIENTATION = 0x0112


def check_image(path: Path) -> str | None:
    """``None`` if ``path`` is a readable JPEG or PNG, else the problem in words.

    An image whose EXIF orientation is not the identity is refused: TensorFlow's
    decoder (and so the model) ignores the tag while a viewer applies it, so
    the model would see the slice turned or mirrored. Rotate the pixels
    (``PIL.ImageOps.exif_transpose``) and save again. An image above Pillow's
    decompression-bomb limit is refused with its size, not with Pillow's warning.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
                if fmt not in IMAGE_FORMATS:
                    return f"unsupported image format {fmt} (expected JPEG or PNG)"
                im.load()  # full decode: raises on truncated or corrupt data
                if im.width < 1 or im.height < 1:
                    return "image has no pixels"
                orientation = im.getexif().get(EXIF_ORIENTATION)
                if orientation not in (None, 1):
                    return (
                        f"EXIF orientation {orientation}: its pixels are stored turned or "
                        "mirrored and the model would see them so; rotate them "
                        "(PIL.ImageOps.exif_transpose) and save the image again"
                    )
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as err:
        return f"image too large to be an MRI slice ({err})"
    except UnidentifiedImageError:
        return "not an image (Pillow cannot identify it)"
    except (OSError, SyntaxError, ValueError) as err:
        return f"corrupt or truncated image ({err})"
    return None


def _is_ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.lower() in IGNORED_NAMES


def _relpath(path: Path, root: Path) -> str:
    return unicodedata.normalize("NFC", path.relative_to(root).as_posix())


def parse_class_map(text: str | None, classes: Sequence[str] = CLASSES) -> dict[str, str]:
    """``"no_tumor=normal,glioma=glioma_tumor"`` -> ``{class: folder}`` for :func:`scan_dataset`.

    Each pair names a folder of another dataset and the class it holds; a class
    not named keeps its own name as its folder.
    """
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in (text or "").split(","))):
        folder, sep, cls = (x.strip() for x in pair.partition("="))
        if not sep or not folder or not cls:
            raise DataError(f"class map: expected FOLDER=CLASS, got {pair!r}")
        if cls not in classes:
            raise DataError(f"class map: {cls!r} is not a class (classes: {', '.join(classes)})")
        if cls in out:
            raise DataError(f"class map: class {cls!r} is given two folders")
        out[cls] = folder
    return out


def scan_dataset(
    root: str | Path,
    classes: Sequence[str] = CLASSES,
    on_bad: str = "raise",
    with_hash: bool = True,
    folders: dict[str, str] | None = None,
    missing_classes: str = "raise",
) -> list[ImageRecord]:
    """Every usable image under ``root``, sorted by relative path.

    ``on_bad`` is ``"raise"`` (default: one :class:`DataError` listing every
    bad file) or ``"skip"`` (bad files are left out with a warning).
    ``folders`` names the folder of a class where it is not the class's name
    (another dataset's ``no_tumor`` for ``normal``: :func:`parse_class_map`).
    ``missing_classes="skip"`` accepts a folder without some of the classes (an
    external test set such as Figshare's, which has no normal images) as long as
    nothing else is wrong with it; the records then hold the classes it has.
    """
    folder_of = {cls: (folders or {}).get(cls, cls) for cls in classes}
    if on_bad not in ("raise", "skip") or missing_classes not in ("raise", "skip"):
        raise ValueError("on_bad and missing_classes must be 'raise' or 'skip'")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder")

    folder_problems: list[tuple[str, str]] = []
    for entry in sorted(root.iterdir()):
        if _is_ignored(entry):
            continue
        if entry.is_dir() and entry.name not in folder_of.values():
            folder_problems.append(
                (str(entry), f"unknown class folder (expected {', '.join(folder_of.values())})")
            )
        elif entry.is_file():
            folder_problems.append((str(entry), "file outside the class folders"))
    records: list[ImageRecord] = []
    bad: list[tuple[str, str]] = []
    absent: list[tuple[str, str]] = []
    for cls in classes:
        folder = root / folder_of[cls]
        if not folder.is_dir():
            absent.append((str(folder), "missing class folder"))
            continue
        entries = [p for p in sorted(folder.iterdir()) if not _is_ignored(p)]
        if not entries:
            folder_problems.append((str(folder), "empty class folder"))
        for path in entries:
            if path.is_dir():  # taken neither silently nor skipped silently
                link = " (a link to a folder)" if path.is_symlink() else ""
                why = f"a folder inside a class folder{link}: images must sit directly in it"
                folder_problems.append((str(path), why))
                continue
            if problem := check_image(path):
                bad.append((str(path), problem))
                continue
            digest = sha256_file(path) if with_hash else ""
            records.append(ImageRecord(_relpath(path, root), cls, digest, root))
    if folder_problems or (absent and missing_classes == "raise") or len(absent) == len(classes):
        # every problem of the folder at once, the bad files too
        raise DataError(f"{root} is not in the expected layout:", folder_problems + absent + bad)

    if bad and on_bad == "raise":
        raise DataError(
            f"{len(bad)} file(s) under {root} cannot be used "
            "(fix or remove them, or pass on_bad='skip' / --skip-bad to leave them out):",
            bad,
        )
    if bad:
        listing = "; ".join(f"{p}: {why}" for p, why in bad)
        warnings.warn(f"left out {len(bad)} bad file(s): {listing}", stacklevel=2)
    for cls in classes:
        if (root / folder_of[cls]).is_dir() and not any(r.label == cls for r in records):
            raise DataError(f"class folder {root / folder_of[cls]} has no usable image")
    records.sort(key=lambda r: r.relpath)
    return records


def class_counts(records: Sequence[ImageRecord]) -> dict[str, int]:
    """Images per class, in :data:`CLASSES` order."""
    return {cls: sum(r.label == cls for r in records) for cls in CLASSES}


def load_rgb(path: str | Path) -> Image.Image:
    """An image as 8-bit RGB the way the project sees it everywhere.

    Alpha is composited on black; 16-bit and 32-bit grayscale are scaled to
    8 bits (not clipped); palette and grayscale images are expanded to RGB.
    """
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            import numpy as np

            arr = np.asarray(im, dtype=np.float64)
            top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
            im8 = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype("uint8"))
            return im8.convert("RGB")
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
            return Image.alpha_composite(black, rgba).convert("RGB")
        return im.convert("RGB")


#: Folders of a dataset that keeps its own partition, and the subset each one holds.
PARTITIONS = {"training": "train", "train": "train", "testing": "test", "test": "test"}


def partition_folders(root: str | Path) -> dict[str, Path]:
    """``{"train": root/Training, "test": root/Testing}`` (any case) when both exist, else {}."""
    found: dict[str, Path] = {}
    for entry in sorted(Path(root).iterdir()):
        if entry.is_dir() and entry.name.lower() in PARTITIONS:
            found.setdefault(PARTITIONS[entry.name.lower()], entry)
    return found if set(found) == {"train", "test"} else {}


def scan_partitioned(
    root: str | Path, folders: dict[str, str] | None = None, on_bad: str = "raise"
) -> list[ImageRecord]:
    """Every image of a dataset folder: its class folders, or its ``Training/`` and
    ``Testing/`` folders (paths then start with them, so the partition can be kept)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist or is not a folder")
    parts = partition_folders(root)
    if not parts:
        return scan_dataset(root, on_bad=on_bad, folders=folders)
    records = []
    for part in parts.values():
        for r in scan_dataset(part, on_bad=on_bad, folders=folders):
            records.append(ImageRecord(f"{part.name}/{r.relpath}", r.label, r.sha256, root))
    return sorted(records, key=lambda r: r.relpath)
