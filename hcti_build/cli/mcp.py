"""`hcti mcp`: the MCP server's command line (the server is `hcti_build.mcp`, imported only when it runs: the
MCP SDK is an extra)."""

from __future__ import annotations

import logging
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import click

from ..api.signing import Credentials
from ..errors import BadRequestError
from ..store.store import Store
from .common import fail, store_option


@click.command("mcp")
@click.option("--http", "http", metavar="HOST:PORT", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@store_option
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    help="The folder whose files renders may read (relative URLs resolve there). Default: the working folder over "
    "stdio; none over --http, as for hcti serve.",
)
def mcp_command(http: str | None, store_path: str | None, root: str | None) -> None:
    """Serve the API as MCP tools for coding agents: create_image, get_image, create_batch, list_images,
    delete_image, usage. Over stdio (what an MCP client starts), or --http with hcti serve's credentials
    (HCTI_USER_ID and HCTI_API_KEY). Logs go to stderr: stdout belongs to the protocol."""
    try:
        from ..api import mcp as server
    except ImportError:
        fail(BadRequestError("hcti mcp needs the MCP SDK: pip install 'hcti-build[mcp]'", param="mcp"))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="hcti mcp: %(levelname)s %(message)s")
    empty = tempfile.TemporaryDirectory(prefix="hcti-mcp-no-files-") if http and root is None else None
    reads = "no local files (--root DIR to allow)" if empty else f"files under {Path(root or '.').resolve()}"
    store = Store(store_path, root=root or (empty.name if empty else None))
    try:
        store.fingerprint()  # a missing or broken Chromium is said now, not at the first call
        if http:
            _serve_http(server, store, http, reads)
        else:
            server.serve_stdio(store, version=version("hcti-build"))
    finally:
        store.engine.close()
        if empty is not None:
            empty.cleanup()


def _serve_http(server: object, store: Store, address: str, reads: str) -> None:
    from ..api import serving

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BadRequestError(f"--http must be HOST:PORT, like 127.0.0.1:8765, not {address!r}", param="http")
    creds = Credentials.resolve()
    sock = serving.bind(host.strip("[]"), int(port))
    bound = sock.getsockname()
    click.echo(f"hcti mcp: http://{host}:{bound[1]}/mcp  (store {store.path}; renders read {reads})", err=True)
    if creds.generated:
        click.echo(f"  user id {creds.user_id}  API key {creds.api_key}", err=True)
    app = server.http_app(store, creds, host=host.strip("[]"), version=version("hcti-build"))  # type: ignore[attr-defined]
    serving.serve(app, sock, lifespan=True)

