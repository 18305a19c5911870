"""No render outlives itself: no window it opens, no timer, frame or worker it leaves, and nothing it stores reaches
a later render, whichever client sent either (issue #28, class 1). Under both Debian binaries (`-m e2e`)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from conftest import Served
from PIL import Image

from hcti_build import Engine

# A's page: a window with a reference to its opener, which paints every `.victim` of whatever document the
# opener holds red, for as long as it lives. The box is red when the window exists.
SPY = (
    "<div id=box style='width:40px;height:40px;background:#0f0'></div><script>"
    "const w = window.open('', 'spy' + Math.random());"
    "if (w) { box.style.background = '#f00'; w.eval(\"setInterval(() => { try { opener.document"
    ".querySelectorAll('.victim').forEach(e => e.style.background = 'red') } catch (e) {} }, 1)\"); }"
    "</script>"
)
VICTIM = "<div class=victim style='width:40px;height:40px;background:#fff'>B-SECRET</div><!--{}-->"


def rgb(png: bytes, xy: tuple[int, int] = (4, 4)) -> tuple[int, ...]:
    with Image.open(io.BytesIO(png)) as im:
        return tuple(im.convert("RGB").getpixel(xy))  # type: ignore[arg-type]


def pages(engine: Engine) -> list[int]:
    """Pages in each browser context of the engine."""

    async def count() -> list[int]:
        return [len(c.pages) for b in engine._browsers for c in b.contexts]

    return engine._run(count())


def watch_windows(engine: Engine) -> list[str]:
    """A list that gets the URL of every page opened in the engine's contexts from now on."""
    opened: list[str] = []

    async def listen() -> None:
        for browser in engine._browsers:
            for context in browser.contexts:
                context.on("page", lambda page: opened.append(page.url))

    engine._run(listen())
    return opened


def settled(engine: Engine) -> None:
    """Every page back in the pool (retiring runs after a render's answer)."""
    deadline = time.monotonic() + 10
    while engine.pool.free.qsize() != engine.pool_size:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_window_opened_by_one_client_never_touches_another_clients_render(serve: Callable[..., Served], engine: Engine) -> None:
    s = serve()
    for i in range(engine.pool_size):  # one spy on each page of the pool
        r = s.client.post("/v1/image", json={"html": SPY + f"<!--{i}-->", "device_scale": 1})
        assert r.status_code == 200, r.text
        # Chromium refuses the window outright: the spy's own image shows none was opened.
        assert rgb(s.client.get(f"/v1/image/{r.json()['id']}").content) == (0, 255, 0)
    settled(engine)
    assert pages(engine) == [1] * engine.pool_size  # the pool's pages and nothing else
    for i in range(4):  # B, on both pages, twice
        r = s.client.post("/v1/image", json={"html": VICTIM.format(i), "device_scale": 1})
        assert r.status_code == 200, r.text
        assert rgb(s.client.get(f"/v1/image/{r.json()['id']}").content) == (255, 255, 255)


@pytest.mark.parametrize(
    "opener",
    [
        "const a = document.createElement('a'); a.href = 'x.html'; a.target = '_blank'; document.body.append(a); a.click();",
        "const f = document.createElement('form'); f.action = 'x.html'; f.target = '_blank'; document.body.append(f); f.submit();",
        "const i = document.createElement('iframe'); document.body.append(i); i.contentWindow.open('', 'x');",
        "window.open('x.html', '_blank', 'noopener');",
    ],
    ids=["link", "form", "from-a-frame", "noopener"],
)
def test_no_way_of_opening_a_window_leaves_a_page(serve: Callable[..., Served], engine: Engine, opener: str) -> None:
    s = serve()
    assert s.client.post("/v1/image", json={"html": "<p>warm</p>"}).status_code == 200  # the browser is up
    opened = watch_windows(engine)
    r = s.client.post("/v1/image", json={"html": f"<p>x</p><script>{opener}</script>", "ms_delay": 200})
    assert r.status_code == 200, r.text
    settled(engine)
    assert opened == [] and pages(engine) == [1] * engine.pool_size


def test_a_window_that_got_past_the_sandbox_is_closed_with_its_render(
    serve: Callable[..., Served], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Chromium that let a window open (the sandbox's CSP left out here): the pool closes it, with its context,
    before the page is lent again, so B is still white."""
    import hcti_build.engine.sandbox as sandbox

    monkeypatch.setattr(sandbox, "_sealed", lambda headers: dict(headers))
    s = serve()
    for i in range(engine.pool_size):
        r = s.client.post("/v1/image", json={"html": SPY + f"<!--x{i}-->", "device_scale": 1})
        assert rgb(s.client.get(f"/v1/image/{r.json()['id']}").content) == (255, 0, 0)  # it did open
    settled(engine)
    assert pages(engine) == [1] * engine.pool_size
    for i in range(4):
        r = s.client.post("/v1/image", json={"html": VICTIM.format(f"x{i}"), "device_scale": 1})
        assert rgb(s.client.get(f"/v1/image/{r.json()['id']}").content) == (255, 255, 255)


def test_a_script_left_running_after_its_render_does_not_stall_the_next_ones(serve: Callable[..., Served], engine: Engine) -> None:
    """A document whose script starts an endless loop 1.5 s after load, when its image has long been taken: retired
    with its render, so it never runs (it used to hang the page's next render until its deadline, on every page of
    the pool)."""
    s = serve()
    for i in range(engine.pool_size):
        r = s.client.post("/v1/image", json={"html": f"<p>{i}</p><script>setTimeout(() => {{ for (;;) {{}} }}, 1500)</script>"})
        assert r.status_code == 200, r.text
    time.sleep(2)
    for i in range(2 * engine.pool_size):
        t0 = time.monotonic()
        r = s.client.post("/v1/image", json={"html": f"<p>after {i}</p>", "max_wait_ms": 3000})
        assert r.status_code == 200, r.text
        assert time.monotonic() - t0 < 2


def test_what_a_render_stores_after_its_image_is_not_seen_by_the_next(serve: Callable[..., Served], engine: Engine) -> None:
    """A timer that keeps writing local storage and a cookie after A's image was taken: B, on the same page, finds
    nothing (the box is 10 px wide with no state; 110 or more with some)."""
    s = serve()
    writer = "<p>w{}</p><script>setInterval(() => {{ localStorage.setItem('k', '1'); document.cookie = 'k=1' }}, 1)</script>"
    reader = (
        "<div id=d style='height:4px;background:#000'></div><script>d.style.width = (10 + (localStorage.getItem('k') ? 100 : 0)"
        " + (document.cookie ? 400 : 0)) + 'px'</script><!--{}-->"
    )
    for i in range(engine.pool_size):
        assert s.client.post("/v1/image", json={"html": writer.format(i)}).status_code == 200
    for i in range(2 * engine.pool_size):
        r = s.client.post("/v1/image", json={"html": reader.format(i), "device_scale": 1})
        with Image.open(io.BytesIO(s.client.get(f"/v1/image/{r.json()['id']}").content)) as im:
            assert im.width == 10
