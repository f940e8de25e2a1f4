"""Installed as a reader would: the wheel alone, in a fresh environment, a fresh kernel.

Two installs, each followed by chapters 01 and 04 executed with papermill, each in its own
kernel and without the repository on the path (chapter 04 must train and evaluate what it
needs by itself):

* ``lock``: the wheel with the ``cpu`` and ``book`` extras on this interpreter, versions
  held to ``requirements/book.lock`` (a laptop, Binder, the published book);
* ``lowest``: every lower bound of pyproject's core dependencies at once (the newest
  TensorFlow that fits them), so that each bound is a version that works;
* ``colab``: Google Colab as it is today: a fresh Python 3.13 environment with Colab's
  preinstalled versions first (``requirements/colab.txt``: TensorFlow 2.20, Keras 3.13,
  NumPy 2.1, ...), then the wheel's core on top with that file as constraints, so the install
  may add packages but not move Colab's (a conflict fails the install, not a later import).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "requirements" / "colab.txt"
pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _uv() -> list[str] | None:
    ok = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
    return None if ok.returncode else [sys.executable, "-m", "uv"]


def python313() -> str | None:
    """A CPython 3.13 interpreter: $BRAINLIB_PYTHON313, python3.13 on PATH, or pyenv's."""
    candidates = [os.environ.get("BRAINLIB_PYTHON313"), shutil.which("python3.13")]
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3.13"), reverse=True)
    for path in filter(None, candidates):
        probe = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
            return path
    return None


def colab_pins() -> dict[str, str]:
    lines = [ln.strip() for ln in COLAB.read_text().splitlines()]
    return dict(ln.split("==") for ln in lines if ln and not ln.startswith("#"))


def lowest_pins() -> list[str]:
    """``name==lower bound`` for each core dependency of pyproject.toml."""
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert lows, f"{line}: no lower bound"
        pins.append(f"{req.name}=={lows[0].replace('.*', '.0')}")
    return pins


def _venv(python: str, venv: Path) -> Path:
    uv = _uv()
    if uv:
        _run([*uv, "venv", "-q", "--seed", "-p", python, venv])
    else:
        _run([python, "-m", "venv", venv])
    return venv / "bin" / "python"


def _install(py: Path, *args) -> None:
    uv = _uv()
    if uv:  # uv (the dev extra has it) installs the same versions in a fraction of the time
        _run([*uv, "pip", "install", "-q", "--python", py, *args])
    else:
        _run([py, "-m", "pip", "install", "-q", *args])


def _installed(py: Path) -> dict[str, str]:
    """canonical name -> version of what the environment of ``py`` holds."""
    listed = _run([py, "-m", "pip", "list", "--format", "json"]).stdout
    return {canonicalize_name(p["name"]): p["version"] for p in json.loads(listed)}


def _chapters_01_and_04(venv: Path, work: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(BRAINLIB_CACHE_DIR=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3",
               PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")  # fmt: skip
    py = venv / "bin" / "python"
    where = _run([py, "-c", "import brainlib; print(brainlib.__file__)"], env=env, cwd=tmp_path)
    assert str(venv) in where.stdout, where.stdout  # the installed wheel, not the checkout
    _run([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], env=env)
    work.mkdir()
    for name in ("01_data", "04_evaluation"):
        shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb", work / f"{name}.ipynb")
        _run([venv / "bin" / "papermill", f"{name}.ipynb", f"{name}.out.ipynb",
              "-k", "python3", "-p", "profile", "smoke", "-p", "runs_dir", "runs",
              "--no-progress-bar"], env=env, cwd=work)  # fmt: skip
    out = json.loads((work / "04_evaluation.out.ipynb").read_text())
    text = json.dumps([c.get("outputs", []) for c in out["cells"]])
    assert "Glioma tumor" in text and "Paper" in text  # Table 1 beside the paper's values
    assert list((work / "runs" / "smoke").glob("se-paper-seed42/metrics.json"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT])
    return next(dist.glob("*.whl"))


def test_the_wheel_with_the_lock_runs_chapters_01_and_04_on_their_own(wheel, tmp_path):
    venv = tmp_path / "venv"
    py = _venv(sys.executable, venv)
    _install(py, f"{wheel}[cpu,book]", "-c", ROOT / "requirements" / "book.lock")
    _chapters_01_and_04(venv, tmp_path / "work", tmp_path)


def test_the_lowest_versions_pyproject_allows_run_chapters_01_and_04(wheel, tmp_path):
    venv = tmp_path / "venv"
    py = _venv(sys.executable, venv)
    lowest = tmp_path / "lowest.txt"
    lowest.write_text("\n".join(lowest_pins()) + "\n")
    _install(py, wheel, "tensorflow-cpu>=2.16", "papermill==2.7.*", "ipykernel>=6.29",
             "-c", lowest)  # fmt: skip
    installed = _installed(py)
    for pin in lowest_pins():
        name, version = pin.split("==")
        assert Version(installed[canonicalize_name(name)]) == Version(version), pin
    _chapters_01_and_04(venv, tmp_path / "work", tmp_path)


def test_colab_as_today_python_313_tensorflow_220_keras_313(wheel, tmp_path):
    """Colab's runtime first, then the core on top without moving it, then 01 and 04."""
    python = python313()
    if python is None:
        message = "no Python 3.13 (set BRAINLIB_PYTHON313, or install it with pyenv)"
        if os.environ.get("CI"):
            pytest.fail(message + ": CI must run the Colab test")
        pytest.skip(message)
    venv = tmp_path / "venv"
    py = _venv(python, venv)
    _install(py, "-r", COLAB)
    # the core (no extras: Colab brings TensorFlow) and papermill to drive the chapters
    _install(py, wheel, "papermill==2.7.*", "-c", COLAB)
    installed = _installed(py)
    for name, version in colab_pins().items():  # nothing of Colab's was moved
        assert installed.get(canonicalize_name(name)) == version, (name, installed.get(name))
    assert "tensorflow" not in installed  # the core did not pull a second TensorFlow
    _chapters_01_and_04(venv, tmp_path / "work", tmp_path)
