"""No reach beyond what a render may read: local files outside the root, loopback and private addresses in every
spelling, every kind of request a page can make, and redirects; checked with a canary that counts hits."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from canary import Canary, SocketCanary, probe_page, readable
from conftest import Served
from PIL import Image

from hcti_build import BadRequestError, CreateOptions, Engine, Store
from hcti_build.network import Policy


def pixel(store: Store, image_id: str, xy: tuple[int, int] = (5, 5)) -> tuple[int, ...]:
    with Image.open(io.BytesIO(store.get(image_id))) as im:
        return tuple(im.convert("RGB").getpixel(xy))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "localhost.",  # trailing dot
        "2130706433",  # decimal
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "[::1]",
        "[::ffff:127.0.0.1]",  # IPv4-mapped IPv6
        "[::ffff:7f00:1]",
        "169.254.169.254",  # cloud metadata
        "10.0.0.1",
        "192.168.1.1",
        "[fe80::1]",
        "0.0.0.0",
    ],
)
def test_a_url_on_a_local_or_private_address_is_refused_before_the_browser(
    tmp_path: Path, canaries: tuple[Canary, Canary], host: str
) -> None:
    site, _ = canaries
    engine = Engine(allow_hosts=())
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    with pytest.raises(BadRequestError) as err:
        store.create({"url": f"http://{host}:{site.port}/page"})
    assert err.value.param == "url" and "must be a public address" in err.value.message
    assert "HCTI_ALLOW_HOSTS" in err.value.message
    assert site.hits == [] and engine.launches == 0  # refused before any browser or connection
    assert store.list()["images"] == []
    store.close()


def test_html_cannot_reach_the_network_in_any_way(store: Store, canaries: tuple[Canary, Canary]) -> None:
    """Speculation rules reached the site before the browser's own network went nowhere (Chromium fetches them
    without a request the filter sees)."""
    site, _ = canaries
    spellings = [f"http://{h}:{site.port}" for h in ("127.0.0.1", "localhost", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]")]
    tags = "".join(
        f"<img src='{s}/img'><iframe src='{s}/frame'></iframe><link rel=stylesheet href='{s}/css'>"
        f"<link rel=prefetch href='{s}/prefetch'><video src='{s}/video'></video>"
        for s in spellings
    )
    script = f"""<script>
      const o = '{site.origin}';
      fetch(o + '/fetch').catch(() => 0);
      const x = new XMLHttpRequest(); x.open('GET', o + '/xhr'); x.send();
      new EventSource(o + '/events');
      try {{ new WebSocket('ws://127.0.0.1:{site.port}/ws'); }} catch (e) {{}}
      new Worker(URL.createObjectURL(new Blob(["fetch('" + o + "/worker').catch(() => 0)"])));
      navigator.sendBeacon(o + '/beacon', 'x');
      navigator.serviceWorker && navigator.serviceWorker.register(o + '/sw.js').catch(() => 0);
      document.head.insertAdjacentHTML('beforeend', "<style>body{{background:url(" + o + "/bg)}}</style>");
      try {{ new SharedWorker(URL.createObjectURL(new Blob(["fetch('" + o + "/shared').catch(() => 0)"]))); }} catch (e) {{}}
      fetch(o + '/keepalive', {{keepalive: true, method: 'POST', body: 'x'}}).catch(() => 0);
    </script>
    <script type=speculationrules>{{"prefetch": [{{"source": "list", "urls": ["{site.origin}/speculative-prefetch"]}}],
      "prerender": [{{"source": "list", "urls": ["{site.origin}/speculative-prerender"]}}]}}</script>"""
    store.create({"html": f"{tags}{script}<p>x</p>", "ms_delay": 500})
    assert site.hits == []


def test_files_outside_the_root_cannot_be_read(tmp_path: Path, engine: Engine) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(outside / "secret.png")
    Image.new("RGB", (40, 40), (0, 0, 255)).save(root / "own.png")
    os.symlink(outside / "secret.png", root / "link.png")
    store = Store(tmp_path / "store", root=root, engine=engine)
    # The square turns red if any of the sources loads (naturalWidth > 0); it stays white otherwise.
    for src in (
        f"file://{outside}/secret.png",
        "../outside/secret.png",
        "/..%2Foutside/secret.png",
        "%2e%2e/outside/secret.png",
        "link.png",
    ):
        html = (
            f"<div id=box style='width:40px;height:40px;background:#fff'></div><img id=i src='{src}' style='display:none'>"
            "<script>i.onload = () => { if (i.naturalWidth) box.style.background = '#f00'; }</script>"
        )
        opts = CreateOptions.from_mapping({"html": html, "ms_delay": 200, "device_scale": 1})
        image_id = store.create(opts)["id"]
        assert pixel(store, image_id) == (255, 255, 255), src
        assert store.inputs(opts) == [], src
    # A file inside the root is served, and is an input of the image.
    opts = CreateOptions.from_mapping({"html": "<img src='own.png' style='display:block'>", "device_scale": 1})
    image_id = store.create(opts)["id"]
    assert pixel(store, image_id) == (0, 0, 255) and store.inputs(opts) == ["own.png"]
    store.close()


def test_allowed_site_is_reached_but_its_redirects_elsewhere_are_checked_again(
    store: Store, allowed_site: tuple[Canary, Canary]
) -> None:
    site, elsewhere = allowed_site
    ok = store.create({"url": f"{site.origin}/redirect?to=/page", "viewport_width": 64, "viewport_height": 64})
    assert pixel(store, ok["id"]) == (0, 255, 0)  # a same-origin hop is followed
    assert site.hits == ["/redirect?to=/page", "/page"]
    for target in (
        f"{elsewhere.origin}/stolen",
        f"http://2130706433:{elsewhere.port}/stolen",
        "http://169.254.169.254/latest/meta-data/",
    ):
        site.hits.clear()
        with pytest.raises(BadRequestError) as err:
            store.create({"url": f"{site.origin}/redirect?to={target}", "viewport_width": 64, "viewport_height": 64})
        assert err.value.param == "url" and err.value.message.startswith("url redirected to http://")
        assert site.hits == [f"/redirect?to={target}"]
    assert elsewhere.hits == []  # no hop reached it, in any spelling


def test_every_hop_of_a_redirect_chain_is_checked(store: Store, allowed_site: tuple[Canary, Canary]) -> None:
    """The browser never follows a redirect itself (Playwright would send the next hop to the network unrouted):
    a first hop on the site may lead to a second one that leaves it, and that one is refused too."""
    site, elsewhere = allowed_site
    chain = f"/redirect?to=/redirect?to={elsewhere.origin}/stolen"
    with pytest.raises(BadRequestError) as err:
        store.create({"url": site.origin + chain, "viewport_width": 64, "viewport_height": 64})
    assert err.value.message.startswith(f"url redirected to {elsewhere.origin}/stolen, which a render may not reach")
    html = f"<img src='{site.origin}{chain}'><iframe src='{site.origin}{chain}'></iframe><p>x</p>"
    store.create({"html": html, "ms_delay": 300})
    assert elsewhere.hits == []
    assert site.hits.count(chain) == 3 and site.hits.count(f"/redirect?to={elsewhere.origin}/stolen") == 3


def test_an_allow_listed_host_is_reachable_from_html(
    store: Store, engine: Engine, canaries: tuple[Canary, Canary], monkeypatch: pytest.MonkeyPatch
) -> None:
    site, elsewhere = canaries
    monkeypatch.setattr(engine, "policy", Policy((f"127.0.0.1:{site.port}",)))
    store.create({"html": f"<img src='{site.origin}/logo'><img src='{elsewhere.origin}/logo'><p>x</p>"})
    assert site.hits == ["/logo"] and elsewhere.hits == []


def test_the_allow_list_comes_from_the_environment_or_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HCTI_ALLOW_HOSTS", raising=False)
    (tmp_path / "hcti.toml").write_text('allow_hosts = "http://127.0.0.1:8000, intranet.example"\n')
    policy = Engine().policy
    assert policy.allowed("http://127.0.0.1:8000/x") and policy.allowed("https://intranet.example/")
    assert not policy.allowed("http://127.0.0.1:8001/x")
    monkeypatch.setenv("HCTI_ALLOW_HOSTS", "localhost:9000")
    assert Engine().policy.allow_hosts == ("localhost:9000",)


def _leaky_page(port: int) -> str:
    """Every way out that is not an HTTP request: WebRTC's STUN (UDP) and TURN (UDP and TCP), from the page, a frame
    and a window it opens, WebTransport
    (QUIC), preconnects (a bare TCP socket), a DNS prefetch."""
    servers = ", ".join(
        f"{{urls: '{url}', username: 'a', credential: 'b'}}"
        for url in (f"stun:127.0.0.1:{port}", f"turn:127.0.0.1:{port}?transport=udp", f"turn:127.0.0.1:{port}?transport=tcp")
    )
    return (
        f"<link rel=preconnect href='http://127.0.0.1:{port}/'><link rel=preconnect href='https://127.0.0.1:{port}/'>"
        f"<link rel=dns-prefetch href='http://hcti-canary.example/'>"
        "<script>const f = document.createElement('iframe'); document.body.appendChild(f);"
        "const w = window.open('', 'rtc') || {};"  # a window of its own: outside the init script, and a page's own switches
        "for (const P of [window.RTCPeerConnection, window.webkitRTCPeerConnection, f.contentWindow.RTCPeerConnection,"
        "                 w.RTCPeerConnection]) {"
        f"  try {{ const pc = new P({{iceServers: [{servers}]}}); pc.createDataChannel('d');"
        "    pc.createOffer().then(o => pc.setLocalDescription(o)); } catch (e) {} }"
        f"try {{ new WebTransport('https://127.0.0.1:{port}/wt').ready.catch(() => 0); }} catch (e) {{}}</script><p>x</p>"
    )


@pytest.fixture
def sockets() -> Iterator[SocketCanary]:
    canary = SocketCanary().start()
    # The witness works: a datagram and a connection from here are seen.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"ping", ("127.0.0.1", canary.port))
    socket.create_connection(("127.0.0.1", canary.port), timeout=5).close()
    deadline = time.monotonic() + 5
    while len(canary.hits) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(canary.hits) == ["tcp connection", "udp datagram of 4 bytes"]
    canary.hits.clear()
    yield canary
    canary.close()


def test_webrtc_preconnect_and_quic_reach_nothing_from_the_cli(tmp_path: Path, sockets: SocketCanary) -> None:
    cmd = [sys.executable, "-m", "hcti_build.cli", "render", "--html", _leaky_page(sockets.port), "--ms-delay", "1500"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    time.sleep(2)  # and nothing after the render either
    assert sockets.hits == []


def test_webrtc_preconnect_and_quic_reach_nothing_from_the_server(serve: Callable[..., Served], sockets: SocketCanary) -> None:
    served = serve()
    r = served.client.post("/v1/image", json={"html": _leaky_page(sockets.port), "ms_delay": 1500})
    assert r.status_code == 200, r.text
    time.sleep(2)
    assert sockets.hits == []


PROBES = ("own.png", "store/index.sqlite", "store/tmp", ".env", ".git/config", "deep/.hidden/x.txt")


def test_the_store_and_hidden_files_are_never_served(tmp_path: Path, engine: Engine) -> None:
    """Whatever the root: the store (here inside it, under a plain name), and every hidden file or folder."""
    Image.new("RGB", (4, 4), (0, 0, 255)).save(tmp_path / "own.png")
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("[core]")
    (tmp_path / "deep" / ".hidden").mkdir(parents=True)
    (tmp_path / "deep" / ".hidden" / "x.txt").write_text("x")
    store = Store(tmp_path / "store", root=tmp_path, engine=engine)
    try:
        opts = CreateOptions.from_mapping({"html": probe_page(PROBES), "device_scale": 1, "ms_delay": 300})
        assert readable(store.get(store.create(opts)["id"]), PROBES) == {"own.png"}
        assert store.inputs(opts) == ["own.png"]  # refused paths are not inputs (nor recorded as missing)
        assert store.lookup(opts) is not None
    finally:
        store.close()
