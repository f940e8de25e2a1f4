"""Check publish.yml's inputs before any job starts; write the grid's --set arguments.

Reads the workflow's inputs from the environment (never from an expression spliced into
a script): ``SEEDS`` (comma-separated integers), ``SPLITS`` (comma-separated split kinds)
and ``OVERRIDES`` (space-separated ``FIELD=VALUE``). Refuses, with one line each, a seed
that is not a non-negative integer, an unknown split, an override of an unknown field,
and an override of ``seed``, ``seeds``, ``split``, ``splits`` or ``data_dir``: those move
the split away from the committed one or replace the inputs above. Writes ``sets`` (a
JSON list of ``--set`` arguments, for the jobs) and ``matrix`` (the grid's cells, for the
training matrix) and ``key`` (the finished runs' cache key, from ``CODE`` and the settings)
to ``$GITHUB_OUTPUT`` (or prints them). Usage:

    SEEDS=42,43 SPLITS=paper,dedup OVERRIDES="max_epochs=30" python scripts/workflow_inputs.py
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brainlib import config, grid

PROFILE = "paper"
REFUSED = ("seed", "seeds", "split", "splits", "data_dir", "name")


def pairs(sets: list[str]) -> dict[str, str]:
    """``["--set", "a=1", "--set", "b=2"]`` -> ``{"a": "1", "b": "2"}``."""
    return dict(item.split("=", 1) for item in sets[1::2])


def check(seeds: str, splits: str, overrides: str) -> tuple[list[str], list[str]]:
    """``(--set arguments, problems)``."""
    problems = []
    seed_list = [s.strip() for s in seeds.split(",") if s.strip()]
    if not seed_list:
        problems.append("seeds: give at least one, e.g. 42 or 42,43,44")
    for s in seed_list:
        if not re.fullmatch(r"\d{1,9}", s):
            problems.append(f"seeds: {s!r} is not a non-negative integer")
    if len(set(seed_list)) != len(seed_list):
        problems.append(f"seeds: {seeds!r} repeats a seed")
    split_list = [s.strip() for s in splits.split(",") if s.strip()] or ["paper"]
    for s in split_list:
        if s not in config.SPLIT_KINDS or s == "given":
            problems.append(f"splits: {s!r} is not one of paper, grouped, dedup")
    fields = set(config.Profile().to_dict())
    sets = ["--set", f"seeds={','.join(seed_list)}", "--set", f"splits={','.join(split_list)}"]
    for item in overrides.split():
        match = re.fullmatch(r"([a-z_][a-z0-9_]*)=([\w.,+-]+)", item)
        if not match:
            problems.append(f"overrides: {item!r} is not FIELD=VALUE (letters, digits, . , + -)")
        elif match[1] in REFUSED:
            problems.append(f"overrides: {match[1]} is refused here (it would move the split or "
                            "replace the seeds and splits inputs)")  # fmt: skip
        elif match[1] not in fields:
            problems.append(f"overrides: {match[1]!r} is not a profile field")
        else:
            sets += ["--set", item]
    if not problems:
        try:
            config.load_profile(PROFILE, **pairs(sets))
        except config.ConfigError as err:
            problems.append(f"overrides: {err}")
    return sets, problems


def main() -> int:
    sets, problems = check(os.environ.get("SEEDS", "42"), os.environ.get("SPLITS", "paper"),
                           os.environ.get("OVERRIDES", ""))  # fmt: skip
    for line in problems:
        print(f"::error::{line}" if os.environ.get("GITHUB_ACTIONS") else line, file=sys.stderr)
    if problems:
        return 1
    profile = config.load_profile(PROFILE, **pairs(sets))
    # the cache key of a finished run: the code (CODE, a hash of brainlib/ and the pins) and
    # the settings; a push that changes neither reuses every run
    code = os.environ.get("CODE", "")
    key = hashlib.sha256(f"{code}\n{json.dumps(sets)}".encode()).hexdigest()[:16]
    out = f"sets={json.dumps(sets)}\nmatrix={grid.matrix(profile)}\nkey={key}\n"
    target = os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(out)
    print(out, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
