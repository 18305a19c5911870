"""The `hcti` MkDocs plugin: a social card for every page, and hcti directives rendered in pages.

The hooks are thin: cards are `cards.Cards`' work, their meta tags `meta`'s, directive images `pages`'. One
engine (one warm browser) serves a build, or every rebuild of a `mkdocs serve` session.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, get_plugin_logger
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from hcti_build import Engine, HctiError, Store, remote_tier

from .cards import Cards, card_setting
from .config import HctiConfig
from .meta import HEAD_VAR, HeadLoader, finish_page
from .pages import PageImages

log = get_plugin_logger("hcti")


class HctiPlugin(BasePlugin[HctiConfig]):
    supports_multiple_instances = False

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._store: Store | None = None
        self._cards: Cards | None = None
        self._images: PageImages | None = None
        self._serving = False
        self._warned_site_url = False
        self._heads: dict[str, tuple[str, dict[str, str]]] = {}  # page -> its meta tags' HTML, and the tags

    # -- lifecycle: one engine for a `mkdocs serve` session, closed at shutdown ----------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self._serving = command == "serve"

    def on_shutdown(self) -> None:
        if self._cards is not None:
            self._cards.close()
            self._cards = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._engine is not None:
            self._engine.close()  # launched lazily: a build of an unchanged site never started it
            self._engine = None

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        root, docs = _folders(config, self.config.cards_template)
        with _plugin_errors():
            self._open(root, docs)
            assert self._cards is not None
            self._cards.configure(config)  # the memo's header names the Chromium: a missing one is said here, once
        self._images = PageImages(self.store, root, docs)
        self._heads = {}
        if self.config.cards and not config.site_url and not self._warned_site_url:
            self._warned_site_url = True
            log.warning("site_url is not set: cards are built, but og:image needs absolute URLs to work on social sites")
        return config

    def _open(self, root: Path, docs: Path) -> None:
        """The engine, store and card factory: made once, kept across a `mkdocs serve` session's rebuilds."""
        if self._engine is None:
            # One author's pages: the pool's pages share one renderer process, and a card replaces the card before
            # it in place (a third page measured no faster: docs/performance.md).
            self._engine = Engine(pages=self.config.concurrency, isolate=False)
        cache = (root / self.config.cache_dir).resolve()
        if self._store is None or self._store.path != cache or self._store.root != root:
            if self._cards is not None:
                self._cards.close()
            # A remote that fails is said at INFO: a cache's outage must not fail `mkdocs build --strict`
            # (HCTI_REMOTE_REQUIRED=1 makes it an error instead).
            remote = remote_tier(None, root, log.info, option=self.config.remote)
            self._store = Store(cache, root=root, engine=self._engine, remote=remote or "")
            self._cards = Cards(self.config, self._store, self._engine, root, docs, serving=self._serving)

    def on_serve(self, server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
        """Runs after the first build: watch the card template's folder, the logo and every file a card read
        outside the docs folder (MkDocs watches that one), so editing them rebuilds; unchanged cards stay hits."""
        if not self.config.enabled or self._cards is None:
            return server
        watched = [Path(config.docs_dir).resolve()]
        if self.config.cards_template:
            watched.append(Path(self.config.cards_template).resolve().parent)
            server.watch(str(watched[-1]))
        for path in sorted(p.resolve() for p in self._cards.watched()):
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
        assert self._images is not None
        with _plugin_errors(located=True):
            return self._images.rewrite(page, markdown)

    # -- cards --------------------------------------------------------------------------------------
    def on_pre_build(self, *, config: MkDocsConfig) -> None:
        if self.config.enabled and self._cards is not None:
            with _plugin_errors():
                self._cards.prepare(config)

    def on_page_content(self, html_text: str, *, page: Page, config: MkDocsConfig, files: Files) -> str | None:
        if self.config.enabled and self.config.cards and self._wants_card(page):
            assert self._cards is not None
            with _plugin_errors():
                self._cards.submit(page, config)
        return None

    def on_env(self, env: jinja2.Environment, *, config: MkDocsConfig, files: Files) -> jinja2.Environment | None:
        if self.config.enabled and self.config.cards and env.loader is not None:
            env.loader = HeadLoader(env.loader)
        return env

    def on_page_context(self, context: Any, *, page: Page, config: MkDocsConfig, nav: Any) -> Any:
        """The page's card, written into the site, and its meta tags: in the context as `hcti_head`, which the
        theme's template renders before its `</head>` (see `HeadLoader`)."""
        if self._cards is None:
            return context
        with _plugin_errors():
            head = self._cards.collect(page)
        if head is not None:
            self._heads[page.file.src_uri] = head
            context[HEAD_VAR] = head[0]
        return context

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        """The tags in the page's head once, and not twice (see `meta.finish_page`)."""
        entry = self._heads.pop(page.file.src_uri, None)
        return None if entry is None else finish_page(output, *entry)

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled or self._cards is None or self._images is None:
            return
        with _plugin_errors():
            self._images.write(Path(config.site_dir))
        self._cards.finish()
        launches = self._engine.launches if self._engine else 0
        cards, images = self._cards, len(self._images.assets)
        fetched = self.store.remote_note(cards.mark)
        log.info(f"{cards.counted()}, {images} directive images{fetched}; Chromium launched {launches} time(s){cards.slowest()}")
        if not self._serving:
            self.on_shutdown()

    def _wants_card(self, page: Page) -> bool:
        if card_setting(page) is False:
            return False
        uri = page.file.src_uri
        if self.config.cards_include and not any(fnmatch.fnmatch(uri, g) for g in self.config.cards_include):
            return False
        return not any(fnmatch.fnmatch(uri, g) for g in self.config.cards_exclude)


def _folders(config: MkDocsConfig, cards_template: str | None) -> tuple[Path, Path]:
    """The project's root (the folder of mkdocs.yml: relative URLs and the store live there) and docs folder,
    both of which, and the card template, must be inside it."""
    root = Path(config.config_file_path or ".").resolve().parent
    docs = Path(config.docs_dir).resolve()
    if not docs.is_relative_to(root):
        raise PluginError(f"hcti: docs_dir {docs} must be inside the folder of mkdocs.yml")
    if cards_template and not Path(cards_template).resolve().is_relative_to(root):
        raise PluginError(f"hcti: cards_template {Path(cards_template).resolve()} must be inside the folder of mkdocs.yml")
    return root, docs


@contextlib.contextmanager
def _plugin_errors(*, located: bool = False) -> Iterator[None]:
    """hcti-build's errors as MkDocs' own (`ERROR - hcti: ...`, the build aborted), never a traceback; a located
    error (a directive's) is shown as `file:line:col: message`."""
    try:
        yield
    except HctiError as exc:
        raise PluginError(f"hcti: {exc if located else exc.message}") from None
