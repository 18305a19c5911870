"""Real `mkdocs build` of fixture sites, both themes: cards, meta tags, directives, incremental, --strict."""

from __future__ import annotations

import contextlib
import html
import io
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import jinja2
import pytest
import yaml
from conftest import load
from PIL import Image

from hcti_build import Checker as _Checker
from hcti_build import ImageQuery, Store
from hcti_build.integrations.mkdocs.config import configured_site_url as _configured_site_url
from hcti_build.integrations.mkdocs.meta import HeadLoader as _HeadLoader
from hcti_build.integrations.mkdocs.meta import insert_meta as _insert_meta

MKDOCS = [sys.executable, "-m", "mkdocs"]
ROOT = Path(__file__).resolve().parent.parent  # the project: its own site's mkdocs.yml, docs and main job
T = TypeVar("T")


def make_site(
    root: Path, *, theme: str = "material", extra: str = "", site_url: str | None = "https://example.org/docs/"
) -> Path:
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "docs" / "css").mkdir()
    (root / "docs" / "css" / "badge.css").write_text(".b{display:inline-block;width:100px;height:20px;background:rgb(0,0,255)}")
    url = f"site_url: {site_url}\n" if site_url else ""
    (root / "mkdocs.yml").write_text(
        f"site_name: Test & Co\n{url}site_description: The default description\n"
        f"theme:\n  name: {theme}\nplugins:\n  - hcti{extra}\n"
    )
    (root / "docs" / "index.md").write_text(
        '# Home <"quoted"> & more\n\n```hcti alt="A blue badge"\n<link rel="stylesheet" href="css/badge.css"><span class="b"></span>\n```\n'
    )
    (root / "docs" / "guide" / "setup.md").write_text(
        "---\ndescription: Set it up ✨ 日本語\nhcti:\n  card:\n    background: '#ff0000'\n---\n# Setup\n\n"
        "![Badge](hcti:../css/../guide/badge.html?label=ok&device_scale=1)\n"
    )
    (root / "docs" / "guide" / "badge.html").write_text('<b style="font-size:20px">{{ label }}</b>')
    (root / "docs" / "guide" / "private.md").write_text("---\nhcti:\n  card: false\n---\n# Private\n")
    return root


def mkdocs(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MKDOCS, "build", *args], cwd=root, capture_output=True, text=True, timeout=240)


def metas(page: Path) -> dict[str, str]:
    text = page.read_text()
    head = text[: text.index("</head>")]
    found = re.findall(r'<meta (?:property|name)="((?:og|twitter):[^"]+)" content="([^"]*)">', head)
    assert len(found) == len({k for k, _ in found}), "duplicate meta tags"
    return {k: html.unescape(v) for k, v in found}


