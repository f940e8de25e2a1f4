"""The one workflow: execute the notebooks with papermill, then build the book.

``brainlib run --profile NAME`` (and ``make book PROFILE=NAME``):

1. converts each ``notebooks/NN_*.py`` (jupytext py:percent, the source) to a
   notebook and executes it with papermill, in dependency order, into
   ``_build/<profile>/notebooks/``; the parameters cell receives the profile,
   the data folder, the run folder root and the weights;
2. skips a step whose notebook, parameters, data (manifest hash), package
   code and upstream steps are unchanged since its last successful execution
   (a cache key stored beside the executed notebook);
3. stops at the first failing notebook: prints its name, the failing cell and
   the error, leaves the executed notebook for inspection and exits non-zero;
4. builds the Jupyter Book (``jupyter-book build -W``, warnings are errors)
   from the executed notebooks, with a banner naming the profile and the data
   on every page. The results page is a notebook too (``07_replication``): it
   reads the committed results under ``results/`` (:mod:`brainlib.answers`).

Paths handed to the notebooks are relative to ``notebooks/`` (their working
folder), and the parameters cells are removed from the pages, so no page
shows a path of the machine that built it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml

from brainlib import __version__, runs
from brainlib.config import Profile, load_profile
from brainlib.fileio import atomic_write_text
from brainlib.results import REPLICATION_PROFILE, RESULTS_DIR

NOTEBOOKS = (
    "01_data",
    "02_model",
    "03_training",
    "04_evaluation",
    "05_statistics",
    "06_gradcam",
    "07_replication",
)
#: The results page: the committed replication, then this build's runs beside the paper.
RESULTS_NOTEBOOK = "07_replication"
PACKAGE_DIR = Path(__file__).resolve().parent


class PipelineError(RuntimeError):
    """A notebook failed or the project layout is incomplete."""


@dataclass
class StepResult:
    name: str
    executed: bool  # False: taken from the cache
    path: Path
    seconds: float = 0.0
    peak_mib: float | None = None  # the kernel's peak resident memory (Linux, macOS)


#: appended to each notebook before it executes, removed after: the kernel's own peak
#: resident set size (``ru_maxrss``: KiB on Linux, bytes on macOS; no ``resource`` on Windows)
_PEAK_TAG = "brainlib_peak_memory"
_PEAK_SOURCE = """\
try:
    import resource as _r, sys as _s
    _kib = _r.getrusage(_r.RUSAGE_SELF).ru_maxrss // (1024 if _s.platform == "darwin" else 1)
    print("brainlib-kernel-peak-kib", _kib)
except ImportError:
    pass
"""


def measure_peak(nb):
    """``nb`` with a last cell that prints the kernel's peak memory."""
    import nbformat

    nb.cells.append(nbformat.v4.new_code_cell(_PEAK_SOURCE, metadata={"tags": [_PEAK_TAG]}))
    return nb


def take_peak(nb) -> float | None:
    """Remove the measuring cell from the executed ``nb``; the peak in MiB it printed."""
    peak = None
    for cell in [c for c in nb.cells if _PEAK_TAG in c.get("metadata", {}).get("tags", [])]:
        for out in cell.get("outputs", []):
            for line in str(out.get("text", "")).splitlines():
                if line.startswith("brainlib-kernel-peak-kib "):
                    peak = int(line.split()[1]) / 1024
        nb.cells.remove(cell)
    nb.metadata.setdefault("brainlib", {})["kernel_peak_mib"] = peak
    return peak


def kernel_peak_mib(executed: Path) -> float | None:
    """The kernel's peak memory recorded in an executed notebook (None: not measured)."""
    import nbformat

    return nbformat.read(executed, as_version=4).metadata.get("brainlib", {}).get("kernel_peak_mib")


def _files_hash(folder: Path, keep=lambda path: True) -> str:
    """sha256 over the names and bytes of the files under ``folder`` that ``keep``."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and keep(path):
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def package_hash() -> str:
    """sha256 over brainlib's source and data files (a change re-runs every step)."""
    return _files_hash(PACKAGE_DIR, lambda path: path.suffix in (".py", ".toml", ".csv")
                       and "__pycache__" not in path.parts)  # fmt: skip


def tree_hash(folder: Path) -> str:
    """sha256 over every file under ``folder`` (names and bytes); "" where it is missing.

    The results page's key holds it, so re-exported results re-run the page."""
    return _files_hash(folder) if folder.is_dir() else ""


