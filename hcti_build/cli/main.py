"""The `hcti` command: render, get, ls, rm, usage, build, watch, og, serve, sign (and `store` in `cli_store`, `mcp` in `cli_mcp`).

Errors are the API's JSON on stderr with exit code 2."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..api.signing import Credentials, signed_url
from ..config import config_value
from ..errors import BadRequestError, HctiError
from ..files import atomic_write, read_utf8
from ..options import CREATE_PARAMS, FORMATS, IMAGE_FORMATS, LIST_PARAMS, CreateOptions, ImageQuery, ListQuery, parse_format
from ..store.remote import remote_tier
from ..store.store import Store, default_store_path
from .common import HctiGroup, fail, store_option
from .mcp import mcp_command
from .store import store_group

if TYPE_CHECKING:  # imported when `hcti og` runs: the other commands start without it
    from ..integrations.og import OgSettings

F = TypeVar("F", bound=Callable[..., Any])


def _creation_options(func: F) -> F:
    # html, css and url have their own options (with --html-file and --css-file).
    for p in reversed([p for name, p in CREATE_PARAMS.items() if name not in ("html", "css", "url")]):
        dashed = "--" + p.name.replace("_", "-")
        names = [dashed, "--" + p.name] if "_" in p.name else [dashed]
        if p.flag:
            func = click.option(*names, p.name, is_flag=True, default=None, help=p.describe())(func)
        else:
            func = click.option(*names, p.name, default=None, metavar="VALUE", help=p.describe())(func)
    return func


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """A progress callback for long runs: a bar on a terminal (stderr), nothing otherwise."""
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and sys.stderr.isatty():
            bar = click.progressbar(length=total, label="rendering", file=sys.stderr).__enter__()
        if bar is not None:
            bar.update(1)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@click.group(cls=HctiGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hcti-build")
def main() -> None:
    """HTML/CSS to Image at build time: the hosted API's parameters, offline, through local Chromium.

    Images are kept in a content-addressed store (.hcti/ here, or --store / HCTI_STORE).
    """


@main.command()
@click.option("--html", help=CREATE_PARAMS["html"].describe())
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False), help="Read the HTML from a file.")
@click.option("--url", help=CREATE_PARAMS["url"].describe())
@click.option("--css", help=CREATE_PARAMS["css"].describe())
@click.option("--css-file", type=click.Path(exists=True, dir_okay=False), help="Read the CSS from a file.")
@_creation_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the image; format from the extension.")
@store_option
def render(html_file: str | None, css_file: str | None, output: str | None, store_path: str | None, **params: Any) -> None:
    """Render an image and print the API's JSON: {"id": ..., "url": ...}."""
    if html_file:
        params["html"] = read_utf8(Path(html_file), "html_file")
    if css_file:
        params["css"] = read_utf8(Path(css_file), "css_file")
    fmt = parse_format(Path(output).suffix or "png") if output else None
    opts = CreateOptions.from_mapping(params)
    store = Store(store_path)
    result = store.create(opts)
    if output:
        data = store.get(result["id"], ImageQuery(format=fmt or "png"))
        atomic_write(Path(output), data)
    click.echo(json.dumps(result))


@main.command()
@click.argument("spec")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the image.")
@store_option
def get(spec: str, output: str, store_path: str | None) -> None:
    """The API's GET: 'ID[.ext][?query]', e.g. 'ID.jpg?width=600&x_1=33%&x_2=66%'."""
    image_id, query = ImageQuery.parse(spec)
    data = Store(store_path).get(image_id, query)
    atomic_write(Path(output), data)


@main.command("ls")
@click.option("--count", default=None, help=LIST_PARAMS["count"].describe())
@click.option("--page-token", default=None, help=LIST_PARAMS["page_token"].describe())
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@store_option
def ls(count: str | None, page_token: str | None, as_json: bool, store_path: str | None) -> None:
    """List stored images, newest first."""
    query = ListQuery.from_mapping({"count": count, "page_token": page_token})  # the API's error for a bad one
    page = Store(store_path).list(query.count, query.page_token)
    if as_json:
        click.echo(json.dumps(page))
        return
    for img in page["images"]:
        click.echo(f"{img['id']}  {img['created_at']}")
    if page["has_next_page"]:
        click.echo(f"more: --page-token {page['next_page_token']}")


