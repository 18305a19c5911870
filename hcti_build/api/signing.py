"""Credentials and signed URLs, without the server's dependencies (`hcti sign` needs neither Starlette nor
uvicorn): the HTTP Basic user id and API key `hcti serve` accepts, and create-and-render URLs signed with them
as on the hosted API (the token is the HMAC-SHA256 of the query string).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from ..config import config_value
from ..errors import BadRequestError, UnauthorizedError
from ..options import parse_format


@dataclass(frozen=True)
class Credentials:
    """The HTTP Basic user id and API key the server accepts; ``generated`` when made up for this run."""

    user_id: str
    api_key: str
    generated: bool = False

    @classmethod
    def resolve(cls, user_id: str | None = None, api_key: str | None = None, *, generate: bool = True) -> Credentials:
        """From the arguments, else HCTI_USER_ID / HCTI_API_KEY, else `user_id` / `api_key` in the project's
        config; with ``generate``, a missing key (and user id) is made up."""

        def pick(value: str | None, env: str, key: str) -> str | None:
            found = None if value or os.environ.get(env) else config_value(key)
            return value or os.environ.get(env) or (found[0] if found else None)

        uid = pick(user_id, "HCTI_USER_ID", "user_id")
        key = pick(api_key, "HCTI_API_KEY", "api_key")
        if key and not uid:
            raise BadRequestError("HCTI_API_KEY is set but HCTI_USER_ID is not: set both", param="user_id")
        if key and uid:
            return cls(uid, key)
        if not generate:
            raise BadRequestError("no credentials: set HCTI_USER_ID and HCTI_API_KEY (as for hcti serve)", param="api_key")
        return cls(uid or str(uuid.uuid4()), secrets.token_urlsafe(24), generated=True)


    def check(self, header: str) -> None:
        """An Authorization header checked for HTTP Basic with these credentials: a 401 if it is not."""
        scheme, _, value = header.partition(" ")
        user = key = ""
        if scheme.lower() == "basic":
            try:
                user, _, key = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except ValueError:  # not base64 (binascii.Error), not ASCII (a header is Latin-1), not UTF-8 inside
                pass
        # Both compared in constant time, and both always compared: no timing tells which one was wrong.
        ok_user = hmac.compare_digest(user.encode(), self.user_id.encode())
        ok_key = hmac.compare_digest(key.encode(), self.api_key.encode())
        if not (ok_user and ok_key):
            message = (
                "Invalid user id or API key" if header else "Authentication required: HTTP Basic with your user id and API key"
            )
            raise UnauthorizedError(message)


def sign(query: str, api_key: str) -> str:
    """The create-and-render token: lowercase hex HMAC-SHA256 of the raw query string, keyed with the API key."""
    return hmac.new(api_key.encode(), query.encode(), hashlib.sha256).hexdigest()


def signed_url(base_url: str, creds: Credentials, params: str | Sequence[tuple[str, str]], fmt: str | None = None) -> str:
    """A create-and-render URL for ``params`` (a query string or pairs), re-encoded in one canonical form
    (RFC 3986, ``%20`` for spaces) so that what is signed is exactly what a client sends."""
    pairs = parse_qsl(params, keep_blank_values=True, strict_parsing=False) if isinstance(params, str) else list(params)
    query = urlencode(pairs, quote_via=quote, safe="")
    path = f"/v1/image/create-and-render/{quote(creds.user_id, safe='')}/{sign(query, creds.api_key)}"
    if fmt:
        path += f"/{parse_format(fmt)}"
    return f"{base_url.rstrip('/')}{path}?{query}"
