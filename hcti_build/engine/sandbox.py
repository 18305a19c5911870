"""The sandbox every render runs in: each request a page makes is answered here, before the browser's own network
stack would see it (the document, a file under the render's folder, an allow-listed site fetched outside the
browser with its redirects checked hop by hop), or refused. `seal_context` and `prepare_page` seal a new
context and page: this handler, no WebSockets, no WebRTC, and no page of the context but the pool's reaches
anything. Every response carries `SANDBOX`, so no document can open a window: nothing a render makes can
outlive it in a window of its own. What the page reached is recorded on its `Slot` (the files read make the
image's id).
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from ..errors import BadRequestError
from ..files import Tree
from ..network import Policy

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("hcti_build.browser")
ORIGIN = "https://hcti.invalid"
DOC_PATH = "/__hcti_document__.html"
MAX_REDIRECTS = 10  # hops of one request, followed by `_fetch` (browsers allow ~20; sites use 1 or 2)
# Sent with every response a render's page gets, so every document it can reach is sandboxed: scripts run and
# its origin is its own, but no popup, window.open, target=_blank or form to a new window can exist (Chromium
# refuses them outright), and neither can a download or a modal dialog. A window outside its page would outlive
# the render, beyond the request filter and the ready script, and with a reference to the next render's
# document (issue #28).
SANDBOX = "sandbox allow-scripts allow-same-origin"
# Run before each document's own scripts, in every frame. WebRTC's interfaces are removed: ICE reaches hosts
# by UDP and TCP outside every request filter, and only the headless shell takes the switch that confines it
# (the full browser reads a profile preference Playwright gives no way to set).
READY_SCRIPT = """
try { sessionStorage.clear(); } catch (e) {}
for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCIceTransport']) { delete globalThis[name]; }
window.ScreenshotReady = () => { if (!document.getElementById('HCTIReadyNow')) {
  const d = document.createElement('div'); d.id = 'HCTIReadyNow'; d.style.display = 'none';
  document.documentElement.appendChild(d); } };
"""


@dataclass(frozen=True)
class Folder:
    """What a render may read: the files ``tree``'s rules allow (`hcti_build.files.Tree`: under its root, no
    hidden part, not in a store); its document lives in the folder ``base`` of the root, so its relative URLs
    resolve there."""

    tree: Tree
    base: str = ""

    @classmethod
    def of(cls, root: Path | str, base: str = "", private: Sequence[Path | str] = ()) -> Folder:
        return cls(Tree.of(root, private), base)


def _new_event() -> asyncio.Event:
    import asyncio

    return asyncio.Event()


@dataclass
class Visit:
    """What one render's page has reached so far (written by `handle`, read by the render's steps). Each render
    gets a new one, so nothing one render's page did is seen by the next: there is no field to forget to reset."""

    folder: Folder = Folder(Tree(Path(".")))
    render_origin: str | None = None  # a url render's own origin
    files: dict[str, bytes] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # root-relative paths asked for and not found
    blocked_redirect: str | None = None  # where the document tried to go, when that was refused
    opened: tuple[str, Any] | None = None  # a url render's document: its final URL and response (see `open_url`)
    navigations: int = 0  # main-frame navigation requests in this render, its own included
    commits: int = 0  # main-frame documents committed (an error page for a refused navigation included)
    navigated_to: str | None = None  # the last one's URL


@dataclass
class Slot:
    """A page of the pool: what it holds from one render to the next (its document, what the page is set to
    emulate, the origins to clear), and the `Visit` of the render running on it."""

    page: Any
    cdp: Any
    visit: Visit = field(default_factory=Visit)
    doc_path: str = DOC_PATH  # the document it holds, and its HTML
    html: str = ""
    origins: set[str] = field(default_factory=set)  # every origin its renders reached since its storage was cleared
    metrics: tuple[Any, ...] = ()
    media: tuple[Any, ...] = ()
    timezone: str | None = None
    transparent: bool = False
    generation: int = 0  # the browser launch it belongs to: a slot of a dead browser never returns to the pool
    # Its document may be replaced in place (see `hcti_build.rendering`): reached by a static HTML render, and it has
    # loaded nothing since (a file it loaded could be reused unseen by the next document, and not be recorded).
    reusable: bool = False
    dead: asyncio.Event = field(default_factory=_new_event)  # its renderer crashed, or the browser exited


