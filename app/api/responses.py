"""How routes answer: `lxd_answer()` for an LXD object or a page of them, `responses=` for the
OpenAPI document, the response classes routes share, and the small header helpers (`Location`,
`If-Match`).

Route modules import these from here, never from each other.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any
from urllib.parse import quote

import pydantic_core
from fastapi import Depends, Header
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import TypeAdapter, ValidationError
from starlette.types import Receive, Scope, Send

from app.errors import PreconditionFailedError
from app.lxd import Download
from app.schemas.common import ErrorBody, OperationRef
from app.schemas.policy import PolicyErrorBody

Responses = dict[int | str, dict[str, Any]]

# One wording per status, generic on purpose: the route's own description says when it happens.
ERROR_MESSAGES: dict[int, str] = {
    400: "Bad request: LXD (or this API) refused the input or the action (the reason in `detail`)",
    401: "Not authenticated: missing, invalid or expired token (on login: wrong credentials)",
    403: "Forbidden: the user's role is too low (in the request's project)",
    404: "Not found: the object, or the project (`?project=`; also a project the caller has "
    "no role in)",
    409: "Conflict: name taken, object in use, or in the wrong state for this (the reason in "
    "`detail`)",
    412: "Precondition failed: `If-Match` does not match the object's current ETag",
    413: "Body too large",
    415: "Unsupported media type (e.g. not a form)",
    422: "Invalid input: a name, query parameter or body field (the reason in `detail`)",
    429: "Too many requests: retry after `Retry-After` seconds",
    502: "LXD failed, or sent a reply that cannot be read (LXD's reason in `detail`)",
    503: "LXD is unreachable",
    504: "LXD did not answer (or the operation did not end) in time",
}
AUTH_ERRORS = (401, 403)
LXD_ERRORS = (422, 502, 503, 504)
# A password check while the shared rate-limit store (Redis) is down (app.api.limits).
LIMITER_DOWN: Responses = {
    503: {
        "model": ErrorBody,
        "description": "The rate-limit store (Redis) is unreachable: password checks are refused "
        "until it answers (`code: rate_limit_unavailable`, `Retry-After`)",
    }
}


def error_responses(*codes: int, protected: bool = True, lxd: bool = True) -> Responses:
    """`responses=` for a route's errors, in the common `ErrorBody` shape: the given codes, plus
    401/403 on a `protected` route and 422/502/503/504 on an `lxd`-backed one (every such route
    takes a name or `?project=`)."""
    always = (*(AUTH_ERRORS if protected else ()), *(LXD_ERRORS if lxd else ()))
    return {
        code: {"model": ErrorBody, "description": ERROR_MESSAGES[code]}
        for code in sorted({*always, *codes})
    }


# Routes that write instance config or devices: the operator policy's 403 (app.auth.policy).
POLICY_RESPONSES: Responses = {
    403: {
        "model": PolicyErrorBody,
        "description": "Forbidden: the user's role is too low, or the operator policy refused "
        "the write (`code: policy_violation`, every violation in `violations`)",
    }
}


_ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def text_route_errors(*codes: int, protected: bool = True, lxd: bool = True) -> Responses:
    """`error_responses()` for a route whose success is not JSON: its errors still are."""
    return {
        code: {"description": entry["description"], "content": _ERROR_JSON}
        for code, entry in error_responses(*codes, protected=protected, lxd=lxd).items()
    }


# A route that starts an LXD operation: 202 + reference, or 200 + the operation with `wait=true`.
ACCEPTED_RESPONSES: Responses = {
    202: {"model": OperationRef, "description": "Started: poll or wait on the operation"},
}
ASYNC_RESPONSES: Responses = {
    **ACCEPTED_RESPONSES,
    200: {
        "description": "With `wait=true`: the finished LXD operation (websocket secrets removed)"
    },
}


def _if_match(
    value: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=200,
            description="Write only if the object's ETag (from a GET) still matches: 412 "
            "otherwise. Passed to LXD as is.",
        ),
    ] = None,
) -> str | None:
    # An ETag is visible ASCII (RFC 9110): anything else can match no object, and would not
    # survive the way to LXD (header values are sent as ASCII).
    if value is not None and not all(" " <= c <= "~" for c in value):
        raise PreconditionFailedError("If-Match is not a valid ETag: it matches no object")
    return value


IfMatch = Annotated[str | None, Depends(_if_match)]


def location(*segments: str) -> str:
    """A `Location` header value for an object of this API (each segment URL-quoted)."""
    return "/api/v1/" + "/".join(quote(s, safe="") for s in segments)


class LXDJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core: LXD objects are large (a 50-instance list is ~90 KB) and
    this is 2-3x faster than `json.dumps`."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


@cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def lxd_answer(
    body: Any,
    *,
    model: Any = None,
    etag: str | None = None,
    age: int | None = None,
    location: str | None = None,
    status_code: int = 200,
) -> LXDJSONResponse:
    """THE way a route answers an LXD object, or a `Page` of them: rendered by pydantic-core,
    with LXD's `ETag` (what `If-Match` takes), the read model's `Age` (seconds since it was
    loaded; `None` for an answer read from LXD) and the new object's `Location`, each only
    when given. Returning a response skips FastAPI's `response_model` step, so the decorator's
    `response_model=` only documents the route.

    `model` (the route's `response_model`) runs the body through that model as FastAPI would
    (same validation, defaults filled in, aliases; a body that does not fit is the same 500):
    give it wherever the answer used to go through `response_model`, so that the body stays
    what it was. Without it the body goes out as LXD sent it."""
    headers: dict[str, str] = {}
    if etag:
        headers["ETag"] = etag
    if age is not None:
        headers["Age"] = str(age)
    if location:
        headers["Location"] = location
    if model is not None:
        try:
            body = _adapter(model).validate_python(body, from_attributes=True)
        except ValidationError as exc:
            raise ResponseValidationError(exc.errors(include_url=False), body=body) from exc
    return LXDJSONResponse(body, status_code=status_code, headers=headers or None)


class DownloadResponse(StreamingResponse):
    """Streams a `Download` and closes the upstream LXD stream however the response ends: fully
    sent, failed, or abandoned by a client that went away."""

    def __init__(
        self, download: Download, *, media_type: str, headers: dict[str, str] | None = None
    ) -> None:
        merged = dict(headers or {})
        if download.content_length is not None:
            merged["Content-Length"] = download.content_length
        super().__init__(download.chunks(), media_type=media_type, headers=merged)
        self.download = download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.download.aclose()