def step_key(source: str, parameters: dict, data_hash: str, code_hash: str, upstream: str) -> str:
    blob = json.dumps(
        {"source": source, "parameters": parameters, "data": data_hash, "package": code_hash,
         "upstream": upstream},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()


def to_notebook(py_path: Path):
    """The jupytext py:percent source as an nbformat notebook (with a python3 kernelspec)."""
    import jupytext

    nb = jupytext.read(py_path, fmt="py:percent")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


SOLUTION = "solution"  # the tag of an exercise's solution cell
_HIDDEN = "brainlib_solution"


def solution_cells(nb) -> list:
    return [c for c in nb.cells if SOLUTION in c.get("metadata", {}).get("tags", [])]


def stage(nb, solutions: bool):
    """The notebook to execute: its solution cells emptied unless ``solutions``."""
    if not solutions:
        for cell in solution_cells(nb):
            cell.metadata[_HIDDEN] = cell.source
            cell.source = ""
    return nb


def unstage(nb):
    """The executed notebook with the solutions' code put back (not executed: no output)."""
    for cell in nb.cells:
        if _HIDDEN in cell.get("metadata", {}):
            cell.source = cell.metadata.pop(_HIDDEN)
    return nb


def _describe_failure(name: str, err, executed: Path) -> str:
    cell = getattr(err, "cell_index", "?")
    count = getattr(err, "exec_count", None)
    source = (getattr(err, "source", "") or "").strip()
    first = "\n".join(source.splitlines()[:6])
    ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    return (
        f"notebook {name} failed in cell {cell}"
        + (f" (execution count {count})" if count else "")
        + f":\n{first}\n{ename}: {evalue}\nexecuted notebook left for inspection: {executed}"
    )


def _results_dir(root: Path, results_dir: str | Path | None) -> Path:
    """The folder the results page reads: ``results_dir`` (relative to the current
    directory) or the committed replication's."""
    if results_dir is None:
        return root / RESULTS_DIR / REPLICATION_PROFILE
    return Path(results_dir).resolve()


def execute_notebooks(
    profile: Profile,
    root: Path,
    data_dir: str | None = None,
    weights: str | None = None,
    overrides: dict | None = None,
    build_dir: Path | None = None,
    names: tuple[str, ...] = NOTEBOOKS,
    log=print,
    solutions: bool = False,
    results_dir: str | Path | None = None,
) -> list[StepResult]:
    """Execute the notebooks in order, skipping unchanged steps (see the module docstring).

    ``solutions``: execute the exercises' solution cells too (``make test`` does, on the
    smoke profile); otherwise they are shown with their code and no output.
    ``results_dir``: the exported runs the results page reads (default: the committed
    ``results/real224``; a gathered grid exported elsewhere, e.g. the paper profile's).
    """
    import time

    import nbformat
    import papermill

    from brainlib.data import load_dataset

    build = build_dir or root / "_build" / profile.name
    out_dir = build / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    data_hash = load_dataset(profile, data_dir, allow_mismatch=True).manifest_sha256
    code_hash = package_hash()
    nb_dir = root / "notebooks"
    parameters = {
        "profile": profile.name,
        "data_dir": str(Path(data_dir).resolve()) if data_dir else None,
        "runs_dir": os.path.relpath(build / "runs", nb_dir),
        "weights": weights,
        "overrides": overrides or {},
    }
    extra = {
        RESULTS_NOTEBOOK: {
            "results_dir": os.path.relpath(_results_dir(root, results_dir), nb_dir),
            "figures_dir": os.path.relpath(build / "figures", nb_dir),
        }
    }
    # the kernels inherit this environment: no TensorFlow or Python warnings in the pages
    env_backup = {k: os.environ.get(k) for k in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}
    os.environ.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore")
    results: list[StepResult] = []
    upstream = ""
    try:
        for name in names:
            source_path = root / "notebooks" / f"{name}.py"
            if not source_path.is_file():
                raise PipelineError(f"missing notebook source {source_path}")
            source = source_path.read_text(encoding="utf-8")
            # the results page reads exported results (committed, or --results), not runs_dir
            params = extra[name] if name in extra else parameters
            keyed = {**params, "solutions": solutions}
            if name == RESULTS_NOTEBOOK:  # its input is the results' content, not their path
                keyed["results"] = tree_hash(_results_dir(root, results_dir))
            key = step_key(source, keyed, data_hash, code_hash, upstream)
            executed = out_dir / f"{name}.ipynb"
            key_file = out_dir / f"{name}.key"
            if executed.is_file() and key_file.is_file() and key_file.read_text().strip() == key:
                log(f"[cached]   {name}")
                peak = kernel_peak_mib(executed)
                results.append(StepResult(name, False, executed, peak_mib=peak))
                upstream = key
                continue
            key_file.unlink(missing_ok=True)
            staged = out_dir / f"{name}.input.ipynb"
            nbformat.write(measure_peak(stage(to_notebook(source_path), solutions)), staged)
            log(f"[running]  {name} ...")
            t0 = time.perf_counter()
            progress = TrainingProgress(build / "runs", name, log)
            progress.start()
            try:
                papermill.execute_notebook(
                    str(staged),
                    str(executed),
                    parameters=params,
                    kernel_name="python3",
                    cwd=str(root / "notebooks"),
                    progress_bar=False,
                    log_output=False,
                )
            except papermill.PapermillExecutionError as err:
                raise PipelineError(_describe_failure(name, err, executed)) from err
            except OSError as err:  # disk full, read-only, permission: name the notebook too
                raise PipelineError(
                    f"notebook {name}: {err.filename or executed}: {err.strerror or err}"
                ) from err
            finally:
                progress.stop()
                staged.unlink(missing_ok=True)
            done = nbformat.read(executed, as_version=4)
            peak = take_peak(done)
            nbformat.write(done if solutions else unstage(done), executed)
            seconds = time.perf_counter() - t0
            atomic_write_text(key_file, key + "\n")
            memory = f", kernel peak {peak:,.0f} MiB" if peak is not None else ""
            log(f"[done]     {name} in {seconds:.1f} s{memory}")
            results.append(StepResult(name, True, executed, seconds, peak))
            upstream = key
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return results


class TrainingProgress(threading.Thread):
    """Follows the runs under ``runs_root`` while a notebook executes.

    Each new epoch becomes one line: the run, the epoch of its maximum, its
    metrics as ``history.csv`` holds them, and the time left in the run at most
    (the remaining epochs at the run's mean epoch time; early stopping may end
    it sooner). The other lines of the run's log.txt (its start, the trunk
    cache, its completion) are passed on as they are, in the order written.
    """

    def __init__(self, runs_root: Path, notebook: str, log, interval: float = 2.0):
        super().__init__(daemon=True)
        self.runs_root, self.notebook, self.log, self.interval = runs_root, notebook, log, interval
        self.offsets: dict[Path, int] = {}
        self.max_epochs: dict[Path, int] = {}  # read once per run from its run.json
        self.done = threading.Event()
        for path in self._logs():  # what was there before this notebook is not news
            self.offsets[path] = path.stat().st_size

    def _logs(self) -> list[Path]:
        return sorted(self.runs_root.glob("*/*/log.txt")) if self.runs_root.is_dir() else []

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.poll()
        self.poll()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=10)

    def poll(self) -> None:
        for path in self._logs():
            start = self.offsets.get(path, 0)
            try:
                with open(path, encoding="utf-8") as fh:
                    fh.seek(start)
                    text = fh.read()
            except OSError:
                continue
            complete = text[: text.rfind("\n") + 1]
            self.offsets[path] = start + len(complete.encode("utf-8"))
            lines = [line.split(" ", 1)[-1] for line in complete.splitlines()]
            history = None
            for line in lines:
                name = f"{path.parent.parent.name}/{path.parent.name}"
                if not line.startswith("epoch "):
                    self.log(f"[{self.notebook}] {name}: {line}")
                    continue
                if history is None:  # written before the epoch's log line
                    history = runs.read_history_rows(path.parent)
                epoch = int(line.split()[1])
                self.log(f"[{self.notebook}] {name}: {self.describe(path.parent, history, epoch)}")

    def describe(self, folder: Path, history: list[dict], epoch: int) -> str:
        """One epoch of a run, from its history rows (``epoch`` counts from 1)."""
        row = history[epoch - 1]
        if folder not in self.max_epochs:
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.max_epochs[folder] = int(runs.read_meta(folder)["profile"]["max_epochs"])
        max_epochs = self.max_epochs.get(folder, epoch)
        mean = sum(r["seconds"] for r in history[:epoch]) / epoch
        left = max(max_epochs - epoch, 0) * mean
        return (f"epoch {epoch}/{max_epochs}  loss {row['loss']:.4f}  acc {row['accuracy']:.4f}  "
                f"val_loss {row['val_loss']:.4f}  val_acc {row['val_accuracy']:.4f}  "
                f"{row['seconds']:.1f} s; at most {_duration(left)} left in this run")  # fmt: skip


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def banner(
    profile: Profile,
    data_dir: str | None,
    weights: str | None = None,
    results_dir: str | Path | None = None,
) -> str:
    """The text shown on every page of the book: the profile, data and weights, and
    which runs the Results page reads."""
    from brainlib.models import stand_in_note

    if results_dir is None:
        reads = f"the committed real-data runs ({RESULTS_DIR}/{REPLICATION_PROFILE})"
    else:
        reads = f"the grid this build exported ({Path(results_dir).name}/), not the committed one"
    if profile.dataset == "phantoms":
        data = (f"synthetic phantoms ({profile.phantoms_per_class} per class, "
                f"{profile.phantom_size} px, seed {profile.seed})")  # fmt: skip
        note = f"chapters 1-6 demonstrate the pipeline on them; the Results page reads {reads}"
    else:
        where = Path(data_dir).name if data_dir else "downloaded by kagglehub"
        data = f"the Kaggle Brain Tumors 256x256 data ({where})"
        used = weights or profile.weights
        stand_in = stand_in_note(used)
        if stand_in:
            note = (f"<b>backbone weights: a stand-in file ({Path(used).name}: {stand_in})</b>, "
                    f"{profile.image_size} px; the numbers are a rehearsal of the protocol, "
                    "not the paper's results")  # fmt: skip
        else:
            note = f"weights: {used}, {profile.image_size} px"
        note += f"; the Results page reads {reads}"
    return f"Built with profile <b>{profile.name}</b> on {data}: {note}. brainlib {__version__}."


