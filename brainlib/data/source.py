"""Where the data comes from: a local folder, a Kaggle download, or phantoms.

The order, first match wins:

1. an explicit ``data_dir`` (``--data-dir`` on the command line);
2. the profile's ``data_dir`` field;
3. for the phantom dataset: generate it (deterministically) into the cache;
4. for the real dataset: ``$BRAINLIB_DATA_DIR``;
5. for the real dataset: download it from Kaggle with ``kagglehub`` (cached by
   kagglehub under ``~/.cache/kagglehub``). This needs the network and, for
   some accounts, Kaggle credentials (``KAGGLE_API_TOKEN``, kagglehub 1.x's way, or the
   legacy ``~/.kaggle/kaggle.json`` / ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``). The
   dataset's version is pinned (:data:`brainlib.config.KAGGLE_VERSION`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from brainlib.config import (
    CLASSES,
    DATA_DIR_ENV,
    FOLDER_DATASET,
    KAGGLE_DATASET,
    KAGGLE_VERSION,
    PHANTOM_DATASET,
    REAL_DATASET,
    Profile,
    cache_dir,
    env_data_dir,
)
from brainlib.data.layout import (
    DataError,
    ImageRecord,
    parse_class_map,
    scan_dataset,
    scan_partitioned,
)
from brainlib.data.manifest import ManifestCheck, manifest_hash, packaged_manifest, read_manifest
from brainlib.data.manifest import verify as verify_manifest
from brainlib.data.phantoms import phantom_folder_name, write_phantoms


def find_class_root(path: Path) -> Path:
    """The folder under ``path`` (itself included) that holds the class folders."""
    path = Path(path)
    for candidate in [path, *sorted(p for p in path.rglob("*") if p.is_dir())]:
        if all((candidate / c).is_dir() for c in CLASSES):
            return candidate
    raise DataError(f"no folder under {path} holds the class folders {', '.join(CLASSES)}")


def download_kaggle(dataset: str = KAGGLE_DATASET, version: int | None = KAGGLE_VERSION) -> Path:
    """Download the paper's dataset (its pinned version) with kagglehub; its class root."""
    handle = f"{dataset}/versions/{version}" if version else dataset
    try:
        import kagglehub

        path = Path(kagglehub.dataset_download(handle))
    except Exception as err:  # network, credentials, or kagglehub's own errors
        raise DataError(
            f"could not download {handle} from Kaggle ({type(err).__name__}: {err}; "
            "credentials: KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY). "
            f"Download it by hand from https://www.kaggle.com/datasets/{dataset} and pass "
            f"--data-dir DIR, or set {DATA_DIR_ENV}=DIR."
        ) from err
    return find_class_root(path)


def phantom_dir(profile: Profile) -> Path:
    name = phantom_folder_name(profile.phantoms_per_class, profile.phantom_size, profile.seed)
    return cache_dir() / name


def resolve_data_dir(profile: Profile, data_dir: str | Path | None = None) -> Path:
    """The image root to use for ``profile`` (see the module docstring)."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if profile.data_dir:
        return Path(profile.data_dir).expanduser()
    if profile.dataset == FOLDER_DATASET:
        raise DataError(
            f"profile {profile.name!r} reads a dataset folder (dataset = 'folder'): "
            "name it with --data-dir DIR or the profile's data_dir"
        )
    if profile.dataset == PHANTOM_DATASET:
        return write_phantoms(
            phantom_dir(profile), profile.phantoms_per_class, profile.phantom_size, profile.seed
        )
    env = env_data_dir()
    if env is not None:
        return env
    return download_kaggle()


@dataclass
class Dataset:
    """A scanned dataset: its root, its images and how they compare with the manifest."""

    root: Path
    records: list[ImageRecord]
    check: ManifestCheck | None  # None when the project keeps no manifest for it
    manifest_sha256: str


def load_dataset(
    profile: Profile,
    data_dir: str | Path | None = None,
    on_bad: str = "raise",
    allow_mismatch: bool = False,
) -> Dataset:
    """Find, scan and verify the profile's data.

    For the real dataset the scan is checked against the packaged manifest;
    a profile with ``strict_data`` refuses any difference unless
    ``allow_mismatch`` is set, other profiles warn.
    """
    root = resolve_data_dir(profile, data_dir)
    if profile.dataset == FOLDER_DATASET:
        records = scan_partitioned(root, parse_class_map(profile.class_map), on_bad=on_bad)
    else:
        records = scan_dataset(root, on_bad=on_bad)
    check = None
    manifest = packaged_manifest(REAL_DATASET) if profile.dataset == REAL_DATASET else None
    if manifest is not None:
        check = verify_manifest(records, read_manifest(manifest))
        if not check.ok:
            message = f"{root}: {check.summary()}"
            if profile.strict_data and not allow_mismatch:
                raise DataError(
                    f"{message}. Profile {profile.name!r} needs the paper's exact data; "
                    "pass --allow-data-mismatch (allow_mismatch=True) to use it anyway."
                )
            warnings.warn(message, stacklevel=2)
    return Dataset(root, records, check, manifest_hash(records))
