"""The error hierarchy of the service layer.

Services raise these; one handler in `app.main` turns each into the contract's JSON shape
(`{"detail", "code", "request_id"}`) with the HTTP status carried by the class.
"""

from __future__ import annotations

import re


class AppError(Exception):
    """An error a client should see, with its HTTP status and machine code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class BadRequestError(AppError):
    status_code = 400
    code = "bad_request"


class PreconditionFailedError(AppError):
    status_code = 412
    code = "precondition_failed"


class InvalidNameError(AppError):
    """A name that would not stay inside its LXD path segment; rejected before any request."""

    status_code = 422
    code = "invalid_name"


class LXDError(AppError):
    """Anything LXD answered (or failed to answer) that the client must hear about."""

    status_code = 502
    code = "lxd_error"


class LXDNotFound(LXDError, NotFoundError):
    status_code = 404
    code = "not_found"


class LXDConflict(LXDError, ConflictError):
    status_code = 409
    code = "conflict"


class LXDBadRequest(LXDError, BadRequestError):
    status_code = 400
    code = "bad_request"


class LXDForbidden(LXDError):
    status_code = 403
    code = "lxd_forbidden"


class LXDPreconditionFailed(LXDError, PreconditionFailedError):
    status_code = 412
    code = "precondition_failed"


class LXDNotImplemented(LXDError):
    status_code = 501
    code = "not_implemented"


class LXDBadGateway(LXDError):
    """LXD answered something this API cannot read (not JSON, no envelope, wrong shape)."""

    status_code = 502
    code = "lxd_bad_reply"


class LXDUnavailable(LXDError):
    status_code = 503
    code = "lxd_unavailable"


class LXDTimeout(LXDError):
    status_code = 504
    code = "lxd_timeout"


class LXDOperationFailed(LXDError):
    """A background operation ended in failure; the status follows LXD's reason."""


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


class PolicyViolation(AppError):
    """The operator policy refused a write (`app.auth.policy`): a 403 that lists every
    violation at once, `violations: [{field, reason}]`, next to the usual error fields."""

    status_code = 403
    code = "policy_violation"

    def __init__(self, violations: list[dict[str, str]]) -> None:
        named = ", ".join(v["field"] for v in violations[:5])
        more = f" and {len(violations) - 5} more" if len(violations) > 5 else ""
        super().__init__(
            f"Refused by the operator policy ({named}{more}): see `violations`, and GET "
            "/api/v1/policy for what is allowed"
        )
        self.violations = violations
        self.body_extra = {"violations": violations}