@main.command()
@click.argument("ids", nargs=-1, required=True)
@store_option
def rm(ids: tuple[str, ...], store_path: str | None) -> None:
    """Delete images (every copy; a later get is 410 Gone)."""
    Store(store_path).batch_delete(list(ids))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@store_option
def usage(as_json: bool, store_path: str | None) -> None:
    """Renders rolled up by hour, day and month."""
    data = Store(store_path).usage()
    if as_json:
        click.echo(json.dumps(data))
        return
    for period in ("month", "day", "hour"):
        for bucket, n in list(data["data"][period].items())[-5:]:
            click.echo(f"{period:5} {bucket}  {n}")


def _build_options(func: F) -> F:
    """Options shared by `hcti build` and `hcti watch`."""
    for opt in reversed(
        [
            click.argument("src", type=click.Path(exists=True, file_okay=False)),
            click.option("--out", default="_hcti_build", show_default=True, help="Output folder (a copy of SRC)."),
            click.option(
                "--assets-dir", default="assets/hcti", show_default=True, help="Where images go, relative to the output."
            ),
            store_option,
            click.option("--format", "fmt", type=click.Choice(list(FORMATS)), help="Default image format."),
            click.option("--jobs", type=click.IntRange(1, 64), help="Concurrent renders (default: the page pool)."),
            click.option("--in-place", is_flag=True, help="Rewrite the sources themselves instead of a copy."),
        ]
    ):
        func = opt(func)
    return func


def _builder(
    src: str, out: str, assets_dir: str, store_path: str | None, fmt: str | None, jobs: int | None, in_place: bool
) -> Any:
    from ..pipeline.build import Builder

    store = Store(store_path, root=src)
    return Builder(src, out, assets_dir=assets_dir, store=store, default_format=fmt, jobs=jobs, in_place=in_place)


@main.command()
@_build_options
def build(**kwargs: Any) -> None:
    """Render every directive under SRC and write SRC's copy with references to the images.

    Directives: ```hcti fences and ![alt](hcti:card.html?k=v) links in Markdown, {% hcti %} blocks and
    <img src="hcti:..."> in HTML/Jinja2, %%hcti cells in notebooks. Unchanged directives are store hits.
    """
    builder = _builder(**kwargs)
    with _progress() as progress:
        report = builder.build(on_progress=progress)
    for err in report.errors:
        click.echo(str(err), err=True)
    click.echo(report.summary(), err=True)
    if report.errors:
        sys.exit(1)


@main.command()
@_build_options
@click.option("--poll", is_flag=True, help="Poll for changes (network and container mounts without native events).")
@click.option(
    "--debounce", default=30, show_default=True, type=click.IntRange(0, 5000), help="Quiet time in ms before a rebuild."
)
def watch(poll: bool, debounce: int, **kwargs: Any) -> None:
    """Build SRC, then rebuild what changed on every save, with the browser kept warm (Ctrl-C to stop).

    Only the directives whose inputs changed are rendered again: a source's own directives, and any template,
    include, stylesheet, font or image they read. A broken edit prints its errors; the next good save recovers.
    """
    from ..integrations.watch import Watcher, describe, serve_forever

    if kwargs["in_place"]:
        fail(BadRequestError("watch cannot rewrite the sources it watches; use --out", param="in_place"))
    builder = _builder(**kwargs)
    first = True

    def report(rep: Any, changed: list[str]) -> None:
        nonlocal first
        for err in rep.errors:
            click.echo(str(err), err=True)
        click.echo(f"hcti watch: {describe(rep, changed, first)}", err=True)
        first = False

    click.echo(f"hcti watch: {builder.src} -> {builder.out} (Ctrl-C to stop)", err=True)
    # later builds report their errors and go on; one the first build cannot get past ends here
    serve_forever(Watcher(builder, debounce=debounce / 1000, polling=poll, on_report=report))


