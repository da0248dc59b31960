"""Instance snapshots: create, rename/expiry, restore, and the objects LXD returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.common import LXDObject, ObjectNameField


class SnapshotCreate(BaseModel):
    """`POST /instances/{name}/snapshots`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "before-upgrade"},
                {"name": "nightly", "expires_at": "2030-01-01T00:00:00Z"},
            ]
        },
    )

    name: ObjectNameField
    stateful: bool = Field(default=False, description="Include the running state (CRIU)")
    expires_at: datetime | None = Field(default=None, description="When LXD deletes it")


class SnapshotUpdate(BaseModel):
    """`PATCH .../snapshots/{snapshot}`: rename it (`name`) and/or change its expiry."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "before-upgrade-2"}, {"expires_at": "2030-06-01T00:00:00Z"}]
        },
    )

    name: ObjectNameField | None = Field(default=None, description="New name (a rename)")
    expires_at: datetime | None = Field(default=None, description="New expiry date")

    @model_validator(mode="after")
    def _something(self) -> SnapshotUpdate:
        if self.name is None and self.expires_at is None:
            raise ValueError("give `name` (rename) and/or `expires_at`")
        return self


class SnapshotRestore(BaseModel):
    """`POST .../snapshots/{snapshot}/restore` (optional body)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"stateful": False}]})

    stateful: bool = Field(default=False, description="Restore the running state too")


class SnapshotPublic(LXDObject):
    """A snapshot as LXD describes it; other fields pass through."""

    name: str = Field(examples=["before-upgrade"])
    created_at: str | None = None
    expires_at: str | None = None
    stateful: bool | None = None
    config: dict[str, str] | None = None
    devices: dict[str, dict[str, str]] | None = None
    profiles: list[str] | None = None
    size: int | None = None
