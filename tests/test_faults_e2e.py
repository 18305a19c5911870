"""The browser killed between renders is relaunched; a url render reaches its own origin and nothing else."""

from __future__ import annotations

import http.server
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import descendants, load

from hcti_build import Engine, Store
from hcti_build.network import Policy


def _chromium_mains() -> list[int]:
    pids = []
    for pid in descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        exe = os.path.basename(cmd[0]) if cmd else b""
        if exe in (b"chromium-headless-shell", b"chromium", b"chrome") and not any(a.startswith(b"--type=") for a in cmd):
            pids.append(pid)
    return pids


def test_killed_browser_is_relaunched_and_closed_without_orphans(tmp_path: Path) -> None:
    before = set(_chromium_mains())  # the session's shared browser may be running
    engine = Engine()
    store = Store(tmp_path / "s", root=tmp_path, engine=engine)
    store.create({"html": "<p>one</p>"})
    mains = [p for p in _chromium_mains() if p not in before]
    assert len(mains) == 1
    os.kill(mains[0], signal.SIGKILL)
    image = store.create({"html": "<p>two</p>", "device_scale": 1})
    assert load(store.get(image["id"])).size[1] > 0
    assert engine.launches == 2
    engine.close()
    store.close()
    assert set(_chromium_mains()) <= before


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).hits.append(self.path)
        body = b"<html><body style='margin:0;background:#00f'></body></html>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_url_render_reaches_its_own_origin(store: Store, engine: Engine, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "policy", Policy((server,)))  # a loopback site must be allowed explicitly
    image = store.create({"url": server + "/page", "viewport_width": 320, "viewport_height": 200})
    im = load(store.get(image["id"])).convert("RGB")
    assert im.size == (320, 200)  # device_scale defaults to 1 for a url
    assert im.getpixel((100, 100)) == (0, 0, 255)


def test_html_render_cannot_reach_loopback(store: Store, server: str) -> None:
    _Handler.hits.clear()
    store.create({"html": f"<img src='{server}/canary.png'><script>fetch('{server}/fetch')</script><p>x</p>"})
    assert _Handler.hits == []
