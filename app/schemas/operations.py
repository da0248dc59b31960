"""Schemas of LXD background operations and of the event relay's query."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from app.schemas.common import LXDObject, Page


class EventType(StrEnum):
    """The event types LXD's `/1.0/events` stream knows."""

    operation = "operation"
    logging = "logging"
    lifecycle = "lifecycle"


class OperationPublic(LXDObject):
    """An LXD operation as LXD reports it, minus its websocket secrets (`metadata.fds`)."""

    model_config = ConfigDict(
        extra="allow",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "8c3b5f4c-5a6e-4f43-9a59-0d2f2c1d9f10",
                    "class": "task",
                    "description": "Starting instance",
                    "created_at": "2026-01-01T12:00:00Z",
                    "updated_at": "2026-01-01T12:00:01Z",
                    "status": "Success",
                    "status_code": 200,
                    "resources": {"instances": ["/1.0/instances/web1"]},
                    "metadata": None,
                    "may_cancel": False,
                    "err": "",
                    "location": "none",
                    "requested_by": "alice",
                }
            ]
        },
    )

    id: str = Field(description="The operation's UUID")
    class_: str | None = Field(
        default=None, alias="class", description="`task`, `websocket` or `token`"
    )
    description: str | None = None
    status: str = Field(description="Pending, Running, Success, Failure, Cancelled")
    status_code: int = Field(description="105 Pending, 103 Running, 200, 400 Failure, 401")
    resources: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = Field(
        default=None, description="Operation-specific data (never the websocket secrets)"
    )
    may_cancel: bool = False
    err: str = Field(default="", description="Why the operation failed, if it did")
    requested_by: str | None = Field(
        default=None,
        description="Who started it through this API (from the audit log); null for operations "
        "started elsewhere (`lxc`, another client of LXD)",
    )


class OperationPage(Page[OperationPublic | str]):
    """The operations of a project: full objects, or their ids with `expand=false`."""
