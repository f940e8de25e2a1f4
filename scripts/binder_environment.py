"""Write (or check) environment.yml, Binder's environment, from requirements/book.lock.

Binder (repo2docker) builds from ``environment.yml``; each rebuild would drift if it held
version ranges. This writes the lock's exact versions for the platform Binder runs
(Linux x86_64, CPython 3.11) into its pip section, so Binder installs what the lock
holds; ``postBuild`` then installs brainlib itself without dependencies. ``make lock``
runs it after writing the lock; tests/test_project.py checks that the two agree. Usage:

    python scripts/binder_environment.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "book.lock"
ENVIRONMENT = ROOT / "environment.yml"
PYTHON = "3.11"
#: the marker environment of a mybinder.org image (Linux x86_64, CPython 3.11)
BINDER = {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux",
          "os_name": "posix", "python_version": PYTHON, "python_full_version": f"{PYTHON}.9",
          "implementation_name": "cpython", "platform_python_implementation": "CPython",
          "extra": ""}  # fmt: skip

HEADER = f"""\
# Binder / conda environment, written by scripts/binder_environment.py from
# requirements/book.lock (`make lock`): the exact versions brainlib's core, `cpu` and
# `book` pins resolved to, for Linux x86_64 and Python {PYTHON}, so that every Binder
# build installs the same packages. Do not edit by hand; tests/test_project.py checks it.
# `postBuild` installs brainlib itself (no dependencies).
name: brainlib
channels:
  - conda-forge
dependencies:
  - python={PYTHON}
  - pip
  - pip:
"""


def pins(lock: Path = LOCK) -> list[str]:
    """``name==version`` for every lock line whose marker holds on Binder."""
    out = []
    for line in lock.read_text().splitlines():
        if not line or line.startswith((" ", "#")):
            continue
        pin, _, marker = line.partition(";")
        if not marker.strip() or Marker(marker.strip()).evaluate(BINDER):
            out.append(pin.strip())
    return out


def render(lock: Path = LOCK) -> str:
    return HEADER + "".join(f'      - "{pin}"\n' for pin in pins(lock))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if it differs")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        same = ENVIRONMENT.read_text() == text
        print(f"{ENVIRONMENT.name}: {'agrees with' if same else 'differs from'} {LOCK.name}")
        return 0 if same else 1
    ENVIRONMENT.write_text(text)
    print(f"{ENVIRONMENT.name}: {len(pins())} pins from {LOCK.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
