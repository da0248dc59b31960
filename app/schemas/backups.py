"""Instance backups: create and the objects LXD returns (export streams a tarball)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import LXDObject, ObjectNameField

# What LXD 5.0 accepts as `compression_algorithm` (it checks the tool exists on the host).
COMPRESSION_PATTERN = r"^(none|gzip|bzip2|lzma|xz|zstd|lz4|lzop|squashfs)$"


class BackupCreate(BaseModel):
    """`POST /instances/{name}/backups`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "weekly"},
                {"name": "quick", "instance_only": True, "compression_algorithm": "zstd"},
            ]
        },
    )

    name: ObjectNameField | None = Field(default=None, description="Default: LXD picks backupN")
    expires_at: datetime | None = Field(default=None, description="When LXD deletes it")
    instance_only: bool = Field(default=False, description="Leave the snapshots out")
    optimized_storage: bool = Field(
        default=False, description="Storage-driver format (faster, restorable on the same driver)"
    )
    compression_algorithm: str | None = Field(
        default=None,
        pattern=COMPRESSION_PATTERN,
        description="Default: the server's `backups.compression_algorithm` (gzip)",
        examples=["gzip"],
    )


class BackupPublic(LXDObject):
    """A backup as LXD describes it; other fields pass through."""

    name: str = Field(examples=["weekly"])
    created_at: str | None = None
    expires_at: str | None = None
    instance_only: bool | None = None
    optimized_storage: bool | None = None
