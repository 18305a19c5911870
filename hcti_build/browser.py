"""Finds Chromium and owns one long-lived browser with a pool of warm pages on a private event-loop thread.

The sync Playwright API cannot run inside a running event loop (Jupyter kernels, ASGI servers), so the async
API runs on a daemon thread of our own and callers block on futures. The browser is launched lazily on the
first render and relaunched once after a crash.
"""

from __future__ import annotations

import atexit
import base64
import concurrent.futures
import contextlib
import contextvars
import logging
import mimetypes
import os
import posixpath
import re
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from .config import config_value
from .errors import BadRequestError, BrowserNotFoundError, RenderCancelledError, RenderError, RenderTimeoutError
from .network import Policy, configured_allow_hosts, origin_of
from .options import MAX_PIXELS, MAX_SIDE, CreateOptions

if TYPE_CHECKING:
    import asyncio
# asyncio (and the ssl it imports) is imported where the event loop is used, not here: a build whose images are
# all store hits never starts the loop, and the import was ~40% of hcti-build's (measured: ~12 ms in a warm
# `mkdocs build`).

log = logging.getLogger("hcti_build.browser")
T = TypeVar("T")

ORIGIN = "https://hcti.invalid"
DOC_PATH = "/__hcti_document__.html"
CANDIDATES = (
    "/usr/lib/chromium/chromium-headless-shell",
    "/usr/bin/chromium-headless-shell",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)
# Measured (DESIGN 6): no frame-rate pacing for small snippets. No background networking: the machine may be
# offline, and a render must reach nothing it was not asked to.
# No --enable-features or --disable-features here, ever: Chromium keeps only the last of a repeated switch, so
# a list here would replace Playwright's own (FEATURES are merged into them, see `_launch_options`). Losing its
# CDPScreenshotNewSurface made the full `chromium` (not the headless shell) wait forever in
# Page.captureScreenshot for a frame a static page never draws: the last card of a build, rendered alone, hung
# (issue #17; tests/test_render_e2e.py keeps it fixed).
ARGS = [
    "--disable-frame-rate-limit",
    "--disable-gpu-vsync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--font-render-hinting=none",
    # Fewer processes, measured (benchmarks/mkdocs_cards.py): no zygotes (Playwright runs Chromium unsandboxed),
    # the GPU service inside the browser process, and one renderer for the pages of a shared context
    # (Engine(isolate=False)). Each process costs ~50-150 MB of RSS; none of this is slower.
    "--no-zygote",
    "--in-process-gpu",
    "--process-per-site",
    # No side door out of the request filter. Every request a page makes is answered by `Engine._handle` (served,
    # fetched by Playwright outside the browser, or refused) before the browser's network stack would see it; what
    # is not a request (WebRTC's STUN and TURN, a preconnect's bare socket, a DNS prefetch, QUIC) is left
    # nowhere to go: UDP only through a proxy (and an HTTP proxy carries none), every connection through a proxy
    # that does not exist, loopback included (no implicit bypass), and no name resolves.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--proxy-server=http://proxy.hcti.invalid:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-quic",
]
KEPT_NAVIGATING = "The page kept navigating (a meta refresh or a script setting location) until max_wait_ms"
MAX_REDIRECTS = 10  # hops of one request, followed by `Engine._fetch` (browsers allow ~20; sites use 1 or 2)
# Chromium features we change, added to Playwright's own lists (see `_launch_options`). Measured: RenderDocument
# and the back-forward cache make every navigation swap frames (~20% of a navigating render), and the network
# service in its own process costs ~70 MB.
FEATURES = {"enable": ("NetworkServiceInProcess2",), "disable": ("RenderDocument", "BackForwardCache")}
# What a page can write and a later render could read ("all" also drops shader and other caches: slower).
STORAGE_TYPES = "cookies,local_storage,indexeddb,cache_storage,file_systems,websql,service_workers"
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
# The union of the body's element children with their margins: the API's snippet auto-crop.
MEASURE_JS = """([selector, full]) => {
  if (selector) { let el; try { el = document.querySelector(selector); } catch (e) { return 'invalid'; }
    if (!el) return null;
    const r = el.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }
  const de = document.documentElement;
  if (full) return [0, 0, Math.max(de.scrollWidth, innerWidth), Math.max(de.scrollHeight, innerHeight)];
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const el of document.body.children) {
    if (el.id === 'HCTIReadyNow' || el.tagName === 'SCRIPT' || el.tagName === 'STYLE') continue;
    const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    if (s.display === 'none') continue;
    x0 = Math.min(x0, r.left - parseFloat(s.marginLeft)); y0 = Math.min(y0, r.top - parseFloat(s.marginTop));
    x1 = Math.max(x1, r.right + parseFloat(s.marginRight)); y1 = Math.max(y1, r.bottom + parseFloat(s.marginBottom));
  }
  if (x0 === Infinity) { const r = document.body.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }
  x0 = Math.max(0, x0); y0 = Math.max(0, y0);
  return [x0 + scrollX, y0 + scrollY, x1 - x0, y1 - y0];
}"""


