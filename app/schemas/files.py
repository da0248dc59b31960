"""Files in an instance: what `GET/PUT /instances/{name}/files?path=` answer in JSON (a file's
own bytes are streamed, not described here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

FileType = Literal["file", "directory", "symlink"]


class FileInfo(BaseModel):
    """One path in the instance, as LXD describes it (`X-LXD-type`, `-uid`, `-gid`, `-mode`)."""

    path: str = Field(description="Absolute path in the instance", examples=["/etc/hostname"])
    type: FileType = Field(description="What is at the path (a symlink is not followed)")
    uid: int = Field(description="Owner (uid inside the instance)", examples=[0])
    gid: int = Field(description="Group (gid inside the instance)", examples=[0])
    mode: str = Field(description="Permission bits, octal", examples=["0644"])
    modified: str | None = Field(
        default=None,
        description="Last change, as LXD reports it",
        examples=["2026-12-07 09:20:39 +0000 UTC"],
    )


class DirectoryListing(FileInfo):
    """A directory: its own metadata and the names in it (sorted; no `.`/`..`)."""

    type: Literal["directory"] = "directory"
    entries: list[str] = Field(
        description="Names of the entries (not paths), sorted", examples=[["hostname", "hosts"]]
    )


class SymlinkInfo(FileInfo):
    """A symbolic link: reported with its target, never followed."""

    type: Literal["symlink"] = "symlink"
    target: str = Field(description="Where the link points (as stored)", examples=["/bin/busybox"])


class FileWritten(FileInfo):
    """An uploaded file as LXD reports it afterwards."""

    created: bool = Field(description="true: the file is new (201); false: it was replaced (200)")
