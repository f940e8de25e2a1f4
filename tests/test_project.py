"""The project's own set-up: one source of pins, mirrored in environment.yml."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _book_requirements() -> list[str]:
    """What Binder and the lock file carry: the core, ``cpu`` and ``book`` pins (no test tools)."""
    project = _project()
    extras = project["optional-dependencies"]
    return project["dependencies"] + extras["cpu"] + extras["book"]


def _lock() -> dict[str, list[tuple[str, str]]]:
    """requirements/book.lock as ``name -> [(version, marker)]``."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in (ROOT / "requirements" / "book.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            pin, _, marker = line.partition(";")
            name, version = pin.strip().split("==")
            out.setdefault(canonicalize_name(name), []).append((version, marker.strip()))
    return out


def test_environment_yml_is_the_lock_for_binder():
    """Binder builds from environment.yml: the lock's exact versions, for Linux x86_64."""
    binder = load_script("binder_environment")
    text = (ROOT / "environment.yml").read_text()
    assert text == binder.render(), "run `make lock` (scripts/binder_environment.py)"
    env = yaml.safe_load(text)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = dict(p.split("==") for p in pip)
    assert all(not p.startswith(("-", "git+")) for p in pip)  # exact pins, nothing else
    assert "python=3.11" in env["dependencies"]
    for line in _book_requirements():  # every pyproject pin that applies on Binder holds
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(binder.BINDER):
            assert req.specifier.contains(pinned[req.name], prereleases=True), line


def test_the_stack_is_the_known_working_one():
    project = _project()
    deps = " ".join(project["dependencies"])
    assert "tf-keras-vis==0.8.7" in deps
    assert "tf-keras" not in deps.replace("tf-keras-vis", "")  # it drags in full TensorFlow
    assert "jupyter-book>=1.0.4,<2" in project["optional-dependencies"]["book"]
    assert not [r for r in project["dependencies"] if r.startswith(("jupyter", "papermill"))]
    assert project["optional-dependencies"]["gpu"] == ["tensorflow[and-cuda]==2.21.*"]
    lock = _lock()  # the versions the book environment resolved to
    assert lock["keras"][0][0].startswith("3.15.") and lock["tf-keras-vis"][0][0] == "0.8.7"
    assert lock["tensorflow-cpu"][0][0].startswith("2.21.") and "tf-keras" not in lock


def test_the_lock_file_agrees_with_the_pins():
    lock = _lock()
    for line in _book_requirements():
        req = Requirement(line)
        pinned = lock.get(canonicalize_name(req.name))
        assert pinned, f"{req.name} is not in requirements/book.lock: run `make lock`"
        for version, _marker in pinned:
            assert req.specifier.contains(version, prereleases=True), (line, version)


@pytest.mark.parametrize(
    ("platform", "tensorflow"),
    [("linux-x86_64", "tensorflow-cpu"), ("windows-amd64", "tensorflow-cpu"),
     ("linux-aarch64", "tensorflow"), ("macos-arm64", "tensorflow")],
)  # fmt: skip
def test_the_cpu_extra_picks_a_tensorflow_that_has_wheels_there(platform, tensorflow):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from check_platforms import requirements_for
    finally:
        sys.path.pop(0)
    chosen = [Requirement(r).name for r in requirements_for(platform, extras=("cpu",))]
    assert [n for n in chosen if n.startswith("tensorflow")] == [tensorflow]
    book = requirements_for(platform, extras=("book",))
    assert not [r for r in book if r.startswith("tensorflow")]  # the core pins no TensorFlow


def test_library_code_bakes_in_no_path_to_the_shared_data():
    for path in (ROOT / "brainlib").rglob("*.py"):
        assert "shared/data" not in path.read_text(), path


def test_installed_packages_match_the_lock():
    from importlib.metadata import version

    lock = _lock()
    for name in ("keras", "tf-keras-vis", "jupyter-book", "papermill", "jupytext"):
        assert version(name) == lock[name][0][0], name
    import tensorflow as tf

    assert tf.__version__.startswith("2.21.")


def test_the_version_is_one_number_everywhere():
    from importlib.metadata import version

    import brainlib
    from brainlib.address import DISTRIBUTION

    assert _project()["name"] == DISTRIBUTION
    assert version(DISTRIBUTION) == brainlib.__version__
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    zenodo = json.loads((ROOT / ".zenodo.json").read_text())
    assert cff["version"] == zenodo["version"] == brainlib.__version__
    changelog = (ROOT / "CHANGELOG.md").read_text()
    if ".dev" in brainlib.__version__:  # main between releases: changes gather under Unreleased
        assert "\n## Unreleased\n" in changelog and "date-released" not in cff
    else:  # a release: its own section and its date
        assert f"\n## {brainlib.__version__} " in changelog and "date-released" in cff
    assert "MIT" in (ROOT / "LICENSE").read_text() and _project()["license"] == "MIT"
    assert cff["references"][0]["doi"] == "10.7759/cureus.80084"


