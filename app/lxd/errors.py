"""How LXD's answers become the typed errors of `app.errors`.

`error_from_lxd()` reads an LXD error reply (or a failed operation's `err`); `transport_errors()`
maps httpx's transport failures, in one place for every call the client makes (the way httpx's
own `map_httpcore_exceptions()` does for httpcore).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from app.errors import (
    LXDBadGateway,
    LXDBadRequest,
    LXDConflict,
    LXDError,
    LXDForbidden,
    LXDNotFound,
    LXDNotImplemented,
    LXDPreconditionFailed,
    LXDTimeout,
    LXDUnavailable,
)

_BY_STATUS: dict[int, type[LXDError]] = {
    400: LXDBadRequest,
    403: LXDForbidden,
    404: LXDNotFound,
    409: LXDConflict,
    412: LXDPreconditionFailed,
    501: LXDNotImplemented,
}

# LXD answers some client mistakes with a 500 (or reports them only as a failed operation's
# `err`). These messages are about the request, not about LXD, so they are reported as what they
# are. The one table of them: (pattern, error, the LXD version the message was seen on). Checked
# in order; the first match wins. An LXD 5xx that matches none stays a 502 `lxd_error`.
LXD_REQUEST_MISTAKES: tuple[tuple[str, type[LXDError], str], ...] = (
    (r'is busy running a "?\w+"? operation', LXDConflict, "5.0.2: restore/state while stopping"),
    (r"already exists|already in use", LXDConflict, "5.0.2: create with a taken name"),
    (r"is in use|is currently in use|only empty", LXDConflict, "5.0.2: delete of a used object"),
    (r"more than one .* matches", LXDConflict, "5.0.2: ambiguous image fingerprint prefix"),
    (r"not found|no such object|doesn't exist|does not exist", LXDNotFound, "5.0.2"),
    (r"not provided", LXDBadRequest, "5.0.2: Image not provided for instance creation"),
    (
        r"Unable to connect to|Failed getting remote image info",
        LXDBadRequest,
        "5.0.2: an image source server (the client's URL) that does not answer",
    ),
    (
        r"invalid|failed to parse|unknown|not supported|isn't supported|must be|cannot|can't|"
        r"is required|bad value|not allowed",
        LXDBadRequest,
        "5.0.2: config and device validation",
    ),
    (
        r"is running|is not running|already running|already stopped|isn't running|not running",
        LXDBadRequest,
        "5.0.2: state changes that do not apply",
    ),
)
_MESSAGE_RULES = tuple((re.compile(p, re.I), cls) for p, cls, _seen in LXD_REQUEST_MISTAKES)


def error_from_lxd(status: int, message: str) -> LXDError:
    """Build the typed error for an LXD error reply (or a failed operation's `err`)."""
    detail = message or f"LXD answered with status {status}"
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = next((rule for pattern, rule in _MESSAGE_RULES if pattern.search(detail)), LXDError)
    return cls(detail)


@contextmanager
def transport_errors(method: str, path: str, *, midway: bool = False) -> Iterator[None]:
    """Turn httpx's transport failures inside the block into typed errors.

    Before LXD answered: no answer in time is a 504, no connection a 503, a broken exchange a
    502. `midway` (a body being read after LXD answered): a stall is a 504, anything else a 502.
    """
    try:
        yield
    except httpx.TimeoutException as exc:
        if midway:
            raise LXDTimeout("LXD stopped sending in the middle of a download") from exc
        raise LXDTimeout(f"LXD did not answer {method} {path} in time") from exc
    except (httpx.HTTPError, OSError) as exc:
        if midway:
            raise LXDBadGateway(f"LXD broke off a download: {reason(exc)}") from exc
        if isinstance(exc, httpx.ConnectError | httpx.NetworkError | OSError):
            raise LXDUnavailable(f"LXD is unreachable: {reason(exc)}") from exc
        raise LXDBadGateway(f"LXD broke the connection: {reason(exc)}") from exc


def reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]
