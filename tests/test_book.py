"""The whole flow on the smoke profile: seven notebooks (and their exercise solutions)
executed by papermill, the book built.

Also: the cache, a deliberately broken notebook, the rendered HTML (Tables 1-2,
Figures 1-5, the banner) and, where Debian's chromium is installed, a
headless-browser check that every image on the home and results pages loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

import brainlib
from brainlib.workflow import NOTEBOOKS, execute_notebooks, run

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_book():
    shutil.rmtree(ROOT / "_build" / "smoke", ignore_errors=True)
    lines: list[str] = []
    html = run("smoke", root=ROOT, log=lines.append, solutions=True)  # every exercise's solution
    return html, lines


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tables, self.text = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        if tag == "table":
            self.tables += 1

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Collect:
    c = _Collect()
    c.feed(path.read_text(encoding="utf-8"))
    return c


def test_smoke_profile_executes_all_notebooks_and_builds_the_book(smoke_book):
    html, lines = smoke_book
    assert (html / "index.html").is_file()
    for name in NOTEBOOKS:
        assert any(line.startswith("[done]") and name in line for line in lines), name
        page = html / "notebooks" / f"{name}.html"
        assert page.is_file(), page
        assert "Traceback" not in page.read_text(encoding="utf-8"), f"{name} shows an error"


def test_every_exercise_solution_was_executed_and_shown_collapsed(smoke_book):
    import nbformat

    from brainlib.workflow import solution_cells

    html, _ = smoke_book
    for name in NOTEBOOKS:
        executed = nbformat.read(ROOT / "_build" / "smoke" / "notebooks" / f"{name}.ipynb", 4)
        solutions = solution_cells(executed)
        assert len(solutions) >= 2, name
        for cell in solutions:
            assert cell.execution_count is not None, f"{name}: a solution did not run"
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            assert not errors, f"{name}: {errors}"
        page = (html / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert page.count("Write your code here") == len(solutions), name
        assert "tag_hide-cell" in page, name  # solutions collapsed behind a toggle


RESULTS_PAGE = Path("notebooks") / "07_replication.html"


def _pages(html: Path) -> list[Path]:
    return [html / "book" / "intro.html", html / "book" / "reproduce.html",
            *(html / "notebooks" / f"{n}.html" for n in NOTEBOOKS)]  # fmt: skip


def test_results_page_holds_tables_1_2_and_figures_1_5(smoke_book):
    html, _ = smoke_book
    page = _parse(html / RESULTS_PAGE)
    text = " ".join(page.text)
    assert "Table 1. SE model" in text and "Table 2. Base model" in text
    for n in range(1, 6):
        assert f"Figure {n} on the real data" in text, f"real Figure {n} missing"
    assert len([s for s in page.images if not s.startswith("http")]) >= 8
    for src in page.images:
        if not src.startswith(("http", "data:")):
            assert (html / RESULTS_PAGE).parent.joinpath(src).resolve().is_file(), src
    assert "0.984" in text and "0.999" in text  # the paper's headline beside the runs'


def test_results_page_shows_the_answers(smoke_book):
    from brainlib import answers
    from brainlib.results import REPLICATION_PROFILE, RESULTS_DIR

    html, _ = smoke_book
    text = " ".join(_parse(html / RESULTS_PAGE).text)
    assert "No ImageNet weights" in text
    grid = answers.Grid.open(ROOT / RESULTS_DIR / REPLICATION_PROFILE)
    for a in answers.all_answers(grid):
        first = a.sentence.split("\n")[0].split(". ")[0].replace("**", "").replace("`", "")
        squeeze = str.maketrans("", "", " \n'’")  # text nodes split; smart quotes
        assert first.translate(squeeze) in text.translate(squeeze), first
    assert any("replication_runs" in src for src in _parse(html / "book" / "intro.html").images)


def test_banner_names_the_profile_on_every_page(smoke_book):
    html, _ = smoke_book
    assert "book/intro.html" in (html / "index.html").read_text()  # the home page redirect
    for page in _pages(html):
        text = page.read_text(encoding="utf-8")
        assert re.search(r"Built with profile\s*<b>smoke</b>", text), page
        assert f"brainlib {brainlib.__version__}" in text, page


def test_no_page_shows_parameters_or_a_path_of_the_building_machine(smoke_book):
    html, _ = smoke_book
    local = {str(ROOT), str(Path.home()), os.environ.get("BRAINLIB_CACHE_DIR") or str(ROOT)}
    for page in _pages(html):
        text = " ".join(_parse(page).text)
        assert "runs_dir =" not in text and "overrides =" not in text, page
        for path in local:
            assert path not in text, f"{page} shows {path}"


def test_a_glued_figure_is_not_shown_a_second_time_by_its_cell(smoke_book):
    """myst-nb's glue stores a figure for the page to place; the cell itself must not show
    it as well (the inline backend does for a figure left open): each figure once."""
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(ROOT / "_build" / "smoke" / "notebooks" / f"{name}.ipynb", 4)
        for i, cell in enumerate(nb.cells):
            outputs = cell.get("outputs", [])
            glued = [o for o in outputs if "scrapbook" in o.get("metadata", {})
                     and any(k.endswith("image/png") for k in o.get("data", {}))]  # fmt: skip
            shown = [o for o in outputs if "image/png" in o.get("data", {})]
            assert not (glued and shown), f"{name} cell {i}: a glued figure shown again"


def test_stderr_noise_is_kept_out_of_the_pages(smoke_book):
    html, _ = smoke_book
    for name in NOTEBOOKS:
        text = (html / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert "cpu_feature_guard" not in text and "oneDNN custom operations" not in text
        assert "stderr" not in re.findall(r'class="output (\w+)"', text)


def test_unchanged_steps_are_not_executed_again(smoke_book):
    lines: list[str] = []
    from brainlib.config import load_profile

    steps = execute_notebooks(load_profile("smoke"), ROOT, log=lines.append, solutions=True)
    assert [s.executed for s in steps] == [False] * len(NOTEBOOKS)
    assert all(line.startswith("[cached]") for line in lines)


def test_the_results_page_runs_again_when_the_results_it_reads_change(tmp_path, monkeypatch):
    """Its key holds the results' content, not only their path: a re-export (same folder,
    new runs) re-executes the page; nothing changed, nothing executed."""
    import papermill

    from brainlib.config import load_profile
    from brainlib.workflow import RESULTS_NOTEBOOK

    read = []

    def execute(source, executed, parameters, **_):
        read.append(parameters["results_dir"])
        shutil.copyfile(source, executed)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    results = tmp_path / "results" / "paper"
    results.mkdir(parents=True)
    (results / "metrics.json").write_text("{}")

    def executed():
        steps = execute_notebooks(load_profile("smoke"), ROOT, build_dir=tmp_path / "build",
                                  names=(RESULTS_NOTEBOOK,), results_dir=results,
                                  log=lambda _: None)  # fmt: skip
        return [s.executed for s in steps]

    assert executed() == [True] and executed() == [False]
    (results / "metrics.json").write_text('{"accuracy": 0.9}')
    assert executed() == [True]
    assert Path(ROOT / "notebooks", read[0]).resolve() == results.resolve()


def test_a_broken_notebook_stops_the_run_with_its_name_and_cell(tmp_path):
    root = tmp_path / "project"
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    src = root / "notebooks" / "01_data.py"
    src.write_text(
        src.read_text(encoding="utf-8") + '\n# %%\nraise RuntimeError("deliberately broken")\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "brainlib", "run", "--profile", "smoke", "--root", str(root)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "notebook 01_data failed in cell" in proc.stderr
    assert "RuntimeError: deliberately broken" in proc.stderr
    assert 'raise RuntimeError("deliberately broken")' in proc.stderr
    left = root / "_build" / "smoke" / "notebooks" / "01_data.ipynb"
    assert left.is_file() and "deliberately broken" in left.read_text()
    assert not (root / "_build" / "smoke" / "notebooks" / "02_model.ipynb").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian chromium + chromium-driver not installed (.ci/run installs them)",
)
def test_home_and_results_pages_render_in_headless_chromium(smoke_book, tmp_path):
    selenium = pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    html, _ = smoke_book
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--window-size=1280,2000",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    shots = ROOT / "_build" / "smoke" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        for name, page in (
            ("home", html / "book" / "intro.html"),  # index.html only redirects here
            ("results", html / RESULTS_PAGE),
            ("model", html / "notebooks" / "02_model.html"),
            ("gradcam", html / "notebooks" / "06_gradcam.html"),
        ):
            driver.get(page.as_uri())
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            state = driver.execute_script(
                "return Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth]);"
            )
            assert state or name in ("model",), f"no images on {name}"
            # badges (Colab, Binder) come from the web, which this machine may not reach
            broken = [s for s in state if s[0].startswith("file:") and (not s[1] or s[2] == 0)]
            assert not broken, f"images that did not load on {name}: {broken}"
            assert driver.save_screenshot(str(shots / f"{name}.png"))
            assert (shots / f"{name}.png").stat().st_size > 10_000
        wide = {}  # every page: no table wider than the text column at 1280 px
        for page in _pages(html):
            driver.get(page.as_uri())
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            over = driver.execute_script(TABLES_WIDER_THAN_THE_COLUMN)
            if over:
                wide[page.name] = over
            # captions name the paper's figures; Sphinx's own "Fig. N" would read
            # "Fig. 6 Figure 3 on the real data"
            numbered = driver.execute_script(VISIBLE_FIGURE_NUMBERS)
            assert not numbered, f"{page.name} shows figure numbers: {numbered}"
        assert not wide, f"tables wider than the text column: {wide}"
    finally:
        driver.quit()
    (shots / "checked.json").write_text(json.dumps({"selenium": selenium.__version__}))


VISIBLE_FIGURE_NUMBERS = """
return Array.from(document.querySelectorAll('figcaption .caption-number'))
  .filter(e => e.offsetParent !== null).map(e => e.innerText);
