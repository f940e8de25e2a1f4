"""Synthetic brain-like MRI phantoms: the offline, embedded default dataset.

Every phantom is an axial-looking slice with the same anatomy (scalp, skull,
cortex, white matter, ventricles, falx and a sella turcica at the skull base);
the four classes differ only in the lesion, placed where that tumour occurs:

- ``glioma_tumor``: an *intra-axial* mass inside the brain parenchyma, with an
  irregular enhancing rim, a darker necrotic core and surrounding oedema;
- ``meningioma_tumor``: an *extra-axial*, smooth, homogeneous dome with a broad
  base on the inner table of the skull;
- ``pituitary_tumor``: a round *sellar* mass at the midline skull base;
- ``normal``: no lesion.

Each image comes with its lesion mask (white = lesion; all black for normal),
used later to score whether Grad-CAM looks at the lesion. Generation is a pure
function of ``(seed, class, index, size)``: the same arguments give the same
pixels on every machine.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from brainlib.config import CLASSES

PREFIX = {"glioma_tumor": "G", "meningioma_tumor": "M", "normal": "N", "pituitary_tumor": "P"}
GENERATOR_VERSION = 1  # bump when the pixels change, so cached folders are rebuilt


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return field / (field.std() + 1e-9)


def _ellipse(yy, xx, cy, cx, ry, rx, angle=0.0) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    y, x = yy - cy, xx - cx
    u, v = x * c + y * s, -x * s + y * c
    return (u / rx) ** 2 + (v / ry) ** 2


def _lesion(
    label: str, rng: np.random.Generator, yy, xx, head: dict, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, intensity change inside the lesion, oedema weight) for one class."""
    zero = np.zeros((size, size))
    cy, cx, ry, rx, ang = head["cy"], head["cx"], head["bry"], head["brx"], head["angle"]
    if label == "normal":
        return zero.astype(bool), zero, zero
    if label == "glioma_tumor":
        # inside the parenchyma, away from the midline and the cortex
        side = rng.choice([-1.0, 1.0])
        t = rng.uniform(-0.9, 0.9)
        r = rng.uniform(0.35, 0.6)
        ly = cy + r * ry * np.sin(t) * 0.9
        lx = cx + side * r * rx * (0.55 + 0.35 * abs(np.cos(t)))
        rad = rng.uniform(0.10, 0.16) * size
        blob = np.zeros((size, size))
        for _ in range(4):  # irregular outline: a few overlapping lobes
            oy, ox = rng.normal(0, 0.35 * rad, 2)
            blob += np.exp(-(((yy - ly - oy) ** 2 + (xx - lx - ox) ** 2) / (2 * (0.6 * rad) ** 2)))
        blob += 0.25 * _smooth_noise(rng, size, size / 40) * (blob > 0.2)
        mask = (blob > 0.9) & (_ellipse(yy, xx, cy, cx, ry, rx, ang) <= 0.85)
        dist = ndimage.distance_transform_edt(mask)
        rim = np.clip(dist / (0.25 * rad), 0, 1)
        change = np.where(mask, 85 * (1 - rim) - 45 * rim, 0.0)  # bright rim, dark core
        oedema = np.clip(blob / 0.9, 0, 1) * (~mask) * (blob > 0.3)
        return mask, change, oedema
    if label == "meningioma_tumor":
        # a dome on the inner table of the skull, anywhere along the convexity
        t = rng.uniform(-np.pi, 0.15 * np.pi) if rng.random() < 0.8 else rng.uniform(0, np.pi)
        c, s = np.cos(ang), np.sin(ang)
        ex, ey = rx * np.cos(t), ry * np.sin(t)
        by, bx = cy + ex * s + ey * c, cx + ex * c - ey * s
        rad = rng.uniform(0.09, 0.14) * size
        dome = (yy - by) ** 2 + (xx - bx) ** 2 <= rad**2
        inside = _ellipse(yy, xx, cy, cx, ry, rx, ang) <= 1.0
        mask = dome & inside
        change = np.where(mask, 75 + 6 * _smooth_noise(rng, size, 2), 0.0)
        return mask, change, zero
    if label == "pituitary_tumor":
        # the sella turcica: midline, at the skull base
        sy, sx = head["sella"]
        rad = rng.uniform(0.055, 0.085) * size
        mask = _ellipse(yy, xx, sy - 0.4 * rad, sx, rad, rad * rng.uniform(0.9, 1.3)) <= 1.0
        change = np.where(mask, 90 + 5 * _smooth_noise(rng, size, 2), 0.0)
        return mask, change, zero
    raise ValueError(f"unknown class {label!r}")


