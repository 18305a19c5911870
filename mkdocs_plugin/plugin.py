"""The `hcti` MkDocs plugin: a social card for every page, and hcti directives rendered in pages.

Cards are rendered from a Jinja2 HTML template (a built-in one, or the site's own) through hcti-build's store,
so an unchanged card is a store hit: no browser, one hash of its inputs. Pages are read before any is written
(MkDocs populates every page, then builds each), so cards are submitted when a page's content is ready and
collected when the page is written: they render concurrently on the engine's page pool.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import fnmatch
import hashlib
import html
import json
import mimetypes
import os
import posixpath
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from mkdocs.config import base
from mkdocs.config import config_options as c
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from hcti_build import (
    Asset,
    CreateOptions,
    DirectiveError,
    Engine,
    HctiError,
    ImageQuery,
    Resolved,
    Store,
    Templates,
    WriteError,
    asset_for,
    asset_name,
    produce,
    rewrite_markdown,
    write_if_changed,
)
from hcti_build.store import atomic_write

log = get_plugin_logger("hcti")
BUILTIN = Path(__file__).parent / "templates"
MIME = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
# Material for MkDocs' primary colours (the 500 shades its palette uses), by palette name.
MATERIAL = {
    "red": "#ef5350", "pink": "#e92063", "purple": "#ab47bd", "deep purple": "#7e56c2", "indigo": "#4051b5",
    "blue": "#2094f3", "light blue": "#02a6f2", "cyan": "#00bdd6", "teal": "#009485", "green": "#4cae4f",
    "light green": "#8bc34b", "lime": "#cbdc38", "yellow": "#ffec3d", "amber": "#ffc105", "orange": "#ffa724",
    "deep orange": "#ff6e42", "brown": "#795649", "grey": "#757575", "blue grey": "#546d78", "black": "#000000",
    "white": "#ffffff",
}  # fmt: skip
HEAD_VAR = "hcti_head"  # the context variable with a page's meta tags (see _HeadLoader)
FONTS = '"Noto Sans", "Noto Sans CJK SC", "Noto Sans Arabic", "Noto Sans Hebrew", "Noto Color Emoji", sans-serif'


class HctiConfig(base.Config):
    enabled = c.Type(bool, default=True)
    """Turn the whole plugin off (e.g. `enabled: !ENV [HCTI_ENABLED, true]`)."""
    cards = c.Type(bool, default=True)
    """Generate a social card for every page and add og:/twitter: meta tags."""
    cards_template = c.Optional(c.File(exists=True))
    """A Jinja2 HTML file of the site's (relative to mkdocs.yml) rendered as the card; default: the built-in one."""
    cards_dir = c.Type(str, default="assets/images/social")
    """Where cards go, relative to site_dir."""
    cards_format = c.Choice(("png", "jpg", "jpeg", "webp"), default="png")
    """Card image format."""
    cards_width = c.Type(int, default=1200)
    """Card width in CSS pixels."""
    cards_height = c.Type(int, default=630)
    """Card height in CSS pixels."""
    device_scale = c.Type((int, float), default=1)
    """Pixel ratio of cards (1: a 1200x630 image; 2: 2400x1260)."""
    cards_include = c.ListOfItems(c.Type(str), default=[])
    """Globs of page sources (e.g. `blog/*.md`) that get a card; empty: every page."""
    cards_exclude = c.ListOfItems(c.Type(str), default=[])
    """Globs of page sources that get no card."""
    cards_options = c.Type(dict, default={})
    """Values the template reads as `options.*` (built-in: logo, background, background_end, accent, color,
    font_family); a page's front matter `hcti: {card: {...}}` overrides them, `hcti: {card: false}` opts out."""
    directives = c.Type(bool, default=True)
    """Render hcti directives (```hcti fences, ![](hcti:...) links) in pages."""
    cache_dir = c.Type(str, default=".cache/hcti")
    """The image store, relative to mkdocs.yml."""
    concurrency = c.Optional(c.Type(int))
    """Cards rendered at once: pages in the browser's pool (default 2)."""


@dataclass
class _Card:
    job: concurrent.futures.Future[Asset] | str  # a card being rendered, or the id of a stored one (checked when used)
    title: str
    description: str
    resolved: Resolved | None  # None: known from the memo, never rendered in this build