def _page(executed: Path, out: Path) -> None:
    """The executed notebook as a book page: papermill's injected parameters removed too."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags or "parameters" in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, out)


def build_book(
    root: Path,
    profile: Profile,
    executed: list[StepResult],
    data_dir: str | None,
    log=print,
    weights: str | None = None,
    results_dir: str | Path | None = None,
) -> Path:
    """Stage the book (pages, executed notebooks, figures) and run ``jupyter-book build -W``.

    The staged copy mirrors the project (``book/``, ``notebooks/NN.ipynb``), so
    the Binder and Colab buttons of each chapter open the repository's own
    notebook of the same path.
    """
    build = root / "_build" / profile.name
    site = build / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(root / "book", site / "book")
    (site / "notebooks").mkdir()
    for step in executed:
        _page(step.path, site / "notebooks" / f"{step.name}.ipynb")
    figures = build / "figures"  # drawn by the results notebook for the other pages
    if figures.is_dir():
        shutil.copytree(figures, site / "book" / "figures", dirs_exist_ok=True)
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config.setdefault("html_theme_options", {})["announcement"] = banner(
        profile, data_dir, weights, results_dir
    )
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    shutil.copyfile(root / "_toc.yml", site / "_toc.yml")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(site), "--path-output", str(build), "-W", "-n", "--keep-going"]
    log("[book]     jupyter-book build -W (warnings are errors)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, cwd=site, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise PipelineError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
    html = build / "_build" / "html"
    log(f"[book]     {html / 'index.html'}")
    return html


def _tee(log, path: Path):
    """``log``, and each line time-stamped into ``path`` as well (the pipeline's log)."""
    from datetime import UTC, datetime

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def both(line: str) -> None:
        with lock:
            log(line)
            sys.stdout.flush()
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {line}\n")

    return both


def run(
    profile_name: str,
    root: str | Path = ".",
    data_dir: str | None = None,
    weights: str | None = None,
    overrides: dict | None = None,
    book: bool = True,
    log=print,
    solutions: bool = False,
    results_dir: str | Path | None = None,
) -> Path | None:
    """Execute every notebook, then build the book; returns the HTML folder.

    ``solutions``: execute the exercises' solutions as well (each trains or computes
    a little more; the tests do it on the smoke profile). ``results_dir``: the exported
    runs the results page reads (default: the committed ``results/real224``)."""
    root = Path(root).resolve()
    if not (root / "notebooks").is_dir() or not (root / "_config.yml").is_file():
        raise PipelineError(
            f"{root} is not the brainlib project root (no notebooks/ or _config.yml)"
        )
    profile = load_profile(profile_name, **(overrides or {}))
    log = _tee(log, root / "_build" / profile.name / "run.log")
    # without the book, the results page (a page of the book) is not executed either:
    # `make results` trains and exports first, then builds the book with its page
    names = NOTEBOOKS if book else tuple(n for n in NOTEBOOKS if n != RESULTS_NOTEBOOK)
    if results_dir is not None and book:
        results_dir = Path(results_dir).resolve()
        if not results_dir.is_dir():
            raise PipelineError(f"--results {results_dir}: no such folder (export the runs "
                                "there first: brainlib export --out)")  # fmt: skip
    steps = execute_notebooks(profile, root, data_dir, weights, overrides, names=names, log=log,
                              solutions=solutions, results_dir=results_dir)  # fmt: skip
    if not book:
        return None
    return build_book(root, profile, steps, data_dir, log=log, weights=weights,
                      results_dir=results_dir)  # fmt: skip
