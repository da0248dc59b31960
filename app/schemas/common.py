"""Shared field types: LXD object names as LXD validates them, and common reply models.

No FastAPI here: the path parameters built on these patterns are in `app.api.params`."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# LXD instance names are host names: letters, digits and hyphens, at most 63 characters.
INSTANCE_NAME_PATTERN = r"^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
# Projects, pools, volumes, networks, snapshots, backups, aliases: no separators of any kind.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,127}$"
FINGERPRINT_PATTERN = r"^[A-Fa-f0-9]{1,64}$"
PROJECT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$"

InstanceNameField = Annotated[str, Field(pattern=INSTANCE_NAME_PATTERN, examples=["web1"])]
ObjectNameField = Annotated[str, Field(pattern=NAME_PATTERN)]

T = TypeVar("T")


class LXDObject(BaseModel):
    """An LXD object passed through as LXD sent it (fields newer LXD versions add are kept)."""

    model_config = ConfigDict(extra="allow")


class Page(BaseModel, Generic[T]):
    """A page of a list: our own paging on top of what LXD returned."""

    items: list[T]
    total: int = Field(description="How many items LXD returned before paging")
    limit: int | None
    offset: int


class OperationRef(BaseModel):
    """The reference a 202 answer carries for a background LXD operation."""

    operation_id: str
    operation_url: str = Field(examples=["/1.0/operations/8c3b5f4c-..."])
    poll_url: str = Field(examples=["/api/v1/operations/8c3b5f4c-..."])
    wait_url: str = Field(examples=["/api/v1/operations/8c3b5f4c-.../wait"])


class ErrorBody(BaseModel):
    """The shape of every error answer."""

    detail: Any = Field(description="A human message (a list of problems for a 422)")
    code: str = Field(description="A machine-readable code", examples=["not_found"])
    request_id: str = Field(description="The X-Request-ID of the request")