class _Checker:
    """Hashes the stored images of the cards the memo knows in a helper process, while MkDocs reads the pages.

    Checking a reused card here (reading its PNG and hashing it against the store, as every store read does) was
    the largest part of a warm build's card work: ~4% of a 300-page build, more than its instructions because
    the images pass through the caches MkDocs' own work runs in. The helper (`python -I -S`, hashlib only) runs
    on another core; a card whose image it did not confirm (no helper, a failed read, a hash that differs, a
    file changed since) is checked in this process, and rendered again if damaged."""

    SCRIPT = (
        "import hashlib, struct, sys\n"
        "for line in sys.stdin:\n"
        "    sha, _, path = line.rstrip('\\n').partition(' ')\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            data = f.read()\n"
        "    except OSError:\n"
        "        data = b''\n"
        "    ok = data[12:16] == b'IHDR' and hashlib.sha256(data).hexdigest() == sha\n"
        "    print('%d %d' % struct.unpack('>II', data[16:24]) if ok else '-')\n"
    )

    def __init__(self, ids: list[str], paths: list[Path], proc: subprocess.Popen[bytes] | None, out: Any) -> None:
        self.ids, self.proc, self.out = ids, proc, out
        self.paths = dict(zip(ids, paths, strict=True))
        # The files the helper reads. A file written in the last 2 s is left to the build's own check: its mtime
        # could be the same after another write in the same clock tick (git's "racily clean" rule).
        now = time.time_ns()
        self.stamps = {i: st for i, p in self.paths.items() if (st := _stamp(p)) and now - st[2] > 2_000_000_000}
        self.results: dict[str, tuple[int, int]] | None = None

    @classmethod
    def start(cls, store: Store, ids: list[str]) -> _Checker:
        paths = [store.stored_path(image_id, ImageQuery()) for image_id in ids]
        lines = []
        for image_id, path in zip(ids, paths, strict=True):
            try:
                lines.append(f"{store.digest(image_id)} {path}\n")
            except HctiError:
                lines.append("- -\n")
        checker = cls(ids, paths, None, None)
        try:
            with tempfile.TemporaryFile() as stdin:
                stdin.write("".join(lines).encode())
                stdin.seek(0)
                checker.out = tempfile.TemporaryFile()
                checker.proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", cls.SCRIPT], stdin=stdin, stdout=checker.out, stderr=subprocess.DEVNULL
                )
        except OSError as exc:
            log.debug(f"no helper to check the cards' images ({exc}): they are checked in this process")
            checker.close()
        return checker

    def checked(self, image_id: str) -> tuple[int, int] | None:
        """The image's pixel size if the helper confirmed its bytes (and the file is the one it read), else None."""
        if self.results is None:
            self.results = self._collect()
        pixels = self.results.get(image_id)
        if pixels is None or image_id not in self.stamps or _stamp(self.paths[image_id]) != self.stamps[image_id]:
            return None
        return pixels

    def _collect(self) -> dict[str, tuple[int, int]]:
        if self.proc is None or self.out is None:
            return {}
        try:
            if self.proc.wait(timeout=120) != 0:
                return {}
            self.out.seek(0)
            rows = self.out.read().decode().splitlines()
        except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError):
            return {}
        finally:
            self.close()
        if len(rows) != len(self.ids):
            return {}
        found = {}
        for image_id, row in zip(self.ids, rows, strict=True):
            w, _, h = row.partition(" ")
            if w.isdigit() and h.isdigit():
                found[image_id] = (int(w), int(h))
        return found

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.out is not None:
            self.out.close()
            self.out = None


class _Memo:
    """Which request each card's template values made last time, so an unchanged card skips its template and
    options: `<cache_dir>/cards-memo.json`. It holds only for the same template files (by hash), card settings,
    Chromium and hcti-build code; otherwise it starts empty. A memo hit is still checked in the store (the files
    the render read, then the object's hash), so it can make a card stale only if a template changed without
    changing its bytes (or hcti-build's code changed without changing its files' mtimes)."""

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
    def key(values: dict[str, Any]) -> str | None:
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

    def save(self) -> None:
        if self.new == self.old:
            return
        data = {"header": self.header, "templates": self.files, "cards": self.new}
        try:
            atomic_write(self.path, json.dumps(data, sort_keys=True).encode(), durable=False)
        except WriteError as exc:
            log.warning(f"could not save the card memo: {exc.message}")


