"""Running the API app: the listening socket (bound before start-up, so the banner shows the real port), uvicorn
with a protocol that answers unparseable requests in the API's JSON, and a shutdown on SIGINT or SIGTERM that
returns to the caller (who closes the browser). uvicorn is imported when the server starts.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import BadRequestError

if TYPE_CHECKING:
    from starlette.applications import Starlette


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0 picks a free one): bound before start-up, so the banner shows the real port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadRequestError(f"cannot listen on {host}:{port}: {exc.strerror}", param="port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def http_protocol() -> Any:
    """uvicorn's httptools protocol, answering a request it cannot parse (a URL and headers over ~80 KB, bytes
    that are not HTTP) with the API's JSON instead of its plain-text 400. (h11, whose limit can be raised, serves
    fewer cached GETs a second: docs/performance.md.)"""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools here: uvicorn's choice, and its plain-text 400
        return "auto"

    class Protocol(HttpToolsProtocol):
        def send_400_response(self, msg: str) -> None:
            error = BadRequestError(
                "The request could not be read as HTTP: a URL and headers over 80 KB, or bytes that are not HTTP",
                param="request",
            )
            body = json.dumps(error.to_json()).encode()
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
            head += [b"content-type: application/json\r\n", b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

    return Protocol


def serve(
    app: Starlette,
    sock: socket.socket,
    *,
    access_log: bool = True,
    lifespan: bool = False,
    on_close: Callable[[], object] | None = None,
) -> None:
    """Run until SIGINT or SIGTERM (uvicorn's graceful shutdown), then ``on_close`` (the render threads);
    returns normally, so the caller closes the browser and the process exits 0. ``lifespan``: run the app's
    startup and shutdown (the MCP app's session manager lives there)."""
    import signal

    import uvicorn

    config = uvicorn.Config(
        app,
        http=http_protocol(),
        access_log=access_log,
        log_level="info",
        lifespan="on" if lifespan else "off",
        ws="none",
        timeout_graceful_shutdown=5,
    )
    # uvicorn re-raises the signal it stopped on once it has shut down, to the handler that was there before
    # it. That handler is this no-op, so the signal ends the server, not the process before its cleanup.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if on_close is not None:
            on_close()
        sock.close()
