"""`hcti mcp`: the hosted API as MCP tools, so that coding agents make images without writing code.

Built on the official `mcp` SDK's low-level server (the `mcp` extra), over stdio, or streamable HTTP behind
`hcti serve`'s Basic credentials. The tools are the API's endpoints: `create_image`, `get_image`, `create_batch`,
`list_images`, `delete_image`, `usage` (`TOOLS`); their input schemas come from the options' declarations
(`options.json_schema`), so names, types, ranges and descriptions are declared once.

A call runs on the store in a worker thread, on the session's one warm engine, under a CancelToken that a
client's cancellation trips. An image comes back as MCP image content (a PDF as an embedded resource) with
structured content: id, url, the file in the store, width, height, format. An error is a tool error carrying
the API's message and status (`_tool_error`): never a traceback, and never a byte on stdout, which belongs to
the protocol (the SDK points fd 1 at stderr while it serves).
"""

from __future__ import annotations

import base64
import contextvars
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.shared.message import SessionMessage
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..engine.browser import CancelToken, cancellable
from ..errors import BadRequestError, HctiError, NotFoundError
from ..options import MIME, CreateOptions, ImageQuery, ListQuery, batch_options, json_schema, printable
from ..pipeline.assets import Asset
from ..store.store import Store
from .common import RenderQueue, error_response
from .signing import Credentials

IMAGE_OUTPUT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The image's id (the API's)."},
        "url": {"type": "string", "description": "Where the image is: the store's file, or hcti serve's URL."},
        "path": {"type": "string", "description": "The file in the store holding exactly these bytes."},
        "width": {"type": ["integer", "null"], "description": "Pixels wide (null for a PDF)."},
        "height": {"type": ["integer", "null"], "description": "Pixels high (null for a PDF)."},
        "format": {"type": "string", "enum": ["png", "jpg", "webp", "pdf"]},
    },
    "required": ["id", "url", "path", "width", "height", "format"],
}


def _id_schema(what: str) -> dict[str, Any]:
    return {"type": "string", "description": f"The id of the image to {what} (from create_image or list_images)."}


def _schemas() -> dict[str, dict[str, Any]]:
    """Each tool's input schema, from the options' declarations."""
    create, query = json_schema(CreateOptions), json_schema(ImageQuery)
    get = {**query, "properties": {"id": _id_schema("get"), **query["properties"]}, "required": ["id"]}
    options = {k: v for k, v in create.items() if k != "required"}
    batch = {
        "type": "object",
        "properties": {
            "default_options": {**options, "description": "Parameters every variation starts from."},
            "variations": {"type": "array", "minItems": 1, "maxItems": 25, "items": options,
                           "description": "1 to 25 images: each one's parameters, over default_options."},
        },  # fmt: skip
        "required": ["variations"],
        "additionalProperties": False,
    }
    listing = json_schema(ListQuery)
    delete = {"type": "object", "properties": {"id": _id_schema("delete")}, "required": ["id"], "additionalProperties": False}
    return {
        "create_image": create,
        "get_image": get,
        "create_batch": batch,
        "list_images": listing,
        "delete_image": delete,
        "usage": {"type": "object", "properties": {}, "additionalProperties": False},
    }


# -- what each tool does, on the store (in a worker thread) -------------------------------------------------
def _image(store: Store, image_id: str, query: ImageQuery) -> types.CallToolResult:
    """An image as the client sees it: its content (image, or a PDF as an embedded resource) and structured
    content to link or copy it."""
    asset = Asset.load(store, image_id, query)
    path = asset.source
    assert path is not None  # Asset.load names the store's file
    width, height = asset.pixels or (None, None)
    data = base64.b64encode(asset.data).decode()
    content: types.ContentBlock
    if query.format == "pdf":
        pdf = types.BlobResourceContents(uri=path.as_uri(), mime_type=MIME["pdf"], blob=data)
        content = types.EmbeddedResource(resource=pdf)
    else:
        content = types.ImageContent(data=data, mime_type=MIME[query.format])
    found = {"id": image_id, "url": store.url(image_id), "path": str(path), "width": width, "height": height,
             "format": query.format}  # fmt: skip
    return types.CallToolResult(content=[content, _text(found)], structured_content=found)


