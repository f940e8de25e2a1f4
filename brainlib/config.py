"""Profiles, paths and the one setting that points at local data.

A *profile* is a named set of run settings read from ``profiles.toml`` (next to
this module). The defaults of :class:`Profile` are the paper's protocol; each
profile overrides only what differs. The real data is found through one
environment variable, :data:`DATA_DIR_ENV`, or an explicit ``data_dir``; no path
to it is written into library code.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Environment variable naming a local copy of the Kaggle dataset.
DATA_DIR_ENV = "BRAINLIB_DATA_DIR"
#: Environment variable naming the cache folder (phantoms, downloads).
CACHE_DIR_ENV = "BRAINLIB_CACHE_DIR"

PROFILES_FILE = Path(__file__).with_name("profiles.toml")
DEFAULT_PROFILE = "demo"

#: The paper's four classes, in the order of its tables and of the model output.
CLASSES: tuple[str, ...] = ("glioma_tumor", "meningioma_tumor", "normal", "pituitary_tumor")
CLASS_LABELS: dict[str, str] = {
    "glioma_tumor": "Glioma tumor",
    "meningioma_tumor": "Meningioma tumor",
    "normal": "Normal (no tumor)",
    "pituitary_tumor": "Pituitary tumor",
}

#: The two models the paper compares: with the squeeze-and-excitation block, and without.
VARIANTS: tuple[str, ...] = ("se", "base")

#: The Kaggle dataset the paper used, and the version downloaded (pinned: a new version on
#: Kaggle must not silently replace the data; the manifest check would refuse it anyway).
#: Version 1 is the one kagglehub's cache paths show in public code that uses this set.
KAGGLE_DATASET = "thomasdubail/brain-tumors-256x256"
KAGGLE_VERSION = 1
#: The external test set's Kaggle handle (its Testing/ part: 394 images, as version 3 holds).
KAGGLE_EXTERNAL = "sartajbhuvaji/brain-tumor-classification-mri/versions/3"
REAL_DATASET = "brain-tumors-256x256"
PHANTOM_DATASET = "phantoms"
#: Another dataset in the Kaggle layout, named by ``data_dir`` (no manifest is kept for it).
FOLDER_DATASET = "folder"
SPLIT_KINDS = ("paper", "grouped", "dedup", "given")


class ConfigError(ValueError):
    """A profile or setting is unknown or malformed."""


@dataclass(frozen=True)
class Profile:
    """All settings of one run. Defaults are the paper's protocol."""

    name: str = "paper"
    description: str = ""
    # data
    dataset: str = REAL_DATASET  # "brain-tumors-256x256", "phantoms" or "folder" (data_dir)
    class_map: str = ""  # "folder": its class folders' names, e.g. "no_tumor=normal"
    data_dir: str | None = None  # None: $BRAINLIB_DATA_DIR, else download / generate
    strict_data: bool = False  # refuse data that does not match the manifest
    phantoms_per_class: int = 40
    phantom_size: int = 128
    # "paper" (stratified), "grouped" (duplicate-free), "dedup" (paper minus the training
    # duplicates of test images), "given" (Testing/)
    split: str = "paper"
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    near_duplicate_distance: int = 4  # pHash Hamming distance; see brainlib.data.audit
    subsample: int = 0  # 0: every image; N: at most N per split and class (quick checks only)
    # model
    image_size: int = 224
    weights: str = "imagenet"  # "imagenet", "none", or a path to a weights file
    se_ratio: int = 16
    dropout: float = 0.5
    trainable_from: str = "paper"  # "paper": from conv5_block1_preact_bn; "all": every layer
    bn_momentum: float | None = None  # None: Keras' 0.99; lower for short from-scratch runs
    # training (the paper's protocol)
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_epochs: int = 100
    early_stopping_patience: int = 5
    reduce_lr_patience: int = 3
    reduce_lr_factor: float = 0.2
    min_learning_rate: float = 1e-7
    fast_path: bool = False  # cache the frozen trunk's outputs
    cache_memory_gib: float = 1.0  # a larger trunk cache is memory-mapped from disk
    # True: bfloat16 on CPUs, float16 on GPUs; "auto": also, but float32 on a CPU
    # without native bfloat16 (emulated bfloat16 is slower than float32 there)
    mixed_precision: bool | str = False
    # progressive resizing: a profile whose finished run of the same model, split and
    # seed gives this run's starting weights (the whole network); "" starts from `weights`
    init_from: str = ""
    jit_compile: bool = False  # XLA
    seed: int = 42  # training seed, and the seed of the split
    # the replication grid: both models for every (split, seed) pair
    seeds: tuple[int, ...] = ()  # training seeds; () = just `seed` (the split stays `seed`'s)
    splits: tuple[str, ...] = ()  # splits compared; () = just `split`
    # evaluation
    bootstrap_resamples: int = 1000
    extra: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> Profile:
        """A copy with ``changes`` applied and validated."""
        return _validated(dataclasses.replace(self, **changes))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {f.name: f for f in dataclasses.fields(Profile)}


