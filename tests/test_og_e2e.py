"""`hcti og` on built sites: a hand-written one (screenshots by hcti:selector, html:tv: values, opt-outs, broken
pages), and the real generators' output (`zensical build`, `sphinx-build`), run by their own CLIs; and the MkDocs
plugin under `properdocs build`."""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CountingChromium, load, meta_tags
from PIL import Image

BIN = Path(sys.executable).parent
HCTI = [str(BIN / "hcti")]
SITE_URL = "https://example.org/docs/"
OWNED = ("og:image", "og:image:type", "og:image:width", "og:image:height", "og:image:alt", "twitter:card", "twitter:image")
PAGE_TAGS = ("og:title", "og:url", "og:type", "og:site_name", *OWNED)  # and og:description where the page has one

CARD = """<!DOCTYPE html><html><head><style>html,body{margin:0}
body{width:{{ width }}px;height:{{ height }}px;background:{{ colour | default('#00ff00') | css }}}</style></head>
<body><h1>{{ page.title }}</h1><p>{{ site.name }} {{ count * 2 if count is defined else '' }}</p></body></html>
"""


def page(title: str, head: str = "", body: str = "<p>text</p>") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8">\n    <title>{title} - Hand Site</title>\n'
        f"    {head}\n  </head>\n  <body>{body}</body>\n</html>\n"
    )


def make_site(root: Path) -> Path:
    site = root / "site"
    (site / "guide").mkdir(parents=True)
    (site / "css").mkdir()
    (site / "css" / "box.css").write_text(".box{width:300px;height:150px;background:rgb(255,0,0);margin:40px}")
    (site / "index.html").write_text(page('Home & "quotes" <ok>', '<meta name="description" content="The home page">'))
    (site / "guide" / "index.html").write_text(
        page("Guide", '<meta name="html:tv:colour" content="#0000ff">\n    <meta name="html:tv:count" content="21">')
    )
    (site / "guide" / "shot.html").write_text(
        page(
            "Shot",
            '<link rel="stylesheet" href="../css/box.css">\n    <meta name="hcti:selector" content=".box">',
            '<div class="box"></div>',
        )
    )
    (site / "private.html").write_text(page("Private", '<meta name="hcti:card" content="false">'))
    (site / "old.html").write_text(page("Moved", '<meta http-equiv="refresh" content="0; url=index.html">'))
    (site / "404.html").write_text(page("Not found"))
    (site / "404").mkdir()
    (site / "404" / "index.html").write_text(page("Not found"))  # Sphinx's dirhtml with sphinx-notfound-page
    (site / "broken.html").write_text("<title>Broken <b>markup</title><meta name=description content='no quotes'><p>unclosed")
    (root / "card.html").write_text(CARD)
    return site


def og(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HCTI, "og", *args], cwd=root, capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})}
    )


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def card_of(site: Path, page_path: Path) -> Path:
    (url,) = meta_tags(page_path)["og:image"]
    assert url.startswith(SITE_URL), url
    return site / url[len(SITE_URL) :]


