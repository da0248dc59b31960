"""The error types every layer raises and catches, at the bottom of the import graph.

The LXD client, the services and the routes raise these; one handler (`app.core.errors`) turns
each into the contract's JSON shape (`{"detail", "code", "request_id"}`) with the HTTP status
carried by the class. How an LXD reply becomes one of them is `app.lxd.errors`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


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


@contextmanager
def reword_not_found(
    what: str,
    name: str,
    *,
    of: str | None = None,
    in_project: str | None = None,
    or_project: str | None = None,
    hint: str | None = None,
) -> Iterator[None]:
    """Inside the block, LXD's 404 (which rarely says what was missing) names the object:
    `with reword_not_found("Instance", name, in_project=project):` turns it into
    "Instance 'web1' not found in project 'p'". `of` names the parent ("instance 'web1'"),
    `hint` adds a reason in brackets. With `or_project`, a 404 in which LXD names the project
    says the project is missing instead."""
    try:
        yield
    except LXDNotFound as exc:
        if or_project is not None and "project" in exc.detail.lower():
            raise LXDNotFound(f"Project {or_project!r} not found") from exc
        raise LXDNotFound(
            not_found_detail(what, name, of=of, in_project=in_project, hint=hint)
        ) from exc


def not_found_detail(
    what: str,
    name: str,
    *,
    of: str | None = None,
    in_project: str | None = None,
    hint: str | None = None,
) -> str:
    detail = f"{what} {name!r}"
    if of is not None:
        detail += f" of {of}"
    detail += " not found"
    if in_project is not None:
        detail += f" in project {in_project!r}"
    if hint is not None:
        detail += f" ({hint})"
    return detail