def _coerce(name: str, value: Any) -> Any:
    """Coerce ``value`` (from TOML or a ``--set`` string) to the field's type."""
    if name == "name":
        raise ConfigError("profile field 'name' cannot be set: choose the profile with --profile")
    if name == "mixed_precision" and isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        if text not in {"true", "false", "1", "0", "yes", "no"}:
            raise ConfigError(f"profile field {name!r}: true, false or auto, not {value!r}")
        return text in {"true", "1", "yes"}
    if name not in _FIELDS or name == "extra":
        known = ", ".join(sorted(set(_FIELDS) - {"name", "extra"}))
        raise ConfigError(f"unknown profile field {name!r}; known: {known}")
    default = _FIELDS[name].default
    if isinstance(value, str) and default is None and str(_FIELDS[name].type).startswith("float"):
        try:
            return None if value.strip().lower() in ("", "none") else float(value)
        except ValueError as err:
            raise ConfigError(f"profile field {name!r}: cannot read {value!r}") from err
    if isinstance(value, str) and not isinstance(default, str) and default is not None:
        text = value.strip()
        try:
            if isinstance(default, bool):
                if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(text)
                return text.lower() in {"true", "1", "yes"}
            if isinstance(default, int):
                return int(text)
            if isinstance(default, float):
                return float(text)
            if isinstance(default, tuple):
                return tuple(_ELEMENT.get(name, float)(v.strip()) for v in text.split(",") if v)
        except ValueError as err:
            raise ConfigError(f"profile field {name!r}: cannot read {value!r}") from err
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    return value


#: Element types of the tuple fields that do not hold floats.
_ELEMENT = {"seeds": int, "splits": str}

#: Fields that do not change how one run trains: a finished run stays valid when they change.
NOT_TRAINING_FIELDS = frozenset(
    {"description", "bootstrap_resamples", "seeds", "splits", "cache_memory_gib"}
)