def create_image(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    image_id = store.create(CreateOptions.from_mapping(args))["id"]
    return _image(store, image_id, ImageQuery.from_mapping({}))


def get_image(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    image_id = _required_id(args)
    return _image(store, image_id, ImageQuery.from_mapping({k: v for k, v in args.items() if k != "id"}))


def create_batch(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    unknown = set(args) - {"default_options", "variations"}
    if unknown:
        name = printable(sorted(unknown)[0])
        raise BadRequestError(f"Unknown parameter: {name}", param=name)
    return _structured({"images": store.create_many(batch_options(args.get("default_options"), args.get("variations")))})


def list_images(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    query = ListQuery.from_mapping(args)
    return _structured(store.list(query.count, query.page_token))


def delete_image(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    image_id = _required_id(args)
    store.delete(image_id)
    return _structured({"id": image_id, "deleted": True})


def usage(store: Store, args: Mapping[str, Any]) -> types.CallToolResult:
    return _structured(store.usage())


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    run: Callable[[Store, Mapping[str, Any]], types.CallToolResult]
    output: dict[str, Any] | None = None


TOOLS = {
    t.name: t
    for t in (
        ToolSpec("create_image", "Render HTML + CSS (or a URL) to a PNG with the HTML/CSS to Image API's parameters; "
                 "returns the image and its id. An unchanged request is answered from the store.", create_image,
                 IMAGE_OUTPUT),
        ToolSpec("get_image", "A stored image by id, resized, cropped or converted (jpg, webp, pdf) with the API's "
                 "image query.", get_image, IMAGE_OUTPUT),
        ToolSpec("create_batch", "Render 1 to 25 images at once: variations over default_options; returns their ids "
                 "and URLs.", create_batch),
        ToolSpec("list_images", "Stored images, newest first, 50 a page at most.", list_images),
        ToolSpec("delete_image", "Delete an image: every copy; getting it later is an error (410).", delete_image),
        ToolSpec("usage", "Renders by hour, day and month.", usage),
    )
}  # fmt: skip


def _required_id(args: Mapping[str, Any]) -> str:
    image_id = args.get("id")
    if not isinstance(image_id, str) or not image_id:
        raise BadRequestError("id is required: the id of a stored image", param="id")
    return image_id


def _text(data: Any) -> types.TextContent:
    return types.TextContent(text=json.dumps(data))


def _structured(data: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[_text(data)], structured_content=data)


def _tool_error(exc: HctiError) -> types.CallToolResult:
    """The API's error as a tool error: its message (naming the parameter) in text, its JSON body structured."""
    body = exc.to_json()
    return types.CallToolResult(content=[types.TextContent(text=f"{exc.status_code} {exc.error}: {exc.message}")],
                                structured_content=body, is_error=True)  # fmt: skip


# -- the server ---------------------------------------------------------------------------------------------
async def _in_thread(fn: Callable[[], types.CallToolResult]) -> types.CallToolResult:
    """``fn`` on a worker thread; a client that cancels the call cancels its render (`CancelToken`)."""
    token = CancelToken()
    context = contextvars.copy_context()

    def work() -> types.CallToolResult:
        with cancellable(token):
            return fn()

    try:
        return await anyio.to_thread.run_sync(context.run, work, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        token.cancel()
        raise


def _renders(name: str, args: Mapping[str, Any]) -> int:
    """Renders a call may start, admitted as `hcti serve` admits a request's."""
    if name == "create_image":
        return 1
    variations = args.get("variations")
    return len(variations) if name == "create_batch" and isinstance(variations, list) else 0


def create_server(store: Store, *, version: str = "", queue: int = 32) -> Server[Any]:
    """The MCP server over ``store``: the tools, listed with their schemas, and called on worker threads; renders
    are admitted as `hcti serve` admits them (``queue`` may wait for a page; beyond, the API's 429)."""
    schemas = _schemas()
    admission = RenderQueue(store.engine.pool_size, queue)
    listed = [
        types.Tool(name=t.name, description=t.description, input_schema=schemas[t.name], output_schema=t.output)
        for t in TOOLS.values()
    ]

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = TOOLS.get(params.name)
        try:
            if tool is None:
                raise NotFoundError(f"Unknown tool: {params.name}; the tools are {', '.join(TOOLS)}")
            args = params.arguments or {}
            renders = _renders(tool.name, args)
            admission.acquire(renders)
            try:
                return await _in_thread(lambda: tool.run(store, args))
            finally:
                admission.release(renders)
        except HctiError as exc:
            return _tool_error(exc)

    instructions = (
        "HTML/CSS to Image, locally: create_image renders HTML + CSS to an image (the hosted API's parameters), "
        "get_image resizes, crops or converts a stored one by id. Images are kept in a local store."
    )
    return Server("hcti-build", version=version, instructions=instructions, on_list_tools=list_tools,
                  on_call_tool=call_tool)  # fmt: skip


def serve_stdio(store: Store, *, version: str = "") -> None:
    """Serve one client over stdin and stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    server = create_server(store, version=version)

    async def main() -> None:
        async with stdio_server() as (read, write), anyio.create_task_group() as tasks:
            # The SDK hands a line it cannot read (not JSON, nested too deep) to the server as an exception, which the
            # server drops: the client would wait for an answer forever. It gets JSON-RPC's parse error instead.
            messages, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)

            async def relay() -> None:
                async with messages:
                    async for item in read:
                        if isinstance(item, Exception):
                            await write.send(SessionMessage(_parse_error(item)))
                        else:
                            await messages.send(item)

            tasks.start_soon(relay)
            await server.run(incoming, write, server.create_initialization_options())
            tasks.cancel_scope.cancel()

    anyio.run(main)


def _parse_error(exc: Exception) -> types.JSONRPCError:
    """JSON-RPC's answer to a line that is not a message (its id unknown: null)."""
    reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
    error = types.ErrorData(code=types.PARSE_ERROR, message=f"Parse error: {reason}")
    return types.JSONRPCError(jsonrpc="2.0", id=None, error=error)


def http_app(store: Store, creds: Credentials, *, host: str, version: str = "") -> Starlette:
    """The streamable HTTP transport at /mcp, behind `hcti serve`'s HTTP Basic credentials."""
    app = create_server(store, version=version).streamable_http_app(host=host)
    app.add_middleware(_BasicAuth, creds=creds)
    return app


class _BasicAuth:
    """Every HTTP request checked for the credentials; a 401 in the API's JSON otherwise."""

    def __init__(self, app: ASGIApp, creds: Credentials) -> None:
        self.app, self.creds = app, creds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self.creds.check(Headers(scope=scope).get("authorization", ""))
            except HctiError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)
