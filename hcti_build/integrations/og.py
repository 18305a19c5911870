"""`hcti og`: a social card for every page of a built site, whatever made it (Zensical, Sphinx, Jupyter Book,
Hugo, plain HTML), and the page's og:/twitter: tags pointing at it.

Each page is read (`head.read_head`), its card is made in one of the hosted API's two OG Image modes (a
template rendered with the page's values, or a screenshot of the page itself when it names an `hcti:selector`),
content-addressed through the store (an unchanged page is a store hit, no browser), written into the site, and
the page's head is edited in place (`head.edit_head`): a second run renders nothing and changes no byte. The
cards are the card pipeline's (`pipeline.cards`: template, size, values, pool, file, tags); this module reads a
built site's pages and writes the tags into them. A card shows the site's brand (`pipeline.brand`) as its pages
declare it (`theme-color`, an icon or apple-touch-icon in the site), unless `--logo`, `--color`, `--font` say.

The chain: `SiteCards.run` -> `_read_all` (pages, skips) -> `_submit_all` (each page's card request; hits
written, misses submitted to the engine's pages) -> `_collect` (each rendered card written as it finishes).
"""

from __future__ import annotations

import concurrent.futures
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..engine.browser import Engine
from ..errors import BadRequestError, HctiError
from ..files import Tree, write_if_changed
from ..options import CreateOptions
from ..pipeline.brand import Brand, css_color, installed_font, logo_file, logo_uri, site_color
from ..pipeline.cards import (
    CARD_SIZE,
    CardSpec,
    CardTemplate,
    card_jobs,
    card_pool,
    card_settings,
    link_card,
    load_card,
    memo_header,
    start_card,
)
from ..pipeline.head import Head, edit_head, read_head, tag_span
from ..pipeline.site import (
    PageMemo,
    common_suffix,
    digest,
    opted_out,
    site_base,
    site_pages,
    site_url_of,
    strip_suffix,
    template_values,
    url_path,
)
from ..pipeline.templates import card_site
from ..store.remote import remote_tier
from ..store.store import Store

# The tags a card owns: written anew on every run. The page's own og:title, og:description, og:url, og:type and
# og:site_name (and twitter:title/description) are added only where the page has none.
REPLACED = ("og:image", "og:image:type", "og:image:width", "og:image:height", "og:image:alt", "twitter:card", "twitter:image")
# Page metadata read as the hosted API's OG Image Configs read it: `hcti:NAME` creation parameters.
PAGE_PARAMS = (
    "selector",
    "css",
    "viewport_width",
    "viewport_height",
    "ms_delay",
    "max_wait_ms",
    "render_when_ready",
    "transparent_background",
)


@dataclass(frozen=True)
class OgSettings:
    """What `hcti og` was asked: the site folder and how its cards are made and referred to."""

    site: Path
    site_url: str | None = None  # absolute URLs are made from it; else from each page's canonical URL
    template: Path | None = None  # a Jinja2 HTML card; default: the built-in one
    screenshot: bool = False  # every page a screenshot of itself, not only those with hcti:selector
    cards_dir: str = "assets/images/social"
    format: str = "png"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    site_name: str | None = None
    width: int = CARD_SIZE[0]  # the cards' size in CSS pixels (a page's hcti:viewport_width/height wins)
    height: int = CARD_SIZE[1]
    device_scale: float = 1
    logo: Path | None = None  # the cards' logo; default: the page's icon (apple-touch-icon first), in the site
    color: str | None = None  # the cards' colour; default: the page's theme-color
    font: str | None = None  # the cards' font family (installed here); default: the built-in card's


@dataclass
class OgPage:
    """One page and its card: what was read, the request, and (once made) the card."""

    rel: str  # the HTML file, relative to the site folder (posix)
    text: str
    head: Head
    data: bytes = b""  # the file's bytes as read
    url: str = ""  # the page's absolute URL
    base_url: str = ""  # the URL the site folder is served at
    title: str = ""
    description: str = ""
    site_name: str = ""
    options: CreateOptions | None = None
    store: Store | None = None
    base: str = ""
    image_id: str | None = None
    rendered: bool = False
    deps: tuple[str, ...] = ()  # the site's files its card read besides the page (its icon)


