"""The project's address is one setting; every link, badge and install line follows it."""

from __future__ import annotations

import io
import shutil
import tarfile
import tomllib
from pathlib import Path

import pytest

import brainlib
from brainlib import address, results
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def _sync_module():
    return load_script("sync_address")


def test_every_link_agrees_with_the_one_address_setting():
    sync = _sync_module()
    changed, counts = sync.sync(ROOT, write=False)
    assert not changed, {str(p.relative_to(ROOT)): kinds for p, kinds in changed.items()}
    # the patterns still find what they police: 7 notebooks (.py and .ipynb) and the README
    assert counts["colab"] >= 15 and counts["binder"] >= 15 and counts["install"] >= 15
    assert counts["actions"] >= 1 and counts["book"] >= 2 and counts["repository"] >= 3
    assert counts["branch"] == 1 and counts["clone"] >= 1


def test_a_badge_that_disagrees_fails_and_a_fork_rewrites_every_link(tmp_path):
    sync = _sync_module()
    for pattern in sync.FILES:
        for path in ROOT.glob(pattern):
            target = tmp_path / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    readme = tmp_path / "README.md"
    text = readme.read_text()
    stale = text.replace("blob/main/notebooks/01_data.ipynb", "blob/v0.1.0/notebooks/01_data.ipynb")
    assert stale != text
    readme.write_text(stale)
    changed, _ = sync.sync(tmp_path, write=False)
    assert list(changed) == [readme] and changed[readme] == ["colab"]

    fork = address.Address("https://github.com/someone/brain-fork", "v9.9.9")
    sync.sync(tmp_path, fork)
    assert not sync.sync(tmp_path, fork, write=False)[0]
    readme_text = readme.read_text()
    assert fork.colab("notebooks/01_data.ipynb") in readme_text
    assert "someone/brain-fork/actions/" in readme_text
    assert "brainlib/brainlib" not in "".join(
        p.read_text() for p in sync.files(tmp_path)
    )  # no link is left at the old address
    config = (tmp_path / "_config.yml").read_text()
    assert "url: https://github.com/someone/brain-fork\n" in config and "branch: v9.9.9" in config
    assert (
        'Repository = "https://github.com/someone/brain-fork"'
        in (tmp_path / "pyproject.toml").read_text()
    )
    assert (
        "git clone https://github.com/someone/brain-fork && cd brain-fork"
        in (tmp_path / "book" / "reproduce.md").read_text()
    )


def test_the_ref_follows_the_version():
    """A development version opens main; a release opens its own tag."""
    a = address.load()
    if ".dev" in brainlib.__version__:
        assert a.ref == "main"
    else:
        assert a.ref == f"v{brainlib.__version__}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == address.DISTRIBUTION != "brainlib"


@pytest.mark.parametrize(
    ("text", "problem"),
    [('repository = "https://gitlab.com/a/b"\nref = "main"\n', "must be https://github.com"),
     ('repository = "https://github.com/a/b"\n', "missing ['ref']"),
     ('repository = "https://github.com/a/b"\nref = "main; rm -rf"\n', "branch or tag"),
     ("repository = \n", "cannot read")],
)  # fmt: skip
def test_a_bad_address_setting_is_refused_by_name(tmp_path, text, problem):
    setting = tmp_path / "address.toml"
    setting.write_text(text)
    with pytest.raises(ValueError, match=r"address\.toml") as err:
        address.load(setting)
    assert problem in str(err.value)


def _archive_of_results(tmp_path) -> Path:
    """The repository's archive as GitHub serves it: <name>-<ref>/..., results/ inside."""
    archive = tmp_path / "brainlib-main.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(ROOT / "results" / "real224", arcname="brainlib-main/results/real224")
        readme = b"not results"
        info = tarfile.TarInfo("brainlib-main/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    return archive


def test_the_results_page_fetches_the_committed_results_where_the_repository_is_not(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("BRAINLIB_CACHE_DIR", str(tmp_path / "cache"))
    here = ROOT / "results" / "real224"
    assert results.committed(here) == here  # in a checkout: the folder itself
    url = _archive_of_results(tmp_path).as_uri()
    logged = []
    fetched = results.committed("gone/real224", url=url, log=logged.append)
    assert fetched.is_dir() and str(tmp_path / "cache") in str(fetched)
    assert [p.name for p in results.run_dirs(fetched)] == [p.name for p in results.run_dirs(here)]
    assert not (fetched.parents[1] / "README.md").exists()  # only results/ is extracted
    assert logged and url in logged[0]
    (tmp_path / "brainlib-main.tar.gz").unlink()  # cached: no second download
    assert results.committed("gone/real224", url=url, log=logged.append) == fetched
    assert len(logged) == 1


def test_a_failed_fetch_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLIB_CACHE_DIR", str(tmp_path / "cache"))
    url = (tmp_path / "missing.tar.gz").as_uri()
    with pytest.raises(results.ResultsError, match="clone the repository") as err:
        results.committed("gone/real224", url=url, log=lambda _: None)
    assert url in str(err.value) and "gone/real224" in str(err.value)


def test_the_default_archive_is_the_addresses():
    a = address.load()
    assert a.archive() == f"{a.repository}/archive/{a.ref}.tar.gz"
    assert a.book_url.startswith("https://") and a.book_url.endswith(f"/{a.slug.split('/')[1]}/")
