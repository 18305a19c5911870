"""`hcti_build.sphinx`: social cards and the `hcti` directive for Sphinx (and Jupyter Book 1), with Sphinx's own
conventions.

    extensions = ["hcti_build.sphinx"]
    hcti_site_url = "https://example.org/docs/"     # default: html_baseurl

Each page's card is made by the card pipeline (`pipeline.cards`): the built-in card (or `hcti_cards_template`)
at `hcti_cards_width` x `hcti_cards_height`, rendered through hcti-build's store. This module reads what a
page's card says from Sphinx and writes its tags where Sphinx wants them. What a page's card says is collected
as its source is read (`doctree-read`, kept in the environment, merged from parallel readers), every card is
looked up or rendered once reading is done (`env-updated`, in the main process, concurrently on one warm
engine), and each page written gets its card file and its og:/twitter: tags through `html-page-context`'s
`metatags`, skipping any tag another extension wrote. A theme may not render `metatags` as given (the Pallets
themes' layout.html sets it anew, dropping what extensions put there): once the build is done, each page it
wrote is checked for its tags, and they are written into the page's head where they are missing
(`SphinxCards.finish`, with one line saying how many). An unchanged page's card is a store hit: a rebuild of
unchanged sources launches no browser. A card shows the project's brand where conf.py declares it (`_brand`:
the theme's light logo, `html_logo`, `html_favicon`; furo's brand colours), unless `hcti_cards_options` says.
A page opts out with `:hcti_card: false` at its top
(MyST: `hcti_card: false` in its front matter).

The `hcti` directive (reST `.. hcti::`, MyST ```` ```{hcti} ````) renders its body, HTML, with the API's
parameters as options, into an image node: every builder shows it (HTML as an `<img>` at its CSS size, LaTeX and
EPUB with the image file).
"""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.builders.html import StandaloneHTMLBuilder
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from ..engine.browser import Engine
from ..errors import BadRequestError, HctiError
from ..files import Tree, write_if_changed
from ..options import CREATE_PARAMS, IMAGE_FORMATS, QUERY_PARAMS, CreateOptions
from ..pipeline.assets import display_size, produce
from ..pipeline.brand import Brand, logo_file, logo_uri, site_color
from ..pipeline.cards import CARD_SIZE, CardSpec, CardTemplate, card_pool, card_settings, link_card, load_card, start_card
from ..pipeline.directives import TAG_KEYS, Directive
from ..pipeline.head import edit_head, meta_html, read_head
from ..pipeline.resolve import resolve
from ..pipeline.site import site_url_of
from ..pipeline.templates import Templates, card_site
from ..store.remote import RemoteTier, remote_tier
from ..store.store import Store, default_store_path

log = logging.getLogger(__name__)
_OFF = ("false", "0", "no", "off")


