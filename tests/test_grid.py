"""The grid as independent jobs: cells listed, one trained per job, the jobs gathered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brainlib import grid, runs
from brainlib.config import load_profile

ROOT = Path(__file__).resolve().parents[1]


def test_the_cells_are_the_grid_own_pair_first_and_form_a_matrix():
    profile = load_profile("real224")
    cells = grid.cells(profile)
    assert len(cells) == 2 * 3 * 3 and len(set(cells)) == len(cells)
    assert [c.name for c in cells[:2]] == ["se-paper-seed42", "base-paper-seed42"]
    matrix = json.loads(grid.matrix(profile))
    assert [m["cell"] for m in matrix["include"]] == [c.name for c in cells]
    assert matrix["include"][0] == {"cell": "se-paper-seed42", "variant": "se",
                                    "split": "paper", "seed": 42}  # fmt: skip
    assert grid.parse_cell(profile, "base-dedup-seed44") == grid.Cell("base", "dedup", 44)
    for bad in ("se-paper-seed99", "xx-paper-seed42", "se-paper", "se-paper-seed42; rm -rf /"):
        with pytest.raises(grid.GridError, match="is not a cell of profile real224"):
            grid.parse_cell(profile, bad)


def _brainlib(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "brainlib", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def two_jobs(tmp_path_factory):
    """The smoke grid's two cells, each trained by its own process into its own runs root."""
    pytest.importorskip("tensorflow")
    base = tmp_path_factory.mktemp("jobs")
    code, out = _brainlib("cells", "--profile", "smoke")
    assert code == 0, out
    cells = out.split()
    assert cells == ["se-paper-seed42", "base-paper-seed42"]
    for cell in cells:  # as two machines would: separate roots, separate processes
        code, out = _brainlib("train", "--profile", "smoke", "--cell", cell,
                              "--runs", str(base / cell))  # fmt: skip
        assert code == 0, out
    return base, cells


def test_two_jobs_gather_into_one_root_that_the_results_page_reads(two_jobs, tmp_path):
    """publish.yml's gather job on the smoke grid: gather, evaluate, analyse, export to a
    folder of its own, and the results page (``brainlib run --results``) reads those runs,
    not the committed from-scratch grid, and says which weights they started from."""
    import nbformat

    from brainlib.workflow import RESULTS_NOTEBOOK, execute_notebooks

    base, cells = two_jobs
    into = tmp_path / "gathered"
    code, out = _brainlib("gather", *(str(base / c) for c in cells), "--profile", "smoke",
                          "--into", str(into))  # fmt: skip
    assert code == 0, out
    profile = load_profile("smoke")
    folders = runs.grid_folders(into, profile)  # the whole grid, complete
    assert sorted(f.name for f in folders.values()) == sorted(cells)
    source = base / "se-paper-seed42" / "smoke" / "se-paper-seed42"
    weights = "weights/best.weights.h5"
    gathered = into / "smoke" / "se-paper-seed42"
    assert (gathered / weights).read_bytes() == (source / weights).read_bytes()
    assert not (gathered / runs.LOCK).exists()
    code, out = _brainlib("evaluate", "--profile", "smoke", "--runs", str(into))
    assert code == 0, out
    assert (gathered / runs.METRICS_JSON).is_file()
    # gathering the same runs again changes nothing; a root of another run is refused
    code, out = _brainlib("gather", *(str(base / c) for c in cells), "--profile", "smoke",
                          "--into", str(into))  # fmt: skip
    assert code == 0, out
    results = tmp_path / "results"
    for args in (("analyse", "--runs", str(into)),
                 ("audit", "--flags-dir", str(into / "smoke" / "data")),  # the duplicate flags
                 ("export", "--runs", str(into), "--out", str(results))):  # fmt: skip
        code, out = _brainlib(*args, "--profile", "smoke")
        assert code == 0, out
    assert sorted(p.name for p in (results / "smoke").glob("*-paper-seed42")) == sorted(cells)
    [step] = execute_notebooks(load_profile("smoke"), ROOT, build_dir=tmp_path / "build",
                               names=(RESULTS_NOTEBOOK,), results_dir=results / "smoke",
                               log=lambda _: None)  # fmt: skip
    page = nbformat.read(step.path, as_version=4)
    shown = "\n".join(str(o.get("data", {}).get("text/markdown", "")) + str(o.get("text", ""))
                      for c in page.cells for o in c.get("outputs", []))  # fmt: skip
    assert "se-paper-seed42" in shown and "real224" not in shown
    assert "trained from random weights" in shown  # the smoke profile's weights: none


