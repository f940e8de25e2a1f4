"""The grid as independent jobs: list its cells, train one, gather run folders made elsewhere.

A profile's grid (:func:`brainlib.runs.grid`: splits x seeds, both models) is a set of
independent runs. Where one machine is too small for it, an existing engine runs one
cell per job: a GitHub Actions matrix (``brainlib cells --profile P --format matrix``),
a Slurm job array (``scripts/slurm_grid.sbatch``), or a shell loop. Each job trains its
cell into its own runs root (``brainlib train --cell NAME --runs ROOT``); the gather step
(:func:`gather`, ``brainlib gather``) takes the run folders of every job, checks that they
belong together, and puts them into one runs root, where ``brainlib evaluate``,
``analyse``, ``export`` and ``run`` (the book) find them as if one machine had trained them.

Run folders belong together when each is complete and all were trained with the same
profile (every training field; the split and seed name the cell), the same code (the
``git_commit`` in ``run.json``) and the same data (the manifest's sha256), and the runs of
one split drew the same split (``split.csv`` byte for byte). A folder that breaks one of
these is refused by name, one line each.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from brainlib import runs
from brainlib.config import VARIANTS, Profile

_CELL = re.compile(r"(?P<variant>[a-z]+)-(?P<split>[a-z]+)-seed(?P<seed>\d+)")


class GridError(RuntimeError):
    """A cell name that is not the profile's, or run folders that do not belong together."""


@dataclass(frozen=True)
class Cell:
    variant: str
    split: str
    seed: int

    @property
    def name(self) -> str:
        return runs.run_name(self.variant, self.split, self.seed)


def cells(profile: Profile) -> list[Cell]:
    """Every run of the profile's grid, its own (split, seed) first."""
    return [Cell(v, split, seed) for split, seed in runs.grid(profile) for v in VARIANTS]


def parse_cell(profile: Profile, name: str) -> Cell:
    """The cell called ``name`` (``se-paper-seed42``); refused unless it is in the grid."""
    match = _CELL.fullmatch(name.strip())
    known = cells(profile)
    cell = match and Cell(match["variant"], match["split"], int(match["seed"]))
    if not cell or cell not in known:
        raise GridError(f"{name!r} is not a cell of profile {profile.name}; its cells: "
                        + ", ".join(c.name for c in known))  # fmt: skip
    return cell


def matrix(profile: Profile) -> str:
    """The cells as a GitHub Actions matrix (``strategy.matrix: ${{ fromJSON(...) }}``)."""
    include = [{"cell": c.name, "variant": c.variant, "split": c.split, "seed": c.seed}
               for c in cells(profile)]  # fmt: skip
    return json.dumps({"include": include}, separators=(",", ":"))


# ------------------------------------------------------------------------------ gather


@dataclass(frozen=True)
class Found:
    folder: Path
    cell: Cell
    profile: dict  # run.json's profile fields
    commit: str
    data: str  # the data manifest's sha256
    split_sha256: str  # of split.csv


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def find_runs(source: str | Path, profile: Profile) -> list[Path]:
    """The run folders of ``profile`` under a runs root made by one job (or one folder)."""
    source = Path(source)
    if (source / runs.RUN_JSON).is_file():
        return [source]
    base = source / profile.name
    if not base.is_dir():
        raise GridError(f"{source}: no {profile.name}/ folder of runs (nothing to gather)")
    return sorted(p for p in base.iterdir() if (p / runs.RUN_JSON).is_file())


