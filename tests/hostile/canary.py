"""A canary HTTP server on 127.0.0.1 that counts every hit: the hostile suite's witness for network cases."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field


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
            body = b"<html><body style='margin:0;background:#0f0'></body></html>"
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