class SphinxCards:
    """The cards of one Sphinx build: the store and engine, and each page's card (its image id once made)."""

    def __init__(self, app: Sphinx) -> None:
        config = app.config
        _check_types(config)
        self.app = app
        self.pid = os.getpid()
        param = "hcti_site_url" if config.hcti_site_url else "html_baseurl"
        self.site_url = site_url_of(config.hcti_site_url or config.html_baseurl, param)  # a warning, and no cards
        # Cards are written by the file rules: inside the output, never through a folder that leads out of it.
        self.cards_dir = config.hcti_cards_dir.strip("/")
        self.out = Tree.of(app.outdir)  # where cards are linked, page after page
        self.out.output(self.cards_dir, "hcti_cards_dir")
        self.engine = Engine(isolate=False)  # one author's pages: a static card replaces the one before in place
        self.spec = _card_spec(app)
        self.store = Store(_store_path(app), root=self.spec.template.root, engine=self.engine, remote=_remote(app))
        self.brand = _brand(app)  # read once: every card shows it
        self.cards: dict[str, concurrent.futures.Future[tuple[str, bool]] | str] = {}
        self.pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.written: set[str] = set()  # the pages this build writes (seen resolved in the main process)
        self.made: dict[str, dict[str, str]] = {}  # the tags of the pages written in this process

    def close(self) -> None:
        if os.getpid() == self.pid:
            if self.pool is not None:  # cards of pages this build did not write are not rendered now
                self.pool.shutdown(wait=True, cancel_futures=True)
            self.store.close()
            self.engine.close()

    # -- every page's card, once the sources are read ------------------------------------------------------
    def submit_all(self, env: BuildEnvironment) -> None:
        """Each page's card looked up, the misses rendered concurrently; waited for when pages are written in
        parallel (the writers are other processes: they only read the store)."""
        pool = self.pool = card_pool(self.store)
        for docname, info in sorted(_pages(env).items()):
            if str(info.get("card", "")).strip().lower() in _OFF:
                continue
            try:
                opts = self._options(env, docname, info)
            except HctiError as exc:
                log.warning("hcti: card for %s: %s", docname, exc.message, location=docname, type="hcti")
                continue
            self.cards[docname] = start_card(pool, self.store, opts)
        pool.shutdown(wait=self.app.parallel > 1)

    def _options(self, env: BuildEnvironment, docname: str, info: dict[str, Any]) -> CreateOptions:
        config = env.config
        options = card_settings(config.hcti_cards_options, defaults=self.brand.options())
        site = card_site(config.project, self.site_url, options, logo=self.brand.logo, language=config.language or "en")
        page = {
            "title": _title_description(env, docname)[0],
            "description": info.get("description", ""),
            "url": self.page_url(docname),
            "meta": {},
        }
        return self.spec.request(self.spec.values(page, site, options))

    def page_url(self, docname: str) -> str:
        return self.site_url + self.app.builder.get_target_uri(docname)

    # -- a page being written ------------------------------------------------------------------------------
    def tags(self, docname: str, title: str, description: str) -> dict[str, str] | None:
        """The page's card written into the site, and its tags; None when it has no card."""
        job = self.cards.get(docname)
        if job is None:
            return None
        if os.getpid() != self.pid:  # a parallel writer: the parent's connections are not its own
            self.store = Store(self.store.path, root=self.store.root, engine=self.engine, remote="")  # cards are local now
            self.pid = os.getpid()
        image_id = job if isinstance(job, str) else job.result()[0]
        linked = link_card(load_card(self.store, image_id, self.spec.query), self.out, self.cards_dir, "hcti_cards_dir")
        tags = linked.tags(title, description, self.page_url(docname), self.site_url + linked.rel, self.app.config.project)
        self.made[docname] = tags
        return tags

    # -- the pages written, once the build is done ----------------------------------------------------------
    def finish(self) -> None:
        """Each page this build wrote with a card, read back (`finish_page`); then the build's line."""
        builder, cards, rendered, dropped = self.app.builder, 0, 0, 0
        for docname in sorted(self.written & self.cards.keys()):
            if not isinstance(builder, StandaloneHTMLBuilder):
                break  # an HTML builder of another kind: where it writes pages is its own
            job = self.cards[docname]
            if not isinstance(job, str) and job.exception() is not None:
                continue  # said when its page was written
            written = self.finish_page(Path(builder.get_outfilename(docname)), docname)
            if written is not None:
                cards, dropped = cards + 1, dropped + written
                rendered += not isinstance(job, str) and job.result()[1]
        if dropped:
            log.info(
                f"hcti: the theme {self.app.config.html_theme!r} did not render the card tags of {dropped} page(s) (its "
                "templates replace or leave out `metatags`, which drops what extensions put there): written into the "
                "built pages' heads"
            )
        log.info(f"hcti: {cards} cards ({rendered} rendered, {cards - rendered} reused)")

    def finish_page(self, path: Path, docname: str) -> bool | None:
        """The card's tags written into the page's head when its theme did not render them (any tag of another's
        stays): True when it had to be, None when the page is not there or its card could not be made."""
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")  # every byte kept as it was
        except OSError:
            return None
        head = read_head(text)
        if head.get("og:image") is not None and head.get("twitter:image") is not None:
            return False  # the theme rendered them (the common case)
        try:  # the tags the page was given, when it was written in this process; else made again
            tags = self.made.get(docname) or self.tags(docname, *_title_description(self.app.env, docname))
        except HctiError:
            return None  # said when its page was written
        if tags is None:
            return None
        write_if_changed(path, edit_head(text, head, tags, ()).encode("utf-8", "surrogateescape"))
        return True


