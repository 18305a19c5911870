"""The OpenAPI 3.1 document of `hcti serve`, served at GET /openapi.json: every route of `server.create_app`, its
request bodies (JSON and forms), path and query parameters, every status it answers with (errors in the API's
JSON body), and HTTP Basic. Parameters come from the options' declarations (`params_of`, `json_schema`), so
the document says what validation does; routes and statuses are listed here, once (a test holds them to the
app's routes).
"""

from __future__ import annotations

import copy
from typing import Any

from ..options import MIME, CreateOptions, ImageQuery, ListQuery, json_schema, params_of

# Why each status happens, as a client reads it; an operation lists the ones it can answer with.
STATUSES = {
    304: "Not modified: If-None-Match names the image's ETag (no body).",
    400: "A parameter is wrong: the message and validation_errors name each one.",
    401: "Missing or wrong credentials (HTTP Basic: user id and API key), or a signed URL's token does not match.",
    404: "No image has this id.",
    408: "The page did not become ready, or the render did not finish, within max_wait_ms.",
    410: "The image was deleted: every copy is gone.",
    413: "The request body is over 16 MB.",
    422: "Sorry, we do not currently support that format. Valid image types are: jpg, webp or png",
    429: "Too many renders in progress: retry after Retry-After seconds.",
    500: "Chromium failed to render the page, or a file could not be written.",
    507: "The disk is full.",
}
RENDERS = (400, 408, 429, 500, 507)  # what creating an image can answer besides its success
ERROR = {
    "type": "object",
    "description": "The API's error body, plus validation_errors: one field and message per bad parameter.",
    "required": ["error", "statusCode", "message", "validation_errors"],
    "properties": {
        "error": {"type": "string", "description": "The status's name, e.g. Bad Request."},
        "statusCode": {"type": "integer"},
        "message": {"type": "string"},
        "validation_errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# What one image's options need together (`options._check_document`, `_check_viewport`); a batch's variation
# may take them from default_options, so CreateOptions itself does not say it.
ONE_IMAGE = {
    "anyOf": [{"required": ["url"]}, {"required": ["html"], "properties": {"html": {"pattern": "\\S"}}}],
    "dependentRequired": {"viewport_width": ["viewport_height"], "viewport_height": ["viewport_width"]},
}
CREATED = {
    "type": "object",
    "required": ["url", "id"],
    "properties": {"url": {"type": "string", "description": "The image's URL."}, "id": {"type": "string"}},
}
LISTING = {
    "type": "object",
    "required": ["images", "next_page_token", "has_next_page"],
    "properties": {
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "url", "created_at"],
                "properties": {"id": {"type": "string"}, "url": {"type": "string"}, "created_at": {"type": "string"}},
            },
        },
        "next_page_token": {"type": ["string", "null"]},
        "has_next_page": {"type": "boolean"},
    },
}
COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
USAGE = {
    "type": "object",
    "required": ["data", "per_billing_period"],
    "properties": {
        "data": {"type": "object", "properties": {"hour": COUNTS, "day": COUNTS, "month": COUNTS}},
        "per_billing_period": {"type": "array"},
    },
}


