"""Pages that misbehave are cut off at their deadline and leave nothing behind; renders share no state."""

from __future__ import annotations

import io
import time

import pytest
from canary import Canary
from PIL import Image

from hcti_build import Engine, RenderTimeoutError, Store
from hcti_build.network import Policy


def width(store: Store, image_id: str) -> int:
    with Image.open(io.BytesIO(store.get(image_id))) as im:
        return im.width


def test_renders_share_no_storage_or_cookies(store: Store) -> None:
    store.create(
        {
            "html": "<script>localStorage.setItem('k', '1'); sessionStorage.setItem('k', '1');"
            "document.cookie = 'k=1; max-age=9999'; indexedDB.open('db')</script><p>writer</p>"
        }
    )
    # 10 px wide when nothing of the writer is visible; each kind of state it finds adds to the width.
    reader = (
        "<div id=d style='height:4px;background:#000'></div><script>d.style.width = (10 + (localStorage.getItem('k') ? 100 : 0)"
        " + (sessionStorage.getItem('k') ? 200 : 0) + (document.cookie ? 400 : 0)) + 'px'</script><!--{}-->"
    )
    for i in range(4):  # on both pages of the pool, twice
        image = store.create({"html": reader.format(i), "device_scale": 1})
        assert width(store, image["id"]) == 10


@pytest.mark.parametrize(
    "html, ms_delay",
    [
        ("<p>x</p><script>while (true) {}</script>", 0),  # never reaches load
        ("<p>x</p><script>setTimeout(() => { while (true) {} }, 50)</script>", 300),  # hangs after load
        ("<p>x</p><script>document.fonts.ready.then(() => new Promise(() => {}))</script><img src='data:,'>", 0),
    ],
)
def test_a_page_that_never_settles_is_cut_off_and_the_next_render_is_fine(store: Store, html: str, ms_delay: int) -> None:
    t0 = time.monotonic()
    with pytest.raises(RenderTimeoutError) as err:
        store.create({"html": html, "ms_delay": ms_delay, "max_wait_ms": 1500, "render_when_ready": "while" not in html})
    assert time.monotonic() - t0 < 1.5 + ms_delay / 1000 + 3  # at the deadline, not the 15 s safety net
    assert "max_wait_ms=1500" in err.value.message and err.value.status_code == 408
    assert store.list()["images"] == []  # nothing of a failed render is stored
    ok = store.create({"html": "<div style='width:30px;height:5px'></div>", "device_scale": 1})
    assert width(store, ok["id"]) == 30


def test_a_sub_resource_that_never_answers_is_cut_off(
    store: Store, engine: Engine, canaries: tuple[Canary, Canary], monkeypatch: pytest.MonkeyPatch
) -> None:
    site, _ = canaries
    monkeypatch.setattr(engine, "policy", Policy((site.origin,)))
    t0 = time.monotonic()
    with pytest.raises(RenderTimeoutError):
        store.create({"html": f"<img src='{site.origin}/hang'><p>x</p>", "max_wait_ms": 1500})
    assert time.monotonic() - t0 < 4.5 and site.hits == ["/hang"]
    assert store.list()["images"] == []
    ok = store.create({"html": "<div style='width:30px;height:5px'></div>", "device_scale": 1})
    assert width(store, ok["id"]) == 30
