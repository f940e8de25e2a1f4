"""The notebooks: paired with jupytext, one parameters cell, no functions of their own."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

from brainlib.workflow import NOTEBOOKS, RESULTS_NOTEBOOK

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
def test_one_parameters_cell_and_functions_only_in_method_cells(name):
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{name}: {len(params)} parameters cells"
    names = {t.id for t in ast.walk(ast.parse(params[0].source)) if isinstance(t, ast.Name)}
    if name == RESULTS_NOTEBOOK:  # reads the committed results only, not this build's runs
        assert names == {"results_dir", "figures_dir"}
    else:
        assert {"profile", "data_dir", "runs_dir", "weights", "overrides"} <= names
    for cell in nb.cells:
        if cell.cell_type != "code" or "method" in cell.metadata.get("tags", []):
            continue  # a method cell shows the method's code; tests below hold it to the package
        code = "\n".join(
            line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))
        )
        defines = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        for node in ast.walk(ast.parse(code)):
            assert not isinstance(node, defines), f"{name} defines {type(node).__name__}"
    assert any("import brainlib" in c.source or "from brainlib" in c.source for c in nb.cells)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_chapter_ends_with_exercises_each_with_a_starter_and_a_solution(name):
    """The scikit-learn MOOC's way: the question, an empty cell to answer in, and the
    solution collapsed in the book (``hide-cell``); the smoke build executes every
    solution (tests/test_book.py)."""
    cells = jupytext.read(ROOT / "notebooks" / f"{name}.py").cells
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and c.source.lstrip("# ").startswith("Exercises"))  # fmt: skip
    rest = cells[start + 1 :]
    assert len(rest) % 3 == 0 and len(rest) >= 6, f"{name}: exercises come in threes"
    for k in range(0, len(rest), 3):
        question, starter, solution = rest[k : k + 3]
        assert question.cell_type == "markdown"
        assert question.source.startswith(f"### Exercise {k // 3 + 1}"), question.source[:40]
        assert starter.cell_type == "code" and starter.source.strip() == "# Write your code here."
        tags = solution.metadata.get("tags", [])
        assert solution.cell_type == "code" and {"solution", "hide-cell"} <= set(tags)
        assert solution.source.strip(), f"{name}: exercise {k // 3 + 1} has no solution"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_chapter_opens_with_overview_prerequisites_and_time(name):
    first = jupytext.read(ROOT / "notebooks" / f"{name}.py").cells[0].source
    assert "## Overview" in first and "## Prerequisites" in first, name
    assert "**Time to run**" in first, name
    assert first.index("## Overview") < first.index("## Prerequisites") < first.index("Time to")


# ------------------------------------------- the notebooks' copies of the method agree


def method_namespace(name: str) -> dict:
    """What the cells tagged ``method`` of a notebook define."""
    nb = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    cells = [c for c in nb.cells if "method" in c.metadata.get("tags", [])]
    assert cells, f"{name} has no method cell"
    namespace: dict = {}
    for cell in cells:
        exec(compile(cell.source, f"{name}.py", "exec"), namespace)
    return namespace


def test_the_notebooks_se_block_and_head_are_the_packages():
    keras = pytest.importorskip("keras")
    import numpy as np

    from brainlib import models

    ns = method_namespace("02_model")
    features = keras.Input((5, 5, 64))
    ours = keras.Model(features, ns["paper_head"](ns["se_block"](features)))
    package = keras.Model(features, models.paper_head(models.se_block(features)))
    assert [(lay.name, type(lay).__name__) for lay in ours.layers] == [
        (lay.name, type(lay).__name__) for lay in package.layers
    ]
    for a, b in zip(ours.layers, package.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    package.set_weights(ours.get_weights())
    x = np.random.default_rng(1).normal(size=(3, 5, 5, 64)).astype("float32")
    np.testing.assert_allclose(ours.predict(x, verbose=0), package.predict(x, verbose=0),
                               rtol=0, atol=1e-6)  # fmt: skip


def test_the_notebooks_tests_by_hand_are_statsmodels():
    import numpy as np

    from brainlib import statistics

    ns = method_namespace("05_statistics")
    for counts in (
        (304, 309, 286, 309),
        (89, 91, 81, 91),
        (3, 7, 5, 9),
        (5, 5, 5, 5),
        (0, 4, 1, 4),
    ):
        assert ns["two_proportion_ztest"](*counts) == pytest.approx(
            statistics.two_proportion_ztest(*counts), rel=1e-9, abs=1e-12
        ), counts
    for b, c in ((0, 0), (2, 0), (3, 12), (12, 12), (20, 30), (40, 10)):
        a_ok = np.array([True] * b + [False] * c + [True] * 7 + [False] * 2)
        b_ok = np.array([False] * b + [True] * c + [True] * 7 + [False] * 2)
        package = statistics.mcnemar_test(a_ok, b_ok)
        stat, p = ns["mcnemar"](b, c)
        assert (stat, p) == pytest.approx((package["statistic"], package["p"]), rel=1e-9), (b, c)


def test_the_notebooks_grad_cam_is_tf_keras_vis():
    pytest.importorskip("tensorflow")
    import numpy as np
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    from brainlib.models import build_model

    ns = method_namespace("06_gradcam")
    model = build_model("se", weights="none", input_shape=(96, 96, 3), trainable_from=None)
    x = np.random.default_rng(2).uniform(-1, 1, size=(2, 96, 96, 3)).astype("float32")
    explainer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
    nonzero = 0
    for k in range(4):
        ours = ns["grad_cam"](model, x, k)
        library = explainer(CategoricalScore([k, k]), x, penultimate_layer="post_relu",
                            seek_penultimate_conv_layer=False, normalize_cam=False,
                            expand_cam=False)  # fmt: skip
        scale = max(float(np.max(library)), 1e-12)
        assert ours.shape == library.shape == (2, 3, 3)
        np.testing.assert_allclose(ours / scale, library / scale, rtol=0, atol=1e-5)
        nonzero += int(np.max(library) > 0)
    assert nonzero >= 1  # some class has a positive map: the comparison is not of zeros
    assert model.get_layer("predictions").activation.__name__ == "softmax"  # restored


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_install_cell_and_badges_open_the_projects_address(name):
    from brainlib import address

    a = address.load()
    source = (ROOT / "notebooks" / f"{name}.py").read_text(encoding="utf-8")
    assert f'# %pip install -q "{a.requirement()}"' in source  # Colab's install cell
    assert "raise ModuleNotFoundError(" in source  # ... which says so when it did not work
    assert a.colab(f"notebooks/{name}.ipynb") in source
    assert a.binder(f"notebooks/{name}.ipynb") in source


def test_the_notebooks_resize_and_perceptual_hash_are_the_packages(tmp_path):
    pytest.importorskip("tensorflow")
    import imagehash
    import numpy as np
    from PIL import Image

    from brainlib.data import tfdata
    from tests.conftest import write_image

    ns = method_namespace("01_data")
    for k, (size, target) in enumerate((((48, 40), 32), ((100, 60), 64), ((64, 64), 64),
                                         ((90, 120), 48), ((256, 256), 224))):  # fmt: skip
        image = Image.open(write_image(tmp_path / f"{k}.png", seed=k, size=size))
        ours = ns["pad_resize"](image, target).astype(int)
        package = tfdata.pad_resize(np.asarray(image.convert("RGB")), target).numpy().astype(int)
        assert ours.shape == package.shape == (target, target, 3)
        assert np.abs(ours - package).mean() < 1.0, (size, target)  # rounding, not geometry
        bits = ns["phash"](image.convert("RGB"))
        assert (bits == imagehash.phash(image.convert("RGB"), hash_size=8).hash.flatten()).all()
        assert ns["hamming"](bits, ~bits) == 64


def test_the_notebooks_training_protocol_is_the_packages():
    keras = pytest.importorskip("keras")

    from brainlib import checkpoints, protocol
    from brainlib.config import load_profile

    ns = method_namespace("03_training")
    inputs = keras.Input((4,))
    for name in ("paper", "demo", "real224"):
        P = load_profile(name)
        by_hand = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))
        package = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(inputs))
        written = protocol.settings(
            ns["compile_like_the_paper"](by_hand, P.learning_rate),
            ns["callbacks_like_the_paper"](P.early_stopping_patience, P.reduce_lr_patience,
                                           P.reduce_lr_factor, P.min_learning_rate),
        )  # fmt: skip
        early, plateau = checkpoints.resumable_callbacks(P)
        assert written == protocol.settings(protocol.compile_model(package, P), [plateau, early])
        assert written == protocol.settings(package, protocol.callbacks(P))
        assert written["EarlyStopping restore_best_weights"] is True
        assert written["learning rate"] == pytest.approx(P.learning_rate)


def test_the_notebooks_metrics_by_hand_are_the_packages():
    import numpy as np

    from brainlib import evaluation

    ns = method_namespace("04_evaluation")
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 60)
    proba = rng.dirichlet(np.ones(4), 60)
    proba[np.arange(40), y[:40]] += 1.0  # two thirds right
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    table = evaluation.per_class_table(y, proba)
    low, high = evaluation.bootstrap_table(y, proba, 300, seed=3)
    assert ns["accuracy"](y, pred) == table.loc["overall", "accuracy"]
    assert (ns["confusion_matrix"](y, pred) == evaluation.confusion(y, proba)).all()
    ours = ns["bootstrap_interval"](ns["accuracy"], y, pred, 300, seed=3)
    assert tuple(ours) == (low.loc["overall", "accuracy"], high.loc["overall", "accuracy"])


def test_the_notebooks_monte_carlo_error_and_digits_are_the_packages():
    import numpy as np

    from brainlib import display, pooled

    ns = method_namespace("04_evaluation")
    values = np.random.default_rng(2).normal(0.9, 0.02, 2000)
    assert ns["endpoint_mc_error"](values) == pytest.approx(pooled.endpoint_mc_error(values))
    for err in (0.00004, 0.0004, 0.004, 0.04, 0.4):
        assert ns["decimals"](err) == display.decimals(err, scale=1)


def test_solutions_are_shown_but_not_executed_unless_asked():
    """`brainlib run` empties the solution cells for papermill and puts their code back in
    the executed notebook (no output); `--solutions` leaves them to run."""
    import copy

    from brainlib.workflow import solution_cells, stage, to_notebook, unstage

    nb = to_notebook(ROOT / "notebooks" / "03_training.py")
    sources = [c.source for c in solution_cells(nb)]
    assert len(sources) == 3 and all(sources)
    hidden = stage(copy.deepcopy(nb), solutions=False)
    assert [c.source for c in solution_cells(hidden)] == ["", "", ""]
    others = [c.source for c in hidden.cells if c not in solution_cells(hidden)]
    assert others == [c.source for c in nb.cells if c not in solution_cells(nb)]
    back = unstage(hidden)
    assert [c.source for c in solution_cells(back)] == sources
    assert all("brainlib_solution" not in c.metadata for c in back.cells)
    shown = stage(copy.deepcopy(nb), solutions=True)
    assert [c.source for c in solution_cells(shown)] == sources
