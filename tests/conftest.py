"""Shared fixtures: small datasets written by the tests, and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainlib.config import CLASSES, DATA_DIR_ENV

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Generated data goes to a per-session cache, never the user's."""
    monkeypatch.setenv("BRAINLIB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


def write_image(path: Path, seed: int, size=(48, 40), mode="RGB") -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    base = (np.sin(xx / (3 + seed % 5)) + np.cos(yy / (2 + seed % 7))) * 60 + 128
    base = base + rng.normal(0, 10, base.shape)
    gray = np.clip(base, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(gray).convert(mode) if mode != "L" else Image.fromarray(gray)
    img.save(path)
    return path


@pytest.fixture
def small_dataset(tmp_path) -> Path:
    """A valid 4-class dataset of 5 distinct JPEGs per class."""
    root = tmp_path / "data"
    for k, cls in enumerate(CLASSES):
        for i in range(5):
            write_image(root / cls / f"{cls[0].upper()}_{i}.jpg", seed=10 * k + i)
    return root


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    value = os.environ.get(DATA_DIR_ENV)
    if not value or not Path(value).is_dir():
        pytest.skip(f"{DATA_DIR_ENV} is not set to the real dataset (make test sets it)")
    return Path(value)


@pytest.fixture(scope="session")
def real_records(real_data_dir):
    from brainlib.data import scan_dataset

    return scan_dataset(real_data_dir)


@pytest.fixture(scope="session")
def real_index(real_records):
    from brainlib.data import index_duplicates

    return index_duplicates(real_records)


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts are not a package)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
