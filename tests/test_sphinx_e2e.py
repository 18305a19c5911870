"""The Sphinx extension with real `sphinx-build` runs: cards and tags for every page, opt-out, another extension's
tags kept, incremental builds that launch no browser, parallel builds, and `-W` when no site URL is set."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import CountingChromium, load, meta_tags

SPHINX = [str(Path(sys.executable).parent / "sphinx-build")]
SITE = "https://example.org/sx/"


def project(root: Path, conf: str = "") -> Path:
    src = root / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f'project = "Sphinx & Co"\nextensions = ["hcti_build.sphinx"]\nhtml_baseurl = "{SITE}"\nhcti_store = ".hcti"\n{conf}'
    )
    (src / "index.rst").write_text(
        "Welcome\n=======\n\n.. meta::\n   :description: The start page\n\n.. toctree::\n\n   guide\n   private\n"
    )
    (src / "guide.rst").write_text("The guide ✨ & <more>\n=====================\n\nText.\n")
    (src / "private.rst").write_text(":hcti_card: false\n\nPrivate\n=======\n\nText.\n")
    return src


def sphinx(root: Path, *args: str, env: dict[str, str] | None = None, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SPHINX, *(["-q"] if quiet else []), *args, "src", "out"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_every_page_gets_a_card_and_its_tags_once(tmp_path: Path, counting_chromium: CountingChromium) -> None:
    project(tmp_path)
    env = {"HCTI_CHROMIUM": str(counting_chromium.path)}
    done = sphinx(tmp_path, "-W", "-b", "html", env=env)
    assert done.returncode == 0, done.stderr
    home, guide = meta_tags(tmp_path / "out" / "index.html"), meta_tags(tmp_path / "out" / "guide.html")
    for page in (home, guide):
        for key in ("og:title", "og:url", "og:image", "og:image:width", "twitter:card", "twitter:image", "og:site_name"):
            assert len(page[key]) == 1, (key, page)
    assert home["og:description"] == ["The start page"] and home["og:url"] == [SITE + "index.html"]
    assert guide["og:title"] == ["The guide ✨ & <more>"] and guide["og:site_name"] == ["Sphinx & Co"]
    assert 'content="The guide ✨ &amp; &lt;more&gt;"' in (tmp_path / "out" / "guide.html").read_text()
    (image,) = guide["og:image"]
    assert image.startswith(SITE + "_images/social/")
    card = load(tmp_path / "out" / image[len(SITE) :])
    assert card.size == (1200, 630)
    assert "og:image" not in (tmp_path / "out" / "private.html").read_text()  # :hcti_card: false
    assert counting_chromium.launches() == 1

    # No change, then a full rebuild (-E) of unchanged sources: no browser.
    assert sphinx(tmp_path, "-b", "html", env=env).returncode == 0
    assert sphinx(tmp_path, "-E", "-b", "html", env=env).returncode == 0
    assert counting_chromium.launches() == 1 and meta_tags(tmp_path / "out" / "guide.html")["og:image"] == [image]


def test_another_extensions_tags_are_kept_and_not_doubled(tmp_path: Path) -> None:
    project(
        tmp_path,
        'def setup(app):\n    app.connect("html-page-context", lambda a, p, t, c, d: c.update(metatags=c.get("metatags", "") + \'<meta property="og:title" content="Theirs">\'))\n',
    )
    assert sphinx(tmp_path, "-b", "html").returncode == 0
    page = meta_tags(tmp_path / "out" / "guide.html")
    assert page["og:title"] == ["Theirs"] and len(page["og:image"]) == 1


def test_parallel_and_dirhtml_builds(tmp_path: Path) -> None:
    src = project(tmp_path, 'hcti_cards_dir = "social"\n')
    for i in range(6):
        (src / f"extra{i}.rst").write_text(f"Extra {i}\n========\n\n:orphan:\n")
    done = sphinx(tmp_path, "-j", "2", "-b", "dirhtml")
    assert done.returncode == 0, done.stderr
    page = meta_tags(tmp_path / "out" / "extra3" / "index.html")
    assert page["og:url"] == [SITE + "extra3/"] and page["og:image"][0].startswith(SITE + "social/")
    assert (tmp_path / "out" / page["og:image"][0][len(SITE) :]).is_file()


def test_without_a_site_url_a_warning_fails_a_strict_build(tmp_path: Path) -> None:
    src = project(tmp_path)
    (src / "conf.py").write_text((src / "conf.py").read_text().replace(f'html_baseurl = "{SITE}"\n', ""))
    done = sphinx(tmp_path, "-W", "-b", "html")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "hcti_site_url (or html_baseurl) is not set" in done.stderr


@pytest.mark.parametrize(("setting", "url"), [("html_baseurl", "/docs/"), ("hcti_site_url", "example.org/docs")])
def test_a_site_url_that_is_not_absolute_is_a_warning_naming_it(tmp_path: Path, setting: str, url: str) -> None:
    """An independent probe: html_baseurl = "/docs/" gave every page a relative og:image, and -W passed."""
    project(tmp_path, f'{setting} = "{url}"\n')
    done = sphinx(tmp_path, "-W", "-b", "html")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"hcti: {setting} must be the site's absolute http(s) URL" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "_images" / "social").exists() or not any((tmp_path / "out" / "_images" / "social").iterdir())


def test_the_directive_in_rest_and_myst_becomes_an_image_for_every_builder(tmp_path: Path) -> None:
    src = project(tmp_path, 'extensions.append("myst_parser")\n')
    (src / "sub").mkdir()
    (src / "sub" / "box.css").write_text(".box{width:120px;height:60px;background:rgb(0,0,255)}")
    (src / "sub" / "shapes.rst").write_text(
        "Shapes\n======\n\n.. hcti::\n   :width: 60\n   :format: jpg\n   :alt: A blue box\n\n"
        '   <link rel="stylesheet" href="box.css"><div class="box"></div>\n'
    )
    (src / "myst.md").write_text(
        "---\nmyst:\n  html_meta:\n    description: A MyST page\n---\n"
        '# MyST\n\n```{hcti}\n:device_scale: 1\n:class: wide\n<div style="width:80px;height:40px;background:#0f0"></div>\n```\n'
    )
    (src / "index.rst").write_text("Welcome\n=======\n\n.. toctree::\n\n   guide\n   private\n   sub/shapes\n   myst\n")
    done = sphinx(tmp_path, "-W", "-b", "html")
    assert done.returncode == 0, done.stderr
    shapes = (tmp_path / "out" / "sub" / "shapes.html").read_text()
    assert 'alt="A blue box"' in shapes and "width: 60px; height: 30px;" in shapes  # CSS pixels
    (jpg,) = [p for p in (tmp_path / "out" / "_images").glob("*.jpg")]
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff" and load(jpg).size == (60, 30)
    assert load(jpg).convert("RGB").getpixel((30, 15))[2] > 200  # the stylesheet next to the source was read
    myst = (tmp_path / "out" / "myst.html").read_text()
    assert 'class="wide"' in myst and "width: 80px; height: 40px;" in myst
    assert meta_tags(tmp_path / "out" / "myst.html")["og:description"] == ["A MyST page"]  # MyST's html_meta
    (src / "myst.md").write_text("---\nhcti_card: false\n---\n" + (src / "myst.md").read_text().split("---\n", 2)[2])
    assert sphinx(tmp_path, "-b", "html").returncode == 0
    assert "og:image" not in (tmp_path / "out" / "myst.html").read_text()  # MyST front matter opts out
    latex = subprocess.run(
        [*SPHINX, "-q", "-b", "latex", "src", "latex"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert latex.returncode == 0, latex.stderr
    tex = next((tmp_path / "latex").glob("*.tex")).read_text()
    assert "includegraphics[width=60\\sphinxpxdimen,height=30\\sphinxpxdimen]" in tex
    assert len(list((tmp_path / "latex").glob("*.jpg"))) == 1 and len(list((tmp_path / "latex").glob("*.png"))) == 1


def test_a_bad_option_is_a_warning_at_its_line(tmp_path: Path) -> None:
    src = project(tmp_path)
    (src / "guide.rst").write_text("The guide\n=========\n\n.. hcti::\n   :width: 99999\n\n   <p>x</p>\n")
    done = sphinx(tmp_path, "-W", "-b", "html")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "guide.rst:4: WARNING: width must be an integer between 1 and 5000" in done.stderr


@pytest.mark.parametrize("theme", ["alabaster", "furo", "pydata_sphinx_theme", "sphinx_book_theme"])
def test_themes_render_the_tags_in_the_head(tmp_path: Path, theme: str) -> None:
    project(tmp_path, f'html_theme = "{theme}"\n')
    done = sphinx(tmp_path, "-b", "html", quiet=False)
    assert done.returncode == 0, done.stderr
    assert "did not render the card tags" not in done.stdout and "hcti: 2 cards (2 rendered, 0 reused)" in done.stdout
    for page in ("index.html", "guide.html"):
        text = (tmp_path / "out" / page).read_text()
        tags = meta_tags(tmp_path / "out" / page)
        assert len(tags["og:image"]) == 1 and len(tags["twitter:image"]) == 1, (theme, page)
        assert text.index('property="og:image"') < text.index("</head>")
        assert (tmp_path / "out" / tags["og:image"][0][len(SITE) :]).is_file()


@pytest.mark.parametrize("builder", ["html", "dirhtml"])
def test_a_theme_that_drops_metatags_still_gets_the_tags_and_says_so(tmp_path: Path, builder: str) -> None:
    """Issue #30: the Pallets themes (click, flask, ...) set `metatags` in their layout.html, which dropped the
    tags: cards were written, no page had og:image, and the build said nothing. The built pages are given them."""
    project(tmp_path, 'extensions.insert(0, "pallets_sphinx_themes")\nhtml_theme = "click"\n')
    parallel = ["-j", "2"] if builder == "dirhtml" else []  # pages written by other processes, too
    done = sphinx(tmp_path, "-W", *parallel, "-b", builder, quiet=False)  # said at INFO: a strict build still passes
    assert done.returncode == 0, done.stderr
    pages = {"index": "index.html", "guide": "guide.html" if builder == "html" else "guide/index.html"}
    for name, rel in pages.items():
        tags = meta_tags(tmp_path / "out" / rel)
        assert len(tags["og:image"]) == 1 and tags["twitter:image"] == tags["og:image"], (name, tags)
        (image,) = tags["og:image"]
        assert image.startswith(SITE + "_images/social/") and image.endswith(".png")
        card = tmp_path / "out" / image[len(SITE) :]
        assert card.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and load(card).size == (1200, 630)
        text = (tmp_path / "out" / rel).read_text()
        assert text.index('property="og:image"') < text.index("</head>")
    assert meta_tags(tmp_path / "out" / "index.html")["og:description"] == ["The start page"]
    assert "og:image" not in (tmp_path / "out" / ("private.html" if builder == "html" else "private/index.html")).read_text()
    assert "hcti: the theme 'click' did not render the card tags of 2 page(s)" in done.stdout
    assert "hcti: 2 cards (2 rendered, 0 reused)" in done.stdout

    # A new title: the guide (a new card) and the index (its toctree) written again; then a build that writes none.
    (tmp_path / "src" / "guide.rst").write_text("Guide\n=====\n\nText.\n")
    again = sphinx(tmp_path, *parallel, "-b", builder, quiet=False)
    assert again.returncode == 0, again.stderr
    assert "card tags of 2 page(s)" in again.stdout and "hcti: 2 cards (1 rendered, 1 reused)" in again.stdout
    unchanged = sphinx(tmp_path, "-b", builder, quiet=False)
    assert "card tags of" not in unchanged.stdout and "hcti: 0 cards (0 rendered, 0 reused)" in unchanged.stdout
    assert len(meta_tags(tmp_path / "out" / pages["guide"])["og:image"]) == 1


def test_singlehtml_and_sphinxext_opengraph_side_by_side(tmp_path: Path) -> None:
    conf = 'extensions.insert(0, "sphinxext.opengraph")\nogp_site_url = "https://example.org/sx/"\n'
    project(tmp_path, conf + 'ogp_social_cards = {"enable": False}\n')  # its matplotlib cards, when installed, are off
    done = sphinx(tmp_path, "-b", "singlehtml")
    assert done.returncode == 0, done.stderr
    tags = meta_tags(tmp_path / "out" / "index.html")
    assert all(len(v) == 1 for k, v in tags.items() if k.startswith(("og:", "twitter:"))), tags
    assert tags["og:image"][0].startswith(SITE + "_images/social/") and tags["og:image:width"] == [
        "1200"
    ]  # ours; og:title theirs


def test_a_real_projects_docs_from_its_pypi_sdist(tmp_path: Path) -> None:
    """packaging 24.2's documentation, from its source distribution, with the extension added (its two
    extensions that need the network or another package left out): every page gets one card."""
    got = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-binary",
            ":all:",
            "--no-deps",
            "packaging==24.2",
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert got.returncode == 0, got.stderr
    with tarfile.open(tmp_path / "packaging-24.2.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    docs = tmp_path / "packaging-24.2" / "docs"
    extensions = "sphinx.ext.autodoc,sphinx.ext.doctest,sphinx.ext.extlinks,hcti_build.sphinx"
    done = subprocess.run(
        [*SPHINX, "-q", "-b", "html", "-D", f"extensions={extensions}", "-D", f"html_baseurl={SITE}",
         "-D", f"hcti_store={tmp_path / '.hcti'}", str(docs), str(tmp_path / "out")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pages = [p for p in (tmp_path / "out").glob("*.html") if p.name not in ("genindex.html", "search.html", "py-modindex.html")]
    assert len(pages) >= 10
    for page in pages:
        (image,) = meta_tags(page)["og:image"]
        assert (tmp_path / "out" / image[len(SITE) :]).is_file(), page.name


def test_the_projects_logo_is_on_its_cards(tmp_path: Path) -> None:
    src = project(tmp_path, 'html_logo = "logo.svg"\n')
    (src / "logo.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#f00"/></svg>'
    )
    assert sphinx(tmp_path, "-b", "html").returncode == 0
    (image,) = meta_tags(tmp_path / "out" / "guide.html")["og:image"]
    card = load(tmp_path / "out" / image[len(SITE) :]).convert("RGB")
    r, g, b = card.getpixel((116, 100))  # the built-in card's logo box (72x72 at 80,64)
    assert r > 220 and g < 40 and b < 40


@pytest.mark.parametrize(
    ("conf", "said"),
    [
        ('hcti_cards_template = "../outside.html"\n', "hcti_cards_template '../outside.html' must be a file inside the project"),
        ('hcti_cards_template = "_t/card.html"\n', "hcti_cards_template '_t/card.html' must be a file inside the project"),
        ("hcti_cards_dir = 5\n", "hcti_cards_dir must be str, not 5"),
        ('hcti_cards_dir = "../escaped"\n', "hcti_cards_dir must name a place inside"),
    ],
    ids=["outside", "symlink-out", "not-a-string", "climbs-out"],
)
def test_options_that_lead_out_of_the_project_are_warnings(tmp_path: Path, conf: str, said: str) -> None:
    """Found by an independent probe: templates from outside the project (by path or by a symlink) made cards, and
    `hcti_cards_dir = 5` crashed the build. Each is now a warning, and the build goes on without cards."""
    (tmp_path / "outside.html").write_text("<div style='width:1200px;height:630px;background:#f00'></div>")
    src = project(tmp_path, conf)
    (src / "_t").mkdir()
    (src / "_t" / "card.html").symlink_to(tmp_path / "outside.html")
    done = sphinx(tmp_path, "-b", "html")
    assert done.returncode == 0, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert "og:image" not in (tmp_path / "out" / "index.html").read_text()
    assert not (tmp_path / "escaped").exists()
