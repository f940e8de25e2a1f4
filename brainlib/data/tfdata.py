"""``tf.data`` input pipelines: decode, pad-resize, cache, augment, batch, prefetch.

Preprocessing follows the paper: every image becomes ``size x size`` with its
aspect ratio preserved (scaled to fit, then zero-padded; never stretched),
3 channels, then ResNet50V2's own scaling to [-1, 1]. The training set alone
is augmented, by horizontal flips.

Determinism and resumption: the training stream is a concatenation of
per-epoch datasets, and epoch ``e`` is shuffled and flipped with seeds derived
from ``(seed, e)`` only. Epoch 7 is therefore the same whether training
started at epoch 0 or resumed at epoch 7.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from brainlib.config import CLASSES

AUTOTUNE = tf.data.AUTOTUNE


def decode_image(raw: tf.Tensor) -> tf.Tensor:
    """Encoded JPEG/PNG bytes -> uint8 RGB, as :func:`brainlib.data.layout.load_rgb`.

    Grayscale becomes RGB, 16-bit PNGs are scaled to 8 bits, and alpha is
    composited on black.
    """

    def jpeg():
        # ISLOW, as Pillow: the same pixels in the audit, the figures and the model
        return tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE")

    def png():
        x = tf.cast(tf.io.decode_png(raw, channels=4, dtype=tf.uint16), tf.float32) / 65535.0
        rgb = x[..., :3] * x[..., 3:]
        return tf.cast(tf.round(rgb * 255.0), tf.uint8)

    return tf.cond(tf.io.is_jpeg(raw), jpeg, png)


def pad_resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Fit ``image`` into ``size x size`` keeping its aspect ratio; pad with black."""
    out = tf.image.resize_with_pad(image, size, size, method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(out), 0, 255), tf.uint8)


def load_image(path: tf.Tensor, size: int) -> tf.Tensor:
    return pad_resize(decode_image(tf.io.read_file(path)), size)


def preprocess(images: tf.Tensor) -> tf.Tensor:
    """ResNet50V2's input scaling: uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def image_dataset(paths: Sequence[str], labels: Sequence[int], size: int) -> tf.data.Dataset:
    """``(uint8 image, int label)`` pairs, decoded and resized once, cached in memory."""
    if len(paths) != len(labels):
        raise ValueError("paths and labels differ in length")
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([str(p) for p in paths]), tf.constant(list(labels), tf.int32))
    )
    ds = ds.map(lambda p, y: (load_image(p, size), y), num_parallel_calls=AUTOTUNE)
    return ds.cache()


def _one_hot(y: tf.Tensor) -> tf.Tensor:
    return tf.one_hot(y, len(CLASSES))


def _model_inputs(x: tf.Tensor, y: tf.Tensor):
    return preprocess(x), _one_hot(y)


def flip_decision(seed: int, epoch: int, index: tf.Tensor) -> tf.Tensor:
    """Whether training image ``index`` of ``epoch`` is mirrored: a fair coin from the seeds."""
    key = tf.stack([tf.constant(seed * 1_000_003 + epoch, tf.int64), tf.cast(index, tf.int64)])
    return tf.random.stateless_uniform([], seed=key) < 0.5


@dataclass
class FeatureArrays:
    """The fast path's training inputs: the frozen trunk's output for every image and for
    its mirror image, and the labels; in memory or memory-mapped from ``.npy`` files."""

    features: np.ndarray  # (n, h, w, c)
    flipped: np.ndarray  # the same for the mirrored images
    labels: np.ndarray  # (n,) class indices

    def __len__(self) -> int:
        return len(self.labels)


def _feature_batch(arrays: FeatureArrays, index: tf.Tensor, flip: tf.Tensor):
    """Rows ``index`` of the features (of the flipped features where ``flip``), one-hot labels."""

    def gather(idx, flp):
        rows = np.where(flp[:, None, None, None], arrays.flipped[idx], arrays.features[idx])
        return rows, arrays.labels[idx].astype(np.int32)

    dtype = tf.as_dtype(arrays.features.dtype)
    x, y = tf.numpy_function(gather, [index, flip], [dtype, tf.int32], stateful=False)
    x.set_shape([None, *arrays.features.shape[1:]])
    y.set_shape([None])
    return x, _one_hot(y)


def epoch_dataset(
    cached: tf.data.Dataset | FeatureArrays,
    n: int,
    batch_size: int,
    seed: int,
    epoch: int,
    augment: bool = True,
    features: bool = False,
) -> tf.data.Dataset:
    """One training epoch, shuffled and flipped with seeds from ``(seed, epoch)`` only.

    ``cached`` yields ``(uint8 image, label)``; or, with ``features=True``, it
    is a :class:`FeatureArrays` (the fast path), where a flip selects the
    mirrored image's features. The shuffle order and the flip of each position
    are the same in both cases, so the two paths see the same epoch. On the
    fast path only the image indices are shuffled, and each batch's rows are
    read from the arrays, so a memory-mapped cache stays on disk.
    """
    shuffle_seed = seed * 100_003 + epoch
    if features:
        ds = tf.data.Dataset.range(n).shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=False)

        def position_flip(pos, i):
            return i, flip_decision(seed, epoch, pos) if augment else tf.constant(False)

        ds = ds.enumerate().map(position_flip, num_parallel_calls=AUTOTUNE).batch(batch_size)
        return ds.map(lambda i, f: _feature_batch(cached, i, f), num_parallel_calls=AUTOTUNE)
    ds = cached.shuffle(n, seed=shuffle_seed, reshuffle_each_iteration=False)

    def select(i, element):
        flip = flip_decision(seed, epoch, i) if augment else tf.constant(False)
        x, y = element
        return tf.cond(flip, lambda: tf.reverse(x, axis=[1]), lambda: x), y

    ds = ds.enumerate().map(select, num_parallel_calls=AUTOTUNE).batch(batch_size)
    return ds.map(_model_inputs, num_parallel_calls=AUTOTUNE)


def training_stream(
    cached: tf.data.Dataset | FeatureArrays,
    n: int,
    batch_size: int,
    seed: int,
    start_epoch: int,
    end_epoch: int,
    augment: bool = True,
    features: bool = False,
) -> tuple[tf.data.Dataset, int]:
    """Epochs ``start_epoch .. end_epoch-1`` back to back, and the steps per epoch."""
    if start_epoch >= end_epoch:
        raise ValueError("start_epoch must be below end_epoch")
    epochs = [
        epoch_dataset(cached, n, batch_size, seed, e, augment, features)
        for e in range(start_epoch, end_epoch)
    ]
    ds = epochs[0]
    for more in epochs[1:]:
        ds = ds.concatenate(more)
    return ds.prefetch(AUTOTUNE), math.ceil(n / batch_size)


def eval_batches(cached: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Unshuffled, unaugmented batches for validation, testing and prediction."""
    return (
        cached.batch(batch_size).map(_model_inputs, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
    )
