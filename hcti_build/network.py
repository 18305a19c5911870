"""What a render may reach over the network: nothing, except a `url` render's own public origin and the hosts
the user allows.

A `url` whose host is (or resolves to) a loopback, private, link-local, metadata or otherwise non-global address
is refused before the browser is touched, in every spelling the resolver accepts (IPv6, IPv4-mapped IPv6,
decimal, hex, octal, a trailing dot), unless the allow-list names it. The allow-list comes from
``HCTI_ALLOW_HOSTS`` (comma-separated) or ``allow_hosts`` in ``[tool.hcti]`` / ``hcti.toml``; an entry is an
origin (``http://127.0.0.1:8000``), a ``host:port`` or a host name, and what it names is reachable from every
render, private or not.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from .config import config_value
from .errors import BadRequestError


def configured_allow_hosts() -> tuple[str, ...]:
    raw = os.environ.get("HCTI_ALLOW_HOSTS")
    if raw is None:
        found = config_value("allow_hosts")
        raw = found[0] if found else ""
    return tuple(entry.strip().rstrip("/").lower() for entry in raw.split(",") if entry.strip())


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def non_global_address(host: str) -> str | None:
    """The first address ``host`` resolves to that is not a public internet address, as text; or None.

    A host that does not resolve is reported too: Chromium uses the same resolver, so it could not load it
    either, and the error says why at once."""
    name = host.strip("[]").rstrip(".")
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return f"{host} (does not resolve)"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            return str(address)
    return None


@dataclass(frozen=True)
class Policy:
    """The allow-list, and the checks each request of a render goes through."""

    allow_hosts: tuple[str, ...] = ()

    def allowed(self, url: str) -> bool:
        """True when the allow-list names this URL's origin, host:port or host."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        keys = {origin_of(url), parts.netloc.lower(), host, f"[{host}]"}
        return any(entry in keys for entry in self.allow_hosts)

    def check_url(self, url: str) -> None:
        """A `url` render's target, before the browser: a private or local address needs the allow-list."""
        if self.allowed(url):
            return
        host = urlsplit(url).hostname or ""
        bad = non_global_address(host)
        if bad:
            where = f"{host} is a local or private address" if bad == host.strip("[]") else f"{host} resolves to {bad}"
            raise BadRequestError(
                f"url must be a public address, and {where}; to render a local or private site, allow it with "
                "HCTI_ALLOW_HOSTS (or allow_hosts in [tool.hcti])",
                param="url",
            )

    def may_fetch(self, url: str, render_origin: str | None) -> bool:
        """A request (or a redirect hop) of a render: the render's own public origin, or an allowed host."""
        if self.allowed(url):
            return True
        if render_origin is None or origin_of(url) != render_origin:
            return False
        return non_global_address(urlsplit(url).hostname or "") is None  # checked again: DNS may have changed
