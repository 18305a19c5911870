"""`hcti mcp` driven by the official MCP SDK's own client: a real `hcti mcp` subprocess over stdio, and once
over streamable HTTP with Basic credentials. Images are checked by their pixels."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

HCTI = [sys.executable, "-m", "hcti_build.cli", "mcp"]
HALVES = (  # left half red, right half blue
    "<div style='display:flex;width:200px;height:100px'>"
    "<div style='flex:1;background:rgb(255,0,0)'></div><div style='flex:1;background:rgb(0,0,255)'></div></div>"
)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HCTI_")}
    env["HCTI_STORE"] = str(tmp_path / "store")
    if os.environ.get("HCTI_CHROMIUM"):
        env["HCTI_CHROMIUM"] = os.environ["HCTI_CHROMIUM"]
    return env


def session(tmp_path: Path, test: Callable[[Client], Any]) -> None:
    """``test`` with the SDK's client on a new `hcti mcp` process; its stderr kept in stderr.log (stdout is the
    protocol)."""
    params = StdioServerParameters(command=HCTI[0], args=HCTI[1:], env=_env(tmp_path), cwd=str(tmp_path))

    async def main() -> None:
        with (tmp_path / "stderr.log").open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=120) as client:
                await test(client)

    anyio.run(main)


def image_of(result: Any) -> Image.Image:
    (img,) = [c for c in result.content if c.type == "image"]
    return Image.open(io.BytesIO(base64.b64decode(img.data)))


def test_tools_and_their_schemas(tmp_path: Path) -> None:
    async def test(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"create_image", "get_image", "create_batch", "list_images", "delete_image", "usage"}
        create = tools["create_image"].input_schema["properties"]
        assert create["device_scale"]["minimum"] == 0.1 and create["device_scale"]["maximum"] == 3
        assert create["html"]["type"] == "string" and "ms_delay" in create and "google_fonts" in create
        get = tools["get_image"].input_schema
        assert get["required"] == ["id"] and "dpi" in get["properties"]
        assert get["properties"]["x_1"]["type"] == ["integer", "string"]
        assert get["properties"]["format"]["enum"] == ["jpeg", "jpg", "pdf", "png", "webp"]
        batch = tools["create_batch"].input_schema["properties"]["variations"]
        assert batch["maxItems"] == 25 and batch["items"]["properties"]["viewport_width"]["type"] == "integer"
        assert tools["create_image"].output_schema is not None

    session(tmp_path, test)


def test_create_get_batch_list_delete(tmp_path: Path) -> None:
    async def test(client: Client) -> None:
        made = await client.call_tool("create_image", {"html": HALVES, "device_scale": 1})
        assert not made.is_error
        found = made.structured_content
        assert (found["width"], found["height"], found["format"]) == (200, 100, "png")
        png = image_of(made)
        assert png.size == (200, 100) and png.getpixel((20, 50))[:3] == (255, 0, 0)
        assert Path(found["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image_id = found["id"]

        small = await client.call_tool("get_image", {"id": image_id, "width": 100, "format": "jpg"})
        assert small.structured_content["format"] == "jpg" and image_of(small).size == (100, 50)
        assert Path(small.structured_content["path"]).read_bytes()[:3] == b"\xff\xd8\xff"
        right = await client.call_tool("get_image", {"id": image_id, "x_1": "50%", "x_2": "100%"})
        crop = image_of(right)
        assert crop.size == (100, 100) and crop.getpixel((50, 50))[:3] == (0, 0, 255)
        pdf = await client.call_tool("get_image", {"id": image_id, "format": "pdf"})
        (resource,) = [c for c in pdf.content if c.type == "resource"]
        assert resource.resource.mime_type == "application/pdf" and base64.b64decode(resource.resource.blob)[:5] == b"%PDF-"

        batch = await client.call_tool(
            "create_batch",
            {"default_options": {"device_scale": 1}, "variations": [{"html": f"<p style='margin:0;width:{w}px;height:5px'></p>"} for w in (10, 20, 30)]},
        )
        ids = [i["id"] for i in batch.structured_content["images"]]
        assert len(set(ids)) == 3
        listed = await client.call_tool("list_images", {"count": 10})
        assert {i["id"] for i in listed.structured_content["images"]} == {image_id, *ids}

        gone = await client.call_tool("delete_image", {"id": image_id})
        assert gone.structured_content == {"id": image_id, "deleted": True}
        again = await client.call_tool("get_image", {"id": image_id})
        assert again.is_error and again.content[0].text.startswith("410 ") and again.structured_content["statusCode"] == 410
        unknown = await client.call_tool("get_image", {"id": "00000000-0000-8000-8000-000000000000"})
        assert unknown.is_error and unknown.content[0].text.startswith("404 ")
        usage = await client.call_tool("usage", {})
        assert sum(usage.structured_content["data"]["day"].values()) == 4

    session(tmp_path, test)
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


def test_bad_parameters_are_tool_errors_naming_them(tmp_path: Path) -> None:
    async def test(client: Client) -> None:
        bad = await client.call_tool("create_image", {"html": "<p>x</p>", "device_scale": 9})
        assert bad.is_error and "device_scale must be a number between 0.1 and 3" in bad.content[0].text
        assert bad.structured_content["validation_errors"][0]["field"] == "device_scale"
        many = await client.call_tool("create_batch", {"variations": [{"html": "x"}] * 26})
        assert many.is_error and "variations must be a list of 1 to 25 images" in many.content[0].text
        unknown = await client.call_tool("create_image", {"html": "x", "colour": "red"})
        assert unknown.is_error and "colour" in unknown.content[0].text
        no_id = await client.call_tool("get_image", {})
        assert no_id.is_error and "id is required" in no_id.content[0].text
        fine = await client.call_tool("create_image", {"html": "<p style='margin:0;width:8px;height:8px'></p>"})
        assert not fine.is_error  # the server is still up

    session(tmp_path, test)


def test_a_cancelled_call_cancels_its_render(tmp_path: Path) -> None:
    async def test(client: Client) -> None:
        slow = {"html": "<p style='margin:0;width:10px;height:10px'>slow</p>", "ms_delay": 4000}
        started = time.monotonic()
        with anyio.move_on_after(1):
            await client.call_tool("create_image", slow)
        assert time.monotonic() - started < 3
        await anyio.sleep(4.5)  # longer than the render would have taken
        listed = await client.call_tool("list_images", {})
        assert listed.structured_content["images"] == []  # nothing was stored: the render stopped
        fine = await client.call_tool("create_image", {"html": "<p style='margin:0;width:8px;height:8px'></p>"})
        assert not fine.is_error

    session(tmp_path, test)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {**_env(tmp_path), "HCTI_USER_ID": "agent", "HCTI_API_KEY": "key-1"}
    log = tmp_path / "http.log"
    with log.open("w") as err:
        proc = subprocess.Popen([*HCTI, "--http", "127.0.0.1:0"], env=env, stderr=err, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not (m := re.search(r"(http://127\.0\.0\.1:\d+/mcp)", log.read_text())):
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.05)
    yield m[1], proc
    proc.terminate()
    assert proc.wait(20) == 0, log.read_text()  # SIGTERM is a clean stop
    assert "Traceback" not in log.read_text()


def test_streamable_http_with_credentials(http_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, _ = http_server
    refused = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and refused.json()["message"].startswith("Authentication required")

    async def main() -> None:
        async with httpx2.AsyncClient(auth=("agent", "key-1"), timeout=120) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                made = await client.call_tool("create_image", {"html": HALVES, "device_scale": 1})
                assert image_of(made).getpixel((150, 50))[:3] == (0, 0, 255)

    anyio.run(main)


def test_a_line_that_is_not_a_message_gets_json_rpcs_parse_error(tmp_path: Path) -> None:
    """Found by an independent probe: over stdio, a line nested 200 deep (or `{bad`) got no answer at all, so a
    client waited forever. Each gets JSON-RPC's parse error, and the next message is answered."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
    deep = '{"jsonrpc":"2.0","id":2,"method":"ping","params":{"_meta":{"x":' + "[" * 5000 + "]" * 5000 + "}}}"
    lines = (json.dumps(init), deep, "{bad", json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
    proc = subprocess.Popen(HCTI, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=_env(tmp_path), cwd=tmp_path)  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    answers: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: answers.extend(json.loads(proc.stdout.readline()) for _ in range(4)), daemon=True)
    try:
        proc.stdin.write("".join(line + "\n" for line in lines))
        proc.stdin.flush()
        reader.start()
        reader.join(60)  # the stream stays open until every answer is in: a closed one ends the session first
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert len(answers) == 4, answers
    # JSON-RPC promises no order between answers (a client matches them by id), and the parse errors are written by
    # the reader while the session still handles `initialize`: CI saw one arrive first.
    by_id = {answer["id"]: answer for answer in answers if answer["id"] is not None}
    assert sorted(by_id) == [1, 3] and "result" in by_id[1], answers
    parse_errors = [answer for answer in answers if answer["id"] is None]
    assert len(parse_errors) == 2, answers
    for parse_error in parse_errors:
        assert parse_error["error"]["code"] == -32700 and parse_error["error"]["message"].startswith("Parse error")
    assert by_id[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}


def test_mcp_calls_are_admitted_as_the_servers_requests(tmp_path: Path) -> None:
    """MCP calls went around the render queue: any number of renders could wait. Now, with 2 pages and no queue,
    a third concurrent create_image is the API's 429 as a tool error (in-process, on a slow fake renderer)."""
    from fakes import FakeRenderer

    from hcti_build import Store
    from hcti_build.api.mcp import create_server

    class Slow(FakeRenderer):
        def render(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(1)
            return super().render(*args, **kwargs)

    store = Store(tmp_path / "store", root=tmp_path, engine=Slow(), remote="")
    results: list[Any] = []

    async def main() -> None:
        async with Client(create_server(store, queue=0)) as client:

            async def call(i: int) -> None:
                results.append(await client.call_tool("create_image", {"html": f"<p>{i}</p>"}))

            async with anyio.create_task_group() as tasks:
                for i in range(3):
                    tasks.start_soon(call, i)

    try:
        anyio.run(main)
    finally:
        store.close()
    refused = [r for r in results if r.is_error]
    assert len(results) == 3 and len(refused) == 1, results
    assert refused[0].structured_content["statusCode"] == 429
