"""Chromium killed between renders and mid-render: relaunched, the render retried once, a typed error after
that, the next render fine, and no process left behind."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import alive, browser_pids, cmdline, load

from hcti_build import Engine, RenderError, Store


def chromium(kind: str = "") -> set[int]:
    """The Chromium processes under this one; ``kind`` picks one --type (renderer)."""
    found = browser_pids(os.getpid())
    if not kind:
        return found
    return {p for p in found if f"--type={kind}" in cmdline(p)}


def kill(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def colour(store: Store, image_id: str) -> tuple[int, int, int]:
    return load(store.get(image_id)).convert("RGB").getpixel((2, 2))  # type: ignore[return-value]


def box(color: str, **extra: object) -> dict[str, object]:
    return {"html": f"<div style='width:40px;height:10px;background:{color}'></div>", "device_scale": 1, **extra}


@pytest.fixture
def own(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Store, Engine, set[int]]]:
    """A store on an engine of its own (the session's browser is not killed), warmed up; the Chromium processes
    that were running before it (the session's), which a test must leave alone. Parametrized indirectly with
    ``isolate`` (default True)."""
    before = chromium()
    engine = Engine(isolate=getattr(request, "param", True))
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    store.create(box("#fff"))
    yield store, engine, before
    engine.close()
    store.close()
    deadline = time.monotonic() + 5
    while alive(chromium() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(chromium() - before), "Chromium processes outlived the engine"


def in_background(fn: object, *args: object) -> dict[str, object]:
    """Run ``fn(*args)`` on a thread; the returned dict gets "result" or "error", and "seconds"."""
    out: dict[str, object] = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            out["result"] = fn(*args)  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            out["error"] = exc
        out["seconds"] = time.monotonic() - t0

    thread = threading.Thread(target=run)
    thread.start()
    out["thread"] = thread
    return out


def outcome(job: dict[str, object]) -> object:
    return job.get("error") or ("ok" if "result" in job else "still running")


def test_browser_killed_between_renders_is_relaunched(own: tuple[Store, Engine, set[int]]) -> None:
    store, engine, before = own
    kill(chromium() - before)
    image = store.create(box("#f00"))
    assert colour(store, image["id"]) == (255, 0, 0) and engine.launches == 2


def test_browser_killed_mid_render_is_relaunched_and_the_render_retried(
    own: tuple[Store, Engine, set[int]], caplog: pytest.LogCaptureFixture
) -> None:
    store, engine, before = own
    # Three renders on a pool of two pages: two in flight and one waiting for a page when the browser dies.
    jobs = [in_background(store.create, box(c, ms_delay=1500)) for c in ("#f00", "#0f0", "#00f")]
    time.sleep(0.5)  # inside their ms_delay
    with caplog.at_level(logging.WARNING, "hcti_build.engine.browser"):
        kill(chromium() - before)
        for job in jobs:
            job["thread"].join(30)  # type: ignore[attr-defined]
    assert [outcome(j) for j in jobs] == ["ok"] * 3
    assert [colour(store, j["result"]["id"]) for j in jobs] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # type: ignore[index]
    assert max(j["seconds"] for j in jobs) < 12  # type: ignore[type-var]  # seen at once, not at a deadline
    assert engine.launches == 2
    assert "Chromium crashed during the render; retrying once" in caplog.text


def test_browser_that_keeps_dying_gives_a_typed_error_within_seconds(own: tuple[Store, Engine, set[int]]) -> None:
    store, engine, before = own
    stop = threading.Event()

    def killer() -> None:  # every Chromium of this engine, as soon as it appears, until the render gives up
        while not stop.is_set():
            kill(chromium() - before)
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    t0 = time.monotonic()
    job = in_background(store.create, box("#f00", ms_delay=500))
    thread.start()
    job["thread"].join(60)  # type: ignore[attr-defined]
    stop.set()
    thread.join()
    err = job.get("error")
    assert isinstance(err, RenderError), err
    assert err.status_code == 500 and "Chromium" in err.message and "giving up" in err.message
    assert time.monotonic() - t0 < 15
    assert [i["id"] for i in store.list()["images"]] == [store.create(box("#fff"))["id"]]  # nothing of it stored
    image = store.create(box("#00f"))  # the next render is fine
    assert colour(store, image["id"]) == (0, 0, 255)


@pytest.mark.parametrize("own", [True, False], ids=["isolated", "shared"], indirect=True)
def test_a_renderer_killed_mid_render_is_replaced_without_relaunching(own: tuple[Store, Engine, set[int]]) -> None:
    store, engine, before = own
    job = in_background(store.create, box("#0f0", ms_delay=1500))
    time.sleep(0.5)
    renderers = chromium("renderer") - before
    # Isolated: a renderer per page; shared: both pages in one (test_render_e2e counts that). The full `chromium`
    # keeps renderers of its own besides (a spare one): they are killed too, which must not matter.
    assert len(renderers) >= (2 if engine.isolate else 1)
    kill(renderers)  # every page's renderer: an idle page is replaced before its next use
    job["thread"].join(30)  # type: ignore[attr-defined]
    assert outcome(job) == "ok"
    assert job["seconds"] < 10  # type: ignore[operator]
    assert colour(store, job["result"]["id"]) == (0, 255, 0)  # type: ignore[index]
    for c, rgb in (("#f00", (255, 0, 0)), ("#00f", (0, 0, 255))):  # both pages of the pool work
        assert colour(store, store.create(box(c))["id"]) == rgb
    assert engine.launches == 1
