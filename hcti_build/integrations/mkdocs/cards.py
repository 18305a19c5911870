"""MkDocs' side of the card pipeline (`hcti_build.CardSpec` and its companions make the cards): what a page's
card says, read from MkDocs' pages and config (its title, description, URL, front matter, and the site's brand:
the theme's logo or Material's logo icon, else its favicon; its palette; its text font when it is installed
here), and when MkDocs makes and writes it.

Pages are read before any is written (MkDocs populates every page, then builds each), so a card is submitted
when its page's content is ready (`submit`) and collected when the page is written (`collect`): cards render
concurrently on the pipeline's pool. An unchanged card is a store hit (no browser); one whose template values
and files are the same as last build is known from the memo (`CardMemo`) without rendering its template, and
its stored image is checked off the main process (`hcti_build.Checker`).
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import html
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from hcti_build import (
    Asset,
    Brand,
    CardMemo,
    CardSpec,
    CardTemplate,
    Checker,
    CreateOptions,
    Engine,
    HctiError,
    Store,
    Tree,
    card_pool,
    card_settings,
    card_site,
    css_color,
    file_data_uri,
    installed_font,
    link_card,
    memo_header,
    meta_html,
)

from .config import HctiConfig, configured_site_url

log = get_plugin_logger("hcti")
# Material for MkDocs' primary colours (the 500 shades its palette uses), by palette name.
MATERIAL = {
    "red": "#ef5350", "pink": "#e92063", "purple": "#ab47bd", "deep purple": "#7e56c2", "indigo": "#4051b5",
    "blue": "#2094f3", "light blue": "#02a6f2", "cyan": "#00bdd6", "teal": "#009485", "green": "#4cae4f",
    "light green": "#8bc34b", "lime": "#cbdc38", "yellow": "#ffec3d", "amber": "#ffc105", "orange": "#ffa724",
    "deep orange": "#ff6e42", "brown": "#795649", "grey": "#757575", "blue grey": "#546d78", "black": "#000000",
    "white": "#ffffff",
}  # fmt: skip


@dataclass
class Card:
    job: concurrent.futures.Future[Asset] | str  # a card being rendered, or the id of a stored one (checked when used)
    title: str
    description: str
    request: tuple[CreateOptions, str] | None  # its options and base; None: known from the memo, not rendered


class Cards:
    """The cards of one build (and of every rebuild of a `mkdocs serve` session)."""

    def __init__(self, config: HctiConfig, store: Store, engine: Engine, root: Path, docs: Path, *, serving: bool) -> None:
        self.config, self.store, self.engine, self.root, self.docs = config, store, engine, root, docs
        self.serving = serving
        self.pool = card_pool(store)  # the pipeline's rule: the engine's pages, more with a remote
        self.inputs: set[str] = set()  # files the cards read (`mkdocs serve` watches them)
        self.logos: set[Path] = set()
        self.checker: Checker | None = None
        self.remembered: dict[str, str] = {}  # request key -> image id, of the cards the memo knows
        # A build's settings, set again by `configure` (on_config) and `prepare` (on_pre_build) for each build:
        self.spec = CardSpec(CardTemplate.builtin())
        self.defaults: dict[str, Any] = {}  # the theme palette's card options
        self.memo: CardMemo | None = None
        self.cards_rel, self.cards_tree = "", Tree.of(root)
        self.site_url: str | None = None  # the meta tags' (under `mkdocs serve`, the dev server's address)
        self.card_url: str | None = None  # the card's: mkdocs.yml's, served or built (see `configured_site_url`)
        # A build's cards, emptied by `reset`:
        self.cards: dict[str, Card] = {}
        self.sites: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}
        self.counts = {"cards": 0, "rendered": 0}
        self.mark = self.store.remote_mark()  # images fetched from the remote before this build
        self.timings: list[tuple[float, str]] = []  # (seconds, page) of each card rendered in this build

    def close(self) -> None:
        self.stop_checker()
        self.pool.shutdown(wait=True)

    def stop_checker(self) -> None:
        if self.checker is not None:
            self.checker.close()
            self.checker = None

    # -- a build's settings --------------------------------------------------------------------------
    def configure(self, config: MkDocsConfig) -> None:
        """The template, format and options of this build's cards (MkDocs' on_config)."""
        c = self.config
        # A site's template loads the project's files (relative URLs in it resolve from its folder).
        template = CardTemplate.site_file(Path(c.cards_template), self.root) if c.cards_template else CardTemplate.builtin()
        self.spec = CardSpec(template, c.cards_width, c.cards_height, c.device_scale, c.cards_format)
        self.defaults = _default_options(config)
        self.reset()
        self.memo = None
        if self.config.cards and not self.serving:  # `mkdocs serve` needs each card's inputs: no memo there
            self.memo = CardMemo(self.store.path / "cards-memo.json", self._memo_header(), template.templates)

    def reset(self) -> None:
        """A new build's cards (a `mkdocs serve` session rebuilds with the same factory)."""
        self.cards, self.sites, self.inputs, self.timings = {}, {}, set(), []
        self.counts = {"cards": 0, "rendered": 0}
        self.mark = self.store.remote_mark()

    def prepare(self, config: MkDocsConfig) -> None:
        """What every card's page needs, read once a build (after every plugin's on_config): the cards the memo
        knows, looked up in the store now, and their images hashed by a helper process while MkDocs reads pages."""
        self.cards_rel = self.config.cards_dir.strip("/")
        # Cards are written by the file rules: inside site_dir, never through a folder that leads out of it.
        self.cards_tree = Tree.of(config.site_dir)
        self.cards_tree.output(self.cards_rel, "cards_dir")
        self.site_url = _dir_url(config.site_url)
        self.card_url = _dir_url(configured_site_url(config))
        self.remembered = {}
        if self.memo is not None:
            for key in set(self.memo.old.values()):
                if image_id := self.store.lookup_key(key):
                    self.remembered[key] = image_id
        self.stop_checker()
        if self.remembered and self.spec.query.is_identity and _cpus() > 1:  # on one core, checking here is cheaper
            self.checker = Checker.start(self.store, sorted(set(self.remembered.values())))

    # -- one page's card -----------------------------------------------------------------------------
    def submit(self, page: Page, config: MkDocsConfig) -> None:
        """Start the page's card: known from the memo, a store hit, or rendered on the pool."""
        with _about(f"card for {page.file.src_uri}"):
            values, title, description, memo_key = self._values(page, config)
        remembered = self.memo.old.get(memo_key) if self.memo and memo_key else None
        hit = self.remembered.get(remembered) if remembered else None
        if hit:  # the same values and template files as last time, and the image is stored: no template
            assert self.memo is not None and memo_key is not None and remembered is not None
            self.memo.new[memo_key] = remembered
            self.cards[page.file.src_uri] = Card(hit, title, description, None)  # checked when collected
            return
        uri = page.file.src_uri
        with _about(f"card template for {uri}"):
            card_html, read = self.spec.render(values)
        base = self.spec.template.base
        with _about(f"card for {uri}"):
            opts = self.spec.options(card_html)
            request_key = self.store.request_key(opts, base=base)
        if self.memo:
            self.memo.read(read)  # from every page, remembered or not: the memo holds only while these hold
            if memo_key:
                self.memo.new[memo_key] = request_key
        hit = self.store.lookup_key(request_key)  # an unchanged card: checked when collected, like the memo's
        job = hit or self.pool.submit(self._render, uri, opts, base)
        self.cards[uri] = Card(job, title, description, (opts, base))

    def _values(self, page: Page, config: MkDocsConfig) -> tuple[dict[str, Any], str, str, str | None]:
        """What the template reads for this page, its title and description, and its key in the memo."""
        options = card_settings(self.config.cards_options, card_setting(page), self.defaults)
        # The title the theme puts in <title>: Material prefers the page's `title:` meta, MkDocs' own themes (and
        # most others) the page's title, which a nav entry may set (the corpus: 19 of Python-Markdown's pages had
        # another og:title than <title>). A heading's title comes HTML-escaped, with inline markup.
        meta_title = page.meta.get("title") if config.theme.name == "material" else None
        title = str(meta_title or html.unescape(re.sub(r"<[^>]+>", "", page.title or "")) or config.site_name)
        description = str(page.meta.get("description") or config.site_description or "")
        site, site_key = self._site(config, options)
        values = self.spec.values(
            {"title": title, "description": description, "url": self._page_url(page), "meta": dict(page.meta)}, site, options
        )
        memo_key = self.memo.key({**values, "site": site_key}) if self.memo else None
        return values, title, description, memo_key

    def _page_url(self, page: Page) -> str:
        """The page's URL on its card: the canonical one MkDocs made, unless `mkdocs serve` made it of the dev
        server's address (then the same URL of mkdocs.yml's site_url: a card is the same served or built)."""
        if self.card_url == self.site_url:
            return page.canonical_url or page.url
        return urljoin(self.card_url, page.url) if self.card_url else page.url

    def _render(self, uri: str, opts: CreateOptions, base: str) -> Asset:
        """A card rendered (or found in the store) on a pool thread, without its bytes in memory (every page is
        read before any is written), timed for the build's summary unless it waited for Chromium to start."""
        launches, t0 = self.engine.launches, time.perf_counter()
        asset = Asset.render(self.store, opts, self.spec.query, base=base).slim()
        if asset.rendered and self.engine.launches == launches:
            self.timings.append((time.perf_counter() - t0, uri))  # list.append: safe from the pool's threads
        return asset

    def _reused(self, image_id: str) -> Asset:
        """A stored card, checked: by the helper process when it could (see `Checker`), else here (a damaged
        image is rendered again)."""
        checker = self.checker
        pixels = checker.checked(image_id) if checker else None
        if pixels:
            return Asset.checked(self.store, image_id, self.spec.query, pixels)
        return Asset.load(self.store, image_id, self.spec.query).slim()

    def collect(self, page: Page) -> tuple[str, dict[str, str]] | None:
        """The page's card written into the site, and its meta tags (as HTML, and by name); None: no card."""
        card = self.cards.pop(page.file.src_uri, None)
        if card is None:
            return None
        with _about(f"card for {page.file.src_uri}"):
            asset = self._reused(card.job) if isinstance(card.job, str) else card.job.result()
        self.counts["cards"] += 1
        self.counts["rendered"] += asset.rendered
        if self.serving and card.request:  # what `mkdocs serve` must watch: every file a card read
            self.inputs.update(self.store.inputs(card.request[0], base=card.request[1]))
        linked = link_card(asset, self.cards_tree, self.cards_rel, "cards_dir")
        if self.site_url:
            image_url = self.site_url + linked.rel
            page_url = page.canonical_url or self.site_url + page.url.lstrip("/")
        else:
            image_url, page_url = get_relative_url(linked.rel, page.url or "."), page.url
        tags = linked.tags(card.title, card.description, page_url, image_url)
        return meta_html(tags, set()), tags

    def counted(self) -> str:
        n = self.counts
        return f"{n['cards']} cards ({n['rendered']} rendered, {n['cards'] - n['rendered']} reused)"

    def slowest(self) -> str:
        """The slowest card rendered in this build (launches excluded), for the summary line; "" if none."""
        slowest = max(self.timings, default=None)
        return f"; slowest card {slowest[0] * 1000:.0f} ms ({slowest[1]})" if slowest else ""

    def finish(self) -> None:
        if self.memo is not None:
            self.memo.save(log.warning)
        self.stop_checker()

    def watched(self) -> set[Path]:
        """Files outside the docs folder a card read (MkDocs watches that one): the template's, the logo."""
        return {*(self.root / rel for rel in self.inputs), *self.logos}

    # -- what a card's HTML depends on ---------------------------------------------------------------
    def _memo_header(self) -> dict[str, Any]:
        """What a card's HTML depends on besides its template values and template files (the pipeline's header:
        its code and Chromium, with this module's code and the cards' settings)."""
        spec = self.spec
        size = [spec.width, spec.height, spec.device_scale]
        return memo_header(
            CardMemo.VERSION, self.store, __name__, template=spec.template.name, custom=spec.template.custom, size=size
        )

    def _site(self, config: MkDocsConfig, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The template's `site`, the same for every page but those whose front matter changes these options, and
        its hash (what the card memo keys on: the logo's data URI is hashed once, not once a page)."""
        key = tuple(str(options.get(name)) for name in ("logo", "background", "accent", "color"))  # color: the icon's fill
        cached = self.sites.get(key)
        if cached is None:
            site = self._site_values(config, options)
            cached = self.sites[key] = (site, CardMemo.key(site) or "")
        site, digest = cached
        return {**site, "palette": dict(site["palette"])}, digest  # a copy: a template cannot change another page's

    def _site_values(self, config: MkDocsConfig, options: dict[str, Any]) -> dict[str, Any]:
        # The option's logo, else the theme's (a file, else Material's icon), else its favicon (the mark a site
        # without a logo has).
        logo_url = (
            self._logo_url(options.get("logo"))
            or self._logo_url(config.theme.get("logo"))
            or _theme_icon(config, css_color(options.get("color") or "#ffffff", "options.color"))
            or self._logo_url(config.theme.get("favicon"))
        )
        description, language = config.site_description or "", config.theme.get("language") or "en"
        return card_site(
            config.site_name, self.card_url or "", options, description=description, logo=logo_url, language=language
        )

    def _logo_url(self, logo: object) -> str | None:
        """A logo file as the card shows it (a `data:` URI; a large one by its path), watched under `mkdocs serve`."""
        if not logo or urlsplit(str(logo)).scheme:
            return None
        for folder in (self.docs, self.root):  # theme logos are docs-relative; an option may be either
            path = (folder / str(logo)).resolve()
            if path.is_file() and path.is_relative_to(self.root):
                self.logos.add(path)
                return file_data_uri(path) or "/" + path.relative_to(self.root).as_posix()
        return None


def _theme_icon(config: MkDocsConfig, fill: str) -> str | None:
    """Material's `theme.icon.logo` (`material/library`): the SVG from the theme's `.icons` (or custom_dir's),
    drawn in the card's text colour, as Material draws it in its header."""
    icon = config.theme.get("icon")
    name = icon.get("logo") if isinstance(icon, dict) else None
    if not isinstance(name, str) or not name:
        return None
    for folder in config.theme.dirs:
        path = Tree.of(Path(folder) / ".icons").file(f"{name}.svg")
        if path is not None:
            svg = path.read_text(encoding="utf-8", errors="replace").replace("<svg ", f'<svg fill="{fill}" ', 1)
            return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    return None


def card_setting(page: Page) -> Any:
    """The page's front matter `hcti: {card: ...}`: False opts out, a dict overrides the card's options."""
    meta = page.meta.get("hcti")
    return meta.get("card") if isinstance(meta, dict) else None


def _default_options(config: MkDocsConfig) -> dict[str, Any]:
    """The card's options for the theme's brand: its palette's colours, and its text font (Material's
    `theme.font.text`) when it is installed here: a card never downloads one."""
    font = config.theme.get("font")
    text = str(font.get("text") or "") if isinstance(font, dict) else ""
    primary, accent = _palette(config)
    return Brand(color=primary, accent=accent, font=text if text and installed_font(text) else None).options()


@contextlib.contextmanager
def _about(what: str) -> Iterator[None]:
    """hcti-build's errors said about one card (the plugin makes them MkDocs' own)."""
    try:
        yield
    except HctiError as exc:
        raise exc.about(what) from None


def _dir_url(url: str | None) -> str | None:
    return url.rstrip("/") + "/" if url else None


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)  # the CPUs this process may use (Linux)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _palette(config: MkDocsConfig) -> tuple[str, str]:
    palette = config.theme.get("palette") or {}
    if isinstance(palette, list):
        palette = palette[0] if palette else {}
    primary = str(palette.get("primary", "indigo")).replace("-", " ").lower()
    accent = str(palette.get("accent", "amber")).replace("-", " ").lower()
    return MATERIAL.get(primary, "#4051b5"), MATERIAL.get(accent, "#ffc105")
