"""`hcti watch`: one build, then incremental rebuilds on file events, with the browser kept warm.

Watchdog's native observer (inotify on Linux) delivers events on its own thread; they are collected into a set
of changed paths and debounced (an editor's save is several events, a checkout is hundreds), then handed to
`Builder.build(changed=...)`, which rebuilds only the sources among them and the sources whose directives read
one of them. A broken edit reports its errors and the watcher goes on; the next good save recovers.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from ..pipeline.build import Builder, BuildReport

log = logging.getLogger("hcti_build.watch")


class Watcher:
    """Runs `builder` on every debounced batch of file events under its source folder until `stop()`."""

    def __init__(
        self,
        builder: Builder,
        *,
        debounce: float = 0.03,
        polling: bool = False,
        on_report: Callable[[BuildReport, list[str]], None] | None = None,
    ) -> None:
        self.builder = builder
        self.debounce = debounce
        self.polling = polling
        self.on_report = on_report or (lambda report, changed: None)
        self._changed: set[str] = set()
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._observer: Any = None
        self.ready = threading.Event()  # set once the first build is done and events are being watched

    # -- events (observer thread)
    def _event(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type in ("modified", "closed"):
            return  # a folder's own mtime changes with every file made in it: not an edit of its files
        paths = [event.src_path, getattr(event, "dest_path", "")]
        rels = set()
        for p in paths:
            if not p:
                continue
            path = Path(os.fsdecode(p))
            try:
                rel = path.relative_to(self.builder.src).as_posix()
            except ValueError:
                continue
            name = path.name
            # editors' swap and backup files, and what the build itself writes, are not edits
            if name.startswith((".#", ".tmp-")) or name.endswith(("~", ".swp", ".swx")) or name == "4913":
                continue
            if self._ours(path):
                continue
            rels.add(rel)
        if not rels:
            return
        with self._lock:
            self._changed |= rels
        self._wake.set()

    def _ours(self, path: Path) -> bool:
        for folder in (self.builder.out, self.builder.store.path):
            if path == folder or path.is_relative_to(folder):
                return True
        return False

    def _start_observer(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        outer = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                outer._event(event)

        observer: Any = PollingObserver(timeout=0.1) if self.polling else Observer()
        try:
            observer.schedule(Handler(), str(self.builder.src), recursive=True)
            observer.start()
        except OSError as exc:  # no inotify watches left, or none at all: poll instead
            log.warning("native file events unavailable (%s); polling", exc)
            observer = PollingObserver(timeout=0.1)
            observer.schedule(Handler(), str(self.builder.src), recursive=True)
            observer.start()
        self._observer = observer

    # -- the loop (caller's thread)
    def run(self) -> None:
        """The first build, then a rebuild per batch of events, until `stop()` (or SIGINT/SIGTERM via `serve`)."""
        self._start_observer()
        try:
            self._build(None)
            self.ready.set()
            while not self._stop.is_set():
                if not self._wake.wait(0.2):
                    continue
                # Debounce: wait until the events stop for `debounce` seconds.
                while True:
                    self._wake.clear()
                    if self._stop.wait(self.debounce) or not self._wake.is_set():
                        break
                with self._lock:
                    changed, self._changed = self._changed, set()
                if changed and not self._stop.is_set():
                    self._build(changed)
        finally:
            self._observer.stop()
            self._observer.join(2)

    def _build(self, changed: set[str] | None) -> None:
        # A failed build writes nothing, so what changed with it is still to do: carried to the next one.
        todo = None if changed is None else changed | self._failed
        report = self.builder.build(changed=todo)
        self._failed = set(todo or ()) if report.errors else set()
        self.on_report(report, sorted(changed or ()))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


def serve_forever(watcher: Watcher) -> None:
    """Run the watcher until SIGINT or SIGTERM; then stop the observer and close the browser (no orphan)."""

    def handle(signum: int, frame: FrameType | None) -> None:
        watcher.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        watcher.builder.store.engine.close()
        watcher.builder.store.close()


def describe(report: BuildReport, changed: list[str], first: bool) -> str:
    """One line per rebuild: what changed, what re-rendered and what was reused, in milliseconds."""
    what = "initial build" if first else ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")
    if report.errors:
        return f"{what}: {len(report.errors)} error(s), nothing written; fix and save again ({report.seconds * 1000:.0f} ms)"
    extra = f", {len(report.removed)} removed" if report.removed else ""
    return (
        f"{what}: {report.rendered} rendered, {report.reused} reused, "
        f"{len(report.written)} written{extra} in {report.seconds * 1000:.0f} ms"
    )


__all__ = ["Watcher", "describe", "serve_forever"]
