"""A site's brand on its cards (its logo, colours and font), made into the card's values once for every host.

A host only says where its site keeps them (MkDocs' `theme.logo` and palette, Sphinx's `html_logo` and furo's
variables, a built page's `theme-color` and icon links) and hands them here:

- `Brand`: a logo (a `data:` URI), a primary and an accent colour, a font family; `Brand.first` takes each
  value from the first brand that has it (a command's flags, then a site's config, then what its pages say);
  `Brand.options` is the built-in card's `options` for it (`templates.card_options`), `Brand.logo` is its
  `site.logo`. A site's configured options and a page's own still win over these (`cards.card_settings`);
- `css_color`: a colour checked before it reaches a template (hex, `rgb()`, `hsl()`, a CSS name), as `#rrggbb`;
  anything else is a 400 naming the option it came from;
- `logo_file`: a logo or icon a site names, read by the file rules (`files.Tree`: inside the site, no hidden
  part); a remote URL is never fetched;
- `installed_font`: whether a font family is installed here (fontconfig): a site's font is used only then, never
  downloaded.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import ImageColor

from ..engine.chromium import installed_font_families
from ..errors import BadRequestError
from ..files import Tree
from .site import digest
from .templates import CARD_FONTS, DEFAULT_ACCENT, DEFAULT_PRIMARY, card_options, file_data_uri


@dataclass(frozen=True)
class Brand:
    """What a site's cards show of its brand; None where the site says nothing."""

    logo: str | None = None  # a data: URI
    color: str | None = None  # the primary colour, "#rrggbb" (`css_color`)
    accent: str | None = None
    font: str | None = None  # a font family installed here

    @classmethod
    def first(cls, *brands: Brand) -> Brand:
        """Each value from the first of ``brands`` that has one (the first brand wins)."""
        values = {f.name: next((v for b in brands if (v := getattr(b, f.name)) is not None), None) for f in fields(cls)}
        return cls(**values)

    def options(self) -> dict[str, Any]:
        """The built-in card's `options` for this brand: its colours (with the shades they give) and its font
        ahead of the card's own (which still draw what it lacks: CJK, emoji)."""
        options = card_options(self.color or DEFAULT_PRIMARY, self.accent or DEFAULT_ACCENT)
        if self.font:
            options["font_family"] = f'"{self.font.replace(chr(34), "")}", {CARD_FONTS}'
        return options

    def key(self) -> dict[str, str | None]:
        """The brand as a memo keeps it (a logo by its digest, not its bytes)."""
        logo = digest(self.logo) if self.logo else None
        return {"logo": logo, "color": self.color, "accent": self.accent, "font": self.font}


def css_color(value: object, option: str) -> str:
    """``value`` as `#rrggbb` if it is a CSS colour (hex, `rgb()`, `hsl()`, a name); else a 400 naming ``option``.
    Checked here, before any template: a bad value would otherwise end the card's CSS rule, or give a card of
    another colour without a word."""
    text = str(value).strip() if isinstance(value, str) else ""
    try:
        rgb = ImageColor.getrgb(text)
    except ValueError:
        raise BadRequestError(
            f"{option}: {value!r} is not a CSS colour (give #rrggbb, #rgb, rgb(r, g, b), hsl(h, s%, l%) or a colour name)",
            param=option,
        ) from None
    return "#" + "".join(f"{c:02x}" for c in rgb[:3])  # a card is opaque: any alpha is dropped


def site_color(value: object, option: str, warn: Callable[[str], object]) -> str | None:
    """A colour a site declares (its theme's variable, a page's theme-color): `css_color`, or None after a warning
    naming where it came from (a site's odd value costs its cards the colour, not the build)."""
    if value is None or value == "":
        return None
    try:
        return css_color(value, option)
    except BadRequestError as exc:
        warn(f"{exc.message}; the card's own colour is used")
        return None


def logo_file(tree: Tree, name: object, near: str = "") -> Path | None:
    """The file a site names as its logo or icon, by the file rules under ``tree``: a relative ``name`` from the
    folder ``near`` (a page's), one starting with `/` from the site's root (or, for a site served below its host's
    root, from the longest tail of it that is a file there). A URL with a scheme or host (`https:`, `//cdn`, `data:`)
    is None: nothing is fetched."""
    if not isinstance(name, str) or not name.strip():
        return None
    parts = urlsplit(name.strip())
    if parts.scheme or parts.netloc:
        return None
    path = unquote(parts.path)
    if path.startswith("/"):
        segments = [p for p in path.split("/") if p]
        return next((f for i in range(len(segments)) if (f := tree.file("/".join(segments[i:]))) is not None), None)
    return tree.file(posixpath.normpath(posixpath.join(near, path)))


def logo_uri(path: Path | None) -> str | None:
    """A logo file as the `data:` URI the card shows (its bytes in the card's request: a new logo, new cards)."""
    return file_data_uri(path) if path is not None else None


def installed_font(family: str) -> bool:
    """Whether fontconfig (`fc-list`, read once per process) has ``family`` installed; False without fontconfig. A
    site's font is used on its cards only then: a card is rendered offline, and never downloads one."""
    return bool(family.strip()) and family.strip().lower() in installed_font_families()
