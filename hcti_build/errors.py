"""The one exception tree. Every error carries the hosted API's HTTP status, error name and message."""

from __future__ import annotations

import errno
from http import HTTPStatus
from typing import Any


class HctiError(Exception):
    """Root of every error hcti-build raises; ``to_json()`` gives the API's error body."""

    status_code = 500
    error = "Internal Server Error"  # the API's name for the status; a subclass without one gets HTTP's phrase

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "error" not in cls.__dict__ and cls.status_code in HTTPStatus._value2member_map_:
            cls.error = HTTPStatus(cls.status_code).phrase

    def __init__(self, message: str, *, param: str | None = None, errors: list[HctiError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        # Every bad field of one request, so a client fixes them all at once (the first is this error itself).
        self.errors = errors or ([self] if param else [])

    @property
    def validation_errors(self) -> list[dict[str, str]]:
        return [{"field": e.param or "", "message": e.message} for e in self.errors]

    def to_json(self) -> dict[str, Any]:
        """The API's error body, plus ``validation_errors``: one ``{"field", "message"}`` per bad field."""
        return {
            "error": self.error,
            "statusCode": self.status_code,
            "message": self.message,
            "validation_errors": self.validation_errors,
        }

    def about(self, what: str) -> HctiError:
        """This error said about one thing (``what: message``): the same class, status and fields, so a 400 stays a
        400 (a bare HctiError made of it was answered "Internal Server Error")."""
        err = type(self).__new__(type(self))
        err.__dict__.update(self.__dict__)
        err.message = f"{what}: {self.message}"
        err.args = (err.message,)
        err.errors = [err if e is self else e for e in self.errors]
        return err

    def _render_traceback_(self) -> list[str]:
        """IPython and Jupyter show this instead of a traceback: the API's error, not our internals."""
        return [f"{type(self).__name__}: {self}"]


class BadRequestError(HctiError):
    """Bad creation or query input (400), naming the parameter and its allowed range."""

    status_code = 400


class UnsupportedFormatError(HctiError):
    """An unknown file extension (422), with the seed's exact text."""

    status_code = 422

    def __init__(self, fmt: str = "") -> None:
        super().__init__(
            "Sorry, we do not currently support that format. Valid image types are: jpg, webp or png",
            param="format",
        )
        self.format = fmt


class UnauthorizedError(HctiError):
    """Missing or wrong credentials (401), or a signed URL whose token does not match ("Invalid token")."""

    status_code = 401


class PayloadTooLargeError(HctiError):
    """A request body over the server's limit (413), refused before it is read in full."""

    status_code = 413
    error = "Payload Too Large"  # the API's name (Python's HTTPStatus has the older "Request Entity Too Large")


class TooManyRequestsError(HctiError):
    """The render queue is full (429); retry shortly."""

    status_code = 429


class NotFoundError(HctiError):
    """An id the store never had (404)."""

    status_code = 404


class GoneError(HctiError):
    """An id whose image was deleted (410): every copy is gone."""

    status_code = 410


class RenderError(HctiError):
    """Chromium failed to render (crash, navigation failure)."""

    status_code = 500
    error = "Render Failed"


class RenderTimeoutError(RenderError):
    """The page did not become ready, or the render did not finish, within max_wait_ms (408)."""

    status_code = 408


class RenderCancelledError(RenderError):
    """The caller cancelled the render (an HTTP client that disconnected); nothing was stored."""

    status_code = 499
    error = "Client Closed Request"


class WriteError(HctiError):
    """A file or the store's index could not be written (disk full, no permission). Nothing partial is left:
    the final path holds its old bytes or nothing, and the store's index is unchanged."""

    status_code = 500
    error = "Write Failed"

    @classmethod
    def of(cls, exc: Exception, path: object, *, full: bool = False) -> WriteError:
        """``exc`` (an OSError, or the index's error with ``full`` when the disk is full) naming ``path``."""
        reason = getattr(exc, "strerror", None) or str(exc)
        full = full or getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        err = cls(f"Cannot write {path}: {reason}" + (" (free some space, or put it on another disk)" if full else ""))
        if full:
            err.status_code, err.error = 507, "Insufficient Storage"
        return err


class RemoteError(HctiError):
    """The store's remote failed (unreachable, slow, denied, full): a warning unless HCTI_REMOTE_REQUIRED=1."""

    status_code = 502


class BrowserNotFoundError(HctiError):
    status_code = 500
    error = "Browser Not Found"


class DirectiveError(HctiError):
    """An error located in a source file, shown as ``path:line:col: message`` (the API's message)."""

    def __init__(
        self, message: str, *, path: str, line: int, col: int = 1, param: str | None = None, status_code: int = 400
    ) -> None:
        super().__init__(message, param=param)
        self.path, self.line, self.col = path, line, col
        self.status_code = status_code
        self.error = {400: "Bad Request", 422: "Unprocessable Entity"}.get(status_code, "Render Failed")

    @classmethod
    def at(cls, exc: HctiError, path: str, line: int, col: int = 1) -> DirectiveError:
        if isinstance(exc, DirectiveError):
            return exc
        return cls(exc.message, path=path, line=line, col=col, param=exc.param, status_code=exc.status_code)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"
