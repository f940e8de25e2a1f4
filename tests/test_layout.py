"""Bad input: each case is handled or rejected with an error naming the file."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest
from PIL import Image

from brainlib.config import CLASSES
from brainlib.data import DataError, class_counts, load_rgb, scan_dataset
from tests.conftest import write_image


def _tree_hashes(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_valid_dataset_is_scanned_sorted_and_hashed(small_dataset):
    records = scan_dataset(small_dataset)
    assert len(records) == 20
    assert class_counts(records) == dict.fromkeys(CLASSES, 5)
    assert [r.relpath for r in records] == sorted(r.relpath for r in records)
    first = records[0]
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()


def test_corrupt_and_truncated_jpegs_are_named_and_nothing_is_lost(small_dataset):
    corrupt = small_dataset / "glioma_tumor" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    good = small_dataset / "normal" / "N_0.jpg"
    truncated = small_dataset / "normal" / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    before = _tree_hashes(small_dataset)
    with pytest.raises(DataError) as err:
        scan_dataset(small_dataset)
    message = str(err.value)
    assert "2 file(s)" in message
    assert str(corrupt) in message and str(truncated) in message
    assert "truncated" in message or "corrupt" in message
    assert {p for p, _ in err.value.problems} == {str(corrupt), str(truncated)}
    assert _tree_hashes(small_dataset) == before  # nothing deleted or changed


def test_skip_bad_leaves_bad_files_out_with_a_warning(small_dataset):
    (small_dataset / "normal" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.warns(UserWarning, match="broken.jpg"):
        records = scan_dataset(small_dataset, on_bad="skip")
    assert len(records) == 20
    assert (small_dataset / "normal" / "broken.jpg").exists()


def test_non_image_file_is_rejected_by_name(small_dataset):
    notes = small_dataset / "meningioma_tumor" / "notes.txt"
    notes.write_text("scanner settings")
    with pytest.raises(DataError, match=r"notes\.txt: not an image"):
        scan_dataset(small_dataset)


def test_hidden_and_system_files_are_ignored(small_dataset):
    (small_dataset / "normal" / ".DS_Store").write_bytes(b"\0\1\2")
    (small_dataset / "normal" / "Thumbs.db").write_bytes(b"\0\1\2")
    (small_dataset / ".hidden").write_text("x")
    assert len(scan_dataset(small_dataset)) == 20


def test_png_with_alpha_is_composited_on_black(small_dataset):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:4, :, 3] = 255  # top half opaque red, bottom half transparent
    path = small_dataset / "pituitary_tumor" / "alpha.png"
    Image.fromarray(rgba).save(path)
    records = scan_dataset(small_dataset)
    assert any(r.relpath == "pituitary_tumor/alpha.png" for r in records)
    rgb = np.asarray(load_rgb(path))
    assert rgb.shape == (8, 8, 3)
    assert tuple(rgb[0, 0]) == (200, 0, 0) and tuple(rgb[7, 0]) == (0, 0, 0)


def test_16_bit_png_is_scaled_not_clipped(small_dataset):
    arr = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    path = small_dataset / "normal" / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I;16")
    scan_dataset(small_dataset)
    rgb = np.asarray(load_rgb(path))
    assert rgb.dtype == np.uint8 and rgb.max() == 255 and rgb.min() == 0
    assert abs(int(rgb[32, 0, 0]) - 128) <= 2  # mid-grey stays mid-grey


def test_grayscale_image_becomes_three_equal_channels(small_dataset):
    path = write_image(small_dataset / "glioma_tumor" / "gray.jpg", seed=99, mode="L")
    assert Image.open(path).mode == "L"
    scan_dataset(small_dataset)
    rgb = np.asarray(load_rgb(path))
    assert rgb.shape[-1] == 3 and (rgb[..., 0] == rgb[..., 2]).all()


def test_names_with_spaces_and_non_ascii_are_accepted(small_dataset):
    odd = ["scan 01 (copy).jpg", "méningiome_é.jpg", "脑瘤.jpg"]
    for i, name in enumerate(odd):
        write_image(small_dataset / "meningioma_tumor" / name, seed=200 + i)
    records = scan_dataset(small_dataset)
    names = {r.relpath.split("/", 1)[1] for r in records if r.label == "meningioma_tumor"}
    assert set(odd) <= names


def test_missing_class_folder_is_named(small_dataset):
    shutil.rmtree(small_dataset / "normal")
    with pytest.raises(DataError, match=r"normal: missing class folder"):
        scan_dataset(small_dataset)


def test_empty_class_folder_is_named(small_dataset):
    for p in (small_dataset / "pituitary_tumor").iterdir():
        p.unlink()
    with pytest.raises(DataError, match=r"pituitary_tumor: empty class folder"):
        scan_dataset(small_dataset)


def test_class_folder_with_only_bad_files_is_rejected_even_when_skipping(small_dataset):
    for p in (small_dataset / "pituitary_tumor").iterdir():
        p.write_bytes(b"garbage")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable image"):
        scan_dataset(small_dataset, on_bad="skip")


def test_unknown_class_folder_is_named(small_dataset):
    write_image(small_dataset / "astrocytoma" / "A_1.jpg", seed=1)
    with pytest.raises(DataError, match=r"astrocytoma: unknown class folder"):
        scan_dataset(small_dataset)


def test_missing_data_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nowhere")


def test_exif_orientation_is_refused_with_what_to_do(small_dataset):
    from PIL import Image

    path = small_dataset / "glioma_tumor" / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.new("RGB", (40, 30), (90, 90, 90)).save(path, exif=exif)
    with pytest.raises(DataError) as err:
        scan_dataset(small_dataset)
    assert "rotated.jpg: EXIF orientation 6" in str(err.value)
    assert "exif_transpose" in str(err.value)


def test_a_huge_image_is_refused_without_pillows_raw_warning(small_dataset, monkeypatch):
    import warnings

    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x48 = 1,920 pixels: "too large"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning may escape
        with pytest.raises(DataError) as err:
            scan_dataset(small_dataset)
    assert "image too large to be an MRI slice" in str(err.value)


def test_subfolders_and_linked_folders_are_reported_with_the_file_problems(small_dataset):
    nested = small_dataset / "normal" / "more"
    nested.mkdir()
    write_image(nested / "N_9.jpg", seed=99)
    (small_dataset / "glioma_tumor" / "elsewhere").symlink_to(nested, target_is_directory=True)
    (small_dataset / "pituitary_tumor" / "bad.jpg").write_bytes(b"nope")
    with pytest.raises(DataError) as err:
        scan_dataset(small_dataset, on_bad="skip")  # folder problems are never skipped
    text = str(err.value)
    assert "normal/more: a folder inside a class folder" in text
    assert "glioma_tumor/elsewhere: a folder inside a class folder (a link to a folder)" in text
    assert "bad.jpg: not an image" in text  # listed together with the folder problems


def test_the_kaggle_download_asks_for_the_pinned_version(tmp_path, monkeypatch):
    import kagglehub

    from brainlib.config import CLASSES, KAGGLE_DATASET, KAGGLE_VERSION
    from brainlib.data import source

    asked = []
    for name in CLASSES:
        (tmp_path / "Data" / name).mkdir(parents=True)

    def fake(handle):
        asked.append(handle)
        return str(tmp_path)

    monkeypatch.setattr(kagglehub, "dataset_download", fake)
    assert source.download_kaggle() == tmp_path / "Data"
    assert asked == [f"{KAGGLE_DATASET}/versions/{KAGGLE_VERSION}"]

    def offline(handle):
        raise ConnectionError("no network")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    with pytest.raises(source.DataError, match="KAGGLE_API_TOKEN") as err:
        source.download_kaggle()
    assert f"{KAGGLE_DATASET}/versions/{KAGGLE_VERSION}" in str(err.value)