def test_the_gathered_runs_equal_the_serial_paths(two_jobs, tmp_path):
    """One process training the grid (brainlib run's path) makes the same runs."""
    from brainlib.training import train_grid

    base, cells = two_jobs
    serial = tmp_path / "serial"
    train_grid(load_profile("smoke"), serial, verbose=0)
    for cell in cells:
        job = base / cell / "smoke" / cell
        one = serial / "smoke" / cell

        def without_seconds(folder):
            lines = (folder / runs.HISTORY_CSV).read_text().splitlines()
            return [ln.rsplit(",", 1)[0] for ln in lines]  # the last column: seconds

        assert without_seconds(job) == without_seconds(one)
        assert (job / runs.SPLIT_CSV).read_bytes() == (one / runs.SPLIT_CSV).read_bytes()


def _copy_job(base: Path, cell: str, to: Path) -> Path:
    shutil.copytree(base / cell, to)
    return to / "smoke" / cell


def _edit_meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / runs.RUN_JSON).read_text())
    for key, value in changes.items():
        if key.startswith("profile."):
            meta["profile"][key.split(".", 1)[1]] = value
        else:
            meta[key] = value
    (folder / runs.RUN_JSON).write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("change", "line"),
    [({"git_commit": "0" * 40}, "trained by code 0000"),
     ({"data_manifest_sha256": "f" * 64}, "data manifest ffffffffffff"),
     ({"profile.name": "demo"}, "a run of profile 'demo', not 'smoke'"),
     ({"profile.learning_rate": 0.5}, "trained with other settings than profile smoke"),
     ({"status": "running"}, "not complete"),
     ("split", "split.csv (paper) differs from"),
     ("twice", "cell base-paper-seed42 also in")],
)  # fmt: skip
def test_gather_refuses_runs_that_do_not_belong_together_by_name(two_jobs, tmp_path, change, line):
    base, _ = two_jobs
    _copy_job(base, "se-paper-seed42", tmp_path / "a")
    odd = _copy_job(base, "base-paper-seed42", tmp_path / "b")
    sources = [tmp_path / "a", tmp_path / "b"]
    if change == "split":
        text = (odd / runs.SPLIT_CSV).read_text().splitlines()
        (odd / runs.SPLIT_CSV).write_text("\n".join([text[0], *text[2:], text[1]]) + "\n")
    elif change == "twice":
        sources.append(_copy_job(base, "base-paper-seed42", tmp_path / "c").parents[1])
    else:
        _edit_meta(odd, **change)
    with pytest.raises(grid.GridError) as err:
        grid.gather(sources, load_profile("smoke"), tmp_path / "into", log=lambda _: None)
    message = str(err.value)
    assert line in message, message
    assert str(tmp_path / "c" if change == "twice" else odd) in message  # named by folder
    assert not (tmp_path / "into").exists()  # nothing gathered


def test_a_missing_cell_is_refused_unless_partial(two_jobs, tmp_path):
    base, _ = two_jobs
    profile = load_profile("smoke")
    with pytest.raises(grid.GridError, match="cells missing from the sources: base-paper-seed42"):
        grid.gather([base / "se-paper-seed42"], profile, tmp_path / "into", log=lambda _: None)
    lines = []
    out = grid.gather([base / "se-paper-seed42"], profile, tmp_path / "into", partial=True,
                      log=lines.append)  # fmt: skip
    assert [p.name for p in out] == ["se-paper-seed42"] and "partial grid: 1 of 2" in lines[-1]


def test_the_slurm_array_script_picks_its_cell_and_refuses_a_task_past_the_grid(tmp_path):
    script = ROOT / "scripts" / "slurm_grid.sbatch"
    bin_dir = Path(sys.executable).parent  # brainlib's console script beside this Python
    path = f"{bin_dir}:{os.environ.get('PATH', '')}"
    env = {**os.environ, "PROFILE": "smoke", "RUNS": str(tmp_path / "jobs"), "PATH": path,
           "SLURM_ARRAY_TASK_ID": "2"}  # fmt: skip
    env.pop("DATA_DIR", None)
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "profile smoke has no cell 2" in proc.stderr
    env.pop("SLURM_ARRAY_TASK_ID")
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "run this as a job array" in proc.stderr
    assert not (tmp_path / "jobs").exists()