async def seal_context(context: Any) -> None:
    """Seal a new browser context: the ready script in every frame of every page, and every request and
    WebSocket of a page that is not one of the pool's refused (the pool's own are answered by `handle`, which
    their page's route puts first). With `SANDBOX` no other page can exist; this holds if one did."""
    await context.add_init_script(READY_SCRIPT)
    await context.route("**/*", lambda route: route.abort("blockedbyclient"))
    await context.route_web_socket(re.compile(".*"), lambda ws: ws.close())


async def prepare_page(slot: Slot, policy: Callable[[], Policy]) -> None:
    """Seal a new page of the pool: every request through `handle` (with the engine's current policy), every
    WebSocket closed (they are not requests page.route sees), never connected."""
    page = slot.page
    # A crashed renderer or an exited browser ends the render at once, not at its deadline.
    page.on("crash", lambda _: slot.dead.set())
    page.on("close", lambda _: slot.dead.set())
    page.on("framenavigated", lambda frame: _committed(slot, frame))
    await page.route("**/*", lambda route: handle(slot, route, policy()))
    await page.route_web_socket(re.compile(".*"), lambda ws: ws.close())


def _committed(slot: Slot, frame: Any) -> None:
    if frame == slot.page.main_frame:
        slot.visit.commits += 1


async def handle(slot: Slot, route: Any, policy: Policy) -> None:
    """Every request of a render, answered: a request this cannot answer is refused, never left waiting (a
    page would wait for it until its deadline)."""
    try:
        await _answer(slot, route, policy)
    except Exception as exc:  # noqa: BLE001 - a bug here, or the page went away: the request fails, the render goes on
        log.info("refused a request to %s: %s", route.request.url[:200], exc)
        with contextlib.suppress(Exception):
            await route.abort("blockedbyclient")


async def _answer(slot: Slot, route: Any, policy: Policy) -> None:
    """The document, files under the root (for an HTML render; a url render reads no local files), or the
    allow-list. Nothing else."""
    url = route.request.url
    if route.request.is_navigation_request() and route.request.frame == slot.page.main_frame:
        slot.visit.navigations += 1  # the document a render's steps run in may be going away (see `rendering.on_final_document`)
        slot.visit.navigated_to = url
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = unquote(parts.path)
    if origin == ORIGIN and path == slot.doc_path and slot.visit.render_origin is None:
        await route.fulfill(body=slot.html, headers=_sealed({"content-type": "text/html; charset=utf-8"}))
        return
    if slot.visit.opened and url == slot.visit.opened[0] and route.request.is_navigation_request():
        (_, response), slot.visit.opened = slot.visit.opened, None  # fetched and checked by `open_url`
        await route.fulfill(response=response, headers=_sealed(response.headers))
        await response.dispose()
        return
    slot.reusable = False  # whatever this document loads, the next one must load (and record) itself
    if origin == ORIGIN and slot.visit.render_origin is None:
        await _serve_file(slot, route, path)
        return
    if origin != ORIGIN and await _may_fetch(slot, url, policy):
        slot.origins.add(origin.lower())
        await _forward(slot, route, policy)
        return
    log.info("blocked a request to %s (no network at render time)", origin)
    await route.abort("blockedbyclient")