def _card_spec(app: Sphinx) -> CardSpec:
    """The cards' template, size, scale and format, as conf.py says (a size out of range is the API's 400, said
    once: no cards)."""
    config = app.config
    if config.hcti_cards_template:
        template = CardTemplate.site_file(_project_file(Path(app.confdir), config.hcti_cards_template, "hcti_cards_template"))
    else:
        template = CardTemplate.builtin()
    size = (config.hcti_cards_width, config.hcti_cards_height, config.hcti_cards_device_scale)
    spec = CardSpec(template, *size, format=config.hcti_cards_format)
    return spec.checked()


def _pages(env: BuildEnvironment) -> dict[str, dict[str, Any]]:
    if not hasattr(env, "hcti_pages"):
        env.hcti_pages = {}  # type: ignore[attr-defined]
    pages: dict[str, dict[str, Any]] = env.hcti_pages  # type: ignore[attr-defined]
    return pages


def _brand(app: Sphinx) -> Brand:
    """The project's brand as conf.py declares it. The logo: `hcti_cards_options`' `logo` (relative to conf.py),
    else the one the theme shows (furo's `light_logo` or alabaster's `logo`, in an `html_static_path` folder; pydata's
    `logo.image_light`, relative to the sources), else `html_logo`, else `html_favicon`: the first that is a file
    in the project (by the file rules; a URL is not fetched). The colours: furo's `light_css_variables`
    (`color-brand-primary`, `color-brand-content`); `hcti_cards_options` wins over them."""
    config = app.config
    confdir, srcdir = Path(app.confdir), Path(app.srcdir)
    theme = config.html_theme_options if isinstance(config.html_theme_options, dict) else {}
    statics = [confdir / folder for folder in config.html_static_path]
    pydata: dict[str, Any] = theme["logo"] if isinstance(theme.get("logo"), dict) else {}
    logos = [
        (config.hcti_cards_options.get("logo"), [confdir]),
        (theme.get("light_logo"), statics),
        (theme.get("logo") if isinstance(theme.get("logo"), str) else None, statics),  # alabaster's
        (pydata.get("image_light"), [srcdir, confdir, *statics]),
        (config.html_logo, [confdir, srcdir]),
        (config.html_favicon, [confdir, srcdir]),
    ]
    found = (logo_file(Tree.of(folder), name) for name, folders in logos if name for folder in folders)
    logo = logo_uri(next((path for path in found if path is not None), None))
    furo = theme.get("light_css_variables")
    variables: dict[str, Any] = furo if isinstance(furo, dict) else {}

    def color(name: str) -> str | None:
        where = f"html_theme_options['light_css_variables']['{name}']"
        return site_color(variables.get(name), where, lambda m: log.warning("hcti: %s", m, type="hcti"))

    return Brand(logo=logo, color=color("color-brand-primary"), accent=color("color-brand-content"))


def _title_description(env: BuildEnvironment, docname: str) -> tuple[str, str]:
    """What a page's card says: its title as text (its markup rendered, else the project's name), its description."""
    title = env.titles[docname].astext() if docname in env.titles else env.config.project
    return title, _pages(env).get(docname, {}).get("description", "")


def _remote(app: Sphinx) -> RemoteTier | str:
    """The build's remote tier, shared by cards and directives (one warning, one count), warning through Sphinx;
    made again in a forked reader, which must not use its parent's connections."""
    made: tuple[int, RemoteTier | None] | None = getattr(app, "hcti_remote_tier", None)
    if made is None or made[0] != os.getpid():
        # Said at INFO: a cache's outage must not fail `sphinx-build -W` (HCTI_REMOTE_REQUIRED=1 makes it an error).
        made = (os.getpid(), remote_tier(None, Path(app.confdir), log.info, option=app.config.hcti_remote))
        app.hcti_remote_tier = made  # type: ignore[attr-defined]
    return made[1] or ""


def _store_path(app: Sphinx) -> Path:
    """`hcti_store` relative to conf.py, else $HCTI_STORE or `.hcti` beside it."""
    confdir = Path(app.confdir)
    return confdir / app.config.hcti_store if app.config.hcti_store else default_store_path(confdir)


