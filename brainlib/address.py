"""Where the project lives: its repository, the ref that links open, and the links made of them.

One setting (``brainlib/address.toml``) holds the repository URL and the git ref; the
badges, the Colab and Binder links, the install and clone lines and the book's address are
made here from it. ``scripts/sync_address.py`` writes them into the files that carry them,
and ``tests/test_address.py`` fails when any file disagrees. The distribution name on the
package index is :data:`DISTRIBUTION` (``brainlib`` there is an unrelated project); the
import name stays ``brainlib``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

#: the name pip knows this project by (``pip install brainlib`` installs someone else's)
DISTRIBUTION = "brainlib-replication"
SETTING = Path(__file__).with_name("address.toml")


@dataclass(frozen=True)
class Address:
    repository: str  # https://github.com/OWNER/NAME
    ref: str  # the branch or tag the links open

    def __post_init__(self):
        if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", self.repository):
            raise ValueError(
                f"{SETTING}: repository must be https://github.com/OWNER/NAME, "
                f"got {self.repository!r}"
            )
        if not re.fullmatch(r"[\w./-]+", self.ref):
            raise ValueError(f"{SETTING}: ref must be a branch or tag name, got {self.ref!r}")

    @property
    def slug(self) -> str:
        """OWNER/NAME"""
        return self.repository.removeprefix("https://github.com/")

    @property
    def book_url(self) -> str:
        """Where GitHub Pages publishes the book (publish.yml)."""
        owner, name = self.slug.split("/")
        return f"https://{owner.lower()}.github.io/{name}/"

    def colab(self, notebook: str) -> str:
        return f"https://colab.research.google.com/github/{self.slug}/blob/{self.ref}/{notebook}"

    def binder(self, notebook: str) -> str:
        return f"https://mybinder.org/v2/gh/{self.slug}/{self.ref}?labpath={notebook}"

    def archive(self) -> str:
        """The repository at ``ref`` as a .tar.gz (what chapter 07 fetches on Colab)."""
        return f"{self.repository}/archive/{self.ref}.tar.gz"

    def requirement(self, extras: str = "") -> str:
        """A pip requirement that installs the package at ``ref`` from the repository."""
        return f"{DISTRIBUTION}{f'[{extras}]' if extras else ''} @ git+{self.repository}@{self.ref}"

    def clone(self) -> str:
        return f"git clone {self.repository}"


def load(path: str | Path = SETTING) -> Address:
    """The address in ``path`` (default: the package's ``address.toml``)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"{path}: cannot read the project's address: {err}") from err
    missing = {"repository", "ref"} - set(raw)
    if missing:
        raise ValueError(f"{path}: missing {sorted(missing)}")
    return Address(str(raw["repository"]).rstrip("/"), str(raw["ref"]))
