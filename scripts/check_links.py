"""Check the links of a built book: every internal link and anchor must resolve.

    python scripts/check_links.py _build/demo/_build/html [--external]

Internal links (``href`` and ``src`` of the HTML pages: other pages, images, scripts,
downloads, ``#anchors``) are resolved against the files of the build; a missing file or an
anchor that no element of the target page carries (``id``, or ``name`` on ``<a>``) is an
error. External links (``http``, ``https``) are listed; with ``--external`` each is
requested (HEAD, then GET where HEAD is refused) and one that does not answer 2xx/3xx is an
error. This workplace has no internet, so ``make test`` checks the internal links and
lists the external ones (tests/test_book.py).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

SKIP_SCHEMES = ("mailto:", "javascript:", "data:", "tel:")
#: folders of a Sphinx build that hold no pages (the theme's template macros live in _static)
NOT_PAGES = ("_static", "_sources", "_images")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        hint = tag == "link" and a.get("rel") in ("preconnect", "dns-prefetch")
        for key in ("href", "src"):
            if a.get(key) and not hint:
                self.links.append(a[key])


@dataclass
class Report:
    pages: int = 0
    internal: int = 0
    broken: list[str] = field(default_factory=list)  # "page: link (why)"
    external: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def check(root: str | Path) -> Report:
    """Resolve every internal link of the ``.html`` files under ``root``."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no built book here (build it first)")
    report = Report()
    parsed: dict[Path, _Page] = {}

    def page(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    for html in sorted(root.rglob("*.html")):
        if html.relative_to(root).parts[0] in NOT_PAGES:
            continue
        report.pages += 1
        where = html.relative_to(root).as_posix()
        for link in page(html).links:
            if link.startswith(SKIP_SCHEMES):
                continue
            parts = urlsplit(link)
            if parts.scheme in ("http", "https") or link.startswith("//"):
                report.external[link].append(where)
                continue
            report.internal += 1
            target = html if not parts.path else (html.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(root):
                report.broken.append(f"{where}: {link} (outside the book)")
            elif not target.is_file():
                report.broken.append(f"{where}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in page(target).ids:
                    report.broken.append(f"{where}: {link} (no anchor #{parts.fragment})")
    return report


def check_external(urls, timeout: float = 15.0) -> list[str]:
    """Request each URL; the ones that failed, with the reason."""
    failed = []
    for url in sorted(urls):
        for method in ("HEAD", "GET"):
            headers = {"User-Agent": "brainlib-linkcheck"}
            request = urllib.request.Request(url, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=timeout):
                    break
            except urllib.error.HTTPError as err:
                if method == "GET" or err.code not in (403, 405, 501):
                    failed.append(f"{url} (HTTP {err.code})")
                    break
            except (urllib.error.URLError, OSError) as err:
                failed.append(f"{url} ({getattr(err, 'reason', err)})")
                break
    return failed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", help="the built book's html folder")
    p.add_argument("--external", action="store_true", help="request every external link too")
    args = p.parse_args(argv)
    report = check(args.html)
    for line in report.broken:
        print(f"broken: {line}")
    failed = check_external(report.external) if args.external else []
    for line in failed:
        print(f"external link failed: {line}")
    external = f"checked, {len(failed)} failed" if args.external else "listed, not checked"
    print(
        f"{report.pages} pages, {report.internal} internal links, {len(report.broken)} broken; "
        f"{len(report.external)} external links {external}"
    )
    return 1 if report.broken or failed else 0


if __name__ == "__main__":
    sys.exit(main())