class HctiDirective(SphinxDirective):
    """`.. hcti::` with the API's parameters as options (and alt, class, css_file); the body is HTML whose
    relative URLs resolve from the source file's folder. Bad options are warnings located at the directive."""

    has_content = True
    option_spec = {
        **{name: directives.flag if p.flag else directives.unchanged for name, p in {**CREATE_PARAMS, **QUERY_PARAMS}.items()},
        **{name: directives.unchanged for name in (*TAG_KEYS, "css_file")},
    }

    def run(self) -> list[nodes.Node]:
        env = self.env
        attrs = {k.replace("-", "_"): True if v is None else v for k, v in self.options.items()}
        source = Path(env.doc2path(env.docname)).relative_to(env.srcdir).as_posix()
        found = Directive(self.get_location(), self.lineno, 1, "fence", 0, 0, attrs=attrs, body="\n".join(self.content))
        try:
            r = resolve(found, Path(env.srcdir), source, Templates(Path(env.srcdir)))
            if r.query.format == "pdf":
                raise BadRequestError("format pdf is not an image: use png, jpg or webp here", param="format")
            asset = produce(_directive_store(self.env.app), r)
        except HctiError as exc:
            log.warning("%s", exc.message, location=(env.docname, self.lineno), type="hcti")
            return []
        for dep in r.deps:
            env.note_dependency(Path(env.srcdir) / dep)
        assert asset.source is not None and asset.pixels is not None
        width, height = display_size(asset.pixels, r)
        here = Path(env.doc2path(env.docname)).parent
        uri = Path(os.path.relpath(asset.source, here)).as_posix()
        image = nodes.image(uri=uri, alt=r.alt, width=f"{width}px", height=f"{height}px", classes=[r.cls] if r.cls else [])
        return [image]


# The extension's options and the types they take (Sphinx warns about another type, and goes on with it).
_TYPES: dict[str, tuple[type, ...]] = {
    "hcti_cards_template": (str, type(None)), "hcti_cards_options": (dict,), "hcti_cards_format": (str,),
    "hcti_cards_dir": (str,), "hcti_site_url": (str, type(None)), "hcti_store": (str, type(None)),
    "hcti_remote": (str, type(None)), "hcti_cards_width": (int,), "hcti_cards_height": (int,),
    "hcti_cards_device_scale": (int, float),
}  # fmt: skip


def _check_types(config: Any) -> None:
    for name, types in _TYPES.items():
        value = getattr(config, name)
        if not isinstance(value, types):
            raise BadRequestError(f"{name} must be {' or '.join(t.__name__ for t in types)}, not {value!r}", param=name)


def _project_file(confdir: Path, value: str, name: str) -> Path:
    """A file the configuration names (relative to conf.py's folder), held to the file rules there: inside the
    project once symlinks are resolved, no hidden part; a 400 naming the option otherwise."""
    found = Tree.of(confdir).file(os.path.relpath(confdir / value, confdir).replace(os.sep, "/"))
    if found is None:
        raise BadRequestError(f"{name} {value!r} must be a file inside the project's folder {confdir}", param=name)
    return found


def _directive_store(app: Sphinx) -> Store:
    """The store the directive's images are made in: rooted at the source folder (relative URLs in a body resolve
    from their file's folder under it), with the cards' engine when there is one."""
    store: Store | None = getattr(app, "hcti_directive_store", None)
    if store is None or store.root != Path(app.srcdir).resolve():
        cards: SphinxCards | None = getattr(app, "hcti_cards", None)
        engine = cards.engine if cards is not None else Engine(isolate=False)
        store = Store(_store_path(app), root=app.srcdir, engine=engine, remote=_remote(app))
        app.hcti_directive_store = store  # type: ignore[attr-defined]
    return store


# -- Sphinx's events: each hands off to SphinxCards ---------------------------------------------------------
def _builder_inited(app: Sphinx) -> None:
    if not app.config.hcti_cards or app.builder.format != "html" or app.builder.name.startswith("epub"):
        return  # cards are for pages on the web
    if not (app.config.hcti_site_url or app.config.html_baseurl):
        log.warning(
            "hcti: hcti_site_url (or html_baseurl) is not set: og:image needs an absolute URL; no cards are made",
            type="hcti",
        )
        return
    try:
        app.hcti_cards = SphinxCards(app)  # type: ignore[attr-defined]
    except HctiError as exc:
        log.warning("hcti: %s", exc.message, type="hcti")


