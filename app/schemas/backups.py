"""Instance backups: create and the objects LXD returns (export streams a tarball)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import LXDObject, ObjectNameField

# LXD's known algorithms, for everyone (the operator policy, `app.auth.policy`, lists them too):
# LXD itself runs any other value as a command line on its host (`validate.IsCompressionAlgorithm`).
COMPRESSION_ALGORITHMS = ("none", "gzip", "bzip2", "lz4", "lzma", "xz", "zstd", "squashfs")
COMPRESSION_PATTERN = "^(" + "|".join(COMPRESSION_ALGORITHMS) + ")$"


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
        description="Default: the server's `backups.compression_algorithm` (gzip). One of "
        + ", ".join(COMPRESSION_ALGORITHMS),
        examples=["gzip"],
    )


class BackupPublic(LXDObject):
    """A backup as LXD describes it; other fields pass through."""

    name: str = Field(examples=["weekly"])
    created_at: str | None = None
    expires_at: str | None = None
    instance_only: bool | None = None
    optimized_storage: bool | None = None
