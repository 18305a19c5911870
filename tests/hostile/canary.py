"""A canary HTTP server on 127.0.0.1 that counts every hit: the hostile suite's witness for network cases."""

from __future__ import annotations

import contextlib
import http.server
import io
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from PIL import Image


@dataclass
class Canary:
    port: int
    hits: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(canary: Canary) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            canary.hits.append(self.path)
            if self.path.startswith("/hang"):
                time.sleep(30)  # a sub-resource that never answers (in a render's lifetime)
                return
            if self.path.startswith("/redirect?to="):
                self.send_response(302)
                self.send_header("Location", self.path.split("=", 1)[1])
                self.end_headers()
                return
            if self.path.startswith("/jsredirect?to="):  # a page that sends itself elsewhere once loaded
                self._html(f"<script>location.replace({self.path.split('=', 1)[1]!r})</script>")
            elif self.path.startswith("/html?b="):  # a page whose HTML the test chose (URL-encoded)
                self._html(urllib.parse.unquote(self.path.split("=", 1)[1]))
            else:
                self._html("<html><body style='margin:0;background:#0f0'></body></html>")

        def _html(self, text: str) -> None:
            body = text.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def start() -> tuple[Canary, http.server.ThreadingHTTPServer]:
    canary = Canary(0)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(canary))
    httpd.daemon_threads = True
    canary.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return canary, httpd


@dataclass
class SocketCanary:
    """A UDP socket and a TCP listener on one port of 127.0.0.1 that record every datagram and connection: the
    witness for what does not go through the browser's request filter (WebRTC's STUN and TURN, preconnects)."""

    port: int = 0
    hits: list[str] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)

    def start(self) -> SocketCanary:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 0))
        self.port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", self.port))
        tcp.listen(16)
        self._sockets = [tcp, udp]
        threading.Thread(target=self._accept, args=(tcp,), daemon=True).start()
        threading.Thread(target=self._receive, args=(udp,), daemon=True).start()
        return self

    def _accept(self, tcp: socket.socket) -> None:
        while True:
            try:
                conn, _ = tcp.accept()
            except OSError:
                return
            self.hits.append("tcp connection")
            conn.close()

    def _receive(self, udp: socket.socket) -> None:
        while True:
            try:
                data, _ = udp.recvfrom(65536)
            except OSError:
                return
            self.hits.append(f"udp datagram of {len(data)} bytes")

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept() or recvfrom()
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def probe_page(paths: tuple[str, ...]) -> str:
    """One 10x10 box per path, turned red when a fetch of it succeeds: what a page could read, as pixels."""
    boxes = "".join(f"<div id=b{i} style='width:10px;height:10px;background:#fff'></div>" for i in range(len(paths)))
    checks = "".join(
        f"fetch({path!r}).then(r => {{ if (r.ok) b{i}.style.background = '#f00'; }}).catch(() => 0);"
        for i, path in enumerate(paths)
    )
    return f"<div style='display:flex'>{boxes}</div><script>{checks}</script>"


def readable(png: bytes, paths: tuple[str, ...]) -> set[str]:
    with Image.open(io.BytesIO(png)) as im:
        rgb = im.convert("RGB")
        return {path for i, path in enumerate(paths) if rgb.getpixel((i * 10 + 5, 5)) == (255, 0, 0)}