@main.command()
@click.argument("site_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--site-url",
    help="The site's public URL (og:image must be absolute); default: site_url in [tool.hcti], else each page's canonical URL.",
)
@click.option("--template", type=click.Path(exists=True, dir_okay=False), help="A Jinja2 HTML card (default: the built-in one).")
@click.option("--screenshot", is_flag=True, help="Every card a screenshot of its page (else only pages with hcti:selector).")
@click.option("--cards-dir", default="assets/images/social", show_default=True, help="Where cards go in the site.")
@click.option("--format", "fmt", type=click.Choice(list(IMAGE_FORMATS)), default="png", show_default=True, help="Card format.")
@click.option("--include", multiple=True, help="Only pages matching this glob (relative to SITE_DIR); repeatable.")
@click.option("--exclude", multiple=True, help="No card for pages matching this glob; repeatable.")
@click.option("--site-name", help="The site's name on cards (default: og:site_name, or the end its pages' titles share).")
@click.option(
    "--logo",
    type=click.Path(exists=True, dir_okay=False),
    help="The cards' logo (default: the pages' apple-touch-icon or icon, when it is a file in the site).",
)
@click.option("--color", help="The cards' colour, a CSS colour (default: the pages' meta theme-color).")
@click.option("--font", help="The cards' font family, installed here (default: Noto Sans).")
@click.option("--width", type=click.IntRange(1, 5000), default=1200, show_default=True, help="Card width in CSS pixels.")
@click.option("--height", type=click.IntRange(1, 5000), default=630, show_default=True, help="Card height in CSS pixels.")
@click.option("--device-scale", type=click.FloatRange(0.1, 3), default=1, show_default=True, help="Pixel ratio of cards.")
@click.option("--jobs", type=click.IntRange(1, 64), help="Concurrent renders (default: the store's concurrency).")
@store_option
@click.option("--check", is_flag=True, help="Change nothing: exit 1 listing pages whose card tags are missing or broken.")
def og(site_dir: str, store_path: str | None, check: bool, jobs: int | None, fmt: str, **kwargs: Any) -> None:
    """A social card for every page of a built site (Zensical, Sphinx, Jupyter Book, Hugo, plain HTML), and
    the page's og:/twitter: tags. Run it again: unchanged pages render nothing and no byte changes.

    Pages may say how (as the hosted API's OG Image Configs): meta hcti:selector (a screenshot of that element),
    hcti:css, hcti:viewport_width/height, hcti:ms_delay, hcti:content_version, html:tv:NAME (template values),
    hcti:color, hcti:logo, hcti:font (over --color, --logo, --font), hcti:card=false (no card).

    Cards show the site's brand as its pages declare it: meta theme-color, and an icon (apple-touch-icon or
    link rel=icon) that is a file in the site; remote icons are never fetched.
    """
    from ..engine.browser import Engine
    from ..integrations.og import SiteCards
    from ..pipeline.site import check_site

    settings = _og_settings(Path(site_dir), fmt, kwargs)
    if check:
        problems = check_site(settings.site, settings.include, settings.exclude)
        for line in problems:
            click.echo(line, err=True)
        click.echo(f"hcti og --check: {len(problems)} problem(s)", err=True)
        sys.exit(1 if problems else 0)
    # One author's pages: the pool's pages share a context, and a static card replaces the one before in place.
    engine = Engine(isolate=False)
    try:
        path = Path(store_path).resolve() if store_path else default_store_path()
        cards = SiteCards(settings, path, engine, jobs=jobs)
        with _progress() as progress, contextlib.closing(cards):
            report = cards.run(on_progress=progress)
    finally:
        engine.close()
    for line in (*report.warnings, *report.errors):
        click.echo(line, err=True)
    click.echo(report.summary(), err=True)
    if report.errors:
        sys.exit(1)


def _og_settings(site: Path, fmt: str, kwargs: dict[str, Any]) -> OgSettings:
    """`hcti og`'s options as its settings (the site's URL from the configuration when not given)."""
    from ..integrations.og import OgSettings

    configured = config_value("site_url")
    return OgSettings(
        site,
        site_url=kwargs["site_url"] or (configured[0] if configured else None),
        template=Path(kwargs["template"]) if kwargs["template"] else None,
        screenshot=kwargs["screenshot"],
        cards_dir=kwargs["cards_dir"],
        format=fmt,
        include=tuple(kwargs["include"]),
        exclude=tuple(kwargs["exclude"]),
        site_name=kwargs["site_name"],
        width=kwargs["width"],
        height=kwargs["height"],
        device_scale=kwargs["device_scale"],
        logo=Path(kwargs["logo"]) if kwargs["logo"] else None,
        color=kwargs["color"],
        font=kwargs["font"],
    )