async def _serve_file(slot: Slot, route: Any, path: str) -> None:
    """A file of the render's folder, by the file rules (`Tree`), read off the browser's loop; a name the
    rules allow that is not there is recorded as missing (the image is stale once it appears)."""
    import asyncio

    found = slot.visit.folder.tree.find(path.lstrip("/"))
    data = None
    if found is not None:
        data = await asyncio.get_running_loop().run_in_executor(None, _read_file, found[1])
    if found is None or data is None:
        if found is not None:
            slot.visit.missing.add(found[0])
        await route.fulfill(status=404, body="not found", headers=_sealed({}))
        return
    name, target = found
    slot.visit.files[name] = data
    # Chromium does not sniff SVG (an <img> of it needs image/svg+xml), so say what each file is.
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    await route.fulfill(body=data, headers=_sealed({"cache-control": "no-store", "content-type": kind}))


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def _sealed(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with `SANDBOX` added to any policy of their own (both are enforced)."""
    out = {k: v for k, v in headers.items() if k.lower() != "content-security-policy"}
    own = next((v for k, v in headers.items() if k.lower() == "content-security-policy"), None)
    out["content-security-policy"] = f"{own}, {SANDBOX}" if own else SANDBOX
    return out


async def _may_fetch(slot: Slot, url: str, policy: Policy) -> bool:
    import asyncio

    if slot.visit.render_origin is None and not policy.allow_hosts:
        return False  # an HTML render with no allow-list reaches nothing: no lookup needed
    # The check may resolve the host name (blocking), so it runs off the browser loop.
    return await asyncio.get_running_loop().run_in_executor(None, policy.may_fetch, url, slot.visit.render_origin)


async def _forward(slot: Slot, route: Any, policy: Policy) -> None:
    """Fetch an allowed request outside the browser, following its redirects here, each hop checked. The
    browser must not follow them itself: Playwright hands a redirect's next request to the network without
    routing it (and the browser's network is a dead end, see ARGS)."""
    request = route.request
    try:
        _, response = await _fetch(slot, lambda url: route.fetch(url=url, max_redirects=0), request.url, policy)
    except Blocked as blocked:
        log.info("blocked a redirect from %s to %s (no network at render time)", request.url, blocked.url)
        if request.is_navigation_request() and request.frame == slot.page.main_frame:
            slot.visit.blocked_redirect = blocked.url
        await route.abort("blockedbyclient")
        return
    except Exception as exc:  # noqa: BLE001 - unreachable host, reset connection: the page sees a failed load
        log.info("request to %s failed: %s", request.url, exc)
        await route.abort("failed")
        return
    await route.fulfill(response=response, headers=_sealed(response.headers))
    await response.dispose()  # Playwright keeps every fetched body until then


async def _fetch(slot: Slot, fetch: Callable[[str], Awaitable[Any]], url: str, policy: Policy) -> tuple[str, Any]:
    """``fetch(url)`` and the redirects it answers, up to MAX_REDIRECTS, each hop checked like a request of
    the render's: the final URL and response. Raises Blocked with the first hop that may not be reached."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await fetch(url)
        location = response.headers.get("location")
        if not (300 <= response.status < 400 and location):
            return url, response
        await response.dispose()
        url = urljoin(url, location)
        if not await _may_fetch(slot, url, policy):
            raise Blocked(url)
    raise Blocked(url, f"more than {MAX_REDIRECTS} redirects")


async def open_url(slot: Slot, url: str, policy: Policy) -> str:
    """Where a url render's page goes: its redirects followed here first, so the document has its final URL
    (relative links resolve from there) and its response is served to the browser as it arrives."""
    try:
        final, response = await _fetch(slot, lambda hop: slot.page.context.request.fetch(hop, max_redirects=0), url, policy)
    except Blocked as blocked:
        raise BadRequestError(
            f"url redirected to {blocked.url}, which a render may not reach ({blocked.reason}); allow it with HCTI_ALLOW_HOSTS",
            param="url",
        ) from None
    except Exception as exc:  # noqa: BLE001 - unreachable: the browser's own request fails and says so
        log.info("request to %s failed: %s", url, exc)
        return url
    slot.visit.opened = (final, response)
    return final


class Blocked(Exception):
    """A redirect hop a render may not reach (`_fetch`)."""

    def __init__(self, url: str, reason: str = "another site, or a local or private address") -> None:
        super().__init__(url)
        self.url, self.reason = url, reason