def make_phantom(label: str, index: int, seed: int = 0, size: int = 128):
    """One phantom: ``(image uint8 HxW, lesion mask bool HxW)``."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; expected one of {CLASSES}")
    rng = np.random.default_rng([seed, CLASSES.index(label), index, size, GENERATOR_VERSION])
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cy, cx = size / 2 + rng.normal(0, 0.02 * size, 2)
    ry, rx = size * rng.uniform(0.40, 0.45), size * rng.uniform(0.33, 0.38)
    ang = rng.normal(0, 0.08)
    skull = 0.055 * size
    head = {"cy": cy, "cx": cx, "bry": ry - skull, "brx": rx - skull, "angle": ang}
    # sella: midline, near the front-bottom of the brain in this orientation
    c, s = np.cos(ang), np.sin(ang)
    d = 0.62 * head["bry"]
    head["sella"] = (cy + d * c, cx - d * s)

    outer = _ellipse(yy, xx, cy, cx, ry, rx, ang)
    brain = _ellipse(yy, xx, cy, cx, head["bry"], head["brx"], ang)
    white = _ellipse(yy, xx, cy, cx, 0.72 * head["bry"], 0.68 * head["brx"], ang)
    img = np.zeros((size, size))
    img[outer <= 1.0] = 60  # scalp
    img[(outer <= 0.93) & (brain > 1.0)] = 215  # skull / fat
    img[brain <= 1.0] = 105  # cortex
    img[white <= 1.0] = 140  # white matter
    img += 10 * _smooth_noise(rng, size, size / 16) * (brain <= 1.0)
    # ventricles: two crescents either side of the midline
    for side in (-1, 1):
        v = _ellipse(yy, xx, cy - 0.05 * ry, cx + side * 0.09 * rx, 0.22 * ry, 0.06 * rx, ang)
        img[v <= 1.0] = 35
    # falx
    u = (xx - cx) * c + (yy - cy) * s
    img[(np.abs(u) < 0.006 * size + 0.5) & (brain <= 1.0) & (white > 0.5)] = 60
    # sella turcica: a dark cup at the skull base (present in every class)
    sy, sx = head["sella"]
    cup = _ellipse(yy, xx, sy, sx, 0.06 * size, 0.07 * size)
    img[(cup <= 1.0) & (cup > 0.55)] = 45

    mask, change, oedema = _lesion(label, rng, yy, xx, head, size)
    img -= 30 * oedema
    img += change
    # acquisition: contrast, blur, Rician-like noise
    img = ndimage.gaussian_filter(img * rng.uniform(0.85, 1.1), rng.uniform(0.5, 1.0))
    noise = rng.normal(0, 6, (2, size, size))
    img = np.sqrt((img + noise[0]) ** 2 + noise[1] ** 2)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def phantom_folder_name(per_class: int, size: int, seed: int) -> str:
    return f"phantoms-v{GENERATOR_VERSION}-n{per_class}-s{size}-seed{seed}"


def write_phantoms(out: str | Path, per_class: int, size: int = 128, seed: int = 0) -> Path:
    """Write a phantom dataset to ``out`` and return the image root.

    Layout: ``out/images/<class>/<X>_<i>.jpg`` (the Kaggle layout) and
    ``out/masks/<class>/<X>_<i>.png``, plus ``out/phantoms.json`` describing
    it. Written into a temporary folder and renamed, so ``out`` is either
    complete or absent. An existing complete ``out`` is reused as is.
    """
    out = Path(out)
    if (out / "phantoms.json").is_file():
        return out / "images"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for label in CLASSES:
            (tmp / "images" / label).mkdir(parents=True)
            (tmp / "masks" / label).mkdir(parents=True)
            for i in range(1, per_class + 1):
                img, mask = make_phantom(label, i, seed=seed, size=size)
                name = f"{PREFIX[label]}_{i}"
                Image.fromarray(img).save(tmp / "images" / label / f"{name}.jpg", quality=92)
                Image.fromarray(mask.astype(np.uint8) * 255).save(
                    tmp / "masks" / label / f"{name}.png"
                )
        meta = {"per_class": per_class, "size": size, "seed": seed, "version": GENERATOR_VERSION}
        (tmp / "phantoms.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first
            if not (out / "phantoms.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "images"


def mask_path(image_path: str | Path) -> Path:
    """The lesion mask of a phantom image written by :func:`write_phantoms`."""
    p = Path(image_path)
    return p.parents[2] / "masks" / p.parent.name / f"{p.stem}.png"


def load_mask(image_path: str | Path) -> np.ndarray:
    """The lesion mask (bool HxW) of a phantom image."""
    path = mask_path(image_path)
    if not path.is_file():
        raise FileNotFoundError(f"no lesion mask for {image_path} (looked for {path})")
    return np.asarray(Image.open(path)) > 127