def _server_module() -> Any:
    try:
        from ..api import server
    except ImportError as exc:  # the server's stack is an extra
        fail(HctiError(f"hcti serve needs the server extra ({exc.name} is missing): pip install 'hcti-build[serve]'"))
    return server


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@store_option
@click.option("--base-url", help="Public base URL for image URLs in responses (default: the request's own).")
@click.option(
    "--queue",
    default=32,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Renders that may wait for a page; beyond it, 429.",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log one line per request.")
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    help="A folder whose files renders may read (relative URLs resolve there); default (or serve_root under "
    "[tool.hcti]): none, as on the hosted API. Hidden files and the store are never served.",
)
def serve(
    host: str, port: int, store_path: str | None, base_url: str | None, queue: int, access_log: bool, root: str | None
) -> None:
    """Serve the hosted API's REST surface over the local store, so existing API clients work against it.

    HTTP Basic auth with HCTI_USER_ID and HCTI_API_KEY (or `user_id` / `api_key` in [tool.hcti]); without them a
    key is generated and printed once. Image URLs need no credentials. A gallery of the store is at /.
    """
    import tempfile

    server = _server_module()
    from ..api import serving

    configured = config_value("serve_root")
    root = root or (str(configured[1] / configured[0]) if configured else None)
    # No folder named: renders get an empty one, so a client can read nothing of the machine's (the working folder
    # of a server started in a project holds its .env, .git and store).
    empty = tempfile.TemporaryDirectory(prefix="hcti-serve-no-files-") if root is None else None
    creds = Credentials.resolve()
    remote = remote_tier(None) or ""  # the configuration beside the working folder, not the renders' folder
    store = Store(store_path, root=root or (empty.name if empty else None), remote=remote)
    store.fingerprint()  # finds Chromium and reads its version: a missing or broken one is said now, not per request
    sock = serving.bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    shared = f"; remote {store.remote.name}" if store.remote else ""
    click.echo(f"hcti serve: {url}  (store {store.path}{shared}; gallery at {url}/)", err=True)
    if creds.generated:
        click.echo(f"  user id {creds.user_id}  API key {creds.api_key}", err=True)
        click.echo("  (generated for this run: set HCTI_USER_ID and HCTI_API_KEY to keep them)", err=True)
    reads = f"files under {store.root} (not hidden ones, not the store)" if root else "no local files (--root DIR to allow)"
    click.echo(f"  renders read {reads}", err=True)
    if not serving.is_loopback(bound_host):
        click.echo(f"  warning: {bound_host} is reachable from other machines", err=True)
    app = server.create_app(store, creds, base_url=base_url, queue=queue)
    try:
        serving.serve(app, sock, access_log=access_log, on_close=app.state.api.close)
    finally:
        store.engine.close()
        if empty is not None:
            empty.cleanup()


@main.command()
@click.argument("query", required=False, default="")
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False), help="Add html= from a file.")
@click.option("--css-file", type=click.Path(exists=True, dir_okay=False), help="Add css= from a file.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), help="Format path segment.")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True, help="The server's base URL.")
def sign(query: str, html_file: str | None, css_file: str | None, fmt: str | None, base_url: str) -> None:
    """Print a signed create-and-render URL for QUERY, e.g. 'html=<p>Hi</p>&css=p{color:red}&width=600'.

    The token is the HMAC-SHA256 of the query string keyed with HCTI_API_KEY, as on the hosted API; the URL
    renders (or reuses) the image when fetched, with no other credentials.
    """
    from urllib.parse import parse_qsl

    pairs = parse_qsl(query, keep_blank_values=True)
    if html_file:
        pairs.append(("html", read_utf8(Path(html_file), "html_file")))
    if css_file:
        pairs.append(("css", read_utf8(Path(css_file), "css_file")))
    creds = Credentials.resolve(generate=False)
    if not pairs:
        raise BadRequestError("nothing to sign: give a query such as 'html=<p>Hi</p>'", param="query")
    click.echo(signed_url(base_url, creds, pairs, fmt))


main.add_command(store_group)
main.add_command(mcp_command)
