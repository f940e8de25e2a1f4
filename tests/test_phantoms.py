import numpy as np
from scipy import ndimage

from brainlib.config import CLASSES
from brainlib.data import load_mask, make_phantom, scan_dataset, write_phantoms


def test_phantoms_are_deterministic_and_differ_by_seed():
    a, ma = make_phantom("glioma_tumor", 3, seed=1, size=96)
    b, mb = make_phantom("glioma_tumor", 3, seed=1, size=96)
    c, _ = make_phantom("glioma_tumor", 3, seed=2, size=96)
    assert (a == b).all() and (ma == mb).all() and not (a == c).all()


def test_lesions_sit_where_each_tumour_occurs():
    size = 128
    for i in range(1, 9):
        img, mask = make_phantom("normal", i, size=size)
        assert img.shape == (size, size) and not mask.any()
        # glioma: inside the brain, away from the skull
        _, g = make_phantom("glioma_tumor", i, size=size)
        assert g.any()
        cy, cx = ndimage.center_of_mass(g)
        assert abs(cy - size / 2) < 0.35 * size and abs(cx - size / 2) < 0.3 * size
        # pituitary: small, on the midline, below the centre (the sella)
        _, p = make_phantom("pituitary_tumor", i, size=size)
        py, px = ndimage.center_of_mass(p)
        assert abs(px - size / 2) < 0.06 * size and py > 0.6 * size and p.sum() < 0.02 * size**2
        # meningioma: extra-axial, its centroid far from the centre, near the skull
        _, m = make_phantom("meningioma_tumor", i, size=size)
        my, mx = ndimage.center_of_mass(m)
        assert np.hypot((my - size / 2) / 0.43, (mx - size / 2) / 0.36) > 0.6 * size


def test_written_phantoms_are_a_kaggle_layout_with_masks(tmp_path):
    root = write_phantoms(tmp_path / "ph", per_class=3, size=64, seed=5)
    records = scan_dataset(root)
    assert len(records) == 12 and {r.label for r in records} == set(CLASSES)
    for r in records:
        mask = load_mask(r.path)
        assert mask.shape == (64, 64) and mask.any() == (r.label != "normal")
    again = write_phantoms(tmp_path / "ph2", per_class=3, size=64, seed=5)
    assert [x.sha256 for x in scan_dataset(again)] == [x.sha256 for x in records]