# What makes a document more than static HTML and CSS: scripts (elements, event handler attributes, javascript:
# URLs), nested browsing contexts, meta refresh, declarative shadow roots. Such a document is always navigated to,
# in a fresh window; a match in plain text only costs that navigation.
_DYNAMIC = re.compile(
    r"<\s*(?:script|iframe|frame|frameset|object|embed|applet|portal|fencedframe)\b"
    r"|(?:^|[^a-z0-9_:.-])on[a-z]+\s*=|javascript:|http-equiv|shadowroot",
    re.I,
)


class CancelToken:
    """Lets another thread stop the renders a caller is blocked on (a server whose client hung up).

    Cancelling reaches the render's task on the browser loop, which closes and replaces its page, so nothing
    of the abandoned render is left behind and the pool stays full.
    """

    def __init__(self) -> None:
        self.cancelled = False
        self._futures: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            futures = list(self._futures)
        for fut in futures:
            fut.cancel()

    def _attach(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.add(fut)
            cancelled = self.cancelled
        if cancelled:
            fut.cancel()

    def _detach(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._futures.discard(fut)


_cancel_token: contextvars.ContextVar[CancelToken | None] = contextvars.ContextVar("hcti_cancel", default=None)


@contextlib.contextmanager
def cancellable(token: CancelToken) -> Iterator[None]:
    """Renders started in this block (this thread, or threads given a copy of its context) stop on
    ``token.cancel()`` with RenderCancelledError."""
    reset = _cancel_token.set(token)
    try:
        yield
    finally:
        _cancel_token.reset(reset)


# How to give hcti-build a browser: the end of every "no Chromium" message.
INSTALL_HINT = (
    "install Debian's browser (apt-get install chromium chromium-headless-shell), set HCTI_CHROMIUM to a Chromium "
    'or Chrome executable, or set chromium = "/path" under [tool.hcti] in pyproject.toml; hcti-build never '
    "downloads a browser"
)


def configured_chromium(start: Path | None = None) -> tuple[str, str] | None:
    """`chromium = "..."` from `[tool.hcti]` in the nearest pyproject.toml, or from an `hcti.toml`: the path
    (relative ones are relative to that file's folder) and where it was set."""
    found = config_value("chromium", start)
    if found is None:
        return None
    value, folder = found
    path = str((folder / value).resolve()) if not Path(value).is_absolute() else value
    return path, f"the chromium key of the configuration in {folder}"


def _playwright_managed() -> list[str]:
    """Browsers `playwright install` put in its cache (we use them, never download them): headless shell first."""
    base = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH") or Path.home() / ".cache" / "ms-playwright")
    patterns = ("chromium_headless_shell-*/chrome-*/*headless_shell", "chromium-*/chrome-linux*/chrome")
    return [str(p) for pattern in patterns for p in sorted(base.glob(pattern), reverse=True)]


def _executable(path: str) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_chromium(configured: str | None = None) -> str:
    """The Chromium to drive, first found of: HCTI_CHROMIUM, the argument, a config key (`chromium` in
    `[tool.hcti]` or `hcti.toml`), Debian's headless shell, a Playwright-managed browser, one on PATH."""
    env = os.environ.get("HCTI_CHROMIUM")
    chosen = (env, "HCTI_CHROMIUM") if env else (configured, "the chromium option") if configured else configured_chromium()
    if chosen:
        path, source = chosen
        if _executable(path):
            return path
        raise BrowserNotFoundError(f"Chromium not found at {path} (set by {source}): point it at a Chromium or Chrome executable")
    for cand in (*CANDIDATES, *_playwright_managed()):
        if _executable(cand):
            return cand
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFoundError(
        f"No Chromium found (looked for {', '.join(CANDIDATES)}, Playwright's browsers, and chromium or google-chrome "
        f"on PATH): {INSTALL_HINT}"
    )


_families: frozenset[str] | None = None


def installed_font_families() -> frozenset[str]:
    """Font families fontconfig knows (lower-cased), read once per process."""
    global _families
    if _families is None:
        try:
            out = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _families = frozenset(f.strip().lower() for line in out.splitlines() for f in line.split(","))
    return _families


def missing_google_fonts(spec: str | None) -> list[str]:
    """The families of a `google_fonts` value ('Roboto|Open Sans') that are not installed locally."""
    if not spec:
        return []
    wanted = [f.split(":")[0].replace("+", " ").strip() for f in spec.split("|")]
    have = installed_font_families()
    return [f for f in wanted if f and f.lower() not in have]


def chromium_version(executable: str) -> str:
    """`--version` of the executable, without launching a browser session: a program that does not answer it
    like a browser ("Chromium 156.0.8078.114") is not one we can drive, said before anything renders."""
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BrowserNotFoundError(f"{executable} is not a working Chromium: it cannot run ({exc}); {INSTALL_HINT}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not re.search(r"\d+\.\d+\.\d+", lines[-1]):
        said = (done.stderr.strip().splitlines() or lines or ["nothing"])[-1][:200]
        raise BrowserNotFoundError(
            f"{executable} is not a working Chromium: `--version` exited with code {done.returncode} and said {said!r}; "
            f"{INSTALL_HINT}"
        )
    return lines[-1]


@dataclass
class Capture:
    """A master render: PNG bytes, pixel size, the local files it read (path relative to root, bytes), and
    the root-relative paths it asked for that were not there (creating one of them changes the render)."""

    png: bytes
    width: int
    height: int
    files: dict[str, bytes] = field(default_factory=dict)
    missing: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Folder:
    """What a render may read: the files under ``root`` (its document lives in the folder ``base`` of it, so its
    relative URLs resolve there), except hidden ones (a part starting with "."; `.git`, `.env`, `.hcti`) and
    those under a ``private`` folder (a store, wherever it lives)."""

    root: Path
    base: str = ""
    private: tuple[Path, ...] = ()

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
class _Slot:
    page: Any
    cdp: Any
    folder: Folder = Folder(Path("."))
    doc_path: str = DOC_PATH
    html: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # root-relative paths asked for and not found
    render_origin: str | None = None  # a url render's own origin
    blocked_redirect: str | None = None  # where the document tried to go, when that was refused
    opened: tuple[str, Any] | None = None  # a url render's document: its final URL and response (see `_open`)
    navigations: int = 0  # main-frame navigation requests in this render, its own included
    navigated_to: str | None = None  # the last one's URL
    metrics: tuple[Any, ...] = ()
    media: tuple[Any, ...] = ()
    timezone: str | None = None
    transparent: bool = False
    generation: int = 0  # the browser launch it belongs to: a slot of a dead browser never returns to the pool
    # Its document may be replaced in place (see Engine._render): reached by a static HTML render, and it has
    # loaded nothing since (a file it loaded could be reused unseen by the next document, and not be recorded).
    reusable: bool = False
    dead: asyncio.Event = field(default_factory=_new_event)  # its renderer crashed, or the browser exited


class Engine:
    """One browser per process, a pool of pages, all on a private event-loop thread."""

    def __init__(
        self,
        executable: str | None = None,
        pages: int | None = None,
        browsers: int | None = None,
        *,
        allow_hosts: Sequence[str] | None = None,
        isolate: bool = True,
    ) -> None:
        self._executable = executable
        # Each page of the pool in a browser context of its own, so renders running at the same time share no
        # cookies or storage (a server's clients). False, for renders of one author (a site's build): the pages
        # share one context and one renderer process (~150 MB less), and a static document (no scripts, frames or
        # event handlers) replaces the static one before it in place, without a navigation (measured: 20-40% less
        # time per card). Renders in a row still share nothing.
        self.isolate = isolate
        # What renders may reach beyond their own files (see network.py): by default nothing but a url render's
        # own public origin.
        self.policy = Policy(tuple(allow_hosts) if allow_hosts is not None else configured_allow_hosts())
        # Two pages overlap one render's navigation with another's capture. A second browser process measured +14%
        # cards/s for +450 MB on 2 cores (benchmarks/render.py --browsers 2), so it is opt-in.
        self.browsers = browsers or 1
        self.pool_size = max(pages or 2, self.browsers)
        self.launches = 0  # counted so tests and builds can prove "no browser launched"
        self.in_place = 0  # renders that replaced a static document in place instead of navigating
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pw: Any = None
        self._browser: Any = None  # the first browser; "connected" means every browser is
        self._browsers: list[Any] = []
        self._slots: asyncio.Queue[_Slot] | None = None
        self._generation = 0
        self._gone: asyncio.Event | None = None  # set when a browser of the current launch disconnects
        self._lock: asyncio.Lock | None = None
        self._thread_lock = threading.Lock()
        self._replacing: set[asyncio.Future[None]] = set()  # pages being replaced after a timeout

    # -- thread plumbing -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        import asyncio

        with self._thread_lock:
            if self._thread is None or self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop.set_exception_handler(_loop_exception)
                self._thread = threading.Thread(target=self._loop.run_forever, name="hcti-browser", daemon=True)
                self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        token = _cancel_token.get()
        if token is None:
            return fut.result(timeout)
        token._attach(fut)
        try:
            return fut.result(timeout)
        except concurrent.futures.CancelledError:
            raise RenderCancelledError("The render was cancelled (the client went away)") from None
        finally:
            token._detach(fut)

    @property
    def executable(self) -> str:
        if self._executable is None:
            self._executable = find_chromium()
        return self._executable

    async def _ensure(self) -> None:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._connected():
                return
            await self._teardown()
            try:
                from playwright.async_api import async_playwright
            except ImportError as exc:  # pragma: no cover - a hard dependency
                raise BrowserNotFoundError("playwright is not installed: pip install hcti-build") from exc
            self._pw = await async_playwright().start()
            try:
                options = await _launch_options(self._pw)
                self._browsers = list(
                    await asyncio.gather(
                        *(self._pw.chromium.launch(executable_path=self.executable, **options) for _ in range(self.browsers))
                    )
                )
            except Exception as exc:
                await self._teardown()
                if not _executable(self.executable):  # it was there when its version was read
                    raise BrowserNotFoundError(f"Chromium is gone from {self.executable}: {INSTALL_HINT}") from exc
                if self.launches:  # it started before: this one was killed or crashed while starting
                    raise _CrashedError("Chromium exited while starting") from exc
                # Playwright's message goes on with the whole command line and the browser's log: its first line
                # says what failed, and the rest stays on the exception's cause for a debugger.
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BrowserNotFoundError(f"Could not launch Chromium at {self.executable} ({first}): {INSTALL_HINT}") from exc
            self._browser = self._browsers[0]
            self.launches += 1
            self._generation += 1
            log.debug("launched %d x %s (%s)", self.browsers, self.executable, self._browser.version)
            # One queue for the engine's life: renders already waiting for a page get one of the new browser's.
            if self._slots is None:
                self._slots = asyncio.Queue()
            while not self._slots.empty():
                self._slots.get_nowait()  # pages of the browser that died
            gone = self._gone = asyncio.Event()
            for browser in self._browsers:
                browser.on("disconnected", lambda _: gone.set())
            try:
                # Playwright's new_page never returns if the browser dies meanwhile: raced against its exit.
                for slot in await _race(self._new_slots(), gone, 60):
                    self._slots.put_nowait(slot)
            except Exception as exc:  # the new browser died while its pages were being made
                await self._teardown()
                raise _CrashedError("Chromium exited while starting") from exc

    async def _new_slots(self) -> list[_Slot]:
        slots = []
        contexts: dict[int, Any] = {}
        for i in range(self.pool_size):
            # A context per page (isolate): concurrent renders share no cookies or storage. Service workers
            # would fetch outside page.route, and renders never need them.
            n = i % len(self._browsers)
            if self.isolate or n not in contexts:
                contexts[n] = await self._browsers[n].new_context(no_viewport=True, service_workers="block")
            slots.append(await self._new_slot(contexts[n]))
        return slots

    def _connected(self) -> bool:
        return bool(self._browsers) and all(b.is_connected() for b in self._browsers)

    async def _new_slot(self, context: Any) -> _Slot:
        page = await context.new_page()
        slot = _Slot(page=page, cdp=await context.new_cdp_session(page), generation=self._generation)
        # A crashed renderer or an exited browser ends the render at once, not at its deadline.
        page.on("crash", lambda _: slot.dead.set())
        page.on("close", lambda _: slot.dead.set())
        await page.add_init_script(READY_SCRIPT)
        await page.route("**/*", lambda route: self._handle(slot, route))
        # WebSockets are not requests page.route sees: every one is answered here, and closed, never connected.
        await page.route_web_socket(re.compile(".*"), lambda ws: ws.close())
        return slot

    async def _handle(self, slot: _Slot, route: Any) -> None:
        """Every request of a render: the document, files under the root, or the allow-list. Nothing else."""
        url = route.request.url
        if route.request.is_navigation_request() and route.request.frame == slot.page.main_frame:
            slot.navigations += 1  # the document a render's steps run in may be going away (see _on_final_document)
            slot.navigated_to = url
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        path = unquote(parts.path)
        if origin == ORIGIN and path == slot.doc_path:
            await route.fulfill(body=slot.html, content_type="text/html; charset=utf-8")
            return
        if slot.opened and url == slot.opened[0] and route.request.is_navigation_request():
            (_, response), slot.opened = slot.opened, None  # fetched and checked by `_open`
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
        if await self._may_fetch(slot, url):
            await self._forward(slot, route)
            return
        log.info("blocked a request to %s (no network at render time)", origin)
        await route.abort("blockedbyclient")

    async def _may_fetch(self, slot: _Slot, url: str) -> bool:
        import asyncio

        if slot.render_origin is None and not self.policy.allow_hosts:
            return False  # an HTML render with no allow-list reaches nothing: no lookup needed
        # The check may resolve the host name (blocking), so it runs off the browser loop.
        return await asyncio.get_running_loop().run_in_executor(None, self.policy.may_fetch, url, slot.render_origin)

    async def _forward(self, slot: _Slot, route: Any) -> None:
        """Fetch an allowed request outside the browser, following its redirects here, each hop checked. The
        browser must not follow them itself: Playwright hands a redirect's next request to the network without
        routing it (and the browser's network is a dead end, see ARGS)."""
        request = route.request
        try:
            _, response = await self._fetch(slot, lambda url: route.fetch(url=url, max_redirects=0), request.url)
        except _Blocked as blocked:
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

    async def _fetch(self, slot: _Slot, fetch: Callable[[str], Awaitable[Any]], url: str) -> tuple[str, Any]:
        """``fetch(url)`` and the redirects it answers, up to MAX_REDIRECTS, each hop checked like a request of
        the render's: the final URL and response. Raises _Blocked with the first hop that may not be reached."""
        for _ in range(MAX_REDIRECTS + 1):
            response = await fetch(url)
            location = response.headers.get("location")
            if not (300 <= response.status < 400 and location):
                return url, response
            await response.dispose()
            url = urljoin(url, location)
            if not await self._may_fetch(slot, url):
                raise _Blocked(url)
        raise _Blocked(url, f"more than {MAX_REDIRECTS} redirects")

    async def _open(self, slot: _Slot, url: str) -> str:
        """Where a url render's page goes: its redirects followed here first, so the document has its final URL
        (relative links resolve from there) and its response is served to the browser as it arrives."""
        try:
            final, response = await self._fetch(slot, lambda hop: slot.page.context.request.fetch(hop, max_redirects=0), url)
        except _Blocked as blocked:
            raise BadRequestError(
                f"url redirected to {blocked.url}, which a render may not reach ({blocked.reason}); allow it with "
                "HCTI_ALLOW_HOSTS",
                param="url",
            ) from None
        except Exception as exc:  # noqa: BLE001 - unreachable: the browser's own request fails and says so
            log.info("request to %s failed: %s", url, exc)
            return url
        slot.opened = (final, response)
        return final

    async def _teardown(self) -> None:
        for browser in self._browsers:
            try:
                await browser.close()
            except Exception:  # noqa: BLE001 - best effort on a dead browser
                pass
        if self._pw is not None:
            try:
                await self._pw.stop()
            except Exception:  # noqa: BLE001
                pass
        self._browser = self._pw = None
        self._browsers = []

    # -- rendering -------------------------------------------------------------------------------
    def render(
        self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()
    ) -> Capture:
        """Render to a master PNG. Retries once on a fresh browser if the browser died.

        Files under ``root`` are served to the page, but for hidden ones and those under ``private`` folders (see
        `Folder`); the HTML document lives in the folder ``base`` (relative to root), so its relative URLs resolve
        the way they would next to the file that holds the HTML.
        """
        if opts.url:
            self.policy.check_url(opts.url)
        deadline = (opts.max_wait_ms + opts.ms_delay) / 1000 + 30
        return self._run(self._render_retrying(opts, _folder(root, base, private)), timeout=deadline + 30)

    def pdf(self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()) -> bytes:
        """A vector PDF of the same document (Chromium's print), sized to the auto-crop unless pdf_options say."""
        if opts.url:
            self.policy.check_url(opts.url)
        data = self._run(self._with_slot(opts, _folder(root, base, private), as_pdf=True))
        assert isinstance(data, bytes)
        return data

    async def _render_retrying(self, opts: CreateOptions, root: Folder) -> Capture:
        try:
            return await self._with_slot(opts, root)  # type: ignore[return-value]
        except _CrashedError as exc:
            log.warning("%s; retrying once", exc.message)
            try:
                return await self._with_slot(opts, root)  # type: ignore[return-value]
            except _CrashedError as again:
                raise RenderError(f"{again.message}, and again on the retry; giving up") from None

    async def _with_slot(self, opts: CreateOptions, root: Folder, as_pdf: bool = False) -> Capture | bytes:
        import asyncio

        await self._ensure()
        assert self._slots is not None
        slot = await self._slots.get()
        try:
            if slot.dead.is_set():  # its renderer crashed while it waited in the pool
                slot = await self._replace(slot)
            budget = (opts.max_wait_ms + opts.ms_delay) / 1000 + 15
            return await _race(self._render(slot, opts, root, as_pdf), slot.dead, budget)
        except TimeoutError as exc:
            slot = self._replace_later(slot)
            raise RenderTimeoutError(f"Render did not finish within max_wait_ms={opts.max_wait_ms}") from exc
        except asyncio.CancelledError:
            # Cancelled mid-render (CancelToken): the page may be half-way through a navigation, so it is
            # replaced before it goes back to the pool. Shielded: this task is the one being cancelled.
            slot = await asyncio.shield(self._replace(slot))
            raise
        except RenderTimeoutError:
            slot = self._replace_later(slot)  # its page may still be busy (a script that never yields)
            raise
        except (BadRequestError, RenderError):
            raise
        except Exception as exc:
            if slot.dead.is_set() or not self._connected():
                slot = await self._replace(slot)
                raise _CrashedError("Chromium crashed during the render") from exc
            slot = await self._replace(slot)
            raise RenderError(f"Render failed: {exc}") from exc
        finally:
            if self._connected() and self._slots is not None and slot.generation == self._generation:
                self._slots.put_nowait(slot)

    def _replace_later(self, slot: _Slot) -> _Slot:
        """Replace a page whose render ran out of time without making the caller wait for it: closing a page
        whose script never yields can take seconds (the full `chromium`, measured: up to ~15 s), and the timeout
        is answered at the deadline. The new page joins the pool when it is ready. Returns a stand-in that the
        caller must not put back in the pool."""
        import asyncio

        async def replace() -> None:
            new = await self._replace(slot)
            if self._connected() and self._slots is not None and new.generation == self._generation:
                self._slots.put_nowait(new)

        task = asyncio.ensure_future(replace())
        self._replacing.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._replacing.discard)
        return _Slot(page=None, cdp=None, generation=-1)

    async def _replace(self, slot: _Slot) -> _Slot:
        """A page that misbehaved (timeout, error) is closed and replaced so the next render starts clean."""
        import asyncio

        try:
            await asyncio.wait_for(slot.page.close(), 5)
        except Exception:  # noqa: BLE001
            pass
        if self._connected():
            try:
                assert self._gone is not None, "a slot exists: the browser was launched"
                return await _race(self._new_slot(slot.page.context), self._gone, 30)
            except Exception:  # noqa: BLE001 - the browser died meanwhile: the relaunch makes new slots
                pass
        return slot

    async def _render(self, slot: _Slot, opts: CreateOptions, root: Folder, as_pdf: bool) -> Capture | bytes:
        import asyncio

        is_url = opts.url is not None
        full_page = is_url or _is_full_document(opts.html or "")
        vw, vh = (opts.viewport_width, opts.viewport_height or 1080) if opts.viewport_width else (1920, 1080)
        scale = opts.scale
        metrics = (vw, vh, scale)
        if slot.metrics != metrics:
            await slot.cdp.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": vw, "height": vh, "deviceScaleFactor": scale, "mobile": False},
            )
            slot.metrics = metrics
        media = (opts.media_type, opts.color_scheme)
        if slot.media != media:
            await _emulate_media(slot, *media)
            slot.media = media
        if slot.timezone != opts.timezone:
            await slot.cdp.send("Emulation.setTimezoneOverride", {"timezoneId": opts.timezone or ""})
            slot.timezone = opts.timezone
        if slot.transparent != opts.transparent_background:
            color = {"color": {"r": 0, "g": 0, "b": 0, "a": 0}} if opts.transparent_background else {}
            await slot.cdp.send("Emulation.setDefaultBackgroundColorOverride", color)
            slot.transparent = opts.transparent_background
        for family in missing_google_fonts(opts.google_fonts):
            # No network at render time: Google Fonts are resolved from installed fonts only.
            log.warning("google_fonts: %r is not installed; install it (e.g. a fonts-* package) or a fallback is used", family)
        # Renders share no state: what the last one stored (cookies, local storage, IndexedDB, caches) is cleared
        # for the origins it could write to; sessionStorage is cleared by the init script.
        # Each slot has its own browser context, so this covers every origin the slot's page could have written.
        current = origin_of(opts.url) if opts.url else None
        for origin in sorted({ORIGIN, slot.render_origin, current} - {None}):  # type: ignore[type-var]
            await slot.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": STORAGE_TYPES})
        doc_path = _doc_path(root.base)
        # In place: this static document replaces a static one at the same address that loaded nothing.
        in_place = not self.isolate and slot.reusable and doc_path == slot.doc_path
        slot.folder, slot.files, slot.missing, slot.doc_path = root, {}, set(), doc_path
        slot.blocked_redirect = slot.opened = None
        timeout = opts.max_wait_ms
        if is_url:
            assert opts.url is not None
            slot.render_origin = origin_of(opts.url)
            slot.reusable = in_place = False
            target = await self._open(slot, opts.url)
        else:
            slot.render_origin = None
            slot.html = _document(opts)
            target = ORIGIN + slot.doc_path
            slot.reusable = not opts.render_when_ready and _DYNAMIC.search(slot.html) is None
            in_place = in_place and slot.reusable
        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        deadline = asyncio.get_running_loop().time() + timeout / 1000
        slot.navigations, slot.navigated_to = 0, None
        try:
            if in_place:  # document.open/write/close: no navigation, same window (which never ran a script)
                await slot.page.set_content(slot.html, wait_until="load", timeout=timeout)
                self.in_place += 1
            else:
                await slot.page.goto(target, wait_until="load", timeout=timeout)
            await self._on_final_document(slot, lambda: self._ready(slot, opts, is_url), deadline)
        except PlaywrightTimeoutError as exc:
            if slot.navigations > (0 if in_place else 1):  # not only our own
                raise RenderTimeoutError(KEPT_NAVIGATING) from exc
            raise RenderTimeoutError(f"Page did not become ready within max_wait_ms={timeout}") from exc
        except Exception:
            if slot.blocked_redirect:
                raise BadRequestError(
                    f"url redirected to {slot.blocked_redirect}, which a render may not reach (another site, or a local "
                    "or private address); allow it with HCTI_ALLOW_HOSTS",
                    param="url",
                ) from None
            raise
        if opts.ms_delay:
            await asyncio.sleep(opts.ms_delay / 1000)
        full = opts.full_screen or (full_page and not opts.selector)
        try:  # a page script that never yields (an endless loop after load) is cut off at the deadline too
            measure = lambda: slot.page.evaluate(MEASURE_JS, [opts.selector, full])  # noqa: E731
            box = await asyncio.wait_for(self._on_final_document(slot, measure, deadline + opts.ms_delay / 1000), timeout / 1000)
        except TimeoutError as exc:
            raise RenderTimeoutError(f"Page scripts did not yield within max_wait_ms={timeout} (an endless loop?)") from exc
        if not is_url and _same_document(slot.page.url) != ORIGIN + slot.doc_path:
            raise BadRequestError(
                f"html navigated away from its document, to {slot.navigated_to or slot.page.url} (a meta refresh or a "
                "script setting location): a render captures the document it is given; render that page as url instead",
                param="html",
            )
        if box is None:
            raise BadRequestError(f"selector {opts.selector!r} matched no element", param="selector")
        if box == "invalid":
            raise BadRequestError(f"selector {opts.selector!r} is not a valid CSS selector", param="selector")
        x, y, w, h = box
        if full and not opts.full_screen:
            x, y, w, h = 0, 0, vw, vh
        elif opts.viewport_width and not opts.selector and not opts.full_screen:
            x, y, w, h = 0, 0, vw, vh  # an explicit viewport disables auto-crop
        # Snap the clip to the device-pixel grid so the output size is exactly round(css size * scale).
        x0, y0 = int(x * scale) / scale, int(y * scale) / scale
        x1, y1 = -int(-(x + w) * scale) / scale, -int(-(y + h) * scale) / scale
        w, h = max(x1 - x0, 1 / scale), max(y1 - y0, 1 / scale)
        pw, ph = round(w * scale), round(h * scale)
        if pw * ph > MAX_PIXELS or max(pw, ph) > MAX_SIDE:  # checked after layout, before the capture
            raise BadRequestError(
                f"The rendered image would be {pw}x{ph} pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels and "
                f"{MAX_SIDE} px per side (lower device_scale, or crop with selector)",
                param="full_screen" if opts.full_screen else "device_scale",
            )
        if as_pdf:
            return await self._pdf(slot, opts, w, h, full)
        result = await slot.cdp.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "optimizeForSpeed": True,
                "captureBeyondViewport": x1 > vw or y1 > vh,
                "clip": {"x": x0, "y": y0, "width": w, "height": h, "scale": 1},
            },
        )
        png = base64.b64decode(result["data"])
        return Capture(png, round(w * scale), round(h * scale), dict(slot.files), frozenset(slot.missing))

    @staticmethod
    async def _ready(slot: _Slot, opts: CreateOptions, is_url: bool) -> None:
        """The document's own readiness: a url render's CSS added, its fonts loaded, ScreenshotReady() if asked."""
        if is_url and opts.css:
            await slot.page.add_style_tag(content=opts.css)
        await slot.page.evaluate("document.fonts.ready.then(() => true)")
        if opts.render_when_ready:
            await slot.page.wait_for_selector("#HCTIReadyNow", state="attached", timeout=opts.max_wait_ms)

    @staticmethod
    async def _on_final_document(slot: _Slot, step: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``step`` on the page's document. A page that navigates itself (a meta refresh, a script setting location)
        destroys the document a step runs in: the step runs again on the one it lands on, until ``deadline``."""
        import asyncio

        from playwright.async_api import TimeoutError as PlaywrightTimeoutError

        loop = asyncio.get_running_loop()
        while True:
            seen = slot.navigations
            try:
                return await step()
            except Exception:
                if slot.navigations == seen:  # the document is still there: a failure of the step itself
                    raise
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise PlaywrightTimeoutError("past the deadline")
                await asyncio.sleep(0.01)  # the next document may not have committed yet
                await slot.page.wait_for_load_state("load", timeout=left * 1000)
            except PlaywrightTimeoutError:
                raise RenderTimeoutError(KEPT_NAVIGATING) from None

    async def _pdf(self, slot: _Slot, opts: CreateOptions, w: float, h: float, full: bool) -> bytes:
        given = dict(opts.pdf_options or {})
        kwargs: dict[str, Any] = {"print_background": True}
        if not any(k in given for k in ("format", "width", "height")):
            kwargs.update(width=f"{w}px", height=f"{h}px", margin={"top": "0", "right": "0", "bottom": "0", "left": "0"})
        names = {
            "printBackground": "print_background",
            "preferCSSPageSize": "prefer_css_page_size",
            "pageRanges": "page_ranges",
            "displayHeaderFooter": "display_header_footer",
        }
        allowed = {
            "format",
            "width",
            "height",
            "margin",
            "landscape",
            "scale",
            "print_background",
            "prefer_css_page_size",
            "page_ranges",
            "display_header_footer",
        }
        for key, value in given.items():
            key = names.get(key, key)
            if key not in allowed:
                raise BadRequestError(f"pdf_options.{key} is not supported; use one of {sorted(allowed)}", param="pdf_options")
            kwargs[key] = value
        if not opts.media_type:
            await _emulate_media(slot, "screen", opts.color_scheme)
            slot.media = ("screen", opts.color_scheme)
        data: bytes = await slot.page.pdf(**kwargs)
        return data

    def close(self) -> None:
        if self._thread is None or self._loop is None:
            return
        try:
            self._run(self._teardown(), timeout=15)
        finally:
            loop = self._loop
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(5)
            self._thread = None
            loop.close()
            # A closed engine may be used again (a long-lived kernel): the next render starts a fresh loop.
            self._loop = None
            self._lock = None


_switches: dict[str, str] | None = None


async def _launch_options(pw: Any) -> dict[str, Any]:
    """Playwright's launch options with FEATURES merged into its own feature lists. Chromium keeps only the last
    of a repeated switch, so a list of ours may only ever be Playwright's plus ours (issue #17: without its
    CDPScreenshotNewSurface the full browser hung). Its lists are learned once a process by launching a
    stand-in that writes down the arguments it is given; if that fails, FEATURES are left out (slower, correct)."""
    global _switches
    if _switches is None:
        _switches = await _playwright_switches(pw)
    options: dict[str, Any] = {"args": list(ARGS)}
    if _switches:
        options["ignore_default_args"] = [f"--{kind}-features={value}" for kind, value in _switches.items()]
        for kind, value in _switches.items():
            ours = [f for f in FEATURES[kind] if f not in value.split(",")]
            options["args"].append(f"--{kind}-features={','.join([*filter(None, value.split(',')), *ours])}")
    return options


async def _playwright_switches(pw: Any) -> dict[str, str]:
    """The values of the --enable-features and --disable-features Playwright passes (both, or nothing)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hcti-switches-") as folder:
        argv, script = Path(folder) / "argv", Path(folder) / "chromium"
        try:
            script.write_text(f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{argv}"\n')
            script.chmod(0o700)
            await pw.chromium.launch(executable_path=str(script), args=ARGS, timeout=10_000)
        except Exception:  # noqa: BLE001 - the stand-in exits at once: the launch fails, as it should
            pass
        try:
            given = argv.read_text().splitlines()
        except OSError:  # no shell, or a folder it may not run from: Playwright's lists stand alone
            return {}
    found: dict[str, str] = {}
    for kind in ("enable", "disable"):
        values = [a.split("=", 1)[1] for a in given if a.startswith(f"--{kind}-features=")]
        if len(values) != 1:  # not the one list each that merging assumes
            return {}
        found[kind] = values[0]
    return found


class _CrashedError(RenderError):
    """The page's renderer or the whole browser died mid-render: retried once, then a RenderError."""


class _Blocked(Exception):
    """A redirect hop a render may not reach (`Engine._fetch`)."""

    def __init__(self, url: str, reason: str = "another site, or a local or private address") -> None:
        super().__init__(url)
        self.url, self.reason = url, reason


class _Dead(Exception):
    """Raised by `_race` when the slot died first."""


async def _race(work: Coroutine[Any, Any, T], dead: asyncio.Event, timeout: float) -> T:
    """``work``, unless the slot dies first (a crash is seen at once, not at the deadline) or time runs out."""
    import asyncio

    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(dead.wait())
    try:
        done, _ = await asyncio.wait({task, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task in done:
        return task.result()
    if watch in done:
        raise _Dead
    raise TimeoutError


async def _emulate_media(slot: _Slot, media_type: str | None, color_scheme: str | None) -> None:
    """Media type and colour scheme, through the slot's own DevTools session like every other emulation of ours:
    Chromium replaces a page's frame on most navigations (RenderDocument) and each session then sends its whole
    emulation state again, so an override made through Playwright's session (`page.emulate_media`) was undone
    by ours, which had none (media_type=print rendered as screen)."""
    features = [{"name": "prefers-color-scheme", "value": color_scheme or ""}]
    await slot.cdp.send("Emulation.setEmulatedMedia", {"media": media_type or "", "features": features})


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Ctrl-C in a terminal reaches Playwright's driver too (same process group) and it exits first; the
    futures it leaves behind are expected then, so they are logged for debugging instead of printed."""
    log.debug("browser loop: %s", context.get("message"), exc_info=context.get("exception"))


def _folder(root: Path | str, base: str, private: Sequence[Path | str]) -> Folder:
    return Folder(Path(root).resolve(), base, tuple(Path(p).resolve() for p in private))


def _same_document(url: str) -> str:
    """A URL without its fragment: `location.hash` moves within one document."""
    return url.partition("#")[0]


def _is_full_document(html: str) -> bool:
    head = html.lstrip()[:2000].lower()
    return head.startswith("<!doctype") or "<html" in head or "<body" in head


def _doc_path(base: str) -> str:
    """Where the document lives on the synthetic origin: ``/<base>/__hcti_document__.html``."""
    folder = posixpath.normpath("/" + base.strip("/")) if base.strip("/") else "/"
    return posixpath.join(folder, DOC_PATH.lstrip("/"))


def _document(opts: CreateOptions) -> str:
    html = opts.html or ""
    css = f"<style>{opts.css}</style>" if opts.css else ""
    if _is_full_document(html):
        if not css:
            return html
        idx = html.lower().find("</head>")
        return html[:idx] + css + html[idx:] if idx >= 0 else css + html
    return f'<!DOCTYPE html><html><head><meta charset="utf-8">{css}</head><body>{html}</body></html>'


_default: Engine | None = None
_default_lock = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine, closed at interpreter exit (no orphan Chromium)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
            atexit.register(_default.close)
        return _default
