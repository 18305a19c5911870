"""A fast part of the corpus (#30, benchmarks/corpus.py): real projects' documentation, pinned and fetched from
PyPI once (cached in `$HCTI_CORPUS_CACHE`, default `~/.cache/hcti-corpus`), each built plain, cold and warm and
checked by benchmarks/corpus_checks.py: every page one absolute `og:image` and `twitter:image` naming a 1200x630
card, `og:title` the page's title, files that are not pages untouched, no hcti-build warning, and a warm build
that renders nothing. A project expected to fail by a known defect is xfail (strict) until its fix is merged."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
from corpus import PROJECTS  # noqa: E402
from corpus_checks import check_site, hcti_warnings, parse, why_not_a_page  # noqa: E402
from corpus_hosts import run  # noqa: E402

# Small and fast (20-35 s together on 2 busy cores): MkDocs with Material and its overrides, Sphinx with a theme the
# Sphinx tests do not build, and `hcti og` after Hugo (Debian's). The notebooks took ~45 s more (a kernel for each
# notebook in each of four builds): the benchmark runs them.
FAST = ["starlette", "pyopenssl", "markdown-hugo"]
BY_NAME = {p.name: p for p in PROJECTS}


def _case(name: str) -> object:
    project = BY_NAME[name]
    needs = {"markdown-hugo": "hugo", "markdown-jekyll": "jekyll"}.get(name)
    marks = [pytest.mark.skipif(needs is not None and shutil.which(needs) is None, reason=f"needs Debian's {needs}")]
    if project.defect:
        marks.append(pytest.mark.xfail(strict=True, reason=project.defect))
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [_case(n) for n in FAST])
def test_a_real_project(tmp_path: Path, name: str) -> None:
    row = run(BY_NAME[name], tmp_path / name)
    assert not row.faults, "\n".join(row.faults[:20])
    assert row.pages >= 5 and row.cards >= 5


def test_what_is_not_a_page(tmp_path: Path) -> None:
    """The checks themselves: a fragment, a redirect stub and a 404 are not pages; a page with a card tag that
    should not have one, or changed, is a fault; a warning from hcti-build is found in a host's output."""
    site = tmp_path / "site"
    (site / "overrides").mkdir(parents=True)
    (site / "overrides" / "main.html").write_text("{% extends 'base.html' %}")
    (site / "old.html").write_text('<html><head><meta http-equiv="refresh" content="0; url=new/"></head></html>')
    (site / "404.html").write_text('<html><head><title>404</title><meta property="og:image" content="x"></head></html>')
    (site / "index.html").write_text("<html><head><title>Home</title></head></html>")
    assert why_not_a_page("overrides/main.html", parse(site / "overrides" / "main.html")) == "fragment (no <head>)"
    assert why_not_a_page("old.html", parse(site / "old.html")) == "redirect stub"
    before = {"old.html": b"changed since"}
    faults = check_site(site, "https://e.org/", before=before).faults
    assert "404.html: not a page (404.html), but it has card tags" in faults
    assert "old.html: redirect stub, but it was changed" in faults
    assert "index.html: 0 og:image" in faults
    assert hcti_warnings("INFO - ok\nWARNING -  hcti: card for x: bad\n") == ["WARNING -  hcti: card for x: bad"]
