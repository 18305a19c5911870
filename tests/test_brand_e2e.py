"""A card shows the site's own brand with no card configuration (#31, part 2), in each host, read from where the
host keeps it: a built page's theme-color and icon (`hcti og`), furo's and pydata's logos and furo's brand colour
(Sphinx), a MkDocs theme's favicon. The pixels of the card say it: its background is the site's colour, its logo
box the logo's. Flags and configured options still win; a colour that is not one is said, naming where it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load, meta_tags
from PIL import Image
from test_mkdocs_e2e import make_site as mkdocs_site
from test_mkdocs_e2e import metas, mkdocs
from test_og_e2e import SITE_URL, card_of, og, page
from test_sphinx_e2e import SITE as SPHINX_SITE
from test_sphinx_e2e import project, sphinx

from hcti_build import Brand, css_color
from hcti_build.pipeline.templates import CARD_FONTS

BACKGROUND = (10, 300)  # the built-in card's padding, left of everything: its background
LOGO = (116, 100)  # the middle of its 72 px logo box at (80, 64), drawn at 95% opacity over the background


def solid(path: Path, rgb: tuple[int, int, int], size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), rgb).save(path)
    return path


def near(pixel: tuple[int, ...], rgb: tuple[int, int, int], tolerance: int = 16) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], rgb, strict=True))


def pixels(card: Path) -> tuple[tuple[int, ...], tuple[int, ...]]:
    image = load(card).convert("RGB")
    return image.getpixel(BACKGROUND), image.getpixel(LOGO)  # type: ignore[return-value]


# -- hcti og: what the built pages declare ---------------------------------------------------------------------
def branded_site(root: Path) -> Path:
    site = root / "site"
    solid(site / "img" / "icon.png", (255, 0, 255))
    heads = {
        "index.html": ("/img/icon.png", "Home"),  # from the site's root
        "guide/index.html": ("../img/icon.png", "Guide"),  # from the page's folder
    }
    for rel, (href, title) in heads.items():
        head = (
            '<meta name="theme-color" content="#0a7d38">\n'
            '    <link rel="icon" href="https://cdn.example.org/remote.png">\n'  # remote: never fetched, not used
            f'    <link rel="icon" type="image/png" href="{href}">'
        )
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(page(title, head))
    return site


def test_og_cards_show_the_pages_theme_color_and_icon_and_flags_win(tmp_path: Path) -> None:
    site = branded_site(tmp_path)
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 0, done.stderr
    for rel in ("index.html", "guide/index.html"):
        background, logo = pixels(card_of(site, site / rel))
        assert background == (10, 125, 56), rel  # the page's theme-color, exactly
        assert near(logo, (255, 0, 255)), (rel, logo)  # the page's icon, from the site's files

    # A new icon (the pages unchanged): new cards, though the run's memo knew the pages.
    solid(site / "img" / "icon.png", (255, 255, 0))
    again = og(tmp_path, "site", "--site-url", SITE_URL)
    assert again.returncode == 0 and "2 rendered" in again.stderr, again.stderr
    assert near(pixels(card_of(site, site / "index.html"))[1], (255, 255, 0))

    # --color and --logo win over what the pages say.
    solid(tmp_path / "logo.png", (0, 255, 255))
    flags = og(tmp_path, "site", "--site-url", SITE_URL, "--color", "rgb(200, 30, 30)", "--logo", "logo.png")
    assert flags.returncode == 0, flags.stderr
    background, logo = pixels(card_of(site, site / "guide/index.html"))
    assert background == (200, 30, 30) and near(logo, (0, 255, 255)), (background, logo)


def test_og_a_pages_own_hcti_color_and_logo_win_over_the_flags(tmp_path: Path) -> None:
    site = branded_site(tmp_path)
    solid(site / "img" / "own.png", (255, 128, 0))
    solid(tmp_path / "logo.png", (0, 255, 255))
    guide = site / "guide" / "index.html"
    own = '<meta name="hcti:color" content="#333333">\n    <meta name="hcti:logo" content="../img/own.png">\n    '
    guide.write_text(guide.read_text().replace('<meta name="theme-color"', own + '<meta name="theme-color"'))
    flags = ("--site-url", SITE_URL, "--color", "#c81e1e", "--logo", "logo.png")
    done = og(tmp_path, "site", *flags)
    assert done.returncode == 0, done.stderr
    background, logo = pixels(card_of(site, guide))
    assert background == (51, 51, 51) and near(logo, (255, 128, 0)), (background, logo)  # the page's own
    background, logo = pixels(card_of(site, site / "index.html"))
    assert background == (200, 30, 30) and near(logo, (0, 255, 255)), (background, logo)  # the flags
    guide.write_text(guide.read_text().replace("#333333", "nope"))
    bad = og(tmp_path, "site", *flags)
    assert bad.returncode == 1 and "guide/index.html: hcti:color: 'nope' is not a CSS colour" in bad.stderr, bad.stderr


def test_og_a_colour_that_is_not_one_is_said_naming_it(tmp_path: Path) -> None:
    site = branded_site(tmp_path)
    bad = og(tmp_path, "site", "--site-url", SITE_URL, "--color", "#12345g")
    assert bad.returncode == 2 and "--color: '#12345g' is not a CSS colour" in bad.stderr, bad.stderr
    assert "og:image" not in meta_tags(site / "index.html")  # nothing was done
    (site / "index.html").write_text((site / "index.html").read_text().replace("#0a7d38", "brand}green"))
    done = og(tmp_path, "site", "--site-url", SITE_URL)
    assert done.returncode == 0 and "theme-color: 'brand}green' is not a CSS colour" in done.stderr, done.stderr
    assert pixels(card_of(site, site / "index.html"))[0] == (64, 81, 181)  # the built-in card's own colour


def test_og_an_icon_outside_the_site_or_hidden_is_not_read(tmp_path: Path) -> None:
    site = tmp_path / "site"
    solid(tmp_path / "outside.png", (255, 0, 0))
    solid(site / ".hidden" / "icon.png", (255, 0, 0))
    head = '<link rel="icon" href="../outside.png">\n    <link rel="apple-touch-icon" href=".hidden/icon.png">'
    (site / "index.html").parent.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text(page("Home", head))
    assert og(tmp_path, "site", "--site-url", SITE_URL).returncode == 0
    _, logo = pixels(card_of(site, site / "index.html"))
    assert not near(logo, (255, 0, 0), 60), logo  # the card's own mark, not the file outside


# -- Sphinx: what conf.py declares ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conf", "logo_at", "background"),
    [
        (  # furo: its light logo (in html_static_path) and its brand colour
            'html_theme = "furo"\nhtml_static_path = ["_static"]\n'
            'html_theme_options = {"light_logo": "brand.png", "dark_logo": "brand.png",'
            ' "light_css_variables": {"color-brand-primary": "#7c1fa3"}}\n',
            "_static/brand.png",
            (124, 31, 163),
        ),
        (  # pydata: its light logo, relative to the sources
            'html_theme = "pydata_sphinx_theme"\nhtml_theme_options = {"logo": {"image_light": "img/brand.png"}}\n',
            "img/brand.png",
            (64, 81, 181),
        ),
        ('html_favicon = "fav.png"\n', "fav.png", (64, 81, 181)),  # no logo: the favicon is the mark
    ],
    ids=["furo", "pydata", "favicon"],
)
def test_sphinx_cards_show_the_themes_logo_and_brand_colour(
    tmp_path: Path, conf: str, logo_at: str, background: tuple[int, int, int]
) -> None:
    src = project(tmp_path, conf)
    solid(src / logo_at, (0, 200, 0))
    done = sphinx(tmp_path, "-b", "html")
    assert done.returncode == 0, done.stderr
    (image,) = meta_tags(tmp_path / "out" / "guide.html")["og:image"]
    shown, logo = pixels(tmp_path / "out" / image[len(SPHINX_SITE) :])
    assert shown == background and near(logo, (0, 200, 0)), (shown, logo)


def test_sphinx_configured_options_win_and_a_bad_brand_colour_is_a_warning(tmp_path: Path) -> None:
    conf = (
        'html_theme = "furo"\nhtml_theme_options = {"light_css_variables": {"color-brand-primary": "var(--x)"}}\n'
        'hcti_cards_options = {"accent": "#ffffff"}\n'
    )
    project(tmp_path, conf)
    done = sphinx(tmp_path, "-b", "html")
    assert "html_theme_options['light_css_variables']['color-brand-primary']: 'var(--x)' is not a CSS colour" in done.stderr
    (tmp_path / "src" / "conf.py").write_text(
        (tmp_path / "src" / "conf.py").read_text().replace("var(--x)", "#7c1fa3")
        + 'hcti_cards_options = {"background": "#102030"}\n'
    )
    assert sphinx(tmp_path, "-b", "html", "-E").returncode == 0
    (image,) = meta_tags(tmp_path / "out" / "guide.html")["og:image"]
    assert pixels(tmp_path / "out" / image[len(SPHINX_SITE) :])[0] == (16, 32, 48)  # the option, not furo's colour


# -- MkDocs: what mkdocs.yml's theme declares --------------------------------------------------------------------
def test_mkdocs_a_theme_with_only_a_favicon_has_it_on_its_cards(tmp_path: Path) -> None:
    root = mkdocs_site(tmp_path)
    yml = root / "mkdocs.yml"
    yml.write_text(yml.read_text().replace("  name: material\n", "  name: material\n  favicon: images/fav.png\n"))
    solid(root / "docs" / "images" / "fav.png", (0, 200, 0))
    done = mkdocs(root, "--strict")
    assert done.returncode == 0, done.stderr
    image = metas(root / "site" / "index.html")["og:image"]
    background, logo = pixels(root / "site" / image.removeprefix("https://example.org/docs/"))
    assert background == (64, 81, 181) and near(logo, (0, 200, 0)), (background, logo)


def test_mkdocs_materials_logo_icon_is_on_its_cards_in_the_cards_text_colour(tmp_path: Path) -> None:
    root = mkdocs_site(tmp_path)
    yml = root / "mkdocs.yml"
    icon = "  icon:\n    logo: material/library\n  favicon: images/fav.png\n"  # the icon wins over the favicon
    yml.write_text(yml.read_text().replace("  name: material\n", "  name: material\n" + icon))
    solid(root / "docs" / "images" / "fav.png", (0, 200, 0))
    assert mkdocs(root, "--strict").returncode == 0
    image = metas(root / "site" / "index.html")["og:image"]
    card = load(root / "site" / image.removeprefix(SITE_URL)).convert("RGB")
    # (6, 16) of the icon's 24x24 box: the book's left page, drawn white (the text's colour on indigo) at 95%
    assert near(card.getpixel((98, 112)), (255, 255, 255)), card.getpixel((98, 112))


def test_mkdocs_the_themes_text_font_is_used_only_when_installed(tmp_path: Path) -> None:
    def card_with(font: str) -> str:  # the card's name: its request's id
        root = tmp_path / font.replace(" ", "-")
        mkdocs_site(root)
        yml = root / "mkdocs.yml"
        text = "false" if font == "false" else f"\n    text: {font}"
        yml.write_text(yml.read_text().replace("  name: material\n", f"  name: material\n  font: {text}\n"))
        assert mkdocs(root).returncode == 0
        return metas(root / "site" / "index.html")["og:image"].rsplit("/", 1)[1]

    plain = card_with("false")  # Material's own way to say: no font
    assert card_with("Not Installed Sans") == plain  # never downloaded: the card's own font
    assert card_with("DejaVu Serif") != plain  # installed here: the card is set in it


# -- the pipeline's one rule: how a brand becomes the card's options ---------------------------------------------
def test_a_brand_becomes_the_built_in_cards_options() -> None:
    options = Brand(color=css_color("rebeccapurple", "x"), font='Inter"').options()
    assert options["background"] == "#663399" and options["accent"] == "#ffc105"
    assert options["font_family"] == f'"Inter", {CARD_FONTS}'
    assert Brand.first(Brand(color="#000000"), Brand(color="#ffffff", accent="#111111")) == Brand(
        color="#000000", accent="#111111"
    )
