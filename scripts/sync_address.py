"""Write the project's address into every file that carries a link to it, or check them.

The address (repository URL and the git ref the links open) is one setting,
``brainlib/address.toml`` (:mod:`brainlib.address`). This script rewrites, in the README,
the notebooks (``.py`` and ``.ipynb``), the book's pages, ``_config.yml``, ``CITATION.cff``
and ``pyproject.toml``: the Colab and Binder links, the CI badge, the install requirement
(``brainlib-replication[...] @ git+REPOSITORY@REF``), the clone line, the book's address and
the repository fields. ``--check`` writes nothing and exits 1 listing each file that
disagrees (tests/test_address.py runs it). Usage:

    python scripts/sync_address.py [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brainlib import address as project_address  # noqa: E402

FILES = ("README.md", "CONTRIBUTING.md", "_config.yml", "CITATION.cff", "pyproject.toml",
         "book/*.md", "notebooks/*.py", "notebooks/*.ipynb")  # fmt: skip
_OWNER_NAME = r"[\w.-]+/[\w.-]+"


def rules(a: project_address.Address) -> dict[str, tuple[re.Pattern, Callable]]:
    """kind -> (pattern, replacement made from the address)"""
    return {
        "colab": (
            re.compile(
                rf"https://colab\.research\.google\.com/github/{_OWNER_NAME}/blob/"
                r"[\w.-]+/(notebooks/[\w.-]+\.ipynb)"
            ),
            lambda m: a.colab(m[1]),
        ),
        "binder": (
            re.compile(
                rf"https://mybinder\.org/v2/gh/{_OWNER_NAME}/[\w.-]+\?labpath="
                r"(notebooks/[\w.-]+\.ipynb)"
            ),
            lambda m: a.binder(m[1]),
        ),
        "install": (
            re.compile(
                rf"brainlib(?:-replication)?(?:\[([\w,]+)\])? @ git\+https://github\.com/"
                rf"{_OWNER_NAME}@[\w./-]+"
            ),
            lambda m: a.requirement(m[1] or ""),
        ),
        "clone": (
            re.compile(
                rf"git clone https://github\.com/{_OWNER_NAME}(?= && cd [\w.-]+)"
                r"( && cd )[\w.-]+"
            ),
            lambda m: f"{a.clone()}{m[1]}{a.slug.split('/')[1]}",
        ),
        "actions": (
            re.compile(rf"https://github\.com/{_OWNER_NAME}/actions/"),
            lambda m: f"{a.repository}/actions/",
        ),
        "book": (
            re.compile(r"https://[\w-]+\.github\.io/[\w.-]+/"),
            lambda m: a.book_url,
        ),
        "repository": (  # _config.yml, CITATION.cff, pyproject's [project.urls]
            re.compile(
                r'(?m)^(\s*(?:url|repository-code|Repository|Source|Issues)\s*[:=]\s*"?)'
                rf"https://github\.com/{_OWNER_NAME}(/issues)?(?=\"?\s*$)"
            ),
            lambda m: f"{m[1]}{a.repository}{m[2] or ''}",
        ),
        "branch": (  # _config.yml's repository.branch: the launch buttons open this ref
            re.compile(r"(?m)^(  branch: )\S+$"),
            lambda m: f"{m[1]}{a.ref}",
        ),
    }


def files(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in FILES for p in root.glob(pattern) if p.is_file()})


def sync(root: Path = ROOT, a: project_address.Address | None = None, write: bool = True):
    """Rewrite (or only compare) every file; returns ({file: kinds changed}, {kind: count})."""
    a = a or project_address.load()
    changed: dict[Path, list[str]] = {}
    counts = dict.fromkeys(rules(a), 0)
    for path in files(root):
        text = new = path.read_text(encoding="utf-8")
        for kind, (pattern, make) in rules(a).items():
            if kind == "branch" and path.name != "_config.yml":
                continue
            counts[kind] += len(pattern.findall(new))
            replaced = pattern.sub(make, new)
            if replaced != new:
                changed.setdefault(path, []).append(kind)
            new = replaced
        if new != text and write:
            path.write_text(new, encoding="utf-8")
    return changed, counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 on disagreement")
    args = p.parse_args(argv)
    a = project_address.load()
    changed, counts = sync(ROOT, a, write=not args.check)
    for path, kinds in changed.items():
        verb = "disagrees" if args.check else "rewritten"
        print(f"{path.relative_to(ROOT)}: {verb} ({', '.join(kinds)})")
    print(f"address {a.repository} @ {a.ref}: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
