"""The `Engine`: one long-lived browser with a pool of warm pages on a private event-loop thread.

The sync Playwright API cannot run inside a running event loop (Jupyter kernels, ASGI servers), so the async
API runs on a daemon thread of our own and callers block on futures. The browser is launched lazily on the
first render (`chromium` finds and starts it) and relaunched once after a crash. What one render does is
`hcti_build.rendering`; what its page may reach, `hcti_build.sandbox`; how pages are lent, retired after each
render and replaced, `hcti_build.pool`.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import BadRequestError, BrowserNotFoundError, RenderCancelledError, RenderError, RenderTimeoutError
from ..network import Policy, configured_allow_hosts
from ..options import CreateOptions
from ..renderer import Capture, register_default
from .chromium import INSTALL_HINT, chromium_version, find_chromium, is_executable, launch_options
from .sandbox import Folder

if TYPE_CHECKING:
    import asyncio

    from .pool import Pool
# asyncio, Playwright and the render steps are imported where the event loop is used, not here: a build whose
# images are all store hits never starts the loop (docs/performance.md).

log = logging.getLogger("hcti_build.browser")
# A page of the pool is ~50-150 MB of renderer; past a few per core they only queue (docs/performance.md).
MAX_PAGES, MAX_BROWSERS = 16, 4
T = TypeVar("T")


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
        # share one context and one renderer process (less memory), and a static document (no scripts, frames or
        # event handlers) replaces the static one before it in place, without a navigation (less time per card;
        # both measured in docs/performance.md). Renders in a row still share nothing.
        self.isolate = isolate
        # What renders may reach beyond their own files (see network.py): by default nothing but a url render's
        # own public origin.
        self.policy = Policy(tuple(allow_hosts) if allow_hosts is not None else configured_allow_hosts())
        # Two pages overlap one render's navigation with another's capture. A second browser process adds some cards
        # a second for much more memory (docs/performance.md), so it is opt-in.
        if not 1 <= (pages or 2) <= MAX_PAGES or not 1 <= (browsers or 1) <= MAX_BROWSERS:
            raise BadRequestError(
                f"pages must be between 1 and {MAX_PAGES} and browsers between 1 and {MAX_BROWSERS} (each page holds a "
                f"renderer's memory), got {pages} and {browsers}",
                param="pages",
            )
        self.browsers = browsers or 1
        self.pool_size = max(pages or 2, self.browsers)
        self.launches = 0  # counted so tests and builds can prove "no browser launched"
        self.in_place = 0  # renders that replaced a static document in place instead of navigating
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pw: Any = None
        self._browser: Any = None  # the first browser; "connected" means every browser is
        self._browsers: list[Any] = []
        self._pool: Pool | None = None  # made on the loop at the first launch; renders waiting for a page wait on it
        self._launching: asyncio.Future[None] | None = None  # the launch in progress (see _ensure)
        self._thread_lock = threading.Lock()

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

    def version_key(self) -> str:
        """The browser's path, size and mtime (`Renderer.version_key`): a store keeps its version by them."""
        exe = self.executable
        try:
            st = os.stat(exe)
        except OSError as exc:  # an Engine given a path that is not there
            raise BrowserNotFoundError(f"Chromium not found at {exe}: {INSTALL_HINT}") from exc
        return f"chromium-version:{exe}:{st.st_size}:{st.st_mtime_ns}"

    def version(self) -> str:
        """`--version` of the browser, without launching it."""
        return chromium_version(self.executable)

    async def _ensure(self) -> None:
        """A connected browser with its pool of pages. The launch is a task of its own that renders wait for,
        shielded: it is the engine's, not one render's, so a render cancelled while it waits (a client that went
        away) leaves no browser without the pages of its pool."""
        import asyncio

        if self._launching is None or self._launching.done():
            if self._connected():
                return
            self._launching = asyncio.ensure_future(self._launch())
            self._launching.add_done_callback(lambda t: t.cancelled() or t.exception())  # read by its waiters
        await asyncio.shield(self._launching)

    async def _launch(self) -> None:
        import asyncio

        await self._teardown()
        try:
            from playwright.async_api import async_playwright
        except ImportError as exc:  # pragma: no cover - a hard dependency
            raise BrowserNotFoundError("playwright is not installed: pip install hcti-build") from exc
        self._pw = await async_playwright().start()
        try:
            options = await launch_options(self._pw)
            self._browsers = list(
                await asyncio.gather(
                    *(self._pw.chromium.launch(executable_path=self.executable, **options) for _ in range(self.browsers))
                )
            )
        except Exception as exc:
            await self._teardown()
            if not is_executable(self.executable):  # it was there when its version was read
                raise BrowserNotFoundError(f"Chromium is gone from {self.executable}: {INSTALL_HINT}") from exc
            if self.launches:  # it started before: this one was killed or crashed while starting
                raise _crashed("Chromium exited while starting") from exc
            # Playwright's message goes on with the whole command line and the browser's log: its first line
            # says what failed, and the rest stays on the exception's cause for a debugger.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BrowserNotFoundError(f"Could not launch Chromium at {self.executable} ({first}): {INSTALL_HINT}") from exc
        self._browser = self._browsers[0]
        self.launches += 1
        log.debug("launched %d x %s (%s)", self.browsers, self.executable, self._browser.version)
        gone = asyncio.Event()
        for browser in self._browsers:
            browser.on("disconnected", lambda _: gone.set())
        try:
            await self.pool.fill(self._browsers, self.pool_size, gone)
        except Exception as exc:  # the new browser died while its pages were being made
            await self._teardown()
            raise _crashed("Chromium exited while starting") from exc

    @property
    def pool(self) -> Pool:
        """The pages (one pool for the engine's life on its loop: renders already waiting for a page get one of
        the next launch's)."""
        from .pool import Pool

        if self._pool is None:
            self._pool = Pool(lambda: self.policy, isolate=self.isolate, connected=self._connected)
        return self._pool

    def _connected(self) -> bool:
        return bool(self._browsers) and all(b.is_connected() for b in self._browsers)

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
        return self._run(self._render_retrying(opts, Folder.of(root, base, private)), timeout=deadline + 30)

    def pdf(self, opts: CreateOptions, root: Path | str = ".", base: str = "", *, private: Sequence[Path | str] = ()) -> bytes:
        """A vector PDF of the same document (Chromium's print), sized to the auto-crop unless pdf_options say."""
        if opts.url:
            self.policy.check_url(opts.url)
        data = self._run(self._with_slot(opts, Folder.of(root, base, private), as_pdf=True))
        assert isinstance(data, bytes)
        return data

    async def _render_retrying(self, opts: CreateOptions, root: Folder) -> Capture:
        from .rendering import CrashedError

        try:
            return await self._with_slot(opts, root)  # type: ignore[return-value]
        except CrashedError as exc:
            log.warning("%s; retrying once", exc.message)
            try:
                return await self._with_slot(opts, root)  # type: ignore[return-value]
            except CrashedError as again:
                raise RenderError(f"{again.message}, and again on the retry; giving up") from None

    async def _with_slot(self, opts: CreateOptions, root: Folder, as_pdf: bool = False) -> Capture | bytes:
        """One render on a page of the pool. A page whose render failed, timed out or was cancelled is replaced
        before the pool sees it again, any other is retired (`Pool.release`); a crash is a CrashedError (retried
        once by the caller)."""
        import asyncio

        from .pool import race
        from .rendering import CrashedError, Render

        await self._ensure()
        pool = self.pool
        slot = await pool.free.get()
        fresh = False  # replaced: nothing of this render is on it
        try:
            if slot.dead.is_set():  # its renderer crashed while it waited in the pool
                slot = await pool.replace(slot)
            render = Render(slot, opts, root, self.policy, shared=not self.isolate)
            budget = (opts.max_wait_ms + opts.ms_delay) / 1000 + 15
            result = await race(render.run(as_pdf), slot.dead, budget)
            self.in_place += render.in_place
            return result
        except TimeoutError as exc:
            slot = pool.replace_later(slot)
            raise RenderTimeoutError(f"Render did not finish within max_wait_ms={opts.max_wait_ms}") from exc
        except asyncio.CancelledError:
            # Cancelled mid-render (CancelToken): the page may be half-way through a navigation, so it is
            # replaced before it goes back to the pool. Shielded: this task is the one being cancelled.
            slot, fresh = await asyncio.shield(pool.replace(slot)), True
            raise
        except RenderTimeoutError:
            slot = pool.replace_later(slot)  # its page may still be busy (a script that never yields)
            raise
        except BadRequestError:
            raise
        except Exception as exc:  # noqa: BLE001 - a RenderError (Playwright's, translated), the page's death, or a bug
            crashed = slot.dead.is_set() or not self._connected()
            slot, fresh = await pool.replace(slot), True
            if crashed:
                raise CrashedError("Chromium crashed during the render") from exc
            if isinstance(exc, RenderError):
                raise
            raise RenderError(f"Render failed: {exc}") from exc
        finally:
            pool.release(slot, fresh=fresh)

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
            # A closed engine may be used again (a long-lived kernel): the next render starts a fresh loop, and
            # a pool of its own (the one here is bound to the loop that just closed).
            self._loop = None
            self._pool = self._launching = None


def _crashed(message: str) -> RenderError:
    from .rendering import CrashedError

    return CrashedError(message)


def _loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Ctrl-C in a terminal reaches Playwright's driver too (same process group) and it exits first; the
    futures it leaves behind are expected then, so they are logged for debugging instead of printed."""
    log.debug("browser loop: %s", context.get("message"), exc_info=context.get("exception"))


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


register_default(default_engine)