@pytest.mark.parametrize("theme", ["material", "mkdocs"])
def test_cards_meta_tags_and_directives(tmp_path: Path, theme: str) -> None:
    root = make_site(tmp_path, theme=theme)
    r = mkdocs(root, "--strict")
    assert r.returncode == 0, r.stderr
    assert re.search(r"hcti: 2 cards \(2 rendered, 0 reused\), 2 directive images; Chromium launched 1 time", r.stderr)

    home = metas(root / "site" / "index.html")
    assert home["og:title"] == 'Home <"quoted"> & more'
    assert home["og:description"] == "The default description"
    assert home["og:url"] == "https://example.org/docs/"
    assert home["twitter:card"] == "summary_large_image" and home["og:image:type"] == "image/png"
    assert (home["og:image:width"], home["og:image:height"]) == ("1200", "630")
    assert home["og:image"] == home["twitter:image"]
    assert re.fullmatch(r"https://example\.org/docs/assets/images/social/[0-9a-f-]{36}\.png", home["og:image"])
    card = root / "site" / home["og:image"].removeprefix("https://example.org/docs/")
    assert card.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and load(card).size == (1200, 630)

    setup = metas(root / "site" / "guide" / "setup" / "index.html")
    assert setup["og:description"] == "Set it up ✨ 日本語"
    assert setup["og:url"] == "https://example.org/docs/guide/setup/"
    setup_card = load(root / "site" / setup["og:image"].removeprefix("https://example.org/docs/"))
    r_, g_, b_ = setup_card.convert("RGB").getpixel((5, 5))
    assert r_ > 200 and g_ < 60 and b_ < 60  # front matter overrides the background
    assert metas(root / "site" / "guide" / "private" / "index.html") == {}  # opted out

    page = (root / "site" / "index.html").read_text()
    (src,) = re.findall(r'<img src="(assets/hcti/[^"]+\.png)" alt="A blue badge" width="100" height="20">', page)
    assert load(root / "site" / src).getpixel((50, 10))[:3] == (0, 0, 255)
    setup_html = (root / "site" / "guide" / "setup" / "index.html").read_text()
    (badge,) = re.findall(r'<img src="\.\./\.\./(assets/hcti/[^"]+)" alt="Badge"', setup_html)
    assert (root / "site" / badge).is_file()

    again = mkdocs(root, "--strict")
    assert again.returncode == 0, again.stderr
    assert "hcti: 2 cards (0 rendered, 2 reused), 2 directive images; Chromium launched 0 time(s)" in again.stderr
    assert metas(root / "site" / "index.html") == home
    # A card is a hard link to the store's checked copy (no bytes copied); an edit made in place through the
    # site reaches the store's copy, which the next build finds by its hash and renders again.
    (stored,) = (root / ".cache" / "hcti" / "objects").rglob(card.name)
    assert card.samefile(stored)
    good = card.read_bytes()
    with open(card, "r+b") as fh:
        fh.seek(len(good) - 20)
        fh.write(bytes([good[-20] ^ 1]))
    corrupt = stored.read_bytes()
    assert corrupt != good
    third = mkdocs(root, "--strict")
    assert third.returncode == 0, third.stderr
    assert card.read_bytes() == stored.read_bytes() != corrupt and load(card).size == (1200, 630)


def test_globs_format_and_scale(tmp_path: Path) -> None:
    extra = ":\n      cards_format: jpg\n      device_scale: 0.5\n      cards_include: ['guide/*']\n      cards_exclude: ['guide/private.md']"
    root = make_site(tmp_path, extra=extra)
    r = mkdocs(root)
    assert r.returncode == 0, r.stderr
    assert metas(root / "site" / "index.html") == {}  # not included
    setup = metas(root / "site" / "guide" / "setup" / "index.html")
    assert setup["og:image"].endswith(".jpg") and setup["og:image:type"] == "image/jpeg"
    data = (root / "site" / setup["og:image"].removeprefix("https://example.org/docs/")).read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and load(data).size == (600, 315)
    assert (setup["og:image:width"], setup["og:image:height"]) == ("600", "315")


def test_strict_fails_on_a_bad_directive_and_on_a_missing_site_url(tmp_path: Path) -> None:
    root = make_site(tmp_path / "a")
    (root / "docs" / "bad.md").write_text("---\ntitle: Bad\n---\n# Bad\n\n```hcti viewport_width=10\n<b>x</b>\n```\n")
    r = mkdocs(root)
    assert r.returncode != 0
    assert "docs/bad.md:6:1: viewport_width and viewport_height must be used together" in r.stderr
    assert "Traceback" not in r.stderr

    bare = make_site(tmp_path / "b", site_url=None)
    r = mkdocs(bare)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("site_url is not set") == 1
    assert mkdocs(bare, "--strict").returncode != 0