class HctiPlugin(BasePlugin[HctiConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._store: Store | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._serving = False
        self._card_inputs: set[str] = set()
        self._cards: dict[str, _Card] = {}
        self._remembered: dict[str, str] = {}  # request key -> image id, of the cards the memo knows
        self._checker: _Checker | None = None
        self._heads: dict[str, tuple[str, dict[str, str]]] = {}  # page -> its meta tags' HTML, and the tags
        self._assets: dict[str, bytes] = {}
        self._warned_site_url = False
        self._counts = {"cards": 0, "rendered": 0}
        self._timings: list[tuple[float, str]] = []  # (seconds, page) of each card rendered in this build

    # -- lifecycle: one engine for a `mkdocs serve` session, closed at shutdown ----------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._serving = command == "serve"

    def on_shutdown(self) -> None:
        self._stop_checker()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._engine is not None:
            self._engine.close()  # launched lazily: a build of an unchanged site never started it
            self._engine = None

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        self._root = Path(config.config_file_path or ".").resolve().parent
        self._docs = Path(config.docs_dir).resolve()
        if not self._docs.is_relative_to(self._root):
            raise PluginError(f"hcti: docs_dir {self._docs} must be inside the folder of mkdocs.yml")
        if self._engine is None:
            # One author's pages: the pool's pages share one renderer process, and a card replaces the card before
            # it in place. (A third page measured no faster, and its renderer's memory grew with every card.)
            self._engine = Engine(pages=self.config.concurrency, isolate=False)
        cache = (self._root / self.config.cache_dir).resolve()
        if self._store is None or self._store.path != cache:
            with _plugin_errors():
                self._store = Store(cache, root=self._root, engine=self._engine)
        if self._pool is None:
            workers = self.config.concurrency or self._engine.pool_size
            self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="hcti-cards")
        if self.config.cards_template:
            tpl = Path(self.config.cards_template).resolve()
            if not tpl.is_relative_to(self._root):
                raise PluginError(f"hcti: cards_template {tpl} must be inside the folder of mkdocs.yml")
            self._templates = Templates(self._root, cache=True)
            self._template_name = tpl.relative_to(self._root).as_posix()
        else:
            self._templates = Templates(BUILTIN, cache=True)
            self._template_name = "card.html"
        self._page_templates = Templates(self._root)
        self._fmt = {"jpeg": "jpg"}.get(self.config.cards_format, self.config.cards_format)
        self._query = ImageQuery(format=self._fmt)
        self._options = {**self._default_options(config), **self.config.cards_options}
        self._sites: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}
        self._logos: set[Path] = set()
        self._cards, self._heads, self._assets = {}, {}, {}
        self._memo: _Memo | None = None
        if self.config.cards and not self._serving:  # `mkdocs serve` needs each card's inputs: no memo there
            with _plugin_errors():  # the header names the Chromium: a missing one is said here, once
                self._memo = _Memo(self.store.path / "cards-memo.json", self._memo_header(), self._templates)
        self._card_inputs = set()
        self._counts = {"cards": 0, "rendered": 0}
        self._timings = []
        if self.config.cards and not config.site_url and not self._warned_site_url:
            self._warned_site_url = True
            log.warning("site_url is not set: cards are built, but og:image needs absolute URLs to work on social sites")
        return config

    def on_serve(self, server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
        """Runs after the first build: watch the card template's folder, the logo and every file a card read
        outside the docs folder (MkDocs watches that one), so editing them rebuilds; unchanged cards stay hits."""
        if not self.config.enabled:
            return server
        watched = [Path(config.docs_dir).resolve()]
        if self.config.cards_template:
            watched.append(Path(self.config.cards_template).resolve().parent)
            server.watch(str(watched[-1]))
        for path in sorted({*(self._root / rel for rel in self._card_inputs), *self._logos}):
            path = path.resolve()
            if not any(path.is_relative_to(w) for w in watched):
                server.watch(str(path))
        return server

    @property
    def store(self) -> Store:
        assert self._store is not None, "on_config has not run"
        return self._store

    # -- directives in pages ------------------------------------------------------------------------
    def on_page_markdown(self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
        if not self.config.enabled or not self.config.directives or "hcti" not in markdown:
            return None
        source_path = Path(page.file.abs_src_path or self._docs / page.file.src_uri)
        source = source_path.relative_to(self._root).as_posix()
        first_line = _body_first_line(page, markdown)
        assets_dir = "assets/hcti"

        def reference(asset: Asset) -> str:
            self._assets[f"{assets_dir}/{asset.name}"] = asset.data
            return get_relative_url(f"{assets_dir}/{asset.name}", page.url or ".")

        try:
            new, _ = rewrite_markdown(
                markdown,
                path=os.path.relpath(source_path),
                source=source,
                store=self.store,
                templates=self._page_templates,
                reference=reference,
                first_line=first_line,
            )
        except DirectiveError as exc:
            raise PluginError(f"hcti: {exc}") from None
        return new

    # -- cards --------------------------------------------------------------------------------------
    def on_page_content(self, html_text: str, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
        if not self.config.enabled or not self.config.cards or not self._wants_card(page):
            return None
        card_meta = _card_meta(page)
        options = {**self._options, **card_meta} if isinstance(card_meta, dict) else dict(self._options)
        # A title from the page's heading comes HTML-escaped, with inline markup; the template escapes again.
        title = str(page.meta.get("title") or html.unescape(re.sub(r"<[^>]+>", "", page.title or "")) or config.site_name)
        description = str(page.meta.get("description") or config.site_description or "")
        site, site_key = self._site(config, options)
        values = {
            "page": {
                "title": title,
                "description": description,
                "url": page.canonical_url or page.url,
                "meta": dict(page.meta),
            },
            "site": site,
            "options": options,
            "width": self.config.cards_width,
            "height": self.config.cards_height,
        }
        memo_key = self._memo.key({**values, "site": site_key}) if self._memo else None
        remembered = self._memo.old.get(memo_key) if self._memo and memo_key else None
        hit = self._remembered.get(remembered) if remembered else None
        if hit:  # the same values and template files as last time, and the image is stored: no template
            assert self._memo is not None and memo_key is not None and remembered is not None
            self._memo.new[memo_key] = remembered
            self._cards[page.file.src_uri] = _Card(hit, title, description, None)  # checked in on_page_context
            return None
        try:
            card_html, read = self._templates.render(self._template_name, values)
        except HctiError as exc:
            raise PluginError(f"hcti: card template for {page.file.src_uri}: {exc.message}") from None
        base = posixpath.dirname(self._template_name) if self.config.cards_template else ""
        opts = CreateOptions.from_mapping(
            {
                "html": card_html,
                "viewport_width": self.config.cards_width,
                "viewport_height": self.config.cards_height,
                "device_scale": self.config.device_scale,
            }
        )
        assert self._pool is not None
        card = Resolved(opts, self._query, base, alt=title, cls=None, title=None)
        with _plugin_errors(f"card for {page.file.src_uri}: "):
            request_key = self.store.request_key(opts, base=base)
        if self._memo:
            self._memo.read(read)  # from every page, remembered or not: the memo holds only while these hold
            if memo_key:
                self._memo.new[memo_key] = request_key
        hit = self.store.lookup_key(request_key)  # an unchanged card: checked in on_page_context, like the memo's
        job = hit or self._pool.submit(self._render_card, page.file.src_uri, card)
        self._cards[page.file.src_uri] = _Card(job, title, description, card)
        return None

    def _render_card(self, uri: str, card: Resolved) -> Asset:
        """A card rendered (or found in the store) on a pool thread, timed for the build's summary (unless it
        waited for Chromium to start: that is the launch's time, not the card's)."""
        assert self._engine is not None
        launches, t0 = self._engine.launches, time.perf_counter()
        asset = _slim_card(self.store, card)
        if asset.rendered and self._engine.launches == launches:
            self._timings.append((time.perf_counter() - t0, uri))  # list.append: safe from the pool's threads
        return asset

    def _reused(self, image_id: str) -> Asset:
        """A stored card, checked: by the helper process when it could (see `_Checker`), else here (a damaged
        image is rendered again)."""
        checker = self._checker
        pixels = checker.checked(image_id) if checker else None
        if checker and pixels:
            name = asset_name(image_id, self._query)
            return Asset(image_id, name, b"", pixels, False, checker.paths[image_id])
        return asset_for(self.store, image_id, self._query).slim()

    def on_pre_build(self, *, config: MkDocsConfig) -> None:
        """What every card's page needs, read once a build (after every plugin's on_config)."""
        self._cards_rel = self.config.cards_dir.strip("/")
        self._cards_out = Path(config.site_dir) / self._cards_rel
        self._site_url = config.site_url.rstrip("/") + "/" if config.site_url else None
        self._mime = MIME.get(self._fmt, "")
        # The cards the memo knows, looked up in the store now (the files their renders read are unchanged, and
        # their images are stored), and their images hashed by a helper process while MkDocs reads the pages.
        self._remembered = {}
        if self._memo is not None:
            for key in set(self._memo.old.values()):
                if image_id := self.store.lookup_key(key):
                    self._remembered[key] = image_id
        self._stop_checker()
        if self._remembered and self._query.is_identity and _cpus() > 1:  # on one core, checking here is cheaper
            self._checker = _Checker.start(self.store, sorted(set(self._remembered.values())))

    def on_env(self, env: jinja2.Environment, *, config: MkDocsConfig, files: Files) -> jinja2.Environment | None:
        if self.config.enabled and self.config.cards and env.loader is not None:
            env.loader = _HeadLoader(env.loader)
        return env

    def on_page_context(self, context: Any, *, page: Page, config: MkDocsConfig, nav: Any) -> Any:
        """The page's card, written into the site, and its meta tags: in the context as `hcti_head`, which the
        theme's template renders before its `</head>` (see `_HeadLoader`)."""
        card = self._cards.pop(page.file.src_uri, None)
        if card is None:
            return context
        try:
            asset = self._reused(card.job) if isinstance(card.job, str) else card.job.result()
        except HctiError as exc:
            raise PluginError(f"hcti: card for {page.file.src_uri}: {exc.message}") from None
        self._counts["cards"] += 1
        self._counts["rendered"] += asset.rendered
        if self._serving and card.resolved:  # what `mkdocs serve` must watch: every file a card read
            self._card_inputs.update(self.store.inputs(card.resolved.options, base=card.resolved.base))
        asset.write(self._cards_out / asset.name)
        rel = f"{self._cards_rel}/{asset.name}"
        if self._site_url:
            image_url = self._site_url + rel
            page_url = page.canonical_url or self._site_url + page.url.lstrip("/")
        else:
            image_url, page_url = get_relative_url(rel, page.url or "."), page.url
        assert asset.pixels is not None
        tags = {
            "og:type": "website",
            "og:title": card.title,
            "og:description": card.description,
            "og:url": page_url,
            "og:image": image_url,
            "og:image:type": self._mime,
            "og:image:width": str(asset.pixels[0]),
            "og:image:height": str(asset.pixels[1]),
            "og:image:alt": card.title,
            "twitter:card": "summary_large_image",
            "twitter:title": card.title,
            "twitter:description": card.description,
            "twitter:image": image_url,
        }
        head = _meta_html(tags, set())
        self._heads[page.file.src_uri] = (head, tags)
        context[HEAD_VAR] = head
        return context

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        """Check the tags are in the page's head once, and not twice: a theme whose template has no `</head>`, or
        that wrote some of these tags itself, gets its page edited here instead."""
        entry = self._heads.pop(page.file.src_uri, None)
        if entry is None:
            return None
        head, tags = entry
        head_end = output.find("</head>")
        start = head_end - len(head)
        if head_end < 0 or not output.startswith(head, start):  # the template did not render them
            return _insert_meta(output, tags)
        present = _present(output, 0, start)  # what the theme wrote before them
        if not present.intersection(tags):
            return None  # the common case: the page is written as its template made it, not copied
        return output[:start] + _meta_html(tags, present) + output[head_end:]

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled:
            return
        for rel, data in sorted(self._assets.items()):
            write_if_changed(Path(config.site_dir) / rel, data)
        if self._memo is not None:
            self._memo.save()
        self._stop_checker()
        n = self._counts
        launches = self._engine.launches if self._engine else 0
        slowest = max(self._timings, default=None)
        log.info(
            f"{n['cards']} cards ({n['rendered']} rendered, {n['cards'] - n['rendered']} reused), "
            f"{len(self._assets)} directive images; Chromium launched {launches} time(s)"
            + (f"; slowest card {slowest[0] * 1000:.0f} ms ({slowest[1]})" if slowest else "")
        )
        if not self._serving:
            self.on_shutdown()

    # -- helpers ------------------------------------------------------------------------------------
    def _stop_checker(self) -> None:
        if self._checker is not None:
            self._checker.close()
            self._checker = None

    def _wants_card(self, page: Page) -> bool:
        if _card_meta(page) is False:
            return False
        uri = page.file.src_uri
        if self.config.cards_include and not any(fnmatch.fnmatch(uri, g) for g in self.config.cards_include):
            return False
        return not any(fnmatch.fnmatch(uri, g) for g in self.config.cards_exclude)

    def _memo_header(self) -> dict[str, Any]:
        """What a card's HTML depends on besides its template values and template files."""
        code = [Path(m.__file__ or "").stat().st_mtime_ns for m in (sys.modules[__name__], sys.modules[Templates.__module__])]
        return {
            "version": _Memo.VERSION,
            "code": code,
            "fingerprint": self.store.fingerprint(),
            "template": self._template_name,
            "custom": bool(self.config.cards_template),
            "size": [self.config.cards_width, self.config.cards_height, self.config.device_scale],
        }

    def _default_options(self, config: MkDocsConfig) -> dict[str, Any]:
        primary, accent = _palette(config)
        return {
            "background": primary,
            "background_end": _mix(primary, "#000000", 0.45),
            "accent": accent,
            "color": "#111111" if _luminance(primary) > 0.6 else "#ffffff",
            "font_family": FONTS,
            "logo": None,
        }

    def _site(self, config: MkDocsConfig, options: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The template's `site`, the same for every page but those whose front matter changes these options, and
        its hash (what the card memo keys on: the logo's data URI is hashed once, not once a page)."""
        key = (str(options.get("logo")), str(options["background"]), str(options["accent"]))
        cached = self._sites.get(key)
        if cached is None:
            site = self._site_values(config, options)
            cached = self._sites[key] = (site, _Memo.key(site) or "")
        site, digest = cached
        return {**site, "palette": dict(site["palette"])}, digest  # a copy: a template cannot change another page's

    def _site_values(self, config: MkDocsConfig, options: dict[str, Any]) -> dict[str, Any]:
        logo = options.get("logo") or config.theme.get("logo")
        logo_url = None
        if logo and not urlsplit(str(logo)).scheme:
            for folder in (self._docs, self._root):  # theme logos are docs-relative; an option may be either
                path = (folder / str(logo)).resolve()
                if path.is_file() and path.is_relative_to(self._root):
                    self._logos.add(path)
                    logo_url = _data_uri(path) or "/" + path.relative_to(self._root).as_posix()
                    break
        host = urlsplit(config.site_url or "").netloc + urlsplit(config.site_url or "").path.rstrip("/")
        return {
            "name": config.site_name,
            "description": config.site_description or "",
            "url": config.site_url or "",
            "host": host,
            "logo": logo_url,
            "language": config.theme.get("language") or "en",
            "palette": {"primary": options["background"], "accent": options["accent"]},
        }


@contextlib.contextmanager
def _plugin_errors(where: str = "") -> Iterator[None]:
    """hcti-build's errors as MkDocs' own (`ERROR - hcti: ...`, the build aborted), never a traceback."""
    try:
        yield
    except HctiError as exc:
        raise PluginError(f"hcti: {where}{exc.message}") from None


def _cpus() -> int:
    affinity = getattr(os, "sched_getaffinity", None)  # the CPUs this process may use (Linux)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Which file is at ``path``, and whether it was written since (not its ctime: links to it change that)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _data_uri(path: Path, limit: int = 512 * 1024) -> str | None:
    """A logo in the card's HTML itself: its bytes are then part of the card's request (a new logo, new cards),
    and a card that loads no file can replace the one before it in place (Engine(isolate=False)). A logo over
    ``limit`` is loaded from its file instead (root-relative on the render origin)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > limit:
        return None
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _slim_card(store: Store, card: Resolved) -> Asset:
    """A card, rendered or found in the store, without its bytes: every page is read before any is written, so a
    site's cards would all be in memory at once (and a warm build pays for that memory more than for the rest)."""
    return produce(store, card).slim()


def _tagged(value: Any) -> str:
    """A front matter value JSON has no type for (a date): its type and repr, so that it differs from a string."""
    return f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"


def _card_meta(page: Page) -> Any:
    meta = page.meta.get("hcti")
    return meta.get("card") if isinstance(meta, dict) else None


def _body_first_line(page: Page, markdown: str) -> int:
    """Line of the page source where `markdown` starts (MkDocs strips the front matter first)."""
    try:
        source = Path(page.file.abs_src_path or "").read_text(encoding="utf-8-sig")
    except OSError:
        return 1
    idx = source.find(markdown[:200]) if markdown.strip() else -1
    return source.count("\n", 0, idx) + 1 if idx > 0 else 1


def _palette(config: MkDocsConfig) -> tuple[str, str]:
    palette = config.theme.get("palette") or {}
    if isinstance(palette, list):
        palette = palette[0] if palette else {}
    primary = str(palette.get("primary", "indigo")).replace("-", " ").lower()
    accent = str(palette.get("accent", "amber")).replace("-", " ").lower()
    return MATERIAL.get(primary, "#4051b5"), MATERIAL.get(accent, "#ffc105")


def _rgb(color: str) -> tuple[int, int, int]:
    h = color.lstrip("#")
    h = "".join(ch * 2 for ch in h) if len(h) == 3 else h[:6]
    try:
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    except ValueError:
        return 64, 81, 181


def _mix(a: str, b: str, t: float) -> str:
    ra, rb = _rgb(a), _rgb(b)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ra, rb, strict=True))


def _luminance(color: str) -> float:
    r, g, b = _rgb(color)
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


_HEAD_END = re.compile(r"</head\s*>", re.I)
_META = re.compile(r"<meta\b[^>]*?\b(?:property|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)


def _present(output: str, start: int, end: int) -> set[str]:
    """The og:/twitter: meta tag names (lower-case) in ``output[start:end]``; most heads have none, and a search
    is cheaper than the regex."""
    if output.find("og:", start, end) < 0 and output.find("twitter:", start, end) < 0:
        return set()
    return {m.group(1).lower() for m in _META.finditer(output, start, end)}


def _meta_html(tags: dict[str, str], present: set[str]) -> str:
    lines = []
    for key, value in tags.items():
        if key in present or value == "":
            continue
        attr = "name" if key.startswith("twitter:") else "property"
        lines.append(f'<meta {attr}="{key}" content="{html.escape(value, quote=True)}">')
    return "\n".join(lines) + "\n" if lines else ""


def _insert_meta(output: str, tags: dict[str, str]) -> str:
    """Add the tags the theme did not already write, just before </head>."""
    head_end = output.find("</head>")
    if head_end < 0:  # an upper-case tag: rare, and lower-casing a whole page is not free
        found = _HEAD_END.search(output)
        if found is None:
            return output
        head_end = found.start()
    tags_html = _meta_html(tags, _present(output, 0, head_end))
    if not tags_html:
        return output
    if output.startswith("</head>", head_end):  # one copy of the page, no slices of it (pages are ~100 KB)
        return output.replace("</head>", tags_html + "</head>", 1)
    return output[:head_end] + tags_html + output[head_end:]


class _HeadLoader(jinja2.BaseLoader):
    """The theme's template loader, with `{{ hcti_head }}` (the page's card meta tags) added before the first
    `</head>` of a template. The page then comes out of its template with its tags: copying every built page to
    add them cost more than the rest of a warm build's card work (MkDocs' pages are ~450 KB strings once the nav
    has an emoji, 4 bytes a character; measured: +0.1-0.3 s per 300 pages, mostly the memory allocator giving
    the copies' memory back and taking it again). Only a `</head>` in the template's text counts: one inside a
    Jinja string, comment or raw block is left as it is, and on_post_page adds the tags to the built page."""

    def __init__(self, inner: jinja2.BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Any]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        at = source.find("</head>")
        if at < 0:
            return source, filename, uptodate
        changed = f"{source[:at]}{{{{ {HEAD_VAR} if {HEAD_VAR} is defined else '' }}}}{source[at:]}"
        try:  # the lexer sees the variable only where it landed in the template's text
            if any(kind == "name" and value == HEAD_VAR for _, kind, value in environment.lex(changed)):
                return changed, filename, uptodate
        except jinja2.TemplateSyntaxError:
            pass  # Jinja reports the template's own error when it compiles it
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()