"""

TABLES_WIDER_THAN_THE_COLUMN = """
const col = document.querySelector('article.bd-article') || document.querySelector('main');
const width = col.getBoundingClientRect().width;
return Array.from(col.querySelectorAll('table'))
  .map(t => [Math.round(t.getBoundingClientRect().width), Math.round(width),
             (t.innerText || '').slice(0, 50)])
  .filter(x => x[0] > x[1] + 1);
"""


def test_training_progress_reports_new_epochs_with_the_time_left(tmp_path):
    """`brainlib run` follows the runs: one line per new epoch, its numbers from history.csv,
    other log lines passed on in order, and what was there before stays quiet."""
    import json as _json

    from brainlib import runs
    from brainlib.workflow import TrainingProgress

    run = tmp_path / "runs" / "demo" / "se-paper-seed42"
    run.mkdir(parents=True)
    (run / "run.json").write_text(_json.dumps({"profile": {"max_epochs": 10}}))
    stamp = "2026-11-28T00:00:00+00:00"
    history: list[dict] = []

    def epoch(e: int, seconds: float, partial: bool = False) -> str:
        row = {"epoch": e, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6}
        history.append({**row, "val_accuracy": 0.75, "learning_rate": 1e-3, "seconds": seconds})
        runs.write_history(run, history)
        return f"{stamp} epoch {e:3d}  loss 0.5000" + ("" if partial else "  (log)\n")

    (run / "log.txt").write_text(epoch(1, 10.0))
    seen: list[str] = []
    progress = TrainingProgress(tmp_path / "runs", "03_training", seen.append)
    progress.poll()
    assert seen == []  # what was there before the notebook started is not news
    with open(run / "log.txt", "a") as fh:
        fh.write(epoch(2, 30.0) + epoch(3, 20.0) + epoch(4, 20.0, partial=True))  # half a line
    progress.poll()
    assert len(seen) == 2
    assert seen[0].startswith("[03_training] demo/se-paper-seed42: epoch 2/10  loss 0.5000")
    assert "val_acc 0.7500" in seen[0] and "at most 2 min 40 s left in this run" in seen[0]
    assert "epoch 3/10" in seen[1] and "at most 2 min 20 s left" in seen[1]  # 7 x 20 s
    with open(run / "log.txt", "a") as fh:
        fh.write(f"  acc 0.8000 (log)\n{stamp} complete: 4 epochs, best epoch 3\n")
    progress.poll()
    assert "epoch 4/10" in seen[2] and seen[3].endswith("complete: 4 epochs, best epoch 3")


def _link_checker():
    from tests.conftest import load_script

    return load_script("check_links")


def test_every_internal_link_and_anchor_of_the_book_resolves(smoke_book):
    from brainlib import address

    html, _ = smoke_book
    report = _link_checker().check(html)
    assert report.pages >= 10 and report.internal > 100, report  # the checker saw the book
    assert not report.broken, "\n".join(report.broken)
    a = address.load()  # and every launch link of the book opens the project's address
    launch = [u for u in report.external if "colab.research.google.com/github" in u
              or "mybinder.org/v2" in u]  # fmt: skip
    assert len(launch) >= 2 * len(NOTEBOOKS), launch
    for url in launch:
        assert url in {f(f"notebooks/{n}.ipynb") for n in NOTEBOOKS for f in (a.colab, a.binder)}


def test_the_external_links_are_checked_where_the_network_allows(smoke_book):
    html, _ = smoke_book
    checker = _link_checker()
    external = checker.check(html).external
    assert any("doi.org/10.7759/cureus.80084" in u for u in external)  # the paper is cited
    if not os.environ.get("BRAINLIB_LINKCHECK_EXTERNAL"):
        pytest.skip(f"{len(external)} external links listed, not requested: this workplace has "
                    "no internet; set BRAINLIB_LINKCHECK_EXTERNAL=1 where it has")  # fmt: skip
    assert not checker.check_external(external), "external links that do not answer"


def test_the_link_checker_finds_a_missing_page_and_a_missing_anchor(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#here">ok</a> <a href="sub/page.html#gone">anchor</a>'
        '<a href="missing.html">page</a> <img src="_images/x.png"> <a href="#top">self</a>'
        '<h1 id="top">t</h1><a href="https://example.org/">out</a><a href="mailto:a@b">m</a>'
    )
    (tmp_path / "sub" / "page.html").write_text('<section id="here"></section><a href="../">up</a>')
    report = _link_checker().check(tmp_path)
    assert report.pages == 2 and report.internal == 6
    assert sorted(report.broken) == [
        "index.html: _images/x.png (no such file)",
        "index.html: missing.html (no such file)",
        "index.html: sub/page.html#gone (no anchor #gone)",
    ]
    assert list(report.external) == ["https://example.org/"]