def inspect(folder: Path, profile: Profile) -> Found | str:
    """What a run folder is, or one line saying why it cannot be gathered."""
    try:
        meta = runs.read_meta(folder)
    except (OSError, ValueError) as err:
        return f"{folder}: unreadable run.json ({err})"
    if meta.get("status") != runs.COMPLETE:
        return f"{folder}: not complete (status {meta.get('status')!r}); finish it or leave it out"
    fields = meta.get("profile") or {}
    if fields.get("name") != profile.name:
        return f"{folder}: a run of profile {fields.get('name')!r}, not {profile.name!r}"
    cell = Cell(meta["variant"], fields.get("split", ""), int(meta["seed"]))
    if cell not in cells(profile):
        return f"{folder}: cell {cell.name} is not in the grid of profile {profile.name}"
    changed = runs.training_fields_changed(
        {k: v for k, v in fields.items() if k != "split"},
        {k: v for k, v in profile.to_dict().items() if k != "split"},
    )
    if changed:
        settings = "; ".join(changed)
        return f"{folder}: trained with other settings than profile {profile.name} ({settings})"
    split_csv = folder / runs.SPLIT_CSV
    if not split_csv.is_file():
        return f"{folder}: no {runs.SPLIT_CSV}"
    return Found(folder, cell, fields, str(meta.get("git_commit", "unknown")),
                 str(meta.get("data_manifest_sha256")), _sha256(split_csv))  # fmt: skip


def check_together(found: list[Found]) -> list[str]:
    """One line per run folder that does not belong with the first one of its kind."""
    if not found:
        return []
    problems = []
    first = found[0]
    by_split: dict[str, Found] = {}
    seen: dict[Cell, Found] = {}
    for f in found:
        if f.commit != first.commit:
            problems.append(f"{f.folder}: trained by code {f.commit}, "
                            f"{first.folder} by {first.commit}")  # fmt: skip
        if f.data != first.data:
            problems.append(f"{f.folder}: data manifest {f.data[:12]}, "
                            f"{first.folder} has {first.data[:12]}")  # fmt: skip
        other = by_split.setdefault(f.cell.split, f)
        if f.split_sha256 != other.split_sha256:
            problems.append(f"{f.folder}: its split.csv ({f.cell.split}) differs from "
                            f"{other.folder}'s")  # fmt: skip
        if f.cell in seen:
            problems.append(f"{f.folder}: cell {f.cell.name} also in {seen[f.cell].folder}")
        seen.setdefault(f.cell, f)
    return problems


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)  # same file system: no second copy of the weights
    except OSError:
        shutil.copy2(src, dst)


def gather(sources, profile: Profile, into: str | Path, partial: bool = False,
           log=print) -> list[Path]:  # fmt: skip
    """Check the run folders under ``sources`` and put them into ``into/<profile>/``.

    Refuses (:class:`GridError`, one line per problem) folders from another profile,
    code version or data, split files that differ, a cell found twice, and, unless
    ``partial``, a grid with cells missing. A cell already in ``into`` is replaced only
    by the same run (same ``run.json``); the trunk caches are not gathered (each job
    computes its own). Returns the gathered run folders.
    """
    into = Path(into)
    found, problems, refused = [], [], set()
    for source in sources:
        try:
            folders = find_runs(source, profile)
        except GridError as err:
            problems.append(str(err))
            continue
        for folder in folders:
            item = inspect(folder, profile)
            if isinstance(item, str):
                problems.append(item)
                refused.add(folder.name)  # named by its cell: reported, not missing
            else:
                found.append(item)
    problems += check_together(found)
    present = {f.cell.name for f in found} | refused
    missing = sorted({c.name for c in cells(profile)} - present)
    if missing and not partial:
        problems.append(f"cells missing from the sources: {', '.join(missing)} "
                        "(train them, or gather with --partial)")  # fmt: skip
    if problems:
        raise GridError("cannot gather:\n" + "\n".join(problems))
    out = []
    for f in found:
        target = into / profile.name / f.cell.name
        if target.resolve() == f.folder.resolve():
            out.append(target)
            continue
        if (target / runs.RUN_JSON).is_file():
            if (target / runs.RUN_JSON).read_bytes() != (f.folder / runs.RUN_JSON).read_bytes():
                raise GridError(f"{target} already holds another run of cell {f.cell.name}; "
                                "gather into an empty folder")  # fmt: skip
            out.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        skip = shutil.ignore_patterns(runs.LOCK, runs.LOCK_HOLDER, ".tmp-*")
        shutil.copytree(f.folder, target, copy_function=_link_or_copy, ignore=skip)
        log(f"gathered {f.cell.name} from {f.folder}")
        out.append(target)
    if missing:
        log(f"partial grid: {len(found)} of {len(found) + len(missing)} cells "
            f"(missing {', '.join(missing)})")  # fmt: skip
    return out