def document(version: str = "") -> dict[str, Any]:
    """The whole document (a new dict each call: callers may change theirs)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hcti serve: the HTML/CSS to Image API, offline",
            "version": version or "0",
            "description": "The hosted API's routes over a local store; every render is local headless Chromium.",
        },
        "paths": _paths(),
        "components": {
            "schemas": {
                "Error": ERROR,
                "CreateOptions": json_schema(CreateOptions),
                "Created": CREATED,
                "Listing": LISTING,
                "Usage": USAGE,
            },
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic", "description": "User id : API key."}},
        },
        "security": [{"basic": []}],
    }


def _paths() -> dict[str, Any]:
    image_name = _path_param("name", "The image's id, optionally with a format's extension: ID.jpg (png when none).")
    signed = [
        _path_param("user_id", "The user id the URL was signed for."),
        _path_param("token", "HMAC-SHA256 of the query string, keyed with the API key, in lowercase hex."),
    ]
    fmt = {**_path_param("fmt", "The format."), "schema": {"type": "string", "enum": sorted(set(MIME))}}
    create_and_render = _create_and_render(signed)
    return {
        "/": {"get": _gallery()},
        "/openapi.json": {"get": _op("openapi", "This document.", _json({"type": "object"}), (), security=[])},
        "/v1/ping": {"get": _op("ping", "Credentials check.", _json(_object(status={"const": "ok"})), ())},
        "/v1/usage": {"get": _op("usage", "Renders by hour, day and month.", _json(_ref("Usage")), ())},
        "/v1/images": {
            "get": _op("list_images", "Stored images, newest first.", _json(_ref("Listing")), (400,), query=_query(ListQuery))
        },
        "/v1/image": {"post": _create_image()},
        "/v1/image/batch": {"post": _create_batch(), "delete": _delete_batch()},
        "/v1/image/create-and-render/{user_id}/{token}": {"get": create_and_render},
        "/v1/image/create-and-render/{user_id}/{token}/{fmt}": {
            "get": {
                **create_and_render,
                "operationId": "create_and_render_format",
                "parameters": [*signed, fmt, *create_and_render["parameters"][2:]],
            }  # fmt: skip
        },
        "/v1/image/{name}": {"get": _get_image(image_name), "delete": _delete_image(image_name)},
    }


def _op(
    op_id: str, summary: str, ok: dict[str, Any], errors: tuple[int, ...], *, query: list[Any] | None = None, **more: Any
) -> dict[str, Any]:
    """An operation: its success response (200 unless ``ok`` says which), its errors, query parameters and more
    (requestBody, parameters, security). Every operation that checks credentials can answer 401."""
    status, response = ok.pop("status", 200), ok
    responses: dict[str, Any] = {str(status): response}
    if more.get("security") != []:
        errors = (*errors, 401)
    for code in sorted(set(errors)):
        responses[str(code)] = _error(code)
    out = {"operationId": op_id, "summary": summary, "responses": responses, **more}
    if query:
        out["parameters"] = [*out.get("parameters", []), *query]
    return out


def _error(code: int) -> dict[str, Any]:
    if code == 304:
        return {"description": STATUSES[code], "headers": {"ETag": {"required": True, "schema": {"type": "string"}}}}
    response: dict[str, Any] = {"description": STATUSES[code], "content": {"application/json": {"schema": _ref("Error")}}}
    if code == 429:
        response["headers"] = {"Retry-After": {"required": True, "schema": {"type": "string"}}}
    if code == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Not for a token."}}
    return response


def _create_image() -> dict[str, Any]:
    links = {
        "GetImage": {"operationId": "get_image", "parameters": {"name": "$response.body#/id"}},
        "DeleteImage": {"operationId": "delete_image", "parameters": {"name": "$response.body#/id"}},
    }
    ok = {**_json(_ref("Created")), "links": links}
    form = {**_form_schema(json_schema(CreateOptions)), **ONE_IMAGE}
    body = {
        "required": True,
        "content": {
            "application/json": {"schema": {"allOf": [_ref("CreateOptions"), ONE_IMAGE]}},
            "application/x-www-form-urlencoded": {"schema": form},
            "multipart/form-data": {"schema": form},
        },
    }
    return _op("create_image", "Render HTML and CSS, or a URL, to an image.", ok, (*RENDERS, 413), requestBody=body)


def _create_batch() -> dict[str, Any]:
    options = _ref("CreateOptions")
    batch = {
        "type": "object",
        "required": ["variations"],
        "properties": {
            "default_options": {**options, "description": "Parameters every variation starts from."},
            "variations": {"type": "array", "minItems": 1, "maxItems": 25, "items": options},
        },
    }
    images = _object(images={"type": "array", "items": _ref("Created")})
    first = {"operationId": "get_image", "parameters": {"name": "$response.body#/images/0/id"}}
    ok = {**_json(images), "links": {"GetFirst": first}}
    body = {"required": True, "content": {"application/json": {"schema": batch}}}
    return _op("create_batch", "Render 1 to 25 images: variations over default_options.", ok, (*RENDERS, 413), requestBody=body)


def _delete_batch() -> dict[str, Any]:
    ids = _object(ids={"type": "array", "minItems": 1, "items": {"type": "string"}})
    body = {"required": True, "content": {"application/json": {"schema": {**ids, "required": ["ids"]}}}}
    done = {"status": 202, "description": "Deleted: every copy of every image."}
    return _op("delete_batch", "Delete images by id.", done, (400, 404, 410, 413, 507), requestBody=body)


def _get_image(name: dict[str, Any]) -> dict[str, Any]:
    query = [q for q in _query(ImageQuery) if q["name"] != "format"]  # the format is the name's extension
    ok = _image("The image, as the query asks.", "public, max-age=31536000, immutable")
    errors = (304, 400, 404, 408, 410, 422, 500, 507)
    return _op("get_image", "A stored image, cropped, resized or converted.", ok, errors, query=query, parameters=[name],
               security=[])  # fmt: skip


def _delete_image(name: dict[str, Any]) -> dict[str, Any]:
    done = {"status": 202, "description": "Deleted: every copy; getting it later is a 410."}
    return _op("delete_image", "Delete an image.", done, (404, 410, 422, 507), parameters=[name])


def _create_and_render(signed: list[dict[str, Any]]) -> dict[str, Any]:
    query = [_as_text(q) for q in _query(CreateOptions)] + [q for q in _query(ImageQuery) if q["name"] != "format"]
    ok = _image("The image (rendered, or the store's).", "no-cache")
    ok["headers"]["X-Image-Id"] = {"required": True, "schema": {"type": "string"}, "description": "The image's id."}
    ok["links"] = {"GetImage": {"operationId": "get_image", "parameters": {"name": "$response.header.X-Image-Id"}}}
    summary = "A signed URL that renders (or reuses) its image when fetched: its token is its credential."
    errors = (304, *RENDERS, 401, 422)  # 401: a token that is not the query's signature
    return _op("create_and_render", summary, ok, errors, query=query, parameters=signed, security=[])


def _gallery() -> dict[str, Any]:
    ok = {"description": "The store's images as an HTML page.", "content": {"text/html": {"schema": {"type": "string"}}}}
    token = [q for q in _query(ListQuery) if q["name"] == "page_token"]
    return _op("gallery", "A gallery of the store.", ok, (400,), query=token)


# -- pieces ---------------------------------------------------------------------------------------------
def _query(cls: type) -> list[dict[str, Any]]:
    """The query parameters an options class declares, each with its declaration's schema."""
    out = []
    for name, p in params_of(cls).items():
        schema = p.schema()
        out.append({"name": name, "in": "query", "description": schema.pop("description"), "schema": schema})
    return out


def _as_text(parameter: dict[str, Any]) -> dict[str, Any]:
    """An object parameter (pdf_options) in a query string or a form: its JSON text."""
    schema = parameter["schema"]
    if schema.get("type") != "object":
        return parameter
    text = {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}
    return {**parameter, "schema": text}


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    form = copy.deepcopy(schema)
    for name, prop in form["properties"].items():
        if prop.get("type") == "object":
            form["properties"][name] = {"description": prop["description"], **_as_text({"schema": prop})["schema"]}
    return form


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _image(description: str, cache: str) -> dict[str, Any]:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    headers = {
        "ETag": {"required": True, "schema": {"type": "string"}, "description": "The bytes' SHA-256, quoted."},
        "Cache-Control": {"required": True, "schema": {"const": cache}},
        "Content-Disposition": {"required": True, "schema": {"type": "string"}, "description": "inline, or attachment (dl)."},
    }
    content = {mime: {"schema": binary} for mime in sorted(set(MIME.values()))}
    return {"description": description, "headers": headers, "content": content}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": "Success.", "content": {"application/json": {"schema": schema}}}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}
