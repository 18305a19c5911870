"""The one card pipeline every host uses (the MkDocs plugin, the Sphinx extension, `hcti og`): what a social card is
and how it is made, so that a change to cards is made once.

- which template: `CardTemplate` (the built-in one, or a site's own file);
- its size, scale and format, and the values it gets: `CardSpec` (`values`: page, site, options, the card's size,
  a page's own viewport; `card_settings`: the options with a page's overrides);
- its request: `CardSpec.render` (the template with those values) and `CardSpec.options` (the API's creation
  options, a page's own parameters over the site's);
- how many are made at once: `card_jobs` and `card_pool` (one rule for every host: `Store.concurrency`), and
  each made through the store: `start_card` (a hit at once, a miss on the pool);
- the memo of what was rendered: `CardMemo` (a card's values -> its request), and `memo_header` with
  `code_versions`, the one list of the code a memo holds for;
- the card linked into the site and its tags: `load_card`, `link_card`, `LinkedCard.tags`.

A host only reads its pages (their title, description, URL, overrides) and writes the tags where it wants them.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import posixpath
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WriteError
from ..files import Tree, write_if_changed
from ..options import CREATE_PARAMS, CreateOptions, ImageQuery
from ..store.store import Store
from .assets import Asset
from .brand import css_color
from .head import card_tags
from .templates import BUILTIN_TEMPLATES, Templates, card_options

COLOR_OPTIONS = ("background", "background_end", "accent", "color")  # the built-in card's colours: checked
CARD_SIZE = (1200, 630)  # CSS pixels: what every social site shows uncropped
VIEWPORT = ("viewport_width", "viewport_height")
# The modules whose code makes a card's request and its tags (with the host's own, which reads its pages): a memo
# holds only while none of them changed. One list, so that every host's memo is invalidated by the same change.
CARD_CODE = (__name__, Templates.__module__, card_tags.__module__, CreateOptions.__module__, css_color.__module__)


@dataclass(frozen=True)
class CardTemplate:
    """Which template a site's cards are: its Jinja2 environment and its name there."""

    templates: Templates
    name: str
    custom: bool = False  # a site's own file, not the built-in card

    @classmethod
    def builtin(cls) -> CardTemplate:
        return cls(Templates(BUILTIN_TEMPLATES, cache=True), "card.html")

    @classmethod
    def site_file(cls, path: Path, root: Path | None = None) -> CardTemplate:
        """A site's own template, loading the files under ``root`` (default: its own folder; the caller has held
        ``path`` to its host's file rules)."""
        path = path.resolve()
        root = root or path.parent
        return cls(Templates(root, cache=True), path.relative_to(root).as_posix(), custom=True)

    @property
    def root(self) -> Path:
        return self.templates.root

    @property
    def base(self) -> str:
        """The folder relative URLs in the card resolve from (below the store's root, the templates' root)."""
        return posixpath.dirname(self.name)


