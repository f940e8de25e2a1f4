"""The project's own set-up: one source of pins, mirrored in environment.yml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_carries_the_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = (
        project["dependencies"]
        + project["optional-dependencies"]["cpu"]
        + project["optional-dependencies"]["dev"]
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(map(_norm, pip)) == sorted(map(_norm, wanted))
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert python == "python=3.11"


def test_the_stack_is_the_known_working_one():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = " ".join(project["dependencies"])
    assert "tf-keras-vis==0.8.7" in deps and "keras==3.15" in deps
    assert "tf-keras" not in deps.replace("tf-keras-vis", "")
    assert "jupyter-book>=1.0.4,<2" in deps
    assert project["optional-dependencies"]["cpu"] == ["tensorflow-cpu==2.21.*"]
    assert project["optional-dependencies"]["gpu"] == ["tensorflow[and-cuda]==2.21.*"]


def test_library_code_bakes_in_no_path_to_the_shared_data():
    for path in (ROOT / "brainlib").rglob("*.py"):
        assert "shared/data" not in path.read_text(), path


def test_installed_packages_match_the_pins():
    from importlib.metadata import version

    assert version("keras").startswith("3.15.")
    assert version("tf-keras-vis") == "0.8.7"
    import tensorflow as tf

    assert tf.__version__.startswith("2.21.")
