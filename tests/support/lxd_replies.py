"""LXD's replies, as LXD 5.x sends them: build every mocked LXD answer from these.

LXD answers in one of three envelopes (`/1.0` REST API, "Return values" in its docs):
`sync` (the object in `metadata`), `async` (202: an operation started, its URL in `operation`
and the operation object in `metadata`) and `error` (`error_code` and `error`). `operation()`
is the operation object itself, as `GET /1.0/operations/<id>` and its `/wait` return it.

`envelope()` is the body alone, for a reply framed by hand (a stream, an odd status). A test
of how the client copes with a malformed envelope writes that one by hand.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

OP_ID = "0000-op"


def envelope(kind: str = "sync", status_code: int = 200, **fields: Any) -> dict[str, Any]:
    """LXD's reply body with every field its Go struct (`api.Response`) always sends; `fields`
    replaces some (`metadata`, `operation`, `error_code`, `error`, `status`)."""
    body = {
        "type": kind,
        "status": "Success",
        "status_code": status_code,
        "operation": "",
        "error_code": 0,
        "error": "",
        "metadata": None,
    }
    body.update(fields)
    return body


def sync_body(metadata: Any = None) -> dict[str, Any]:
    return envelope(metadata=metadata)


def sync(
    metadata: Any = None,
    status: int = 200,
    *,
    etag: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A sync reply; `status` is the HTTP status (LXD answers 201 to some creates)."""
    extra = {"ETag": etag} if etag else {}
    return httpx.Response(status, json=sync_body(metadata), headers={**extra, **(headers or {})})


def streamed(metadata: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A sync reply whose body is still to be read, as it comes off a socket (a `json=` body
    counts as read already)."""
    content = json.dumps(sync_body(metadata)).encode()
    return httpx.Response(200, stream=httpx.ByteStream(content), headers=headers)


def error_body(status: int, message: str) -> dict[str, Any]:
    return envelope("error", 0, status="", error_code=status, error=message)


def error(status: int, message: str) -> httpx.Response:
    """LXD's error reply: HTTP status and `error_code` agree."""
    return httpx.Response(status, json=error_body(status, message))


def not_found(message: str = "Not Found") -> httpx.Response:
    return error(404, message)


def operation(
    op_id: str = OP_ID,
    *,
    status: str = "Running",
    status_code: int = 103,
    op_class: str = "task",
    description: str = "",
    metadata: Any = None,
    **fields: Any,
) -> dict[str, Any]:
    """An operation object; `fields` adds or replaces top-level keys (`may_cancel`, `err`)."""
    op = {
        "id": op_id,
        "class": op_class,
        "description": description,
        "status": status,
        "status_code": status_code,
        "metadata": metadata,
        "may_cancel": False,
        "err": "",
    }
    op.update(fields)
    return op


def started(op: dict[str, Any] | None = None, *, op_id: str = OP_ID) -> httpx.Response:
    """The 202 of an async write: the operation `op` (a running task `op_id` by default)."""
    op = op if op is not None else operation(op_id)
    url = f"/1.0/operations/{op['id']}"
    body = envelope("async", 100, status="Operation created", operation=url, metadata=op)
    return httpx.Response(202, json=body, headers={"Location": url})
