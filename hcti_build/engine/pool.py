"""The engine's pool of pages: each made sealed, lent to one render at a time, retired after it, and replaced
when it misbehaved.

No render outlives itself. A page goes back to the pool only once nothing of its last render can still run:
a document that could run scripts (anything but static HTML and CSS) is replaced by a blank one, so its
timers, frames and workers end with it, and no page of its context but the pool's is left open (the
sandbox's CSP should make such a page impossible; this holds if one existed). A page that misbehaved (a
timeout, an error, a crash) is replaced, with its whole browser context when it has one of its own
(`Engine(isolate=True)`): cookies, storage, workers and anything else a context holds go with it. Retiring
runs after the render's result is handed back, so it costs the caller nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..network import Policy
from .sandbox import Slot, prepare_page, seal_context

T = TypeVar("T")
# A blank document takes ~15-40 ms to load; a page that needs longer is stuck (its scripts never yield).
RETIRE_TIMEOUT = 5
BLANK = "about:blank"


class Pool:
    """The free pages of the current browser launch (``generation``), and what runs on them between renders."""

    def __init__(self, policy: Callable[[], Policy], *, isolate: bool, connected: Callable[[], bool]) -> None:
        self.policy, self.isolate, self.connected = policy, isolate, connected
        self.free: asyncio.Queue[Slot] = asyncio.Queue()
        self.generation = 0
        self.gone = asyncio.Event()  # set when a browser of the current launch disconnects
        self._pages: set[Any] = set()  # the pool's own pages: any other page of their contexts is a stray
        self._background: set[asyncio.Future[None]] = set()  # retirements and replacements under way

    # -- making pages ----------------------------------------------------------------------------
    async def fill(self, browsers: list[Any], size: int, gone: asyncio.Event) -> None:
        """A new launch's pages, ``size`` of them spread over ``browsers``: the pages of the launch before
        are dropped (renders already waiting get one of the new ones)."""
        self.generation += 1
        self.gone = gone
        self._pages.clear()
        while not self.free.empty():
            self.free.get_nowait()
        # Playwright's new_page never returns if the browser dies meanwhile: raced against its exit.
        for slot in await race(self._new_slots(browsers, size), gone, 60):
            self.free.put_nowait(slot)

    async def _new_slots(self, browsers: list[Any], size: int) -> list[Slot]:
        slots = []
        contexts: dict[int, Any] = {}
        for i in range(size):
            # A context per page (isolate): renders running at once share no cookies, storage or renderer.
            n = i % len(browsers)
            if self.isolate or n not in contexts:
                contexts[n] = await self._new_context(browsers[n])
            slots.append(await self._new_slot(contexts[n]))
        return slots

    async def _new_context(self, browser: Any) -> Any:
        # Service workers would fetch outside page.route, and renders never need them.
        context = await browser.new_context(no_viewport=True, service_workers="block")
        await seal_context(context)
        return context

    async def _new_slot(self, context: Any) -> Slot:
        page = await context.new_page()
        self._pages.add(page)
        slot = Slot(page=page, cdp=await context.new_cdp_session(page), generation=self.generation)
        await prepare_page(slot, self.policy)
        return slot

    # -- after a render --------------------------------------------------------------------------
    def release(self, slot: Slot, *, fresh: bool = False) -> None:
        """A page back to the pool after a render: at once when nothing of it can still run (``fresh``: a new
        page; or a static document and no stray page), else once `_retire` has made it so."""
        if slot.generation != self.generation or not self.connected():
            return  # a page of a browser that died, or a stand-in (`replace_later`)
        if fresh or (slot.reusable and not self._strays(slot)):
            self.free.put_nowait(slot)
            return
        self._in_background(self._retire(slot))

    def _strays(self, slot: Slot) -> list[Any]:
        return [page for page in slot.page.context.pages if page not in self._pages]

    async def _retire(self, slot: Slot) -> None:
        """The render's document replaced by a blank one and stray pages closed; a page that cannot be (its
        scripts never yield, a stray in its own context) is replaced instead."""
        strays = self._strays(slot)
        try:
            if strays and self.isolate:
                raise LookupError("a page outside the pool in a render's context")
            for page in strays:
                await asyncio.wait_for(page.close(), RETIRE_TIMEOUT)
            await slot.page.goto(BLANK, timeout=RETIRE_TIMEOUT * 1000)
        except Exception:  # noqa: BLE001 - anything but a clean blank page: a new one
            slot = await self.replace(slot)
        if slot.generation == self.generation and self.connected():
            self.free.put_nowait(slot)

    # -- replacing -------------------------------------------------------------------------------
    async def replace(self, slot: Slot) -> Slot:
        """A page that misbehaved, closed and replaced so the next render starts clean: with its context when
        the page had one of its own. Returns ``slot`` itself when the browser died (the relaunch makes new
        pages)."""
        context = slot.page.context
        self._pages.discard(slot.page)
        with contextlib.suppress(Exception):
            if self.isolate:
                # Its scripts stopped first: closing a renderer busy in an endless loop can take seconds.
                # Safe here, as the page has a renderer of its own, unlike the pages of a shared context.
                await asyncio.wait_for(slot.cdp.send("Runtime.terminateExecution"), 1)
                await asyncio.wait_for(context.close(), 5)
            else:
                await asyncio.wait_for(slot.page.close(), 5)
        if not self.connected():
            return slot
        try:
            context = await self._new_context(context.browser) if self.isolate else context
            return await race(self._new_slot(context), self.gone, 30)
        except Exception:  # noqa: BLE001 - the browser died meanwhile: the relaunch makes new pages
            return slot

    def replace_later(self, slot: Slot) -> Slot:
        """`replace` without making the caller wait (a page whose render ran out of time may take seconds to
        close, and the timeout is answered at the deadline): the new page joins the pool when it is ready.
        Returns a stand-in that `release` drops."""

        async def replace() -> None:
            self.release(await self.replace(slot), fresh=True)

        self._in_background(replace())
        return Slot(page=None, cdp=None, generation=-1)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)  # a reference, so the task is not collected while it runs
        task.add_done_callback(self._background.discard)


class Dead(Exception):
    """Raised by `race` when the slot died first."""


async def race(work: Coroutine[Any, Any, T], dead: asyncio.Event, timeout: float) -> T:
    """``work``, unless ``dead`` is set first (a crash is seen at once, not at the deadline) or time runs out."""
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
        raise Dead
    raise TimeoutError
