"""Installed as a reader would on Colab: the wheel alone, in a fresh environment, a fresh kernel.

Builds brainlib's wheel, installs it with the ``cpu`` and ``book`` extras into a new
virtual environment (versions held to requirements/book.lock), and executes chapters
01 and 04 with papermill, each in its own kernel and without the repository on the
path: chapter 04 must train and evaluate what it needs by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_the_wheel_in_a_fresh_venv_runs_chapters_01_and_04_on_their_own(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    wheel = next(dist.glob("brainlib-*.whl"))
    venv = tmp_path / "venv"
    py = venv / "bin" / "python"
    lock = ROOT / "requirements" / "book.lock"
    if subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True).returncode:
        _run([sys.executable, "-m", "venv", str(venv)])
        _run([str(py), "-m", "pip", "install", "-q", f"{wheel}[cpu,book]", "-c", str(lock)])
    else:  # uv (the dev extra has it) installs the same versions in a fraction of the time
        _run([sys.executable, "-m", "uv", "venv", "-q", "--seed", "-p", sys.executable, str(venv)])
        _run([sys.executable, "-m", "uv", "pip", "install", "-q", "--python", str(py),
              f"{wheel}[cpu,book]", "-c", str(lock)])  # fmt: skip

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(BRAINLIB_CACHE_DIR=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="3",
               PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")  # fmt: skip
    where = _run(
        [str(py), "-c", "import brainlib; print(brainlib.__file__)"], env=env, cwd=tmp_path
    )
    assert str(venv) in where.stdout, where.stdout  # the installed wheel, not the checkout

    work = tmp_path / "colab"
    work.mkdir()
    for name in ("01_data", "04_evaluation"):
        shutil.copyfile(ROOT / "notebooks" / f"{name}.ipynb", work / f"{name}.ipynb")
        _run([str(venv / "bin" / "papermill"), f"{name}.ipynb", f"{name}.out.ipynb",
              "-k", "python3", "-p", "profile", "smoke", "-p", "runs_dir", "runs",
              "--no-progress-bar"], env=env, cwd=work)  # fmt: skip
    out = json.loads((work / "04_evaluation.out.ipynb").read_text())
    text = json.dumps([c.get("outputs", []) for c in out["cells"]])
    assert "Glioma tumor" in text and "Paper" in text  # Table 1 beside the paper's values
    assert list((work / "runs" / "smoke").glob("se-paper-seed42/metrics.json"))