def _check_types(p: Profile) -> None:
    """Every field holds a value of its type (a TOML file can hold anything)."""
    for name, f in _FIELDS.items():
        value, default = getattr(p, name), f.default
        if name == "extra" or (value is None and default is None):
            continue
        if name == "mixed_precision":
            ok = isinstance(value, bool) or value == "auto"
        elif isinstance(default, bool) or (default is None and name == "bn_momentum"):
            ok = isinstance(value, bool) if isinstance(default, bool) else _is_number(value)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = _is_number(value)
        elif isinstance(default, str) or (default is None and name == "data_dir"):
            ok = isinstance(value, str)
        elif isinstance(default, tuple):
            ok = isinstance(value, tuple)
        else:
            ok = True
        if not ok:
            raise ConfigError(
                f"profile {p.name!r}: field {name!r} must be of type {f.type}, got {value!r}"
            )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validated(p: Profile) -> Profile:
    _check_types(p)
    if not (math.isfinite(p.learning_rate) and p.learning_rate > 0):
        raise ConfigError(
            f"profile {p.name!r}: learning_rate must be a finite number above 0, "
            f"got {p.learning_rate!r}"
        )
    if not (math.isfinite(p.min_learning_rate) and p.min_learning_rate >= 0):
        raise ConfigError(f"profile {p.name!r}: min_learning_rate must be finite and >= 0")
    if not 0 <= p.dropout < 1:
        raise ConfigError(f"profile {p.name!r}: dropout must be in [0, 1), got {p.dropout!r}")
    if not 0 < p.reduce_lr_factor < 1:
        raise ConfigError(f"profile {p.name!r}: reduce_lr_factor must be in (0, 1)")
    if p.bn_momentum is not None and not 0 <= p.bn_momentum < 1:
        raise ConfigError(f"profile {p.name!r}: bn_momentum must be in [0, 1) or none")
    for name, value in (("seed", p.seed), *(("seeds", s) for s in p.seeds)):
        if value < 0:
            raise ConfigError(f"profile {p.name!r}: {name} must be 0 or more, got {value}")
    if not 0 <= p.near_duplicate_distance <= 64:
        raise ConfigError(f"profile {p.name!r}: near_duplicate_distance must be in 0..64")
    for name in ("early_stopping_patience", "reduce_lr_patience"):
        if getattr(p, name) < 0:
            raise ConfigError(f"profile {p.name!r}: {name} must be 0 or more")
    if not p.cache_memory_gib >= 0:
        raise ConfigError(f"profile {p.name!r}: cache_memory_gib must be 0 or more")
    if p.se_ratio < 1:
        raise ConfigError(f"profile {p.name!r}: se_ratio must be at least 1")
    if p.dataset not in (REAL_DATASET, PHANTOM_DATASET, FOLDER_DATASET):
        raise ConfigError(
            f"profile {p.name!r}: dataset must be {REAL_DATASET!r}, 'phantoms' or 'folder'"
        )
    if p.class_map and p.dataset != FOLDER_DATASET:
        raise ConfigError(f"profile {p.name!r}: class_map applies to dataset 'folder' only")
    for split in (p.split, *p.splits):
        if split not in SPLIT_KINDS:
            raise ConfigError(
                f"profile {p.name!r}: split must be one of {', '.join(SPLIT_KINDS)}, not {split!r}"
            )
    if len(set(p.seeds)) != len(p.seeds) or len(set(p.splits)) != len(p.splits):
        raise ConfigError(f"profile {p.name!r}: seeds and splits must not repeat")
    if abs(sum(p.split_fractions) - 1.0) > 1e-9 or len(p.split_fractions) != 3:
        raise ConfigError(f"profile {p.name!r}: split_fractions must be 3 numbers summing to 1")
    if p.trainable_from not in ("paper", "all"):
        raise ConfigError(f"profile {p.name!r}: trainable_from must be 'paper' or 'all'")
    if p.fast_path and p.trainable_from != "paper":
        raise ConfigError(
            f"profile {p.name!r}: fast_path needs the frozen trunk (trainable_from='paper')"
        )
    if p.init_from:
        if p.init_from == p.name:
            raise ConfigError(f"profile {p.name!r}: init_from names the profile itself")
        if p.weights != "none":
            raise ConfigError(
                f"profile {p.name!r}: init_from {p.init_from!r} gives every starting weight; "
                "set weights = 'none'"
            )
    if p.image_size < 32:
        raise ConfigError(f"profile {p.name!r}: image_size must be at least 32 (ResNet50V2)")
    if p.subsample < 0:
        raise ConfigError(f"profile {p.name!r}: subsample must be 0 (all) or positive")
    for name in ("batch_size", "max_epochs", "phantoms_per_class", "bootstrap_resamples"):
        if getattr(p, name) < 1:
            raise ConfigError(f"profile {p.name!r}: {name} must be positive")
    return p


def profile_names() -> list[str]:
    with PROFILES_FILE.open("rb") as fh:
        return list(tomllib.load(fh))


def load_profile(name: str = DEFAULT_PROFILE, /, **overrides: Any) -> Profile:
    """The profile ``name`` from ``profiles.toml`` with ``overrides`` applied.

    Override values may be strings (as typed on a command line); they are
    coerced to the field's type.
    """
    with PROFILES_FILE.open("rb") as fh:
        table = tomllib.load(fh)
    if name not in table:
        raise ConfigError(f"unknown profile {name!r}; known: {', '.join(table)}")
    values = {k: _coerce(k, v) for k, v in table[name].items()}
    values.update({k: _coerce(k, v) for k, v in overrides.items() if v is not None})
    start = values.get("init_from")
    if start and start not in table:
        raise ConfigError(f"profile {name!r}: init_from names no profile ({start!r}); "
                          f"known: {', '.join(table)}")  # fmt: skip
    return _validated(Profile(name=name, **values))


#: Fields that pick the data and its split: a warm-start run uses the final run's.
DATA_FIELDS = ("dataset", "class_map", "data_dir", "strict_data", "phantoms_per_class",
               "phantom_size", "split", "split_fractions", "near_duplicate_distance",
               "subsample", "seed")  # fmt: skip


def init_profile(profile: Profile) -> Profile | None:
    """The profile that trains ``profile``'s starting weights (``init_from``), on the same
    data and split; ``None`` when it starts from ``weights``."""
    if not profile.init_from:
        return None
    start = load_profile(profile.init_from)
    return start.replace(**{f: getattr(profile, f) for f in DATA_FIELDS})


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}`` (for ``--set``)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects field=value, got {pair!r}")
        out[key.strip()] = value
    return out


def cache_dir() -> Path:
    """Where generated and downloaded data live (``$BRAINLIB_CACHE_DIR`` or ~/.cache)."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "brainlib"


def env_data_dir() -> Path | None:
    """The local data folder named by ``$BRAINLIB_DATA_DIR``, if set."""
    value = os.environ.get(DATA_DIR_ENV)
    return Path(value).expanduser() if value else None
