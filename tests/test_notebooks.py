"""The notebooks: paired with jupytext, one parameters cell, no functions of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

from brainlib.pipeline import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_is_in_sync_and_committed_without_outputs(name):
    py = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    ipynb_path = ROOT / "notebooks" / f"{name}.ipynb"
    assert ipynb_path.is_file(), f"{ipynb_path} missing: run `jupytext --sync notebooks/*.py`"
    nb = nbformat.read(ipynb_path, as_version=4)
    assert [(c.cell_type, c.source) for c in py.cells] == [
        (c.cell_type, c.source) for c in jupytext.read(ipynb_path).cells
    ], f"{name}: .py and .ipynb differ; run `jupytext --sync notebooks/{name}.py`"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name} has outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_one_parameters_cell_and_no_function_definitions(name):
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: {len(params)} parameters cells"
    assert {"profile", "data_dir", "runs_dir", "weights", "overrides"} <= {
        t.id for t in ast.walk(ast.parse(params[0].source)) if isinstance(t, ast.Name)
    }
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        defines = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
        for node in ast.walk(ast.parse(code)):
            assert not isinstance(node, defines), f"{name} defines {type(node).__name__}"
    assert any("import brainlib" in c.source or "from brainlib" in c.source for c in nb.cells)
