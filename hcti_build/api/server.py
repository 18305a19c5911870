"""`hcti serve`: the hosted API's REST surface over the local store, on Starlette and uvicorn.

Existing API clients work unchanged against it, pointed at its base URL: the same routes, bodies, status
codes and JSON errors. Every render goes through the store's one browser and its page pool. Renders are
admitted to a bounded queue (429 when it is full), and a client that hangs up cancels its render: the page
is replaced and returned to the pool, and nothing enters the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hmac
import logging
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.browser import CancelToken, cancellable
from ..errors import (
    BadRequestError,
    HctiError,
    NotFoundError,
    PayloadTooLargeError,
    RenderCancelledError,
    UnauthorizedError,
)
from ..options import MIME, CreateOptions, ImageQuery, ListQuery, batch_options, parse_format, read_json, split_params
from ..store.store import Store
from . import openapi
from .common import RenderQueue, error_response
from .signing import Credentials, sign

log = logging.getLogger("hcti_build.server")
T = TypeVar("T")

MAX_BODY = 16 * 1024 * 1024  # a request body above this is refused with 413 before it is read in full
GALLERY_PAGE = 24
THUMB_WIDTH = 320
IMMUTABLE = "public, max-age=31536000, immutable"  # an id names one image forever (content-addressed)


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes: at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            await error_response(PayloadTooLargeError(self._message()))(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise PayloadTooLargeError(self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"The request body is larger than {self.limit // (1024 * 1024)} MB"


class Api:
    """The routes, over one store. ``queue`` renders may wait for a page beyond the pool's own."""

    def __init__(self, store: Store, creds: Credentials, *, base_url: str | None = None, queue: int = 32) -> None:
        self.store = store
        self.creds = creds
        self.base_url = base_url.rstrip("/") if base_url else None
        pages = store.engine.pool_size
        self.queue = RenderQueue(pages, queue)
        # Renders block a thread for their whole duration; their own pool keeps them from starving the threads
        # that serve stored images.
        self._render_threads = concurrent.futures.ThreadPoolExecutor(self.queue.limit, thread_name_prefix="hcti-serve")
        self._openapi = openapi.document(_version())
        templates = Path(__file__).resolve().parents[1] / "html"
        self._jinja = jinja2.Environment(loader=jinja2.FileSystemLoader(templates), autoescape=True)

    def close(self) -> None:
        self._render_threads.shutdown(wait=True, cancel_futures=True)

    # -- plumbing --------------------------------------------------------------------------------
    def authorize(self, request: Request) -> None:
        self.creds.check(request.headers.get("authorization", ""))

    def url(self, request: Request, image_id: str) -> str:
        base = self.base_url or str(request.base_url).rstrip("/")
        return f"{base}/v1/image/{image_id}"

    async def thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking store work (SQLite, files) off the event loop."""
        return await run_in_threadpool(fn, *args)

    async def render(self, request: Request, options: Sequence[CreateOptions]) -> list[str]:
        """Ids for ``options``: store hits answered at once, misses admitted to the queue and rendered. A client
        that disconnects cancels its renders."""
        hits = await self.thread(lambda: [self.store.lookup(o) for o in options])
        todo = [o for o, hit in zip(options, hits, strict=True) if hit is None]
        misses = len(todo)
        if not misses:
            return [h for h in hits if h is not None]
        self.queue.acquire(misses)
        token = CancelToken()
        try:

            def work() -> list[str]:
                with cancellable(token):
                    made = iter(r["id"] for r in self.store.create_many(todo))  # hits are not looked up again
                    return [hit or next(made) for hit in hits]

            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._render_threads, contextvars.copy_context().run, work)
            gone = asyncio.ensure_future(_disconnected(request))
            waiting: set[asyncio.Future[Any]] = {job, gone}
            try:
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
            if not job.done() and gone.done() and not gone.cancelled() and gone.exception() is None:
                token.cancel()
                try:
                    await job
                except HctiError:
                    pass
                log.info("client went away; %d render(s) cancelled", misses)
                raise RenderCancelledError("The client closed the connection; the render was cancelled")
            return await job
        finally:
            self.queue.release(misses)

    def image_response(self, request: Request, image_id: str, q: ImageQuery, data: bytes, sha: str, cache: str) -> Response:
        etag = f'"{sha}"'
        headers = {"ETag": etag, "Cache-Control": cache}
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        disposition = "attachment" if q.dl else "inline"
        headers["Content-Disposition"] = f'{disposition}; filename="{image_id}.{q.format}"'
        return Response(data, media_type=MIME[q.format], headers=headers)

    # -- routes ----------------------------------------------------------------------------------
    async def create_image(self, request: Request) -> Response:
        self.authorize(request)
        options = CreateOptions.from_mapping(await _body(request))
        (image_id,) = await self.render(request, [options])
        return JSONResponse({"url": self.url(request, image_id), "id": image_id})

    async def get_image(self, request: Request) -> Response:
        image_id, ext = _split_name(request.path_params["name"])
        query = ImageQuery.from_mapping(dict(request.query_params), ext or "png")
        if request.headers.get("if-none-match"):  # answered from the index: an id's bytes never change
            known = await self.thread(self.store.known_digest, image_id, query)
            if known is not None and _etag_matches(request.headers["if-none-match"], f'"{known}"'):
                return Response(status_code=304, headers={"ETag": f'"{known}"', "Cache-Control": IMMUTABLE})
        data, sha = await self.thread(self.store.read, image_id, query)
        return self.image_response(request, image_id, query, data, sha, IMMUTABLE)

    async def delete_image(self, request: Request) -> Response:
        self.authorize(request)
        image_id, _ = _split_name(request.path_params["name"])
        await self.thread(self.store.delete, image_id)
        return Response(status_code=202)

    async def create_batch(self, request: Request) -> Response:
        self.authorize(request)
        body = await _body(request)
        options = batch_options(body.get("default_options"), body.get("variations"))
        ids = await self.render(request, options)
        return JSONResponse({"images": [{"url": self.url(request, i), "id": i} for i in ids]})

    async def delete_batch(self, request: Request) -> Response:
        self.authorize(request)
        ids = (await _body(request)).get("ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise BadRequestError("ids must be a non-empty list of image ids", param="ids")
        await self.thread(self.store.batch_delete, ids)
        return Response(status_code=202)

    async def list_images(self, request: Request) -> Response:
        self.authorize(request)
        query = ListQuery.from_mapping(dict(request.query_params))
        page = await self.thread(self.store.list, query.count, query.page_token)
        for image in page["images"]:
            image["url"] = self.url(request, image["id"])
        return JSONResponse(page)

    async def usage(self, request: Request) -> Response:
        self.authorize(request)
        return JSONResponse(await self.thread(self.store.usage))

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI document of these routes (no credentials: it describes the API, not the store)."""
        return JSONResponse(self._openapi)

    async def ping(self, request: Request) -> Response:
        self.authorize(request)
        return JSONResponse({"status": "ok"})

    async def create_and_render(self, request: Request) -> Response:
        """GET /v1/image/create-and-render/:user_id/:token[/:format]?<creation and image query>: the signed URL
        is its own credential (no Basic auth), so it can sit in an <img> on a page."""
        raw = request.scope["query_string"].decode("latin-1")
        user_ok = hmac.compare_digest(request.path_params["user_id"].encode(), self.creds.user_id.encode())
        # The token's one form is sign()'s, lowercase hex: compared as sent (an upper-case copy is another token).
        token_ok = hmac.compare_digest(request.path_params["token"].encode(), sign(raw, self.creds.api_key).encode())
        if not (user_ok and token_ok):
            raise UnauthorizedError("Invalid token")
        fmt = request.path_params.get("fmt") or "png"
        create, image, rest = split_params(dict(parse_qsl(raw, keep_blank_values=True)))
        if "format" in image:  # the format is the path's: in the query it is an unknown parameter, as on the API
            rest["format"] = image.pop("format")
        query = ImageQuery.from_mapping(image, fmt)
        options = CreateOptions.from_mapping({**create, **rest})  # unknown names are reported by name
        (image_id,) = await self.render(request, [options])
        data, sha = await self.thread(self.store.read, image_id, query)
        response = self.image_response(request, image_id, query, data, sha, "no-cache")
        response.headers["X-Image-Id"] = image_id
        return response

    async def gallery(self, request: Request) -> Response:
        self.authorize(request)
        token = request.query_params.get("page_token") or None

        def page() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            listing = self.store.list(GALLERY_PAGE, token)
            return listing, [self.store.info(i["id"]) for i in listing["images"]]

        listing, infos = await self.thread(page)
        for info in infos:
            info["url"] = self.url(request, info["id"])
            thumb = f"/v1/image/{info['id']}.jpg"
            info["thumb"] = thumb + (f"?width={THUMB_WIDTH}" if (info["width"] or 0) > THUMB_WIDTH else "")
            info["kb"] = f"{(info['size'] or 0) / 1024:.1f}"
            source = info["params"].get("url") or info["params"].get("html") or ""
            info["summary"] = " ".join(source.split())[:160]
        html = self._jinja.get_template("gallery.html").render(
            images=infos,
            next_token=listing["next_page_token"],
            first=token is None,
            store=str(self.store.path),
            base=self.base_url or str(request.base_url).rstrip("/"),
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (the body has been read; only a disconnect can follow)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _body(request: Request) -> dict[str, Any]:
    """A creation body as JSON, urlencoded or multipart (as the API accepts); files in a multipart body are
    read as UTF-8 text (`curl -F html=@page.html`)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        # A multipart body cut short parses as the parts before the cut (often none): said as what it is, not as
        # the "HTML is Required" of an empty form.
        boundary = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
        if boundary is None or b"--" + boundary.group(1).encode("latin-1") + b"--" not in await request.body():
            raise BadRequestError(
                "The body could not be parsed as multipart/form-data (no boundary, or no closing boundary)", param="body"
            )
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        out: dict[str, Any] = {}
        async with request.form(max_part_size=MAX_BODY) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    try:
                        value = (await value.read()).decode("utf-8")
                    except UnicodeDecodeError:
                        raise BadRequestError(f"{key} must be UTF-8 text", param=key) from None
                out[key] = value
        return out
    raw = await request.body()
    if not raw.strip():
        return {}
    data = read_json(raw, "body", "The body")
    if not isinstance(data, dict):
        raise BadRequestError("The body must be a JSON object", param="body")
    return data


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hcti-build")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return ""


def _split_name(name: str) -> tuple[str, str | None]:
    """``ID`` or ``ID.ext``; an unknown extension is the API's 422, checked before the id. A name that ends in a
    dot (`..`) has no extension: an unknown id, 404."""
    image_id, dot, ext = name.rpartition(".")
    if not dot:
        return name, None
    if not ext:
        raise NotFoundError(f"Image not found: {name[:60]!r}")
    parse_format(ext)
    return image_id, ext


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in header.split(",")]


async def _on_hcti_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HctiError)
    if exc.status_code >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in the API's JSON shape."""
    assert isinstance(exc, HTTPException)
    found = exc.status_code not in (404, 405)  # a route that refused the request (a body Starlette could not parse)
    error = HctiError(str(exc.detail) if found else f"No route for {request.method} {request.url.path}")
    error.status_code, error.error = exc.status_code, HTTPStatus(exc.status_code).phrase
    response = error_response(error)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:  # Starlette names the methods of the first route of the path; the path has more
        response.headers["Allow"] = ", ".join(_methods(request))
    return response


def _methods(request: Request) -> list[str]:
    """The methods of the path the request matched first (`/v1/image/batch`, before `/v1/image/{name}`)."""
    from starlette.routing import Match

    routes = [r for r in request.app.routes if isinstance(r, Route)]
    first = next((r for r in routes if r.matches(request.scope)[0] != Match.NONE), None)
    return sorted({m for r in routes if first is not None and r.path == first.path for m in r.methods or ()})


async def _on_crash(request: Request, exc: Exception) -> Response:
    """A bug of ours is still answered in the API's JSON (uvicorn logs the traceback)."""
    return error_response(HctiError(f"Internal error: {type(exc).__name__}"))


def create_app(store: Store, creds: Credentials, *, base_url: str | None = None, queue: int = 32) -> Starlette:
    """The ASGI app. Routes are the hosted API's; `/` is a gallery of the store (same credentials)."""
    api = Api(store, creds, base_url=base_url, queue=queue)
    routes = [
        Route("/", api.gallery, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/v1/ping", api.ping, methods=["GET"]),
        Route("/v1/usage", api.usage, methods=["GET"]),
        Route("/v1/images", api.list_images, methods=["GET"]),
        Route("/v1/image", api.create_image, methods=["POST"]),
        Route("/v1/image/batch", api.create_batch, methods=["POST"]),
        Route("/v1/image/batch", api.delete_batch, methods=["DELETE"]),
        Route("/v1/image/create-and-render/{user_id}/{token}", api.create_and_render, methods=["GET"]),
        Route("/v1/image/create-and-render/{user_id}/{token}/{fmt}", api.create_and_render, methods=["GET"]),
        Route("/v1/image/{name}", api.get_image, methods=["GET"]),
        Route("/v1/image/{name}", api.delete_image, methods=["DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HctiError: _on_hcti_error, HTTPException: _on_http_error, Exception: _on_crash},
    )
    app.state.api = api
    app.add_middleware(_BodyLimit, limit=MAX_BODY)
    return app
