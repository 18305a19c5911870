"""What the API's surfaces share (the HTTP server, MCP over stdio and over HTTP): the admission of renders
(`RenderQueue`: a bounded number running or waiting, then the API's 429) and the API's JSON error response."""

from __future__ import annotations

from starlette.responses import JSONResponse

from ..errors import HctiError, TooManyRequestsError, UnauthorizedError


class RenderQueue:
    """Admission for renders: ``limit`` renders running or waiting for a page. Used from the event loop only."""

    def __init__(self, pages: int, queue: int) -> None:
        self.pages, self.queue = pages, queue
        self.limit = pages + queue
        self.admitted = 0

    def acquire(self, n: int) -> None:
        # A batch larger than the whole queue still runs when nothing else is admitted, so it is never refused
        # for good.
        if self.admitted and self.admitted + n > self.limit:
            raise TooManyRequestsError(
                f"Too many renders in progress: {self.admitted} running or queued, limit {self.limit} "
                f"({self.pages} pages + {self.queue} queued). Retry shortly."
            )
        self.admitted += n

    def release(self, n: int) -> None:
        self.admitted -= n


def error_response(exc: HctiError) -> JSONResponse:
    headers = {}
    if isinstance(exc, UnauthorizedError) and exc.message != "Invalid token":
        headers["WWW-Authenticate"] = 'Basic realm="hcti-build", charset="UTF-8"'
    if isinstance(exc, TooManyRequestsError):
        headers["Retry-After"] = "1"
    return JSONResponse(exc.to_json(), status_code=exc.status_code, headers=headers)
