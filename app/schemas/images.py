"""Images and image aliases: copy requests, alias edits, and what LXD returns for each."""

from __future__ import annotations

import binascii
import re
import ssl
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.common import FINGERPRINT_PATTERN, NAME_PATTERN, LXDObject

# Local alias names: LXD allows `/` in them (e.g. `ubuntu/22.04`), but this API puts alias
# names in URL paths, where a `/` (or `%2F`) is refused. Aliases created here therefore use
# the same safe character set as other object names; aliases with `/` made elsewhere are
# listed but cannot be addressed one by one through this API.
AliasNameField = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        description="Local alias name: letters, digits and `_.:@+-` (no `/`), at most 128",
        examples=["alpine-3.19"],
    ),
]
FingerprintField = Annotated[
    str,
    Field(
        pattern=FINGERPRINT_PATTERN,
        description="An image fingerprint, or a prefix of it that matches one image",
        examples=["a80c47ffba90"],
    ),
]
# An alias on a remote server: any printable text (`ubuntu/22.04`, `alpine/3.19/cloud`).
_REMOTE_ALIAS = re.compile(r"^[^\x00-\x20\x7f]{1,255}$")
_PEM_EXAMPLE = "-----BEGIN CERTIFICATE-----\nMIIB+DCC...\n-----END CERTIFICATE-----\n"
RemoteName = Literal["ubuntu", "images"]
Protocol = Literal["simplestreams", "lxd"]


class ImageCopySource(BaseModel):
    """Where to copy from: one of `alias`/`fingerprint`, and one of `server` (+ `protocol`)
    or `remote` (a well-known server by the name `lxc` gives it)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["image"] = "image"
    alias: str | None = Field(
        default=None,
        description="The image's alias on the source server (may contain `/`). "
        "`images:alpine/3.19` (lxc's remote prefix) is read as remote + alias.",
        examples=["ubuntu/22.04"],
    )
    fingerprint: str | None = Field(
        default=None, pattern=FINGERPRINT_PATTERN, description="The image's fingerprint"
    )
    server: str | None = Field(
        default=None,
        max_length=2048,
        description="The source server's https:// URL",
        examples=["https://images.linuxcontainers.org"],
    )
    protocol: Protocol | None = Field(
        default=None,
        description="Required with `server`; with `remote`, taken from the settings",
    )
    remote: RemoteName | None = Field(
        default=None,
        description="`ubuntu` or `images`: a well-known server (IMAGE_REMOTE_<NAME>_URL and "
        "_PROTOCOL in the settings) instead of `server`/`protocol`",
    )
    certificate: str | None = Field(
        default=None,
        max_length=16384,
        description="PEM certificate of a private `lxd`-protocol server (pins it)",
    )

    @model_validator(mode="before")
    @classmethod
    def _lxc_style_alias(cls, data: Any) -> Any:
        # `{"alias": "images:alpine/3.19"}` as `lxc image copy images:alpine/3.19` reads it.
        if isinstance(data, dict) and not data.get("server") and not data.get("remote"):
            alias = data.get("alias")
            if isinstance(alias, str) and ":" in alias:
                remote, _, name = alias.partition(":")
                if remote in {"ubuntu", "images"} and name:
                    return {**data, "remote": remote, "alias": name}
        return data

    @field_validator("alias")
    @classmethod
    def _alias_text(cls, value: str | None) -> str | None:
        if value is not None and not _REMOTE_ALIAS.match(value):
            raise ValueError("alias must be 1-255 printable characters without spaces")
        return value

    @field_validator("server")
    @classmethod
    def _https_server(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("server must be an https:// URL with a host")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("server must not carry credentials, a query or a fragment")
        if re.search(r"[\x00-\x20\x7f]", value):
            raise ValueError("server must not contain spaces or control characters")
        return value

    @field_validator("certificate")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ssl.PEM_cert_to_DER_cert(value.strip())
        except (ValueError, binascii.Error) as exc:
            raise ValueError("certificate must be one PEM-encoded X.509 certificate") from exc
        return value

    @model_validator(mode="after")
    def _one_of_each(self) -> Self:
        if (self.alias is None) == (self.fingerprint is None):
            raise ValueError("give exactly one of alias and fingerprint")
        if (self.server is None) == (self.remote is None):
            raise ValueError("give exactly one of server and remote")
        if self.server is not None and self.protocol is None:
            raise ValueError("protocol is required with server (simplestreams or lxd)")
        return self


class ImageCopy(BaseModel):
    """Copy an image from another server into this LXD (an LXD operation)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"source": {"alias": "alpine/3.19", "remote": "images"}, "aliases": ["alpine"]},
                {
                    "source": {
                        "type": "image",
                        "alias": "ubuntu/22.04",
                        "server": "https://cloud-images.ubuntu.com/releases",
                        "protocol": "simplestreams",
                    },
                    "aliases": ["jammy"],
                    "auto_update": True,
                },
                {
                    "source": {
                        "fingerprint": "a80c47ffba90",
                        "server": "https://lxd.example.net:8443",
                        "protocol": "lxd",
                        "certificate": _PEM_EXAMPLE,
                    },
                    "public": False,
                },
            ]
        },
    )

    source: ImageCopySource
    aliases: list[AliasNameField] = Field(
        default_factory=list, max_length=64, description="Local aliases to give the image"
    )
    auto_update: bool = Field(default=False, description="Keep the image updated from its source")
    public: bool = Field(default=False, description="Let untrusted clients of this LXD see it")

    @field_validator("aliases")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("aliases must be distinct")
        return value


class ImageAliasEntry(LXDObject):
    name: str
    description: str = ""


class ImagePublic(LXDObject):
    """An image as LXD describes it (fields newer LXD versions add are kept)."""

    fingerprint: str
    aliases: list[ImageAliasEntry] = Field(default_factory=list)
    architecture: str | None = None
    type: str | None = Field(default=None, examples=["container"])
    size: int | None = None
    public: bool | None = None
    auto_update: bool | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class ImageAliasCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "alpine", "target": "a80c47ffba90", "description": "Alpine edge"},
            ]
        },
    )

    name: AliasNameField
    target: FingerprintField
    description: str = Field(default="", max_length=4096)


class ImageAliasUpdate(BaseModel):
    """Point an alias at another image and/or change its description."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"target": "a80c47ffba90"}, {"description": "stable"}]},
    )

    target: FingerprintField | None = None
    description: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.target is None and self.description is None:
            raise ValueError("give target, description or both")
        return self


class ImageAliasRename(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "edge"}]})

    name: AliasNameField


class ImageAliasPublic(LXDObject):
    name: str
    target: str = Field(description="The full fingerprint of the image it names")
    description: str = ""
    type: str | None = Field(default=None, examples=["container"])