@dataclass
class OgReport:
    """What a run did: pages given a card (``rendered`` of them rendered now), pages skipped (opted out,
    redirect stubs), and `page: reason` errors; the pages with no absolute URL are one error (`no_url`)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # said once each (a site's colour that is not one)
    no_url: list[str] = field(default_factory=list)
    pages: int = 0
    rendered: int = 0
    skipped: int = 0
    from_remote: str = ""  # " (N from <remote>)" when the store has a remote
    seconds: float = 0.0

    def url_error(self) -> None:
        """The pages that have no absolute URL, as one error: every page of a site lacks it for the same reason."""
        if not self.no_url:
            return
        pages = ", ".join(self.no_url[:3]) + (f" and {len(self.no_url) - 3} more" if len(self.no_url) > 3 else "")
        self.errors.append(
            f"og:image must be an absolute URL, and {len(self.no_url)} page(s) ({pages}) have no absolute canonical "
            "URL (link rel=canonical) to make it from: give the site's public URL, as --site-url https://example.org/docs/ "
            "or as site_url under [tool.hcti] in pyproject.toml or in hcti.toml"
        )

    def summary(self) -> str:
        head = "hcti og failed" if self.errors else "hcti og"
        return (
            f"{head}: {self.pages} pages, {self.rendered} rendered, {self.pages - self.rendered} reused{self.from_remote}, "
            f"{self.skipped} skipped in {self.seconds:.1f} s"
        )


class SiteCards:
    """The cards of one built site, in the store at ``store_path`` opened at its two roots (the card template's
    folder, and the site itself for screenshots) on one ``engine``."""

    def __init__(self, settings: OgSettings, store_path: Path, engine: Engine, *, jobs: int | None = None) -> None:
        if settings.site_url:  # read once: a bad one is one error, not one broken og:image per page
            settings = replace(settings, site_url=site_url_of(settings.site_url))
        self.settings = settings
        self.site = settings.site.resolve()
        if not self.site.is_dir():
            raise BadRequestError(f"{settings.site} is not a folder", param="site")
        # Cards are written by the file rules: inside the site, never through a folder that leads out of it.
        self.tree = Tree.of(self.site)
        self.cards_dir = settings.cards_dir.strip("/")
        self.tree.output(self.cards_dir, "cards_dir")
        self.brand = _flag_brand(settings)  # checked once: a bad --color is one error, before any page
        remote = remote_tier(None, self.site) or ""  # one tier for both roots: one warning, one count
        self.site_store = Store(store_path, root=self.site, engine=engine, remote=remote)
        self.spec = _card_spec(settings)
        self.logos: dict[Path, str | None] = {}  # an icon's data URI, read once for all the pages that name it
        self.warnings: dict[str, None] = {}  # each said once, however many pages have it
        if settings.font and not installed_font(settings.font):  # Chromium would fall back without a word
            self._warn(f"--font {settings.font!r} is not installed here (fc-list): the cards fall back to Noto Sans")
        self.card_store = Store(store_path, root=self.spec.template.root, engine=engine, remote=remote)
        self.jobs = card_jobs(self.site_store, jobs)
        self.memo = PageMemo(self.site_store.path / "og-memo" / f"{digest(str(self.site))}.json", self._memo_header())

    def _memo_header(self) -> dict[str, Any]:
        """What a page's card and tags depend on besides the page: the settings, the template's bytes, the
        Chromium, and hcti-build's code."""
        settings = {k: str(v) for k, v in vars(self.settings).items() if k != "site"}
        template = digest((self.spec.template.root / self.spec.template.name).read_bytes())
        return memo_header(
            PageMemo.VERSION, self.site_store, __name__, settings=settings, template=template, brand=self.brand.key()
        )

    def close(self) -> None:
        self.site_store.close()
        self.card_store.close()

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> OgReport:
        t0 = time.perf_counter()
        report = OgReport()
        mark = self.site_store.remote_mark()
        pages = self._read_all(report)
        titles = [p.head.title for p in pages] + self.memo.titles  # every page's, read now or remembered
        site_name = self.settings.site_name or common_suffix(titles)
        # The store's misses render on the engine's pages while the other pages are prepared and written.
        with card_pool(self.site_store, self.jobs) as pool:
            misses = self._submit_all(pages, site_name, pool, report)
            report.url_error()
            self._collect(misses, report, on_progress)
        self.memo.save()
        report.warnings = list(self.warnings)
        report.seconds = time.perf_counter() - t0
        report.from_remote = self.site_store.remote_note(mark)
        return report

    # -- reading --------------------------------------------------------------------------------------
    def _read_all(self, report: OgReport) -> list[OgPage]:
        pages = []
        for rel in site_pages(self.site, self.settings.include, self.settings.exclude):
            if self.memo.unchanged(self.site, rel):  # left as the last run made it: nothing to read
                report.pages += 1
                continue
            data = (self.site / rel).read_bytes()
            text = data.decode("utf-8", "surrogateescape")  # every byte kept as it was
            head = read_head(text)
            if not head.document:  # a template fragment, not a page: not read further, not counted
                self.memo.forget(rel)
                continue
            if opted_out(head):
                report.skipped += 1
                self.memo.forget(rel)
                continue
            pages.append(OgPage(rel, text, head, data))
        return pages

    # -- each page's card -----------------------------------------------------------------------------
    def _request(self, page: OgPage, site_name: str | None, report: OgReport) -> bool:
        """The page's URLs, values and card request; False (with the error reported) when it cannot have one."""
        urls = self._urls(page)
        if urls is None:
            report.no_url.append(page.rel)
            return False
        page.url, page.base_url = urls
        try:
            head = page.head
            title = head.get("og:title") or strip_suffix(head.title, site_name) or site_name or page.rel
            page.title, page.description = title, head.get("og:description") or head.get("description") or ""
            page.site_name = head.get("og:site_name") or site_name or urlsplit(page.base_url).netloc
            params = self._page_params(head)
            if self.settings.screenshot or params.get("selector"):
                page.options, page.store, page.base = self._screenshot(page, params), self.site_store, posixpath.dirname(page.rel)
            else:
                page.options, page.store = self._templated(page, params), self.card_store
        except HctiError as exc:
            report.errors.append(f"{page.rel}: {exc.message}")
            return False
        return True

    def _urls(self, page: OgPage) -> tuple[str, str] | None:
        """The page's absolute URL and the site folder's. og:image must be absolute: from --site-url, else from
        the page's canonical URL; None when it has neither."""
        if self.settings.site_url:  # checked and ending in / (`site_url_of`)
            return self.settings.site_url + url_path(page.rel), self.settings.site_url
        from_canonical = site_base(page.head.canonical, page.rel)
        return None if from_canonical is None else (page.head.canonical, from_canonical)

    def _page_params(self, head: Head) -> dict[str, Any]:
        return {name: value for name in PAGE_PARAMS if (value := head.get(f"hcti:{name}")) not in (None, "")}

    def _screenshot(self, page: OgPage, params: dict[str, Any]) -> CreateOptions:
        """The page itself, loaded from the site folder, at the card's viewport: its element, or the viewport."""
        theirs = [m for m in page.head.metas if m.key.startswith(("og:", "twitter:"))]
        html, pos = [], 0  # without the tags a run writes, so that writing them does not change the card
        for m in theirs:
            start, end = tag_span(page.text, m)
            html.append(page.text[pos:start])
            pos = end
        html.append(page.text[pos:])
        return self.spec.options("".join(html), params)

    def _templated(self, page: OgPage, params: dict[str, Any]) -> CreateOptions:
        """The card template rendered with the page's values and its `html:tv:` template values."""
        head = page.head
        brand = self._brand(page)
        options = card_settings({}, defaults=brand.options())
        site = card_site(page.site_name, page.base_url, options, logo=brand.logo, language=head.lang or "en")
        about = {"title": page.title, "description": page.description, "url": page.url, "lang": head.lang, "dir": head.dir}
        values = self.spec.values(about, site, options, params=params, extra=template_values(head))
        version = head.get("hcti:content_version")
        note = f"\n<!-- content_version: {version} -->" if version else ""  # a new version is a new request, a new image
        return self.spec.request(values, params, note)

    def _brand(self, page: OgPage) -> Brand:
        """The page's card's brand: its own `hcti:logo`, `hcti:color`, `hcti:font` (a bad one is this page's
        error), over the command's flags, over what the page declares of its site's brand: its theme-color, and
        its first icon that is a file in the site (apple-touch-icon first: the larger one)."""
        head = page.head
        own_logo, own_color = head.get("hcti:logo"), head.get("hcti:color")
        own = Brand(
            logo=self._logo(page, [own_logo]) if own_logo else None,
            color=css_color(own_color, "hcti:color") if own_color else None,
            font=head.get("hcti:font") or None,
        )
        if own_logo and own.logo is None:
            raise BadRequestError(f"hcti:logo {own_logo!r} is not an image file in the site (of at most 512 KB)", param="logo")
        icons = sorted(head.icons, key=lambda icon: not icon[0].startswith("apple-touch-icon"))
        reads_icons = own.logo is None and self.brand.logo is None  # a logo given: the pages' icons are not read
        declared = Brand(
            logo=self._logo(page, [href for _, href in icons]) if reads_icons else None,
            color=site_color(head.get("theme-color"), "theme-color", self._warn),
        )
        return Brand.first(own, self.brand, declared)

    def _logo(self, page: OgPage, hrefs: list[str]) -> str | None:
        """The first of ``hrefs`` that is an image file in the site (by the file rules: a URL is not fetched), as
        a data: URI read once for every page that names it; kept as the page's dependency (a new icon, a new card)."""
        for href in hrefs:
            path = logo_file(self.tree, href, posixpath.dirname(page.rel))
            if path is None:
                continue
            if path not in self.logos:
                self.logos[path] = logo_uri(path)
            logo = self.logos[path]
            if logo:
                page.deps = (path.relative_to(self.site).as_posix(),)
                return logo
        return None

    def _warn(self, message: str) -> None:
        self.warnings.setdefault(message)

    # -- rendering and writing ------------------------------------------------------------------------
    def _submit_all(
        self, pages: list[OgPage], site_name: str | None, pool: concurrent.futures.Executor, report: OgReport
    ) -> dict[concurrent.futures.Future[tuple[str, bool]], OgPage]:
        """Each page's card request: a store hit is written at once, a miss submitted for rendering."""
        misses = {}
        for page in pages:
            job = self._start(page, site_name, pool, report)
            if isinstance(job, str):
                page.image_id = job
                self._write(page, report)
            elif job is not None:
                misses[job] = page
        return misses

    def _start(
        self, page: OgPage, site_name: str | None, pool: concurrent.futures.Executor, report: OgReport
    ) -> concurrent.futures.Future[tuple[str, bool]] | str | None:
        """The page's card found in the store, or its render started; None (the error reported) if it has none."""
        if not self._request(page, site_name, report):
            return None
        assert page.store is not None and page.options is not None
        try:
            return start_card(pool, page.store, page.options, page.base)
        except HctiError as exc:
            report.errors.append(f"{page.rel}: {exc.message}")
            return None

    def _collect(
        self,
        misses: dict[concurrent.futures.Future[tuple[str, bool]], OgPage],
        report: OgReport,
        on_progress: Callable[[int, int], None] | None,
    ) -> None:
        """Each rendered card written as its render finishes; a failed one reported with its page."""
        for done, fut in enumerate(concurrent.futures.as_completed(misses), 1):
            page = misses[fut]
            try:
                page.image_id, page.rendered = fut.result()
                self._write(page, report)
            except HctiError as exc:
                report.errors.append(f"{page.rel}: {exc.message}")
            if on_progress:
                on_progress(done, len(misses))

    def _write(self, page: OgPage, report: OgReport) -> None:
        """The page's card into the site, and its tags into the page."""
        assert page.store is not None and page.image_id is not None
        try:
            linked = link_card(load_card(page.store, page.image_id, self.spec.query), self.tree, self.cards_dir, "cards_dir")
            tags = linked.tags(page.title, page.description, page.url, page.base_url + linked.rel, page.site_name)
            data = self._edit(page, tags)
            self.memo.record(self.site, page.rel, linked.rel, page.head.title, data, page.deps)
        except HctiError as exc:
            report.errors.append(f"{page.rel}: {exc.message}")
            return
        report.pages += 1
        report.rendered += page.rendered

    def _edit(self, page: OgPage, tags: dict[str, str]) -> bytes:
        """The page's tags written into it (when they change it); returns its bytes as they now are."""
        text = edit_head(page.text, page.head, tags, REPLACED)
        if text == page.text:
            return page.data
        data = text.encode("utf-8", "surrogateescape")
        write_if_changed(self.site / page.rel, data)
        return data


def _flag_brand(settings: OgSettings) -> Brand:
    """The brand the command was given (--logo, --color, --font): over what the pages declare."""
    logo = None
    if settings.logo is not None:
        logo = logo_uri(settings.logo if settings.logo.is_file() else None)
        if logo is None:
            raise BadRequestError(f"--logo {settings.logo}: not a readable image file of at most 512 KB", param="logo")
    color = css_color(settings.color, "--color") if settings.color else None
    return Brand(logo=logo, color=color, font=settings.font or None)


def _card_spec(settings: OgSettings) -> CardSpec:
    """The cards' template (--template, else the built-in one), size, scale and format."""
    template = CardTemplate.builtin()
    if settings.template is not None:
        if not settings.template.resolve().is_file():
            raise BadRequestError(f"template {settings.template} not found", param="template")
        template = CardTemplate.site_file(settings.template)
    return CardSpec(template, settings.width, settings.height, settings.device_scale, settings.format).checked()