def test_citation_cff_passes_the_citation_file_format_schema():
    """GitHub's "Cite this repository" reads CITATION.cff; check-jsonschema carries the CFF
    1.2 schema (offline)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
         "vendor.citation-file-format", str(ROOT / "CITATION.cff")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Zenodo's deposit metadata (developers.zenodo.org, "Deposit metadata"): the licence is an
# identifier of its vocabulary (lower case, as SPDX), a relation one of DataCite's types.
DATACITE_RELATIONS = {
    "isCitedBy", "cites", "isSupplementTo", "isSupplementedBy", "isContinuedBy", "continues",
    "isDescribedBy", "describes", "hasMetadata", "isMetadataFor", "isNewVersionOf",
    "isPreviousVersionOf", "isPartOf", "hasPart", "isReferencedBy", "references",
    "isDocumentedBy", "documents", "isCompiledBy", "compiles", "isVariantFormOf",
    "isOriginalFormOf", "isIdenticalTo", "isAlternateIdentifier", "isReviewedBy", "reviews",
    "isDerivedFrom", "isSourceOf", "requires", "isRequiredBy", "isObsoletedBy", "obsoletes",
}  # fmt: skip


def test_zenodo_metadata_uses_zenodo_identifiers():
    zenodo = json.loads((ROOT / ".zenodo.json").read_text())
    assert zenodo["license"] == _project()["license"].lower() == "mit"
    assert zenodo["upload_type"] in {"software", "dataset", "publication", "other"}
    for related in zenodo["related_identifiers"]:
        assert related["relation"] in DATACITE_RELATIONS, related
    paper = next(
        r for r in zenodo["related_identifiers"] if r["identifier"] == "10.7759/cureus.80084"
    )
    assert paper["relation"] == "references"  # brainlib cites the paper; it is not its supplement


WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_every_workflow_validates_against_the_github_workflow_schema():
    """check-jsonschema carries the schema (offline): a typo in a key or an event fails here."""
    import subprocess

    exe = Path(sys.executable).with_name("check-jsonschema")
    assert WORKFLOWS and exe.is_file(), "check-jsonschema (the dev extra) is needed"
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_inputs_reach_scripts_through_the_environment(path):
    """No ``${{ inputs.* }}``, event text or secret spliced into a ``run:`` script (injection);
    they go through ``env:``."""
    jobs = yaml.safe_load(path.read_text())["jobs"]
    for name, job in jobs.items():
        for step in job.get("steps", []):
            script = step.get("run", "")
            assert not re.search(r"\$\{\{\s*(inputs|github\.event|secrets)\.", script), (
                f"{path.name}: job {name}, step {step.get('name')!r} splices an expression "
                "into its script; pass it through env:"
            )


def test_the_published_book_is_a_matrix_of_cells_gathered_into_the_paper_book():
    publish = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    jobs = publish["jobs"]

    def runs_of(job):
        return " ".join(s.get("run", "") for s in jobs[job]["steps"])

    assert "scripts/workflow_inputs.py" in runs_of("plan")  # inputs checked before any job
    assert "brainlib verify --profile paper" in runs_of("inputs")  # the download, checked
    assert "weights='imagenet'" in runs_of("inputs") and "KAGGLE_EXTERNAL" in runs_of("inputs")
    assert jobs["train"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert '--cell "$CELL"' in runs_of("train") and jobs["train"]["needs"] == ["plan", "inputs"]
    gather = runs_of("gather")
    assert "brainlib gather" in gather and "--external" in gather and "brainlib run" in gather
    assert "--profile paper" in gather
    assert any("deploy-pages" in s.get("uses", "") for s in jobs["deploy"]["steps"])
    for name, job in jobs.items():  # every job has a limit; installs are held to the lock
        assert "timeout-minutes" in job, name
        if "make venv" in runs_of(name):
            assert "CONSTRAINTS=requirements/book.lock" in runs_of(name), name
    for name in ("train", "gather"):  # something to inspect when a job fails
        assert any(s.get("if") == "failure()" for s in jobs[name]["steps"]), name
    assert "make book" in " ".join(s.get("run", "") for s in ci["jobs"]["book"]["steps"])
    assert not any("deploy-pages" in str(job) for job in ci["jobs"].values())


CURRENT_ACTIONS = {
    "actions/checkout": 6,
    "actions/setup-python": 6,
    "actions/cache": 5,
    "actions/cache/restore": 5,
    "actions/upload-artifact": 7,
    "actions/download-artifact": 7,
    "actions/upload-pages-artifact": 5,
    "actions/deploy-pages": 5,
}  # fmt: skip  (the first majors on Node 24)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_at_their_node_24_majors_and_dependabot_keeps_them(path):
    for job in yaml.safe_load(path.read_text())["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                name, _, ref = step["uses"].partition("@")
                assert int(ref.lstrip("v").split(".")[0]) >= CURRENT_ACTIONS[name], step["uses"]
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert dependabot["updates"][0]["package-ecosystem"] == "github-actions"


def _unquoted_expansions(script: str, names: set[str]) -> list[str]:
    """``$NAME`` / ``${NAME...}`` of ``names`` that bash would word-split (outside "...")."""
    out, quote, i = [], None, 0
    while i < len(script):
        c = script[i]
        if quote == "'":
            quote = None if c == "'" else quote
        elif c == "\\":
            i += 1
        elif c == '"':
            quote = None if quote == '"' else '"'
        elif c == "'" and quote is None:
            quote = "'"
        elif c == "$":
            m = re.match(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", script[i:])
            if m and m[1] in names and quote != '"':
                out.append(script[i : i + 40].splitlines()[0])
        i += 1
    return out


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_untrusted_value_reaches_a_shell_unquoted(path):
    """A value from an input, the matrix, another job's output or a secret reaches a
    script only through env:, and the script quotes it ("$X"): no word-splitting, no glob."""
    workflow = yaml.safe_load(path.read_text())
    untrusted = re.compile(r"\$\{\{\s*(inputs|matrix|needs|secrets|github\.event)\b")

    def tainted(env):
        return {k for k, v in (env or {}).items() if untrusted.search(str(v))}

    top = tainted(workflow.get("env"))
    for name, job in workflow["jobs"].items():
        names = top | tainted(job.get("env"))
        for step in job.get("steps", []):
            script = step.get("run", "")
            bad = _unquoted_expansions(script, names | tainted(step.get("env")))
            assert not bad, f"{path.name}: job {name}, step {step.get('name')!r}: {bad}"


def test_the_unquoted_check_catches_word_splitting():
    names = {"OVERRIDES", "CELL"}
    assert _unquoted_expansions('for o in $OVERRIDES; do x "$o"; done', names) == [
        '$OVERRIDES; do x "$o"; done'
    ]
    assert _unquoted_expansions('brainlib train --cell "$CELL" --runs "jobs/${CELL}"', names) == []
    assert _unquoted_expansions("python -c 'print($CELL)'", names) == []  # single quotes


def test_workflow_inputs_are_checked_before_any_job(monkeypatch, capsys):
    inputs = load_script("workflow_inputs")
    sets, problems = inputs.check("42, 43", "paper,dedup", "max_epochs=30")
    assert not problems
    assert sets == ["--set", "seeds=42,43", "--set", "splits=paper,dedup", "--set", "max_epochs=30"]
    _, problems = inputs.check("42,x,42", "paper,given,foo", "seed=1 split=grouped a;b lr=2")
    assert problems == [
        "seeds: 'x' is not a non-negative integer",
        "seeds: '42,x,42' repeats a seed",
        "splits: 'given' is not one of paper, grouped, dedup",
        "splits: 'foo' is not one of paper, grouped, dedup",
        "overrides: seed is refused here (it would move the split or replace the seeds and "
        "splits inputs)",
        "overrides: split is refused here (it would move the split or replace the seeds and "
        "splits inputs)",
        "overrides: 'a;b' is not FIELD=VALUE (letters, digits, . , + -)",
        "overrides: 'lr' is not a profile field",
    ]
    _, problems = inputs.check("42", "paper", "dropout=2")  # the profile's own check
    assert len(problems) == 1 and "dropout" in problems[0]
    monkeypatch.setenv("SEEDS", "42")
    monkeypatch.setenv("SPLITS", "paper,dedup")
    monkeypatch.setenv("OVERRIDES", "")
    monkeypatch.setenv("CODE", "abc")
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert inputs.main() == 0
    lines = dict(ln.split("=", 1) for ln in capsys.readouterr().out.splitlines())
    assert [c["cell"] for c in json.loads(lines["matrix"])["include"]] == [
        "se-paper-seed42",
        "base-paper-seed42",
        "se-dedup-seed42",
        "base-dedup-seed42",
    ]
    assert len(lines["key"]) == 16
    monkeypatch.setenv("CODE", "abd")  # other code: another cache key
    assert inputs.main() == 0
    assert (
        dict(ln.split("=", 1) for ln in capsys.readouterr().out.splitlines())["key"] != lines["key"]
    )


def _brainlib_imports() -> dict[str, set[str]]:
    """Module (``brainlib.X``, packages as one) -> the brainlib modules it imports, at the
    top or inside a function."""
    import ast

    units: dict[str, set[str]] = {}
    for path in (ROOT / "brainlib").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        unit = ".".join(parts[:2]).removesuffix(".__init__")
        found = units.setdefault(unit, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("brainlib"):
                names = [node.module] if node.module != "brainlib" else [
                    f"brainlib.{a.name}" for a in node.names]  # fmt: skip
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("brainlib")]
            found |= {".".join(n.split(".")[:2]) for n in names if n.count(".")}
        found.discard(unit)
    return units


def test_the_package_imports_in_layers_without_a_cycle():
    graph = _brainlib_imports()
    assert {"brainlib.answers", "brainlib.results", "brainlib.runs"} <= set(graph)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, dep])
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    assert "brainlib.answers" not in graph["brainlib.results"]  # answers read results, not back
