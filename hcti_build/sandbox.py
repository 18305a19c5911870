"""The sandbox every render runs in: each request a page makes is answered here, before the browser's own network
stack would see it (the document, a file under the render's folder, an allow-listed site fetched outside the
browser with its redirects checked hop by hop), or refused. `prepare_page` seals a new page: this handler, no
WebSockets, no WebRTC. What the page reached is recorded on its `Slot` (the files read make the image's id).
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

from .errors import BadRequestError
from .network import Policy

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("hcti_build.browser")
ORIGIN = "https://hcti.invalid"
DOC_PATH = "/__hcti_document__.html"
MAX_REDIRECTS = 10  # hops of one request, followed by `_fetch` (browsers allow ~20; sites use 1 or 2)
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
    """What a render may read: the files under ``root`` (its document lives in the folder ``base`` of it, so its
    relative URLs resolve there), except hidden ones (a part starting with "."; `.git`, `.env`, `.hcti`) and
    those under a ``private`` folder (a store, wherever it lives)."""

    root: Path
    base: str = ""
    private: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: Path | str, base: str = "", private: Sequence[Path | str] = ()) -> Folder:
        return cls(Path(root).resolve(), base, tuple(Path(p).resolve() for p in private))

    def name(self, target: Path) -> str | None:
        """``target`` (resolved) as a root-relative name a render may read, or None."""
        if not target.is_relative_to(self.root) or any(target.is_relative_to(p) for p in self.private):
            return None
        name = target.relative_to(self.root).as_posix()
        return None if any(part.startswith(".") for part in name.split("/")) else name


def _new_event() -> asyncio.Event:
    import asyncio

    return asyncio.Event()


@dataclass
class Slot:
    """A page of the pool, and what the render running on it has done so far (read by `handle`)."""

    page: Any
    cdp: Any
    folder: Folder = Folder(Path("."))
    doc_path: str = DOC_PATH
    html: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # root-relative paths asked for and not found
    render_origin: str | None = None  # a url render's own origin
    blocked_redirect: str | None = None  # where the document tried to go, when that was refused
    opened: tuple[str, Any] | None = None  # a url render's document: its final URL and response (see `open_url`)
    navigations: int = 0  # main-frame navigation requests in this render, its own included
    navigated_to: str | None = None  # the last one's URL
    metrics: tuple[Any, ...] = ()
    media: tuple[Any, ...] = ()
    timezone: str | None = None
    transparent: bool = False
    generation: int = 0  # the browser launch it belongs to: a slot of a dead browser never returns to the pool
    # Its document may be replaced in place (see `hcti_build.rendering`): reached by a static HTML render, and it has
    # loaded nothing since (a file it loaded could be reused unseen by the next document, and not be recorded).
    reusable: bool = False
    dead: asyncio.Event = field(default_factory=_new_event)  # its renderer crashed, or the browser exited


async def prepare_page(slot: Slot, policy: Callable[[], Policy]) -> None:
    """Seal a new page: the ready script, every request through `handle` (with the engine's current policy),
    every WebSocket closed (they are not requests page.route sees), never connected."""
    page = slot.page
    # A crashed renderer or an exited browser ends the render at once, not at its deadline.
    page.on("crash", lambda _: slot.dead.set())
    page.on("close", lambda _: slot.dead.set())
    await page.add_init_script(READY_SCRIPT)
    await page.route("**/*", lambda route: handle(slot, route, policy()))
    await page.route_web_socket(re.compile(".*"), lambda ws: ws.close())


async def handle(slot: Slot, route: Any, policy: Policy) -> None:
    """Every request of a render: the document, files under the root, or the allow-list. Nothing else."""
    url = route.request.url
    if route.request.is_navigation_request() and route.request.frame == slot.page.main_frame:
        slot.navigations += 1  # the document a render's steps run in may be going away (see `rendering.on_final_document`)
        slot.navigated_to = url
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = unquote(parts.path)
    if origin == ORIGIN and path == slot.doc_path:
        await route.fulfill(body=slot.html, content_type="text/html; charset=utf-8")
        return
    if slot.opened and url == slot.opened[0] and route.request.is_navigation_request():
        (_, response), slot.opened = slot.opened, None  # fetched and checked by `open_url`
        await route.fulfill(response=response)
        await response.dispose()
        return
    slot.reusable = False  # whatever this document loads, the next one must load (and record) itself
    if origin == ORIGIN:
        target = (slot.folder.root / path.lstrip("/")).resolve()
        name = slot.folder.name(target)
        if name is not None and target.is_file():
            data = target.read_bytes()
            slot.files[name] = data
            # Chromium does not sniff SVG (an <img> of it needs image/svg+xml), so say what each file is.
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            await route.fulfill(body=data, headers={"cache-control": "no-store", "content-type": kind})
            return
        if name is not None:  # recorded: the image is stale once this file appears
            slot.missing.add(name)
        await route.fulfill(status=404, body="not found")
        return
    if await _may_fetch(slot, url, policy):
        await _forward(slot, route, policy)
        return
    log.info("blocked a request to %s (no network at render time)", origin)
    await route.abort("blockedbyclient")


async def _may_fetch(slot: Slot, url: str, policy: Policy) -> bool:
    import asyncio

    if slot.render_origin is None and not policy.allow_hosts:
        return False  # an HTML render with no allow-list reaches nothing: no lookup needed
    # The check may resolve the host name (blocking), so it runs off the browser loop.
    return await asyncio.get_running_loop().run_in_executor(None, policy.may_fetch, url, slot.render_origin)


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
            slot.blocked_redirect = blocked.url
        await route.abort("blockedbyclient")
        return
    except Exception as exc:  # noqa: BLE001 - unreachable host, reset connection: the page sees a failed load
        log.info("request to %s failed: %s", request.url, exc)
        await route.abort("failed")
        return
    await route.fulfill(response=response)
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
    slot.opened = (final, response)
    return final


class Blocked(Exception):
    """A redirect hop a render may not reach (`_fetch`)."""

    def __init__(self, url: str, reason: str = "another site, or a local or private address") -> None:
        super().__init__(url)
        self.url, self.reason = url, reason
