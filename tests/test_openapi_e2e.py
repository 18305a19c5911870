"""GET /openapi.json against the app it describes, and Schemathesis against a live `hcti serve` (#28, part 5):
uvicorn on 127.0.0.1 serving the real app on the session's browser, every operation fuzzed with schema-valid
and schema-breaking requests (a fixed seed, so a run is repeatable), checked for no 5xx and for responses as
the document says (status, content type, headers, body schema)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import CREDS, Uvicorn
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from hcti_build import Engine, Store
from hcti_build.api import openapi
from hcti_build.api.server import create_app
from hcti_build.options import CreateOptions, ImageQuery, ListQuery, params_of

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]  # fmt: skip
CONFIG = f"""
seed = 28
[generation]
max-examples = 12
deterministic = true
mode = "all"
[auth]
basic = {{ username = "{CREDS.user_id}", password = "{CREDS.api_key}" }}
"""


class Live:
    """The app on uvicorn on a free port of 127.0.0.1, for a whole module (one server for every operation)."""

    def __init__(self, store: Store) -> None:
        self.app = create_app(store, CREDS)
        self.server = Uvicorn(self.app)
        self.base = self.server.base

    def close(self) -> None:
        self.server.stop()
        self.app.state.api.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, engine: Engine) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("fuzz")
    store = Store(folder / "store", root=folder, engine=engine)
    served = Live(store)
    yield served
    served.close()
    store.close()


def test_the_document_is_valid_openapi_31_and_covers_every_route(live: Live) -> None:
    r = httpx.get(f"{live.base}/openapi.json")  # no credentials
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    validate(doc)
    assert doc == openapi.document(doc["info"]["version"])  # what the fuzzing below is driven by
    assert doc["openapi"] == "3.1.0" and doc["components"]["securitySchemes"]["basic"] == {
        "type": "http", "scheme": "basic", "description": "User id : API key."}  # fmt: skip
    routes = {(route.path.replace("{fmt}", "{fmt}"), method.lower()) for route in live.app.routes
              if isinstance(route, Route) for method in route.methods or () if method != "HEAD"}  # fmt: skip
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == routes
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "200" in op["responses"] or "202" in op["responses"], (path, method)
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_parameters_are_the_declared_ones(live: Live) -> None:
    doc = httpx.get(f"{live.base}/openapi.json").json()
    create = doc["components"]["schemas"]["CreateOptions"]["properties"]
    assert create.keys() == params_of(CreateOptions).keys()
    assert create["ms_delay"] == {"description": "Wait this many ms after the page is ready (0-20000).", "type": "integer",
                                  "minimum": 0, "maximum": 20000}  # fmt: skip
    assert "printBackground" in create["pdf_options"]["properties"] and create["pdf_options"]["additionalProperties"] is False
    query = {p["name"] for p in doc["paths"]["/v1/image/{name}"]["get"]["parameters"] if p["in"] == "query"}
    assert query == params_of(ImageQuery).keys() - {"format"}  # the format is the name's extension
    listing = {p["name"]: p["schema"] for p in doc["paths"]["/v1/images"]["get"]["parameters"]}
    assert listing.keys() == params_of(ListQuery).keys() and listing["count"]["maximum"] == 50
    form = doc["paths"]["/v1/image"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["pdf_options"]["contentMediaType"] == "application/json"  # JSON text in a form


def cheap(body: Any, *, wait: int = 150) -> Any:
    """A render kept cheap, whatever else the request says: no delay, a short deadline (also for a page that never
    calls ScreenshotReady), a small viewport. Applied to each request as it is sent: the coverage phase's
    boundary cases (ms_delay=20000) do not pass through Schemathesis's generation hooks."""
    if not isinstance(body, dict):
        return body
    caps = {"ms_delay": 0, "max_wait_ms": wait, "viewport_width": 300, "viewport_height": 300}
    for key, cap in caps.items():
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            body[key] = cap
    if "html" in body or "url" in body:
        body.setdefault("max_wait_ms", caps["max_wait_ms"])
    cheap(body.get("default_options"), wait=wait)
    for variation in body.get("variations") if isinstance(body.get("variations"), list) else []:
        cheap(variation, wait=wait)
    return body


def sure(body: Any) -> Any:
    """A render that succeeds however loaded the machine is: the walk below replays its steps (Hypothesis), and a
    create that timed out once and not the next time is "inconsistent data generation" (CI under load saw it). So
    no page waits for a ScreenshotReady that may never come, and the deadline is generous."""
    if isinstance(body, dict):
        variations = body.get("variations") if isinstance(body.get("variations"), list) else []
        for options in (body, body.get("default_options"), *variations):
            if isinstance(options, dict):
                options.update({key: value for key, value in (("render_when_ready", False), ("max_wait_ms", 10000))
                                if key in options})  # fmt: skip
    return cheap(body, wait=10000)


# The document as the server builds it (test_the_document_is_valid... checks that it is the one served). Loaded
# here, not from a fixture: Schemathesis's `pytest.from_fixture` reads pytest's private `_nodeid`, gone in pytest 9.
fuzzed = schemathesis.openapi.from_dict(openapi.document(), config=schemathesis.Config.from_str(CONFIG))


SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) of every request the fuzzing made


@pytest.fixture
def counted(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each operation's fuzzing was not vacuous: checked after its item ran, by the item itself, so the check holds
    however pytest-xdist shares the items out (Schemathesis's twelve items have one node id, and a test that read
    every count afterwards saw only its own worker's share)."""
    label = request.node.operation_label
    yield
    calls = SEEN[(label, -1)]
    assert calls >= 5, (label, calls)
    if label == "POST /v1/image":  # schema-valid bodies made real images, and invalid ones were refused
        assert SEEN[(label, 200)] >= 3 and SEEN[(label, 400)] >= 3, dict(SEEN)


def test_every_operation_is_fuzzed(request: pytest.FixtureRequest) -> None:
    labels = [getattr(item, "operation_label", None) for item in request.session.items]
    fuzzing = sorted(label for label in labels if label)
    assert fuzzing == sorted(op.ok().label for op in fuzzed.get_all_operations()) and len(fuzzing) == 12


@fuzzed.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # `counted` is meant once per operation
def test_no_operation_answers_a_5xx_or_off_the_document(case: schemathesis.Case, live: Live, counted: None) -> None:
    case.body = cheap(case.body)
    try:
        response = case.call_and_validate(base_url=live.base, checks=CHECKS, timeout=30)
    finally:
        SEEN[(case.operation.label, -1)] += 1
    SEEN[(case.operation.label, response.status_code)] += 1


def test_linked_operations_on_the_images_they_make(live: Live) -> None:
    """Stateful: the document's links walked (a created image's id to GET and DELETE /v1/image/{name}), so the
    image queries (crops, resizes, formats, a PDF) run on images that exist."""

    positive = schemathesis.Config.from_str(CONFIG.replace('mode = "all"', 'mode = "positive"'))
    walked = schemathesis.openapi.from_dict(openapi.document(), config=positive)

    class Walk(walked.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            case.body = sure(case.body)
            return {"base_url": live.base, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, *args: Any, **kwargs: Any) -> None:
            SEEN[(f"linked {case.operation.label}", response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

    Walk.run(settings=settings(max_examples=60, stateful_step_count=8, deadline=None, derandomize=True, database=None,
                               suppress_health_check=list(HealthCheck)))  # fmt: skip
    got = sum(n for (op, status), n in SEEN.items() if op == "linked GET /v1/image/{name}" and status == 200)
    assert got >= 4, SEEN  # images that existed were read, through the query
