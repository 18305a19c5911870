"""`hcti og`: a social card for every page of a built site, whatever made it (Zensical, Sphinx, Jupyter Book,
Hugo, plain HTML), and the page's og:/twitter: tags pointing at it.

Each page is read (`head.read_head`), its card is made in one of the hosted API's two OG Image modes (a
template rendered with the page's values, or a screenshot of the page itself when it names an `hcti:selector`),
content-addressed through the store (an unchanged page is a store hit, no browser), written into the site, and
the page's head is edited in place (`head.edit_head`): a second run renders nothing and changes no byte.

The chain: `SiteCards.run` -> `_read_all` (pages, skips) -> `_request` (each page's card) -> `_render_all` (the
misses, concurrently) -> `_write_all` (cards and heads).
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import json
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from .assets import Asset
from .errors import BadRequestError, HctiError
from .files import write_if_changed
from .head import Head, card_tags, edit_head, read_head, tag_span
from .options import CREATE_PARAMS, CreateOptions, ImageQuery
from .store import Store
from .templates import BUILTIN_TEMPLATES, Templates, card_options

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
CARD_SIZE = (1200, 630)
VIEWPORT = ("viewport_width", "viewport_height")
_SEPARATORS = (" - ", " — ", " – ", " | ", " · ")


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


@dataclass
class OgPage:
    """One page and its card: what was read, the request, and (once made) the card."""

    rel: str  # the HTML file, relative to the site folder (posix)
    text: str
    head: Head
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


@dataclass
class OgReport:
    pages: int = 0
    rendered: int = 0
    skipped: int = 0
    seconds: float = 0.0
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = "hcti og failed" if self.errors else "hcti og"
        return (
            f"{head}: {self.pages} pages, {self.rendered} rendered, {self.pages - self.rendered} reused, "
            f"{self.skipped} skipped in {self.seconds:.1f} s"
        )


class SiteCards:
    """The cards of one built site. ``store`` names the store folder; the engine is shared by its two roots
    (the card template's folder, and the site itself for screenshots)."""

    def __init__(self, settings: OgSettings, store: Store, *, jobs: int | None = None) -> None:
        self.settings = settings
        self.site = settings.site.resolve()
        if not self.site.is_dir():
            raise BadRequestError(f"{settings.site} is not a folder", param="site")
        self.site_store = Store(store.path, root=self.site, engine=store.engine)
        if settings.template is not None:
            template = settings.template.resolve()
            if not template.is_file():
                raise BadRequestError(f"template {settings.template} not found", param="template")
            self.templates, self.template_name = Templates(template.parent, cache=True), template.name
        else:
            self.templates, self.template_name = Templates(BUILTIN_TEMPLATES, cache=True), "card.html"
        self.card_store = Store(store.path, root=self.templates.root, engine=store.engine)
        self.query = ImageQuery.from_mapping({"format": settings.format})
        self.jobs = jobs or store.engine.pool_size

    def close(self) -> None:
        self.site_store.close()
        self.card_store.close()

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> OgReport:
        t0 = time.perf_counter()
        report = OgReport()
        pages = self._read_all(report)
        site_name = self.settings.site_name or _common_suffix([p.head.title for p in pages])
        ready = [p for p in pages if self._request(p, site_name, report)]
        self._render_all(ready, report, on_progress)
        self._write_all([p for p in ready if p.image_id], report)
        report.seconds = time.perf_counter() - t0
        return report

    # -- reading --------------------------------------------------------------------------------------
    def _read_all(self, report: OgReport) -> list[OgPage]:
        pages = []
        for rel in site_pages(self.site, self.settings):
            text = (self.site / rel).read_bytes().decode("utf-8", "surrogateescape")  # every byte kept as it was
            head = read_head(text)
            if _opted_out(head):
                report.skipped += 1
                continue
            pages.append(OgPage(rel, text, head))
        return pages

    # -- each page's card -----------------------------------------------------------------------------
    def _request(self, page: OgPage, site_name: str | None, report: OgReport) -> bool:
        """The page's URLs, values and card request; False (with the error reported) when it cannot have one."""
        try:
            page.url, page.base_url = self._urls(page)
            head = page.head
            title = head.get("og:title") or _strip_suffix(head.title, site_name) or site_name or page.rel
            page.title, page.description = title, head.get("og:description") or head.get("description") or ""
            page.site_name = head.get("og:site_name") or site_name or urlsplit(page.base_url).netloc
            params = self._page_params(head)
            if self.settings.screenshot or params.get("selector"):
                page.options, page.store, page.base = self._screenshot(page, params), self.site_store, posixpath.dirname(page.rel)
            else:
                page.options, page.store = self._templated(page, params), self.card_store
            page.image_id = page.store.lookup(page.options, base=page.base)
        except HctiError as exc:
            report.errors.append(f"{page.rel}: {exc.message}")
            return False
        return True

    def _urls(self, page: OgPage) -> tuple[str, str]:
        """The page's absolute URL and the site folder's. og:image must be absolute: from --site-url, else from
        the page's canonical URL."""
        path = _url_path(page.rel)
        if self.settings.site_url:
            base = self.settings.site_url.rstrip("/") + "/"
            return base + path, base
        canonical = page.head.canonical
        if not urlsplit(canonical).scheme.startswith("http"):
            raise BadRequestError(
                "og:image must be an absolute URL: give --site-url (or site_url under [tool.hcti]); this page has no "
                "absolute canonical URL either",
                param="site_url",
            )
        if path and canonical.rstrip("/").endswith(path.rstrip("/")):
            return canonical, canonical.rstrip("/")[: -len(path.rstrip("/"))]
        if not path:
            return canonical, canonical if canonical.endswith("/") else canonical + "/"
        return canonical, urljoin(canonical, "/".join([".."] * path.rstrip("/").count("/")) or "./")

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
        size = dict(zip(VIEWPORT, CARD_SIZE, strict=True))
        return CreateOptions.from_mapping({**size, "device_scale": 1, **params, "html": "".join(html)})

    def _templated(self, page: OgPage, params: dict[str, Any]) -> CreateOptions:
        """The card template rendered with the page's values and its `html:tv:` template values."""
        head = page.head
        size = {
            name: CREATE_PARAMS[name].read(params.pop(name, default)) for name, default in zip(VIEWPORT, CARD_SIZE, strict=True)
        }
        width, height = size["viewport_width"], size["viewport_height"]
        site: dict[str, Any] = {
            "name": page.site_name,
            "url": page.base_url,
            "description": "",
            "host": (urlsplit(page.base_url).netloc + urlsplit(page.base_url).path).rstrip("/"),
            "logo": None,
            "language": head.lang or "en",
        }
        options = card_options()
        site["palette"] = {"primary": options["background"], "accent": options["accent"]}
        values = {
            **_template_values(head),
            "page": {"title": page.title, "description": page.description, "url": page.url, "lang": head.lang, "dir": head.dir},
            "site": site,
            "options": options,
            "width": width,
            "height": height,
        }
        html, _ = self.templates.render(self.template_name, values)
        if version := head.get("hcti:content_version"):
            html += f"\n<!-- content_version: {version} -->"  # a new version is a new request, a new image
        return CreateOptions.from_mapping({**size, "device_scale": 1, **params, "html": html})

    # -- rendering and writing ------------------------------------------------------------------------
    def _render_all(self, pages: list[OgPage], report: OgReport, on_progress: Callable[[int, int], None] | None) -> None:
        """The pages whose card the store lacks, rendered concurrently on the engine's pages."""
        misses = [p for p in pages if p.image_id is None]
        if not misses:
            return
        with concurrent.futures.ThreadPoolExecutor(self.jobs, thread_name_prefix="hcti-og") as pool:
            futures = {pool.submit(self._ensure, p): p for p in misses}
            for done, fut in enumerate(concurrent.futures.as_completed(futures), 1):
                page = futures[fut]
                try:
                    page.image_id, page.rendered = fut.result()
                except HctiError as exc:
                    report.errors.append(f"{page.rel}: {exc.message}")
                if on_progress:
                    on_progress(done, len(misses))

    @staticmethod
    def _ensure(page: OgPage) -> tuple[str, bool]:
        assert page.store is not None and page.options is not None
        return page.store.ensure(page.options, base=page.base)

    def _write_all(self, pages: list[OgPage], report: OgReport) -> None:
        cards_dir = self.settings.cards_dir.strip("/")
        for page in pages:
            assert page.store is not None and page.image_id is not None
            try:
                asset = Asset.load(page.store, page.image_id, self.query).slim()
                if asset.write(self.site / cards_dir / asset.name):
                    report.written.append(f"{cards_dir}/{asset.name}")
                assert asset.pixels is not None
                image_url = page.base_url + f"{cards_dir}/{asset.name}"
                tags = card_tags(page.title, page.description, page.url, image_url, asset.mime, asset.pixels)
                self._edit(page, tags, report)
            except HctiError as exc:
                report.errors.append(f"{page.rel}: {exc.message}")
                continue
            report.pages += 1
            report.rendered += page.rendered

    def _edit(self, page: OgPage, tags: dict[str, str], report: OgReport) -> None:
        tags = {**tags, "og:site_name": page.site_name}
        text = edit_head(page.text, page.head, tags, REPLACED)
        if text != page.text and write_if_changed(self.site / page.rel, text.encode("utf-8", "surrogateescape")):
            report.written.append(page.rel)


def check_site(settings: OgSettings) -> list[str]:
    """`hcti og --check`: each page that should have a card and has not one og:image (absolute, pointing at a
    file of the site) and one twitter:image, as `page: problem`."""
    site = settings.site.resolve()
    problems = []
    for rel in site_pages(site, settings):
        head = read_head((site / rel).read_bytes().decode("utf-8", "surrogateescape"))
        if _opted_out(head):
            continue
        for key in ("og:image", "twitter:image"):
            found = [m.content for m in head.metas if m.key == key]
            if len(found) != 1:
                problems.append(f"{rel}: {len(found)} {key} tags, not 1")
            elif not urlsplit(found[0]).scheme.startswith("http"):
                problems.append(f"{rel}: {key} {found[0]} is not an absolute URL")
            elif _file_for(site, found[0]) is None:
                problems.append(f"{rel}: {key} {found[0]} is not a file of the site")
    return problems


def site_pages(site: Path, settings: OgSettings) -> Iterator[str]:
    """The HTML files of a site that may get a card: not 404 pages, not in hidden folders, as --include and
    --exclude say."""
    for folder, dirs, files in os.walk(site):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            rel = (Path(folder) / name).relative_to(site).as_posix()
            if not name.endswith((".html", ".htm")) or name == "404.html":
                continue
            if settings.include and not any(fnmatch.fnmatch(rel, g) for g in settings.include):
                continue
            if not any(fnmatch.fnmatch(rel, g) for g in settings.exclude):
                yield rel


def _opted_out(head: Head) -> bool:
    """A redirect stub, or a page whose `hcti:card` says false."""
    return head.refresh or (head.get("hcti:card") or "").strip().lower() in ("false", "0", "no", "off")


def _file_for(site: Path, url: str) -> Path | None:
    """The file of the site a URL names: the longest tail of its path that is a file under the site folder."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    for i in range(len(parts)):
        path = site.joinpath(*parts[i:])
        if path.is_file() and path.resolve().is_relative_to(site):
            return path
    return None


def _url_path(rel: str) -> str:
    """A page's URL below the site's: `index.html` is its folder (`a/`), other files keep their names."""
    if rel == "index.html":
        return ""
    return rel[: -len("index.html")] if rel.endswith("/index.html") else rel


def _template_values(head: Head) -> dict[str, Any]:
    """`html:tv:NAME` metadata as template variables; a value that is JSON is read as JSON."""
    values: dict[str, Any] = {}
    for m in head.metas:
        if m.key.startswith("html:tv:") and len(m.key) > len("html:tv:"):
            try:
                values[m.key[len("html:tv:") :]] = json.loads(m.content)
            except ValueError:
                values[m.key[len("html:tv:") :]] = m.content
    return values


def _common_suffix(titles: list[str]) -> str | None:
    """The site's name where its generator puts it after every page's title ("Page - Site"): the last part
    shared by at least half of the titles that have one."""
    counts: dict[str, int] = {}
    for title in titles:
        for sep in _SEPARATORS:
            if sep in title:
                suffix = title.rsplit(sep, 1)[1].strip()
                counts[suffix] = counts.get(suffix, 0) + 1
                break
    if not counts:
        return None
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] * 2 >= len([t for t in titles if t]) else None


def _strip_suffix(title: str, site_name: str | None) -> str:
    if site_name:
        for sep in _SEPARATORS:
            if title.endswith(sep + site_name):
                return title[: -len(sep + site_name)].strip()
    return title