def test_custom_template_reads_local_files_whose_bytes_are_in_the_hash(tmp_path: Path) -> None:
    root = make_site(
        tmp_path, extra=":\n      cards_template: overrides/card.html\n      cards_options: {tint: 'rgb(0, 128, 0)'}"
    )
    (root / "overrides").mkdir()
    (root / "overrides" / "card.css").write_text("body{margin:0;background:rgb(0,128,0)}")
    (root / "overrides" / "card.html").write_text(
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="card.css"></head>'
        "<body><h1>{{ page.title }} | {{ site.name }}</h1></body></html>"
    )
    assert mkdocs(root).returncode == 0
    first = metas(root / "site" / "index.html")["og:image"]
    assert load(root / "site" / first.removeprefix("https://example.org/docs/")).convert("RGB").getpixel((1100, 600)) == (
        0,
        128,
        0,
    )
    (root / "overrides" / "card.css").write_text("body{margin:0;background:rgb(0,0,128)}")
    r = mkdocs(root)
    assert "2 cards (2 rendered, 0 reused)" in r.stderr
    second = metas(root / "site" / "index.html")["og:image"]
    assert second != first  # a changed card gets a new URL, so social sites fetch it again

    # Unchanged cards are remembered by their template values (cards-memo.json); a changed template, a changed
    # page and a changed option each still reach the cards they change, and only those.
    assert "2 cards (0 rendered, 2 reused)" in mkdocs(root).stderr
    memo = root / ".cache" / "hcti" / "cards-memo.json"
    assert memo.is_file()
    memo.write_text('{"header": [tru')  # a damaged memo is ignored, and written again whole
    r = mkdocs(root, "--strict")
    assert r.returncode == 0 and "2 cards (0 rendered, 2 reused)" in r.stderr, r.stderr
    assert json.loads(memo.read_text())["cards"]
    template = (root / "overrides" / "card.html").read_text()
    (root / "overrides" / "card.html").write_text(template.replace("<h1>", "<h1 style='color:{{ options.tint }}'>"))
    assert "2 cards (2 rendered, 0 reused)" in mkdocs(root).stderr
    setup = root / "docs" / "guide" / "setup.md"
    setup.write_text(setup.read_text().replace("Set it up", "Set it all up"))  # the template does not show it
    assert "2 cards (0 rendered, 2 reused)" in mkdocs(root).stderr
    assert metas(root / "site" / "guide" / "setup" / "index.html")["og:description"].startswith("Set it all up")
    setup.write_text(setup.read_text().replace("# Setup", "# Setup again"))
    assert "2 cards (1 rendered, 1 reused)" in mkdocs(root).stderr
    assert metas(root / "site" / "guide" / "setup" / "index.html")["og:title"] == "Setup again"
    (root / "mkdocs.yml").write_text((root / "mkdocs.yml").read_text().replace("rgb(0, 128, 0)", "rgb(0, 0, 0)"))
    assert "2 cards (2 rendered, 0 reused)" in mkdocs(root).stderr
    assert "2 cards (0 rendered, 2 reused)" in mkdocs(root).stderr


def test_the_theme_logo_is_on_every_card_and_a_new_logo_makes_new_cards(tmp_path: Path) -> None:
    root = make_site(tmp_path)
    (root / "mkdocs.yml").write_text(
        (root / "mkdocs.yml").read_text().replace("  name: material\n", "  name: material\n  logo: logo.png\n")
    )
    Image.new("RGB", (72, 72), (255, 0, 0)).save(root / "docs" / "logo.png")
    r = mkdocs(root, "--strict")
    assert r.returncode == 0, r.stderr

    def logo_pixel() -> tuple[int, int, int]:
        image = metas(root / "site" / "index.html")["og:image"]
        return load(root / "site" / image.removeprefix("https://example.org/docs/")).convert("RGB").getpixel((116, 100))

    red = logo_pixel()  # the built-in card's header: a 72 px logo at (80, 64), at 95% opacity
    assert red[0] > 230 and red[1] < 30 and red[2] < 30
    Image.new("RGB", (72, 72), (0, 0, 255)).save(root / "docs" / "logo.png")
    r = mkdocs(root, "--strict")
    assert "2 cards (2 rendered, 0 reused)" in r.stderr
    blue = logo_pixel()
    assert blue[0] < 30 and blue[1] < 30 and blue[2] > 230


