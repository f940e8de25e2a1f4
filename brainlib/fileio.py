"""Atomic file writes: write to a temporary name in the same folder, then rename.

A reader (or a run resumed after ``kill -9``) sees either the old file or the
new one, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``.

    The temporary name keeps the suffix (Keras checks ``.weights.h5``).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    for parent in path.parents:  # the first one that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a folder",
                                         str(path))  # fmt: skip
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.getpid()}-", suffix=path.name, dir=path.parent)
    except OSError as err:  # name the file the caller asked for, not a temporary one
        raise type(err)(err.errno, err.strerror, str(path)) from err
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        tmp_path.unlink()  # let the writer create it (h5py refuses some existing files)
        write(tmp_path)
        os.replace(tmp_path, path)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        raise type(err)(err.errno, err.strerror, str(path)) from err
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(path, write)


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
