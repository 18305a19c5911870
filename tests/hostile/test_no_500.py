"""No input is a 500 (#28, part 4): each value that was one is a 400 in the API's JSON naming its parameter,
through every surface: `hcti serve`, the CLI's JSON error, and an MCP tool error (and a 401 for a Basic header
that is not ASCII, over `hcti serve` and over MCP's HTTP). pdf_options are checked when the image is created."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import CREDS, Served, Uvicorn
from mcp import Client

from hcti_build import Store
from hcti_build.api.mcp import create_server, http_app

HTML = "<div style='width:40px;height:20px;background:#0a0'></div>"
DIGITS = "1" * 400
NINES = "9" * 400
HUGE_TOKEN = base64.urlsafe_b64encode(json.dumps({"t": 10**400, "id": "x"}).encode()).decode()
# The creation parameters that were 500s: (case, parameter, value, the field the 400 names).
CREATE = [
    ("ms_delay-400-digits", "ms_delay", 10**400, "ms_delay"),
    ("device_scale-400-digits", "device_scale", 10**400, "device_scale"),
    ("pdf_options-100000-characters", "pdf_options", "[" * 100_000, "pdf_options"),
    ("pdf_options-bogus-format", "pdf_options", {"format": "bogus"}, "pdf_options.format"),
    ("url-ipv6-never-closed", "url", "http://[::1", "url"),  # found by hand while preparing the fuzzing
    ("timezone-not-a-zone", "timezone", "posixrules", "timezone"),  # a file of the tz database Chromium refuses
]
# The image queries that were 500s on a stored image.
QUERY = [
    ("x_1-400-nines", {"x_1": NINES, "crop_width": "10"}, "x_1"),
    ("crop_width-400-nines", {"crop_width": NINES}, "crop_width"),
    ("aspect_ratio-5000-digits", {"aspect_ratio": "1" * 5000 + "_1"}, "aspect_ratio"),
]
LIST = [("count-superscript-two", {"count": "²"}, "count"), ("page_token-huge-integer", {"page_token": HUGE_TOKEN}, "page_token")]
CLI = [sys.executable, "-m", "hcti_build.cli"]


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body["validation_errors"]}


def bad_request(r: httpx.Response, field: str, case: str = "") -> None:
    assert r.status_code == 400 and r.headers["content-type"] == "application/json", (case, r.text[:300])
    body = r.json()
    assert body["error"] == "Bad Request" and field in fields(body), (case, body)
    assert field.split(".")[-1] in body["message"], (case, body["message"])  # the message says which one


def test_the_server_answers_each_with_a_400_naming_it(serve: Callable[..., Served]) -> None:
    s = serve()
    for case, name, value, field in CREATE:
        bad_request(s.client.post("/v1/image", content=json.dumps({"html": HTML, name: value})), field, case)
    for depth in (50_000, 33):  # past Python's recursion limit, and past the reader's own bound only
        deep = '{"html": "<p>x</p>", "a": ' + "[" * depth + "]" * depth + "}"
        r = s.client.post("/v1/image", content=deep, headers={"content-type": "application/json"})
        bad_request(r, "body")
        assert r.json()["message"] == "The body is not valid JSON: nested deeper than 32 levels"
    lone = b'{"html": "<p>x</p>", "\\udcff": 1}'  # a key no UTF-8 response can echo as it is: U+FFFD in the error
    bad_request(s.client.post("/v1/image", content=lone, headers={"content-type": "application/json"}), "\ufffd")
    started = time.monotonic()  # 50,000 digits and a letter: read in one pass, not backtracked over
    bad_request(s.client.post("/v1/image", json={"html": HTML, "ms_delay": "1" * 50_000 + "x"}), "ms_delay")
    assert time.monotonic() - started < 3
    form = s.client.post("/v1/image", data={"html": HTML, "pdf_options": "[" * 100_000})  # JSON in a form field
    bad_request(form, "pdf_options")
    assert s.client.get("/v1/images").json()["images"] == []  # nothing was rendered for any of them
    image = s.client.post("/v1/image", json={"html": HTML, "device_scale": 1}).json()["id"]
    for case, query, field in QUERY:
        bad_request(s.anon.get(f"/v1/image/{image}", params=query), field, case)
    for case, query, field in LIST:
        bad_request(s.client.get("/v1/images", params=query), field, case)
    r = s.anon.get("/v1/images", headers={"authorization": "Basic \xe9t\xe9".encode("latin-1")})
    assert r.status_code == 401 and r.json()["message"] == "Invalid user id or API key"


def test_pdf_options_that_only_the_document_refuses_are_a_400_at_get(serve: Callable[..., Served]) -> None:
    s = serve()
    no_room = {"html": HTML, "pdf_options": {"format": "A6", "margin": {"left": "3in", "right": "2in"}}}
    bad_request(s.client.post("/v1/image", json=no_room), "pdf_options.margin")  # the page is known: at create
    one_page = s.client.post("/v1/image", json={"html": HTML, "pdf_options": {"pageRanges": "5"}}).json()["id"]
    r = s.anon.get(f"/v1/image/{one_page}.pdf")  # the document has one page: only Chromium can tell
    bad_request(r, "pdf_options")
    assert r.json()["message"] == "pdf_options do not fit this document: Page range exceeds page count"
    fits = s.client.post("/v1/image", json={"html": HTML, "pdf_options": {"format": "a6", "pageRanges": "1-"}}).json()
    assert s.anon.get(f"/v1/image/{fits['id']}.pdf").content[:5] == b"%PDF-"


def hcti(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HCTI_STORE": str(tmp_path / "store")}
    if os.environ.get("HCTI_CHROMIUM"):  # --chromium PATH
        env["HCTI_CHROMIUM"] = os.environ["HCTI_CHROMIUM"]
    return subprocess.run([*CLI, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


def cli_error(done: subprocess.CompletedProcess[str], field: str, case: str) -> None:
    assert done.returncode == 2 and "Traceback" not in done.stderr, (case, done.stderr[-2000:])
    body = json.loads(done.stderr)
    assert body["statusCode"] == 400 and field in fields(body), (case, body)


def test_the_cli_prints_each_as_the_apis_json(tmp_path: Path) -> None:
    for case, name, value, field in CREATE:
        flag = "--" + name.replace("_", "-")
        given = value if isinstance(value, str) else json.dumps(value)
        cli_error(hcti(tmp_path, "render", "--html", HTML, flag, given), field, case)
    made = hcti(tmp_path, "render", "--html", HTML, "--device-scale", "1")
    assert made.returncode == 0, made.stderr
    image = json.loads(made.stdout)["id"]
    for case, query, field in QUERY:
        spec = image + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        cli_error(hcti(tmp_path, "get", spec, "-o", "out.png"), field, case)
    assert not (tmp_path / "out.png").exists()
    for case, query, field in LIST:
        ((name, value),) = query.items()
        cli_error(hcti(tmp_path, "ls", "--" + name.replace("_", "-"), value), field, case)


def call(store: Store, tool: str, args: dict[str, Any]) -> Any:
    async def main() -> Any:
        async with Client(create_server(store)) as client:
            return await client.call_tool(tool, args)

    return anyio.run(main)


def tool_error(result: Any, field: str, case: str = "") -> None:
    assert result.is_error, (case, result)
    body = result.structured_content
    assert body["statusCode"] == 400 and field in fields(body), (case, body)
    assert result.content[0].text.startswith("400 Bad Request: ")


def test_mcp_answers_each_with_a_tool_error_naming_it(store: Store) -> None:
    for case, name, value, field in CREATE:
        tool_error(call(store, "create_image", {"html": HTML, name: value}), field, case)
    batch = {"variations": [{"html": HTML, "device_scale": 10**400}]}
    tool_error(call(store, "create_batch", batch), "variations[0].device_scale")
    made = call(store, "create_image", {"html": HTML, "device_scale": 1})
    assert not made.is_error
    for case, query, field in QUERY:
        tool_error(call(store, "get_image", {"id": made.structured_content["id"], **query}), field, case)
    for case, query, field in LIST:
        tool_error(call(store, "list_images", query), field, case)


@pytest.fixture
def mcp_http(store: Store) -> Iterator[str]:
    """MCP's streamable HTTP app on uvicorn on a free port of 127.0.0.1 (its session manager runs in the lifespan)."""
    server = Uvicorn(http_app(store, CREDS, host="127.0.0.1"), lifespan="on")
    yield f"{server.base}/mcp"
    server.stop()


def test_mcp_over_http_answers_a_basic_header_that_is_not_ascii_with_a_401(mcp_http: str) -> None:
    for header in (
        "Basic \xe9t\xe9".encode("latin-1"),
        b"Basic \xff\xfe",
        b"basic " + base64.b64encode("\xe9:k".encode("latin-1")),
    ):
        r = httpx.post(mcp_http, headers={"authorization": header}, json={}, timeout=30)
        assert r.status_code == 401 and r.json()["message"] == "Invalid user id or API key", r.text
