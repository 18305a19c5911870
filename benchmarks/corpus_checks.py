"""What a real site built with hcti-build must be, checked the same way by benchmarks/corpus.py and
tests/test_corpus_e2e.py: which HTML files are pages, each page's card tags (one `og:image` and one
`twitter:image`, absolute, naming a file of the site that is a 1200x630 image; `og:title` the page's title), files
that are not pages left alone, hcti-build's warnings in a host's output, and a build's renders (Chromium launches,
counted by a wrapper script).

Pages are read with `html.parser`, not with hcti-build's own head reader, so that a fault in that reader cannot
hide itself.
"""

from __future__ import annotations

import fnmatch
import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from PIL import Image

CARD_SIZE = (1200, 630)
# Files that are not pages by their name, whichever generator wrote them: error pages, search pages, indexes.
NOT_PAGES = ("404.html", "*/404.html", "404/index.html", "search.html", "search/index.html", "genindex*.html",
             "py-modindex.html", "*/genindex*.html", "*/py-modindex.html", "*/search.html")  # fmt: skip
# What separates a page's title from the site's name in `<title>` (MkDocs " - ", Sphinx " — ", Hugo " | ").
SEPARATORS = (" - ", " — ", " – ", " | ", " · ", " :: ", ": ")


@dataclass
class Parsed:
    """What the checks read from one HTML file."""

    has_head: bool = False
    title: str = ""
    h1: str = ""  # the first <h1>'s text, its permalink sign dropped
    refresh: bool = False
    metas: dict[str, list[str]] = field(default_factory=dict)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = Parsed()
        self.in_title = False
        self.title: list[str] = []
        self.in_h1 = 0  # 1 inside the first <h1>, 2 after it
        self.h1: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "head":
            self.out.has_head = True
        elif tag == "title" and not self.out.title and not self.title:
            self.in_title = True
        elif tag == "h1" and not self.in_h1:
            self.in_h1 = 1
        elif tag == "meta":
            if a.get("http-equiv", "").lower() == "refresh":
                self.out.refresh = True
            key = a.get("property") or a.get("name")
            if key and "content" in a:
                self.out.metas.setdefault(key, []).append(a["content"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.in_title:
            self.in_title = False
            self.out.title = " ".join("".join(self.title).split())
        elif tag == "h1" and self.in_h1 == 1:
            self.in_h1 = 2
            self.out.h1 = " ".join("".join(self.h1).split()).rstrip("¶#").strip()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        if self.in_h1 == 1:
            self.h1.append(data)


def parse(path: Path) -> Parsed:
    reader = _Reader()
    reader.feed(path.read_text(encoding="utf-8", errors="replace"))
    reader.close()
    return reader.out


def why_not_a_page(rel: str, parsed: Parsed, not_pages: tuple[str, ...] = ()) -> str | None:
    """Why the file at ``rel`` (a path in the site) is not a page, or None when it is one."""
    if not parsed.has_head:
        return "fragment (no <head>)"
    if parsed.refresh:
        return "redirect stub"
    for pattern in (*NOT_PAGES, *not_pages):
        if fnmatch.fnmatch(rel, pattern):
            return f"not a page ({pattern})"
    return None


def html_files(site: Path, skip: tuple[str, ...] = ()) -> dict[str, Path]:
    """Every HTML file of a built site by its path in the site, but those in folders ``skip`` names (assets)."""
    found = {}
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if not any(fnmatch.fnmatch(rel, pattern) for pattern in skip):
            found[rel] = path
    return found


def title_matches(og_title: str, parsed: Parsed) -> bool:
    """`og:title` is the page's title: all of `<title>`, or its start before the site's name, or (a home page,
    whose `<title>` is the site's name alone) its heading."""
    og, full = " ".join(html.unescape(og_title).split()), parsed.title
    if not og:
        return False
    return og in (full, parsed.h1) or any(full.startswith(og + sep) for sep in SEPARATORS)


def check_page(site: Path, site_url: str, rel: str, parsed: Parsed) -> list[str]:
    """A page's faults: its card tags, the card file, its title."""
    faults = []
    for key in ("og:image", "twitter:image", "og:title"):
        if len(parsed.metas.get(key, [])) != 1:
            faults.append(f"{rel}: {len(parsed.metas.get(key, []))} {key}")
    if faults:
        return faults
    if not title_matches(parsed.metas["og:title"][0], parsed):
        faults.append(f"{rel}: og:title {parsed.metas['og:title'][0]!r} is not its title {parsed.title!r}")
    for key in ("og:image", "twitter:image"):
        url = parsed.metas[key][0]
        if not url.startswith(site_url) or not urlsplit(url).netloc:
            faults.append(f"{rel}: {key} {url!r} is not absolute under {site_url}")
            continue
        card = site / unquote(url[len(site_url) :])
        if not card.is_file():
            faults.append(f"{rel}: {key} names {card.relative_to(site)}, which the site lacks")
            continue
        with Image.open(card) as im:
            if im.size != CARD_SIZE:
                faults.append(f"{rel}: {key} is {im.size[0]}x{im.size[1]}, not {CARD_SIZE[0]}x{CARD_SIZE[1]}")
    return faults


@dataclass
class SiteReport:
    """A built site checked: its pages (with a card), the files that are not pages, and every fault."""

    pages: list[str] = field(default_factory=list)
    not_pages: dict[str, str] = field(default_factory=dict)  # path -> why
    faults: list[str] = field(default_factory=list)


def check_site(
    site: Path,
    site_url: str,
    *,
    before: dict[str, bytes] | None = None,
    not_pages: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
) -> SiteReport:
    """Every page of ``site`` has its card; every file that is not a page is untouched: not a byte changed from
    ``before`` (the files as the host wrote them without hcti-build), or, where that does not have it, no card tag
    (a generator may write its own, Docusaurus on its 404 page)."""
    report = SiteReport()
    for rel, path in html_files(site, skip).items():
        parsed = parse(path)
        why = why_not_a_page(rel, parsed, not_pages)
        if why is None:
            report.pages.append(rel)
            report.faults += check_page(site, site_url, rel, parsed)
            continue
        report.not_pages[rel] = why
        if before is not None and rel in before:
            if before[rel] != path.read_bytes():
                report.faults.append(f"{rel}: {why}, but it was changed")
        elif "og:image" in parsed.metas or "twitter:image" in parsed.metas:
            report.faults.append(f"{rel}: {why}, but it has card tags")
    if not report.pages:
        report.faults.append("no page found")
    return report


def snapshot(site: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """The bytes of every HTML file of a built site (to prove later that `hcti og` left some alone)."""
    return {rel: path.read_bytes() for rel, path in html_files(site, skip).items()}


_WARNING = re.compile(r"warn", re.IGNORECASE)


def hcti_warnings(output: str) -> list[str]:
    """The lines of a host's output that are hcti-build's warnings (its logger's, its `hcti:` messages, Python
    warnings raised in hcti_build)."""
    return [line for line in output.splitlines() if "hcti" in line.lower() and _WARNING.search(line)]


def counting_chromium(folder: Path, chromium: str) -> tuple[Path, Path]:
    """A wrapper around ``chromium`` that logs each browser launch (not `--version`): (the script, its log). A
    build given it as HCTI_CHROMIUM that leaves the log as it was rendered nothing."""
    log, script = folder / "launches.log", folder / "chromium"
    folder.mkdir(parents=True, exist_ok=True)
    script.write_text(
        f'#!/bin/sh\ncase " $* " in *" --version "*) ;; *) echo launch >> "{log}" ;; esac\nexec "{chromium}" "$@"\n'
    )
    script.chmod(0o755)
    return script, log


def launches(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.is_file() else 0


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []  # (src, alt)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img" and "/hcti-" in a.get("src", ""):
            self.found.append((a["src"], a.get("alt", "")))


def _magic_alts(notebook: Path) -> list[str]:
    """The `--alt` of each `%%hcti` cell that makes an image (not a PDF), in order ("" without one)."""
    import json
    import shlex

    alts = []
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or not source.startswith("%%hcti"):
            continue
        args = shlex.split(source.splitlines()[0])
        if "pdf" in args or any(a.endswith(".pdf") for a in args):
            continue
        alts.append(args[args.index("--alt") + 1] if "--alt" in args else "")
    return alts


def notebook_faults(notebook: Path, markdown: Path) -> list[str]:
    """A notebook exported to Markdown by hcti-markdown: an image per `%%hcti` cell (fenced `hcti` blocks in
    Markdown cells may add more), each a file beside it that opens, with the cell's `--alt` as its alt text."""
    import markdown as md

    if not markdown.is_file():
        return [f"{markdown.name}: not written"]
    images = _Images()
    images.feed(md.markdown(markdown.read_text()))
    alts = _magic_alts(notebook)
    if len(images.found) < len(alts):
        return [f"{markdown.name}: {len(images.found)} hcti images for {len(alts)} %%hcti cells"]
    faults = []
    for (src, alt), want in zip(images.found, alts, strict=False):
        if want and alt != want:
            faults.append(f"{markdown.name}: {src} has alt {alt!r}, not the cell's --alt {want!r}")
    for src, _ in images.found:
        try:
            with Image.open(markdown.parent / unquote(src)) as im:
                im.load()
        except OSError as exc:
            faults.append(f"{markdown.name}: {src}: {exc}")
    return faults