def test_a_hand_written_site_gets_one_card_and_one_of_each_tag(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    site = make_site(tmp_path)
    before = tree(site)
    env = {"HCTI_CHROMIUM": str(counting_chromium.path)}
    done = og(tmp_path, "site", "--site-url", SITE_URL, "--template", "card.html", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hcti og: 4 pages, 4 rendered, 0 reused, 2 skipped in ")
    for rel in ("index.html", "guide/index.html", "guide/shot.html", "broken.html"):
        tags = meta_tags(site / rel)
        assert all(len(tags.get(key, [])) == 1 for key in PAGE_TAGS) and len(tags.get("og:description", [])) <= 1, (rel, tags)
        assert tags["og:image"][0].startswith(SITE_URL) and tags["og:url"][0].startswith(SITE_URL)
        assert card_of(site, site / rel).is_file()
    home = (site / "index.html").read_text()
    assert 'content="Home &amp; &quot;quotes&quot; &lt;ok&gt;"' in home  # the <title> without " - Hand Site", escaped
    assert meta_tags(site / "index.html")["og:description"] == ["The home page"]
    assert meta_tags(site / "index.html")["og:site_name"] == ["Hand Site"]
    assert meta_tags(site / "guide/index.html")["og:url"] == [SITE_URL + "guide/"]
    for rel in ("private.html", "old.html", "404.html", "404/index.html"):  # opted out, a redirect stub, 404 pages: untouched
        assert tree(site)[rel] == before[rel]
    # Nothing else in a page changed: without the lines it added, a page is the page it was.
    kept = [line for line in home.splitlines(keepends=True) if not line.startswith(("<meta property=", "<meta name="))]
    assert hashlib.sha256("".join(kept).encode()).hexdigest() == before["index.html"]
    # The template's html:tv: values: a blue card whose text says 42; the others green, 1200x630.
    guide = load(card_of(site, site / "guide/index.html")).convert("RGB")
    assert guide.size == (1200, 630) and guide.getpixel((1150, 600)) == (0, 0, 255)
    assert load(card_of(site, site / "index.html")).convert("RGB").getpixel((1150, 600)) == (0, 255, 0)
    # hcti:selector: a screenshot of that element of the page itself, its stylesheet loaded from the site.
    shot = load(card_of(site, site / "guide/shot.html")).convert("RGB")
    assert shot.size == (300, 150) and shot.getpixel((150, 75)) == (255, 0, 0)
    assert meta_tags(site / "guide/shot.html")["og:image:width"] == ["300"]
    launches = counting_chromium.launches()
    assert launches == 1

    # Again: nothing rendered, no browser, not one byte changed.
    first = tree(site)
    again = og(tmp_path, "site", "--site-url", SITE_URL, "--template", "card.html", env=env)
    assert again.returncode == 0, again.stderr
    assert "4 pages, 0 rendered, 4 reused, 2 skipped" in again.stderr
    assert tree(site) == first and counting_chromium.launches() == launches
    assert og(tmp_path, "--check", "site").returncode == 0


def test_check_names_the_pages_whose_card_is_missing(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert og(tmp_path, "site", "--site-url", SITE_URL).returncode == 0
    card_of(site, site / "guide/index.html").unlink()
    done = og(tmp_path, "--check", "site")
    assert done.returncode == 1
    assert "guide/index.html: og:image https://example.org/docs/assets/images/social/" in done.stderr
    assert "is not a file of the site" in done.stderr and "index.html: " in done.stderr
    (site / "extra.html").write_text(page("Extra"))
    assert "extra.html: 0 og:image tags, not 1" in og(tmp_path, "--check", "site").stderr


def test_a_page_that_cannot_render_is_named_and_the_others_are_done(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    (site / "bad.html").write_text(page("Bad", '<meta name="hcti:selector" content=".missing">'))
    (site / "worse.html").write_text(page("Worse", '<meta name="hcti:viewport_width" content="99999">'))
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "bad.html: selector '.missing' matched no element" in done.stderr
    assert "worse.html: viewport_width must be an integer between 1 and 5000" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hcti og failed: 4 pages")
    assert "og:image" not in (site / "bad.html").read_text() and "og:image" in (site / "index.html").read_text()


def test_without_a_site_url_or_canonical_urls_it_says_what_to_give_once(tmp_path: Path) -> None:
    """Issue #30: the message was said once per page (40 identical lines for click's docs)."""
    site = make_site(tmp_path)
    for i in range(10):
        (site / f"extra{i}.html").write_text(page(f"Extra {i}"))
    before = tree(site)
    done = og(tmp_path, "site")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (said,) = [line for line in done.stderr.splitlines() if "absolute URL" in line]
    assert said.startswith("og:image must be an absolute URL, and 14 page(s) (broken.html, extra0.html, extra1.html and 11 more)")
    assert "--site-url" in said and "site_url under [tool.hcti] in pyproject.toml or in hcti.toml" in said
    assert done.stderr.strip().splitlines()[-1].startswith("hcti og failed: 0 pages, 0 rendered")
    assert tree(site) == before  # nothing written
    (tmp_path / "hcti.toml").write_text(f'site_url = "{SITE_URL}"\n')
    assert og(tmp_path, "site").returncode == 0 and meta_tags(site / "index.html")["og:url"] == [SITE_URL]


# A theme's overrides kept under docs/ are copied into the site: typer's docs/overrides/main.html, httpx's partial.
FRAGMENTS = {
    "overrides/main.html": '{% extends "base.html" %}\n{%- block scripts %}\n{{ super() }}\n<script src="https://cdn.example/qabot.js"></script>\n'
    '<qa-bot title="Typer Bot" description="A library">\n  <dl><dt>Ask</dt></dl>\n</qa-bot>\n{%- endblock %}\n',
    "overrides/extra.html": '{% extends "base.html" %}\n\n{% block extrahead %}\n  <script async src="https://ads.example/a.js"></script>\n{% endblock %}\n',
    "overrides/partials/nav.html": '{% import "partials/nav-item.html" as item with context %}\n<!-- the navigation -->\n'
    '<nav class="{{ class }}" aria-label="{{ lang.t("nav.title") }}"><a href="{{ nav.homepage.url | url }}">x</a></nav>\n',
    # An independent probe: templates that have a <title> (a partial, a whole base template) were still pages.
    "overrides/partials/title.html": "{% block htmltitle %}\n<title>{{ page.title }} - {{ config.site_name }}</title>\n{% endblock %}\n",
    "overrides/base.html": "<!doctype html>\n<html><head><title>{% block title %}{{ config.site_name }}{% endblock %}</title>"
    "</head><body>{% block content %}{% endblock %}</body></html>\n",
}


def test_template_fragments_in_the_site_are_not_pages(tmp_path: Path) -> None:
    """Issue #30: a file with no document head (no doctype, <html>, <head> or <title>) got 12 tags prepended with
    --site-url, and failed the run without it. It is left byte for byte and not counted."""
    site = make_site(tmp_path)
    for rel, text in FRAGMENTS.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    before = tree(site)
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("hcti og: 4 pages, 4 rendered, 0 reused, 2 skipped in ")
    for rel in (*FRAGMENTS, "private.html", "old.html", "404.html"):
        assert tree(site)[rel] == before[rel], rel
    assert og(tmp_path, "--check", "site").returncode == 0

    # Without a site URL, a site whose pages have canonical URLs: the fragments are no error either.
    other = tmp_path / "other"
    shutil.copytree(site / "overrides", other / "overrides")
    (other / "index.html").write_text(page("Home", f'<link rel="canonical" href="{SITE_URL}">'))
    done = og(tmp_path, "other")
    assert done.returncode == 0, done.stderr
    assert "hcti og: 1 pages" in done.stderr and "overrides" not in done.stderr
    assert all(tree(other)[rel] == before[rel] for rel in FRAGMENTS)


def test_zensical_site(tmp_path: Path) -> None:
    """Zensical runs no MkDocs plugins: its built site gets its cards afterwards, from its canonical URLs."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: Zen & Co\nsite_url: https://example.org/zen/\n")
    (tmp_path / "docs" / "index.md").write_text("# Welcome\n\nHello.\n")
    (tmp_path / "docs" / "setup.md").write_text("---\ndescription: Set it up ✨ 日本語\n---\n# Setup\n\nBody.\n")
    built = subprocess.run([str(BIN / "zensical"), "build"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert built.returncode == 0, built.stderr
    done = og(tmp_path, "site")
    assert done.returncode == 0, done.stderr
    assert "2 pages, 2 rendered" in done.stderr
    tags = meta_tags(tmp_path / "site" / "setup" / "index.html")
    assert tags["og:title"] == ["Setup"] and tags["og:description"] == ["Set it up ✨ 日本語"]
    assert tags["og:url"] == ["https://example.org/zen/setup/"] and tags["og:site_name"] == ["Zen & Co"]
    (image,) = tags["og:image"]
    assert image.startswith("https://example.org/zen/assets/images/social/")
    card = load(tmp_path / "site" / image[len("https://example.org/zen/") :])
    assert card.size == (1200, 630)
    first = tree(tmp_path / "site")
    assert "0 rendered" in og(tmp_path, "site").stderr and tree(tmp_path / "site") == first


def test_sphinx_site(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('project = "Sphinx & Co"\nhtml_baseurl = "https://example.org/sx/"\n')
    (src / "index.rst").write_text("Welcome\n=======\n\n.. meta::\n   :description: The start page\n\n.. toctree::\n\n   guide\n")
    (src / "guide.rst").write_text("The guide\n=========\n\nText.\n")
    built = subprocess.run(
        [str(BIN / "sphinx-build"), "-q", "-b", "html", "src", "out"], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert built.returncode == 0, built.stderr
    done = og(tmp_path, "out", "--site-url", "https://example.org/sx/", "--exclude", "genindex.html", "--exclude", "search.html")
    assert done.returncode == 0, done.stderr
    tags = meta_tags(tmp_path / "out" / "index.html")
    assert tags["og:description"] == ["The start page"] and tags["og:title"] == ["Welcome"]
    assert tags["og:site_name"] == ["Sphinx & Co documentation"]
    guide = meta_tags(tmp_path / "out" / "guide.html")
    assert guide["og:url"] == ["https://example.org/sx/guide.html"] and len(guide["og:image"]) == 1
    assert "og:image" not in (tmp_path / "out" / "search.html").read_text()


def test_the_mkdocs_plugin_under_properdocs(tmp_path: Path) -> None:
    """ProperDocs continues MkDocs 1.x: the plugin is registered for it and runs under `properdocs build`."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "properdocs.yml").write_text(
        "site_name: Proper\nsite_url: https://example.org/pd/\ntheme: mkdocs\nplugins:\n  - hcti\n"
    )
    (tmp_path / "docs" / "index.md").write_text(
        "# Home\n\n```hcti\n<div style='width:40px;height:20px;background:#f00'></div>\n```\n"
    )
    done = subprocess.run([str(BIN / "properdocs"), "build"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "hcti: 1 cards (1 rendered, 0 reused), 1 directive images" in done.stderr
    tags = meta_tags(tmp_path / "site" / "index.html")
    (image,) = tags["og:image"]
    assert load(tmp_path / "site" / image[len("https://example.org/pd/") :]).size == (1200, 630)
    assert html.unescape(tags["og:title"][0]) == "Home"
    assert shutil.which("properdocs", path=str(BIN))


def test_an_edited_page_gets_a_new_card_and_the_others_are_not_read_again(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    assert og(tmp_path, "site", "--site-url", SITE_URL, "--template", "card.html").returncode == 0
    for path in site.rglob("*.html"):  # as if the last run were a while ago: its stamps can be trusted
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 10_000_000_000))
    again = og(tmp_path, "site", "--site-url", SITE_URL, "--template", "card.html")
    assert "4 pages, 0 rendered" in again.stderr  # read once more, and remembered
    guide = site / "guide" / "index.html"
    old_card = card_of(site, guide)
    guide.write_text(guide.read_text().replace('content="#0000ff"', 'content="#ff0000"'))
    done = og(tmp_path, "site", "--site-url", SITE_URL, "--template", "card.html")
    assert "4 pages, 1 rendered, 3 reused" in done.stderr, done.stderr
    new_card = card_of(site, guide)
    assert new_card != old_card and load(new_card).convert("RGB").getpixel((1150, 600)) == (255, 0, 0)
    assert meta_tags(guide)["twitter:image"] == meta_tags(guide)["og:image"] and len(meta_tags(guide)["og:image"]) == 1


def test_a_copy_of_the_site_and_store_elsewhere_renders_nothing_again(tmp_path: Path) -> None:
    first = tmp_path / "one"
    first.mkdir()
    make_site(first)
    assert og(first, "site", "--site-url", SITE_URL, "--template", "card.html").returncode == 0
    moved = tmp_path / "elsewhere" / "two"
    shutil.copytree(first, moved, symlinks=True)
    done = og(moved, "site", "--site-url", SITE_URL, "--template", "card.html")
    assert "4 pages, 0 rendered, 4 reused" in done.stderr, done.stderr
    assert tree(moved / "site") == tree(first / "site")


def test_canonical_urls_that_name_index_html_give_the_cards_real_address(tmp_path: Path) -> None:
    """An independent probe: Sphinx with html_baseurl writes canonical URLs ending in index.html, and og:image
    became `https://ex.org/d/index.html/assets/...` (root) and `https://ex.org/d/sub/assets/...` (sub/index.html),
    files that do not exist, with exit 0. Every form of canonical URL gives the site folder's address."""
    site = tmp_path / "site"
    pages = {"index.html": "index.html", "sub/index.html": "sub/index.html", "sub/deeper/index.html": "sub/deeper/",
             "about.html": "about", "sub/page.html": "sub/page.html", "sub/deeper/x.html": "sub/deeper/x.html?v=1#top"}  # fmt: skip
    for rel, canonical in pages.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(page(rel, f'<link rel="canonical" href="https://ex.org/d/{canonical}">'))
    done = og(tmp_path, "site")
    assert done.returncode == 0, done.stderr
    for rel in pages:
        (image,) = meta_tags(site / rel)["og:image"]
        assert image.startswith("https://ex.org/d/assets/images/social/"), (rel, image)
        assert (site / image.removeprefix("https://ex.org/d/")).is_file()
    assert og(tmp_path, "--check", "site").returncode == 0


@pytest.mark.parametrize(
    "url", ["/docs/", "example.org/docs", "https://ex.org/d?x=1#frag", "javascript:alert(1)", "https://", "https://ex.org/a b/"]
)
def test_a_site_url_that_is_not_absolute_is_one_error_naming_it(tmp_path: Path, url: str) -> None:
    """An independent probe: each of these was accepted and gave relative or broken og:image URLs, exit 0."""
    site = make_site(tmp_path)
    before = tree(site)
    done = og(tmp_path, "site", "--site-url", url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    error = json.loads(done.stdout or done.stderr.strip().splitlines()[-1])
    assert error["statusCode"] == 400 and error["validation_errors"][0]["field"] == "site_url"
    assert "absolute http(s) URL" in error["message"]
    assert tree(site) == before


def test_a_page_rewritten_keeps_its_mode(tmp_path: Path) -> None:
    """An independent probe: pages of mode 600 and 755 came back 644 (a private page made world-readable)."""
    site = make_site(tmp_path)
    (site / "index.html").chmod(0o600)
    (site / "guide" / "index.html").chmod(0o751)
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 0, done.stderr
    assert "og:image" in meta_tags(site / "index.html")
    assert (site / "index.html").stat().st_mode & 0o777 == 0o600
    assert (site / "guide" / "index.html").stat().st_mode & 0o777 == 0o751


def test_a_card_overwritten_in_the_site_is_made_again(tmp_path: Path) -> None:
    """An independent probe: `echo garbage > site/assets/images/social/<card>.png`, and every later run said
    "0 rendered, N reused" while og:image pointed at a file that is not a PNG; `--check` saw nothing."""
    site = make_site(tmp_path)
    assert og(tmp_path, "site", "--site-url", SITE_URL).returncode == 0
    (image,) = meta_tags(site / "index.html")["og:image"]
    card = site / image.removeprefix(SITE_URL)
    card.write_bytes(b"garbage\n")
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 0, done.stderr
    with Image.open(card) as im:
        assert im.size == (1200, 630)