@dataclass(frozen=True)
class CardSpec:
    """What a site's cards are: their template, size (CSS pixels), scale and format. Every host's cards get their
    size from here; a page may ask for its own viewport (`hcti og`'s `hcti:viewport_width`)."""

    template: CardTemplate
    width: int = CARD_SIZE[0]
    height: int = CARD_SIZE[1]
    device_scale: float = 1
    format: str = "png"

    @functools.cached_property
    def query(self) -> ImageQuery:
        """The image query of the card files (their format)."""
        return ImageQuery.from_mapping({"format": self.format})

    def size(self, params: Mapping[str, Any] | None = None) -> tuple[int, int]:
        """The card's viewport: a page's own (as the API reads it: a 400 when it is out of range), else the site's."""
        given = params or {}
        width = CREATE_PARAMS["viewport_width"].read(given.get("viewport_width", self.width))
        height = CREATE_PARAMS["viewport_height"].read(given.get("viewport_height", self.height))
        return int(width), int(height)

    def checked(self) -> CardSpec:
        """The spec, its size and scale read as the API reads them: a 400 said once, not once a page."""
        self.options("<p></p>")
        return self

    def values(
        self,
        page: dict[str, Any],
        site: dict[str, Any],
        options: dict[str, Any],
        *,
        params: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """What the template reads: ``extra`` (a page's own template values), its page, site and options, and the
        card's size."""
        width, height = self.size(params)
        return {**(extra or {}), "page": page, "site": site, "options": options, "width": width, "height": height}

    def render(self, values: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        """The card's HTML, and the template files it read."""
        return self.template.templates.render(self.template.name, values)

    def options(self, html: str, params: Mapping[str, Any] | None = None) -> CreateOptions:
        """The request for a card's (or a page's) ``html`` at the card's size and scale, with a page's own
        parameters (CSS, a delay, its viewport)."""
        size = dict(zip(VIEWPORT, self.size(params), strict=True))
        theirs = {k: v for k, v in (params or {}).items() if k not in VIEWPORT}
        return CreateOptions.from_mapping({**size, "device_scale": self.device_scale, **theirs, "html": html})

    def request(self, values: Mapping[str, Any], params: Mapping[str, Any] | None = None, note: str = "") -> CreateOptions:
        """The template rendered with ``values``, as a request (``note``: text that makes it another request)."""
        html, _ = self.render(values)
        return self.options(html + note, params)


def card_settings(
    configured: Mapping[str, Any], override: Any = None, defaults: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The template's `options`: the built-in card's (or the host's ``defaults``: the site's brand,
    `Brand.options`), the site's configured ones, and a page's ``override`` when it is a mapping. The built-in
    card's colours are checked (`css_color`: a 400 naming the option), and a background given without its shade
    and text colour gets those that go with it."""
    given = {**configured, **(override if isinstance(override, Mapping) else {})}
    for key in COLOR_OPTIONS:
        if key in given:
            given[key] = css_color(given[key], f"options.{key}")
    options = {**(defaults if defaults is not None else card_options())}
    if "background" in given:  # the disc's shade and the text's colour follow the background given
        derived = card_options(given["background"])
        options.update(background_end=derived["background_end"], color=derived["color"])
    return {**options, **given}


# -- how many at once --------------------------------------------------------------------------------------
def card_jobs(store: Store, jobs: int | None = None) -> int:
    """Cards made at once: what the caller asked, else the store's concurrency (the engine's pages; more with a
    remote, whose reads wait on the network, not on a page)."""
    return jobs or store.concurrency


def card_pool(store: Store, jobs: int | None = None) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(card_jobs(store, jobs), thread_name_prefix="hcti-cards")


def start_card(
    pool: concurrent.futures.Executor, store: Store, options: CreateOptions, base: str = ""
) -> concurrent.futures.Future[tuple[str, bool]] | str:
    """A stored card's id at once (a hit costs no thread and no browser), else its render started on ``pool``:
    its id, and True when it had to be rendered."""
    return store.lookup(options, base=base) or pool.submit(store.ensure, options, base=base)


# -- the card in the site, and its tags --------------------------------------------------------------------
@dataclass(frozen=True)
class LinkedCard:
    """A card written into the site: its image, and its path there (relative to the site's root)."""

    asset: Asset
    rel: str

    def tags(self, title: str, description: str, page_url: str, image_url: str, site_name: str = "") -> dict[str, str]:
        assert self.asset.pixels is not None  # a card is an image, never a PDF
        return card_tags(title, description, page_url, image_url, self.asset.mime, self.asset.pixels, site_name)


def load_card(store: Store, image_id: str, query: ImageQuery) -> Asset:
    """A stored card, checked, without its bytes in memory (a site's cards are written long after they are made)."""
    return Asset.load(store, image_id, query).slim()


def link_card(asset: Asset, tree: Tree, cards_dir: str, option: str) -> LinkedCard:
    """The card at ``cards_dir``/its name under ``tree`` (a link to the store's file where possible), by the file
    rules: a ``cards_dir`` that leads out of the site is a 400 naming ``option``."""
    rel = f"{cards_dir}/{asset.name}"
    asset.write(tree.output(rel, option))
    return LinkedCard(asset, rel)


# -- the memo of what was rendered -------------------------------------------------------------------------
def code_versions(*host: str) -> list[int]:
    """The versions (modification times) of the card pipeline's code (`CARD_CODE`) and of the ``host`` modules
    that read its pages: a memo made by other code is not trusted."""
    return [Path(sys.modules[name].__file__ or "").stat().st_mtime_ns for name in (*CARD_CODE, *host)]


def memo_header(version: int, store: Store, host: str, **settings: Any) -> dict[str, Any]:
    """What a host's memo holds for besides its entries: its format ``version``, the code (`code_versions`), the
    engine's fingerprint (Chromium) and the host's card ``settings``."""
    return {"version": version, "code": code_versions(host), "fingerprint": store.fingerprint(), **settings}


class CardMemo:
    """Which request each card's template values made last time, so an unchanged card skips its template and
    options. It holds only for the same header (`memo_header`) and template files (by hash); otherwise it starts
    empty. A memo hit is still checked in the store (the files the render read, then the object's hash), so it can
    make a card stale only if a template changed without changing its bytes (or hcti-build's code changed without
    changing its files' mtimes)."""

    VERSION = 1

    def __init__(self, path: Path, header: dict[str, Any], templates: Templates) -> None:
        self.path, self.header, self.templates = path, header, templates
        self.old: dict[str, str] = {}
        self.new: dict[str, str] = {}
        self.files: dict[str, str] = {}  # template files (relative to the templates' root) -> sha256
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("header") == header and all(self._sha(n) == h for n, h in saved.get("templates", {}).items()):
                self.old, self.files = dict(saved["cards"]), dict(saved["templates"])
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            pass  # no memo yet, or one of another version: cards are looked up the long way

    def _sha(self, name: str) -> str | None:
        try:
            return hashlib.sha256((self.templates.root / name).read_bytes()).hexdigest()
        except OSError:
            return None

    @staticmethod
    def key(values: Mapping[str, Any]) -> str | None:
        try:
            text = json.dumps(values, sort_keys=True, ensure_ascii=False, default=_tagged)
        except (TypeError, ValueError):  # keys of mixed types in front matter: no memo for this page
            return None
        return hashlib.sha256(text.encode()).hexdigest()

    def read(self, names: tuple[str, ...]) -> None:
        """Templates a render loaded (the first time in this build)."""
        for name in names:
            sha = self._sha(name)
            if sha is not None:
                self.files[name] = sha

    def save(self, warn: Callable[[str], None]) -> None:
        if self.new == self.old:
            return
        data = {"header": self.header, "templates": self.files, "cards": self.new}
        try:
            write_if_changed(self.path, json.dumps(data, sort_keys=True).encode())
        except WriteError as exc:
            warn(f"could not save the card memo: {exc.message}")


def _tagged(value: Any) -> str:
    """A front matter value JSON has no type for (a date): its type and repr, so that it differs from a string."""
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"