def test_a_page_the_memo_cannot_key_still_ties_the_memo_to_the_template(tmp_path: Path) -> None:
    """Front matter whose keys JSON cannot sort has no memo entry; when that page is the one that loads the
    template, the template's hash must still be recorded, or an edited template would leave other cards stale."""
    root = make_site(tmp_path, extra=":\n      cards_template: overrides/card.html")
    (root / "overrides").mkdir()
    (root / "overrides" / "card.html").write_text("<body style='margin:0;background:rgb(0,128,0)'><h1>{{ page.title }}</h1>")
    index = root / "docs" / "index.md"
    index.write_text("---\nextra: {1: one, two: 2}\n---\n" + index.read_text())
    assert "2 cards (2 rendered, 0 reused)" in mkdocs(root).stderr
    (root / "overrides" / "card.html").write_text("<body style='margin:0;background:rgb(0,0,128)'><h1>{{ page.title }}</h1>")
    assert "2 cards (2 rendered, 0 reused)" in mkdocs(root).stderr
    setup = metas(root / "site" / "guide" / "setup" / "index.html")["og:image"]
    assert load(root / "site" / setup.removeprefix("https://example.org/docs/")).convert("RGB").getpixel((600, 600)) == (
        0,
        0,
        128,
    )


def test_the_helper_confirms_intact_images_only(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reused card is linked unread only if the helper process hashed its file against the store and the file
    is still the one it read; anything else is checked (and rendered again if damaged) in the build."""
    ids = sorted(store.create({"html": f"<p>{n}</p>", "viewport_width": 300, "viewport_height": 200})["id"] for n in "ab")
    good, damaged = ids
    path = store.stored_path(damaged, ImageQuery())
    data = bytearray(path.read_bytes())
    data[-20] ^= 1
    path.write_bytes(bytes(data))  # same size: only the hash tells
    old = time.time_ns() - 10**10
    for image_id in ids:  # a file written in the last 2 s is checked by the build (its mtime may not tell)
        os.utime(store.stored_path(image_id, ImageQuery()), ns=(old, old))
    checker = _Checker.start(store, [*ids, "00000000-0000-8000-8000-000000000000"])
    assert checker.checked(good) == (600, 400)  # the API's default device_scale is 2
    assert checker.checked(damaged) is None
    assert checker.checked("00000000-0000-8000-8000-000000000000") is None  # not in the store
    store.stored_path(good, ImageQuery()).write_bytes(path.read_bytes())  # rewritten after the helper read it
    assert checker.checked(good) is None
    checker.close()
    fresh = store.create({"html": "<p>c</p>", "viewport_width": 300, "viewport_height": 200})["id"]
    recent = _Checker.start(store, [fresh])
    assert recent.checked(fresh) is None  # written just now: left to the build's check
    recent.close()
    os.utime(store.stored_path(fresh, ImageQuery()), ns=(old, old))
    settled = _Checker.start(store, [fresh])
    assert settled.checked(fresh) == (600, 400)
    settled.close()

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert _Checker.start(store, [fresh]).checked(fresh) is None  # no helper: the build checks it itself


def test_insert_meta_keeps_the_theme_tags_and_escapes() -> None:
    page = '<html><head><meta property="og:title" content="Theme title"></head><body></body></html>'
    out = _insert_meta(page, {"og:title": "Mine", "og:description": 'a "b" <c>', "twitter:card": "summary_large_image"})
    assert out.count("og:title") == 1 and "Theme title" in out
    assert '<meta property="og:description" content="a &quot;b&quot; &lt;c&gt;">' in out
    assert '<meta name="twitter:card" content="summary_large_image">' in out


@pytest.mark.parametrize(
    ("yml", "card_url"),
    [
        ("INHERIT: base.yml\n", "https://docs.example.com/x/"),  # base.yml: !ENV, with the variable set
        ("site_url: https://example.org/docs\n", "https://example.org/docs/"),
        ("", None),
        ("site_url: http://127.0.0.1:8123/x/\n", "http://127.0.0.1:8123/x/"),  # as configured, however odd
    ],
)
def test_a_card_shows_the_site_url_of_mkdocs_yml_when_serve_replaced_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, yml: str, card_url: str | None
) -> None:
    from mkdocs.config import load_config

    monkeypatch.setenv("DOCS_URL", "https://docs.example.com/x")
    (tmp_path / "docs").mkdir()
    (tmp_path / "base.yml").write_text("site_url: !ENV [DOCS_URL, 'https://fallback.example/']\n")
    (tmp_path / "mkdocs.yml").write_text(f"site_name: S\n{yml}")
    config = load_config(config_file=str(tmp_path / "mkdocs.yml"), dev_addr="127.0.0.1:8123")
    built = config.site_url
    assert _configured_site_url(config) == built == card_url  # a build: what MkDocs has
    config.site_url = "http://127.0.0.1:8123/x/"  # what `mkdocs serve` does before the first build
    assert _configured_site_url(config) == card_url


def test_head_loader_adds_the_tags_only_in_template_text() -> None:
    templates = {
        "base.html": "<html><head><title>{{ t }}</title></head><body></body></html>",
        "in_string.html": '{{ "<html><head></head>" }}<body></body>',
        "in_raw.html": "{% raw %}</head>{% endraw %}<p>",
        "no_head.html": "<p>{{ t }}</p>",
    }
    env = jinja2.Environment(loader=_HeadLoader(jinja2.DictLoader(templates)))
    assert (
        env.get_template("base.html").render(t="x", hcti_head="<meta>")
        == "<html><head><title>x</title><meta></head><body></body></html>"
    )
    assert env.get_template("base.html").render(t="x") == templates["base.html"].replace("{{ t }}", "x")  # not a card page
    assert env.get_template("in_string.html").render(hcti_head="<meta>") == "<html><head></head><body></body>"
    assert env.get_template("in_raw.html").render(hcti_head="<meta>") == "</head><p>"
    assert env.get_template("no_head.html").render(t="x", hcti_head="<meta>") == "<p>x</p>"


@pytest.mark.parametrize(
    "main",
    [
        # The theme writes og:title itself (in its template's head): the plugin leaves it, and adds the rest.
        '{% extends "base.html" %}{% block extrahead %}<meta property="og:title" content="Theme title">{% endblock %}',
        # A head the loader cannot add to (inside a Jinja string): the plugin adds the tags to the built page.
        '{{ "<!doctype html><html><head><title>" }}{{ page.title }}{{ "</title></head>" }}<body>{{ page.content }}</body></html>',
    ],
    ids=["theme-og-title", "head-in-jinja-string"],
)
def test_meta_tags_once_whatever_the_theme_head(tmp_path: Path, main: str) -> None:
    root = make_site(tmp_path, theme="mkdocs\n  custom_dir: overrides")
    (root / "overrides").mkdir()
    (root / "overrides" / "main.html").write_text(main)
    r = mkdocs(root, "--strict")
    assert r.returncode == 0, r.stderr
    for page in ("index.html", "guide/setup/index.html"):
        tags = metas(root / "site" / page)  # each tag once
        assert tags["og:title"] == ("Theme title" if "Theme title" in main else tags["twitter:title"])
        assert tags["twitter:card"] == "summary_large_image" and tags["og:image"] == tags["twitter:image"]
        assert (root / "site" / tags["og:image"].removeprefix("https://example.org/docs/")).is_file()
    assert "hcti_head" not in (root / "site" / "index.html").read_text()


class Serve:
    """A real `mkdocs serve` (or `properdocs serve`) on 127.0.0.1 and a free port, its log read as it comes."""

    def __init__(self, root: Path, host: list[str] = MKDOCS) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [*host, "serve", "-f", "mkdocs.yml", "-a", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.log: list[str] = []
        stderr = self.proc.stderr
        assert stderr is not None
        self.reader = threading.Thread(target=lambda: self.log.extend(iter(stderr.readline, "")), daemon=True)
        self.reader.start()

    def close(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        self.proc.wait(timeout=20)
        self.reader.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    def wait_for(self, cond: Callable[[], T | None], timeout: float = 90) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                value = cond()
            except OSError:
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError("timed out; log:\n" + "".join(self.log))

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
            return bytes(r.read())

    def og_image(self, page: str) -> str:
        m = re.search(r'<meta property="og:image" content="([^"]+)">', self.get(page).decode())
        assert m
        return m.group(1)

    def card_of(self, page: str) -> str:
        """The path of the page's card on the dev server."""
        return "/" + self.og_image(page).split("://", 1)[-1].split("/", 1)[1]

    def builds(self) -> list[str]:
        return [line for line in self.log if "hcti: " in line and " cards (" in line]

    def rebuilt(self, n: int) -> list[str]:
        """Builds after the n-th that rendered something: an edit can reach the watcher as two events, and the
        second one's build renders nothing."""
        return [line for line in self.builds()[n:] if "(0 rendered" not in line]


@contextlib.contextmanager
def serving(root: Path, host: list[str] = MKDOCS) -> Iterator[Serve]:
    served = Serve(root, host)
    try:
        yield served
    finally:
        served.close()


def test_mkdocs_serve_keeps_one_browser_and_re_renders_changed_cards(tmp_path: Path) -> None:
    """`mkdocs serve`: editing a stylesheet the card template reads re-renders the cards with the same browser;
    editing one page re-renders that page's card only."""
    root = make_site(tmp_path, theme="mkdocs", extra=":\n      cards_template: overrides/card.html")
    (root / "overrides").mkdir()
    (root / "overrides" / "card.css").write_text("body{margin:0}.c{width:1200px;height:630px;background:rgb(255,0,0)}")
    (root / "overrides" / "card.html").write_text('<link rel="stylesheet" href="card.css"><div class="c">{{ page.title }}</div>')
    with serving(root) as s:
        first = s.wait_for(lambda: s.card_of("/"))
        assert load(s.get(first)).getpixel((600, 315))[:3] == (255, 0, 0)
        assert "Chromium launched 1 time" in s.builds()[-1]
        (root / "overrides" / "card.css").write_text("body{margin:0}.c{width:1200px;height:630px;background:rgb(0,0,255)}")
        n = len(s.builds())
        second = s.wait_for(lambda: (c := s.card_of("/")) != first and c)
        im = load(io.BytesIO(s.get(second)).getvalue())
        assert im.size == (1200, 630) and im.getpixel((600, 315))[:3] == (0, 0, 255)
        css_rebuild = s.wait_for(lambda: s.rebuilt(n))[0]
        assert re.search(r"2 cards \(2 rendered, 0 reused\).*Chromium launched 1 time", css_rebuild), css_rebuild
        n = len(s.builds())
        setup = root / "docs" / "guide" / "setup.md"
        setup.write_text(setup.read_text().replace("# Setup", "# Setting up"))
        first_rebuild = s.wait_for(lambda: s.rebuilt(n))[0]
        assert re.search(r"2 cards \(1 rendered, 1 reused\).*Chromium launched 1 time", first_rebuild), first_rebuild
        assert s.card_of("/") == second


@pytest.mark.parametrize("host", [MKDOCS, [sys.executable, "-m", "properdocs"]], ids=["mkdocs", "properdocs"])
def test_serve_renders_none_of_the_cards_a_build_made(tmp_path: Path, host: list[str]) -> None:
    """`serve` makes the dev server's address the site_url; a card shows mkdocs.yml's site_url, served or built,
    so serving a built site renders no card and serves the built bytes. The served page's tags carry the dev
    address, so its og:image opens in the dev server."""
    root = make_site(tmp_path, theme="mkdocs")
    built = subprocess.run([*host, "build", "-f", "mkdocs.yml"], cwd=root, capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr
    assert "hcti: 2 cards (2 rendered, 0 reused)" in built.stderr
    cards = {}
    for page in ("", "guide/setup/"):
        image = metas(root / "site" / page / "index.html")["og:image"]
        cards[page] = (root / "site" / image.removeprefix("https://example.org/docs/")).read_bytes()
    with serving(root, host) as s:
        summary = s.wait_for(s.builds)[0]
        assert "hcti: 2 cards (0 rendered, 2 reused), 2 directive images; Chromium launched 0 time(s)" in summary
        for page, card in cards.items():
            image = s.og_image(f"/docs/{page}")
            assert image.startswith(f"http://127.0.0.1:{s.port}/docs/assets/images/social/")
            assert s.get(s.card_of(f"/docs/{page}")) == card


def test_the_projects_own_cards_show_where_the_site_is_published(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/main.sh builds this project's site with mkdocs.yml as it is (no HCTI_SITE_URL): its cards show
    that site_url, which must not be a dev server's (they showed 127.0.0.1:8000)."""
    from mkdocs.config import load_config

    monkeypatch.delenv("HCTI_SITE_URL", raising=False)
    commands = re.sub(r"#.*", "", (ROOT / "examples" / "main.sh").read_text())
    assert not re.search(r"127\.0\.0\.1|localhost|\[::1\]|0\.0\.0\.0", commands)
    site_url = load_config(config_file=str(ROOT / "mkdocs.yml")).site_url
    host = urlsplit(site_url or "").hostname or ""
    assert site_url and site_url.startswith("https://"), site_url
    assert host != "localhost" and not (host.replace(".", "").isdigit() and ipaddress.ip_address(host).is_loopback), site_url


def test_every_plugins_snippet_users_copy_keeps_search() -> None:
    """A `plugins:` key replaces MkDocs' default `[search]`: a snippet with hcti alone, added to a site without
    `plugins:`, removed its search."""
    snippets = []
    for doc in (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))):
        for block in re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), re.S):
            if re.search(r"^plugins:", block, re.M) and "hcti" in block:
                snippets.append((doc.name, block))
        for inline in re.findall(r"`(plugins: \[[^]]*\])`", doc.read_text()):
            snippets.append((doc.name, inline))
    assert len(snippets) >= 3
    for name, text in snippets:
        plugins = [p if isinstance(p, str) else next(iter(p)) for p in yaml.safe_load(text)["plugins"]]
        assert plugins[:2] == ["search", "hcti"], (name, text)


@pytest.mark.parametrize(("theme", "shown"), [("mkdocs", "Short"), ("readthedocs", "Short"), ("material", "Long Title")])
def test_og_title_is_the_title_the_theme_shows(tmp_path: Path, theme: str, shown: str) -> None:
    """Found by the corpus (Python-Markdown's docs, 19 pages): a nav title and a `title:` meta differ; MkDocs' own
    themes show the nav's in <title>, Material the meta's. og:title and the card say what <title> says."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n")
    (tmp_path / "docs" / "a.md").write_text("---\ntitle: Long Title\n---\n# Heading\n")
    (tmp_path / "mkdocs.yml").write_text(
        f"site_name: S\nsite_url: https://e.org/\ntheme: {theme}\nnav: [{{Home: index.md}}, {{Short: a.md}}]\nplugins: [search, hcti]\n"
    )
    done = mkdocs(tmp_path)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "site" / "a" / "index.html").read_text()
    title = html.unescape(re.search(r"<title>(.*?)</title>", page, re.S)[1]).strip()  # type: ignore[index]
    assert title.startswith(f"{shown} ") or title == shown, title
    assert metas(tmp_path / "site" / "a" / "index.html")["og:title"] == shown