def _doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    """What the page's card says, kept in the environment (pickled, so an unchanged page is not read again)."""
    env = app.env
    meta = env.metadata.get(env.docname, {})
    description = next((n.get("content", "") for n in doctree.findall(nodes.meta) if n.get("name") == "description"), "")
    _pages(env)[env.docname] = {"description": str(description), "card": str(meta.get("hcti_card", ""))}


def _env_purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    _pages(env).pop(docname, None)


def _env_merge_info(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: BuildEnvironment) -> None:
    _pages(env).update({d: info for d, info in _pages(other).items() if d in docnames})


def _doctree_resolved(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """A page about to be written: resolved in the main process even when written in parallel."""
    cards: SphinxCards | None = getattr(app, "hcti_cards", None)
    if cards is not None and os.getpid() == cards.pid:
        cards.written.add(docname)


def _env_updated(app: Sphinx, env: BuildEnvironment) -> list[str]:
    cards: SphinxCards | None = getattr(app, "hcti_cards", None)
    if cards is not None:
        cards.submit_all(env)
    return []


def _html_page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    cards: SphinxCards | None = getattr(app, "hcti_cards", None)
    if cards is None or doctree is None:
        return
    try:
        tags = cards.tags(pagename, *_title_description(app.env, pagename))
    except HctiError as exc:
        log.warning("hcti: card for %s: %s", pagename, exc.message, location=pagename, type="hcti")
        return
    if tags:
        present = {m.key for m in read_head(context.get("metatags", "")).metas}  # another extension's tags stay
        context["metatags"] = context.get("metatags", "") + meta_html(tags, present)


def _build_finished(app: Sphinx, exception: BaseException | None) -> None:
    made: tuple[int, RemoteTier | None] | None = getattr(app, "hcti_remote_tier", None)
    if made is not None and made[1] is not None:
        done = made[1].report
        log.info(f"hcti: {done.fetched} images from {done.name}, {done.uploaded} uploaded")
    cards: SphinxCards | None = getattr(app, "hcti_cards", None)
    if cards is not None:
        if exception is None:
            cards.finish()
        cards.close()
    store: Store | None = getattr(app, "hcti_directive_store", None)
    if store is not None:
        store.close()
        if cards is None:
            store.engine.close()


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("hcti_cards", True, "html", bool, description="A social card for every HTML page, and its tags.")
    app.add_config_value("hcti_cards_template", None, "html", (str, type(None)), description="A Jinja2 HTML card.")
    app.add_config_value("hcti_cards_options", {}, "html", dict, description="Values the template reads as options.*")
    app.add_config_value("hcti_cards_format", "png", "html", str, description=f"One of {', '.join(IMAGE_FORMATS)}.")
    app.add_config_value("hcti_cards_width", CARD_SIZE[0], "html", int, description="Card width in CSS pixels.")
    app.add_config_value("hcti_cards_height", CARD_SIZE[1], "html", int, description="Card height in CSS pixels.")
    app.add_config_value("hcti_cards_device_scale", 1, "html", (int, float), description="Pixel ratio of cards.")
    app.add_config_value("hcti_cards_dir", "_images/social", "html", str, description="Where cards go in the output.")
    app.add_config_value("hcti_site_url", None, "html", (str, type(None)), description="Default: html_baseurl.")
    app.add_config_value("hcti_store", None, "env", (str, type(None)), description="Default: $HCTI_STORE or .hcti.")
    app.add_config_value("hcti_remote", None, "", (str, type(None)), description="A shared store: s3://bucket/prefix...")
    app.add_directive("hcti", HctiDirective)
    app.connect("builder-inited", _builder_inited)
    app.connect("doctree-read", _doctree_read)
    app.connect("env-purge-doc", _env_purge_doc)
    app.connect("env-merge-info", _env_merge_info)
    app.connect("env-updated", _env_updated)
    app.connect("doctree-resolved", _doctree_resolved)
    app.connect("html-page-context", _html_page_context, priority=900)  # after other extensions: their tags stay
    app.connect("build-finished", _build_finished)
    return {"version": _version(), "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hcti-build")
    except PackageNotFoundError:  # a checkout run without installing it
        return "0"
