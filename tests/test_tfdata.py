"""The tf.data pipeline: decoding as Pillow does, pad-resize, augmentation, resumable epochs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from brainlib.data import load_rgb  # noqa: E402
from brainlib.data.tfdata import (  # noqa: E402
    decode_image,
    eval_batches,
    image_dataset,
    pad_resize,
    preprocess,
    training_stream,
)


@pytest.mark.parametrize("kind", ["rgba", "gray16", "gray8", "rgb_jpeg"])
def test_tf_decoding_matches_pillow(tmp_path, kind):
    rng = np.random.default_rng(0)
    path = tmp_path / f"{kind}.png"
    if kind == "rgba":
        arr = rng.integers(0, 256, (16, 12, 4), dtype=np.uint8)
    elif kind == "gray16":
        arr = rng.integers(0, 65536, (16, 12), dtype=np.uint16)
    else:
        arr = rng.integers(0, 256, (16, 12), dtype=np.uint8)
    if kind == "rgb_jpeg":
        path = tmp_path / "x.jpg"
        Image.fromarray(arr).convert("RGB").save(path)
    else:
        Image.fromarray(arr).save(path)
    ours = decode_image(tf.io.read_file(str(path))).numpy()
    ref = np.asarray(load_rgb(path))
    assert ours.shape == ref.shape
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_pad_resize_keeps_aspect_ratio():
    wide = tf.fill([50, 100, 3], tf.constant(200, tf.uint8))
    out = pad_resize(wide, 224).numpy()
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    rows = np.nonzero(out[:, 112, 0] > 100)[0]
    assert 110 <= len(rows) <= 114  # 224 * 50/100 rows of content, the rest padding
    assert out[0, 112, 0] == 0 and out[-1, 112, 0] == 0  # padded, not stretched
    assert out[112, 0, 0] > 100 and out[112, -1, 0] > 100  # full width used


def test_preprocess_is_resnet_v2_scaling():
    x = tf.constant([0, 127.5, 255], tf.float32)
    np.testing.assert_allclose(preprocess(x).numpy(), [-1, 0, 1], atol=1e-6)
    from keras.applications import resnet_v2

    y = np.array([[[[0.0, 64.0, 255.0]]]], np.float32)
    np.testing.assert_allclose(
        preprocess(y).numpy(), resnet_v2.preprocess_input(y.copy()), atol=1e-6
    )


@pytest.fixture
def cached(small_dataset):
    from brainlib.config import CLASSES
    from brainlib.data import scan_dataset

    records = scan_dataset(small_dataset)
    labels = [CLASSES.index(r.label) for r in records]
    return image_dataset([str(r.path) for r in records], labels, 32), len(records)


def _epochs(ds, steps, n_epochs):
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    assert len(batches) == steps * n_epochs
    return [batches[e * steps : (e + 1) * steps] for e in range(n_epochs)]


def test_training_stream_is_deterministic_and_resumes_exactly(cached):
    ds, n = cached
    full, steps = training_stream(ds, n, 6, seed=3, start_epoch=0, end_epoch=4)
    again, _ = training_stream(ds, n, 6, seed=3, start_epoch=0, end_epoch=4)
    resumed, _ = training_stream(ds, n, 6, seed=3, start_epoch=2, end_epoch=4)
    a, b, c = _epochs(full, steps, 4), _epochs(again, steps, 4), _epochs(resumed, steps, 2)
    for e in range(4):
        for (xa, ya), (xb, yb) in zip(a[e], b[e], strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    for e in (2, 3):
        for (xa, _), (xc, _) in zip(a[e], c[e - 2], strict=True):
            np.testing.assert_array_equal(xa, xc)
    # epochs differ in order or flips
    assert not all(np.array_equal(x0, x1) for (x0, _), (x1, _) in zip(a[0], a[1], strict=True))


def test_training_flips_only_horizontally_and_eval_is_untouched(cached):
    ds, n = cached
    reference = [x for xb, _ in eval_batches(ds, n) for x in xb.numpy()]
    stream, _ = training_stream(ds, n, n, seed=0, start_epoch=0, end_epoch=1)
    flipped = same = 0
    for xb, yb in stream:
        assert yb.shape[-1] == 4
        for x in xb.numpy():
            if any(np.array_equal(x, r) for r in reference):
                same += 1
            elif any(np.array_equal(x[:, ::-1], r) for r in reference):
                flipped += 1
    assert same + flipped == n and flipped > 0 and same > 0
    # evaluation order is the file order, unshuffled
    first = [x.numpy() for x, _ in eval_batches(ds, 4)]
    second = [x.numpy() for x, _ in eval_batches(ds, 4)]
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_fast_path_epochs_follow_the_image_paths_order_and_flips(cached, tmp_path):
    """The features stream (in memory or memory-mapped) sees the images' epoch exactly."""
    from brainlib.data.tfdata import FeatureArrays

    ds, n = cached
    images = np.stack([x.numpy() for x, _ in ds])
    labels = np.array([y.numpy() for _, y in ds])
    # a stand-in "trunk": the image itself, and its mirror image
    feats = images.astype("float32")
    flipped = feats[:, :, ::-1].copy()
    np.save(tmp_path / "f.npy", feats)
    mapped = FeatureArrays(np.load(tmp_path / "f.npy", mmap_mode="r"), flipped, labels)
    for arrays in (FeatureArrays(feats, flipped, labels), mapped):
        a, _ = training_stream(ds, n, 6, seed=3, start_epoch=1, end_epoch=3)
        b, _ = training_stream(arrays, n, 6, seed=3, start_epoch=1, end_epoch=3, features=True)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            np.testing.assert_allclose(preprocess(xb).numpy(), xa.numpy(), atol=1e-6)
            np.testing.assert_array_equal(ya.numpy(), yb.numpy())
