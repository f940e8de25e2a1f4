"""The fast path: a frozen trunk's outputs, computed once per image (feature extraction).

With ``fast_path = true`` the trunk below ``conv5_block1_preact_bn`` is frozen and
deterministic (BatchNorm in inference mode, no dropout), and the only augmentation
is a horizontal flip, so the trunk's output for every training image and for its
mirror image is the same in every epoch. They are computed once; each epoch then
runs only the trainable top (:func:`brainlib.models.trunk_and_top`). This is exact,
not an approximation: the top sees the numbers the whole network would have given it.

At 224 the trunk's output is 7x7x1024 float32 (196 KiB) per image: 0.95 GiB for the
2,478 training images and their flips, 0.12 GiB for validation. The cache is written
once as ``.npy`` files under ``<runs>/<profile>/trunk-cache/<key>/``, where the key
hashes the trunk's weights and the images, so runs with the same frozen trunk (both
models, and every seed, on ImageNet weights) share it; it is read into memory up to
``cache_memory_gib`` and memory-mapped from disk beyond.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

NAMES = ("train", "train-flip", "train-labels", "val", "val-labels")


def trunk_features(trunk, cached, batch_size: int, flip: bool = False, out=None,
                   step=None) -> np.ndarray:  # fmt: skip
    """The frozen trunk's outputs for every cached image (optionally mirrored).

    ``out``: an array (a memory map) to fill batch by batch instead of a new one.
    ``step``: :func:`trunk_step` of ``trunk``, traced once for several calls.
    """
    import tensorflow as tf

    from brainlib.data.tfdata import preprocess

    ds = cached.map(lambda x, y: x[:, ::-1] if flip else x).batch(batch_size)
    ds = ds.map(preprocess).prefetch(tf.data.AUTOTUNE)
    step = step or trunk_step(trunk)
    if out is None:
        return np.concatenate([step(x).numpy() for x in ds], axis=0)
    k = 0
    for x in ds:
        rows = step(x).numpy()
        out[k : k + len(rows)] = rows
        k += len(rows)
    return out


def trunk_step(trunk):
    """The trunk in inference mode as a compiled graph.

    In a graph each layer's output is freed once its consumers ran; an eager call of the
    functional model held them all until it returned (a batch of 64 at 128 px: peak 3.3 GiB
    eager, 1.1 GiB as a graph, the outputs bitwise equal).
    """
    import tensorflow as tf

    return tf.function(lambda x: trunk(x, training=False))


def trunk_cache_key(trunk, split_text: str, image_size: int) -> str:
    """What the trunk's outputs depend on: its weights, the images (paths and sha256 of
    the split) and their size. Runs that share it (both models on ImageNet weights, every
    seed of a frozen pre-trained trunk) share one cache."""
    digest = hashlib.sha256(f"{image_size}\n{split_text}".encode())
    for w in trunk.weights:
        digest.update(w.path.encode())
        digest.update(np.ascontiguousarray(w.numpy()).tobytes())
    return digest.hexdigest()[:20]


def labels_of(cached) -> np.ndarray:
    return np.concatenate([y.numpy() for _, y in cached.batch(4096)])


def _compute(trunk, train_cache, val_cache, key: str, root: Path) -> None:
    folder = root / key
    tmp = root / f".tmp-{key}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    probe = trunk(np.zeros((1, *trunk.input.shape[1:]), "float32"), training=False)
    shape, dtype = tuple(probe.shape[1:]), probe.numpy().dtype
    step = trunk_step(trunk)  # traced once for the three passes below
    for split, data in (("train", train_cache), ("val", val_cache)):
        labels = labels_of(data)
        np.save(tmp / f"{split}-labels.npy", labels)
        for flip in (False, True) if split == "train" else (False,):
            name = f"{split}-flip" if flip else split
            out = np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype,
                                            shape=(len(labels), *shape))  # fmt: skip
            trunk_features(trunk, data, 32, flip=flip, out=out, step=step)  # 32: memory
            out.flush()
            del out
    (tmp / "done.json").write_text(json.dumps({"key": key, "shape": shape, "dtype": str(dtype)}))
    try:
        tmp.rename(folder)
    except OSError:  # another process finished the same cache first
        shutil.rmtree(tmp, ignore_errors=True)


def trunk_cache(trunk, train_cache, val_cache, key: str, root: Path, budget_gib: float, log):
    """The trunk's outputs for the training images (and their mirror images) and the
    validation images, computed once into ``root/<key>/`` as ``.npy`` files.

    Loaded into memory when they fit ``budget_gib``, else memory-mapped from disk
    (the page cache keeps what fits). Returns ``(FeatureArrays, val features, val labels)``.
    """
    from brainlib.data.tfdata import FeatureArrays

    folder = root / key
    t0 = time.perf_counter()
    if not (folder / "done.json").is_file():
        _compute(trunk, train_cache, val_cache, key, root)
        how = f"computed in {time.perf_counter() - t0:.1f}s"
    else:
        how = "reused"
    size = sum((folder / f"{n}.npy").stat().st_size for n in NAMES)
    in_memory = size <= budget_gib * 2**30
    mode = None if in_memory else "r"
    arrays = {n: np.load(folder / f"{n}.npy", mmap_mode=mode) for n in NAMES}
    train = FeatureArrays(arrays["train"], arrays["train-flip"], arrays["train-labels"])
    where = "in memory" if in_memory else f"memory-mapped from disk (over {budget_gib:g} GiB)"
    log(f"fast path: trunk features {train.features.shape[1:]} of {len(train)} training images "
        f"(+ mirror images) and {len(arrays['val-labels'])} validation images, "
        f"{size / 2**30:.2f} GiB at {folder}, {how}, {where}")  # fmt: skip
    return train, arrays["val"], arrays["val-labels"]
