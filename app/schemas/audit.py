"""Schemas of the audit log: an entry, a page of them, and the chain's verification."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import Page


class AuditEntryPublic(BaseModel):
    """One audited request or WebSocket session. Never a password, a token, a query string, a
    request body or an LXD websocket secret."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "time": "2026-12-08T09:15:02.123456Z",
                    "actor": "alice",
                    "token_id": None,
                    "client_ip": "192.0.2.10",
                    "request_id": "5f2b9c0e8d8f4a51b1f1b0c0c0ffee00",
                    "method": "POST",
                    "path": "/api/v1/instances/web1/start",
                    "project": "default",
                    "target": "instances/web1",
                    "status": 202,
                    "operation_id": "8c3b5f4c-5a6e-4f43-9a59-0d2f2c1d9f10",
                    "duration_ms": 18.412,
                    "detail": None,
                    "prev_hash": "9b1d...",
                    "hash": "e3a0...",
                }
            ]
        }
    )

    id: int = Field(description="Increasing, without gaps (a gap is a deleted entry)")
    time: str = Field(
        description="When the request arrived (ISO 8601, UTC, microseconds)",
        json_schema_extra={"format": "date-time"},
    )
    actor: str | None = Field(
        description="The username (for a login: the one it tried); null when unknown"
    )
    token_id: str | None = Field(description="The API token's id (never its secret), if one")
    client_ip: str | None = Field(
        description="The client address (behind FORWARDED_ALLOW_IPS: from X-Forwarded-For)"
    )
    request_id: str | None = Field(description="The request's X-Request-ID")
    method: str = Field(description="The HTTP method, or WS for a WebSocket session")
    path: str = Field(description="The path, without the query string")
    project: str | None = Field(description="The LXD project (null for auth, users, audit)")
    target: str | None = Field(
        description="What the route names, e.g. `instances/web1`, `users/alice`"
    )
    status: int | None = Field(description="The HTTP status (a WebSocket: 101 or close code)")
    operation_id: str | None = Field(description="The LXD operation the request started")
    duration_ms: float | None = Field(description="How long the answer took (ms)")
    detail: str | None = Field(description="The error `code` of a 4xx/5xx answer")
    prev_hash: str = Field(description="The previous entry's hash (or the pruning anchor's)")
    hash: str = Field(description="SHA-256 (hex) over `prev_hash` and this entry's canonical JSON")


class AuditPage(Page[AuditEntryPublic]):
    """Audit entries, newest first."""

    total: int = Field(description="How many entries match the filters")


class AuditVerification(BaseModel):
    """The chain checked from its start (or the pruning anchor) to its newest entry."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "checked": 1234},
                {"ok": False, "first_bad_id": 17, "checked": 17},
            ]
        }
    )

    ok: bool = Field(description="Every entry links to the one before and hashes right")
    checked: int = Field(description="Entries read (the bad one included)")
    first_bad_id: int | None = Field(
        default=None,
        description="The first entry that does not hold: edited, or the one after a deleted entry",
    )
    last_id: int | None = Field(default=None, description="The newest entry checked")
    last_hash: str | None = Field(
        default=None,
        description="Its hash: keep it outside the database to notice later if entries after "
        "it went missing (a chain cannot show a cut at its own end)",
    )
    anchor_id: int | None = Field(
        default=None, description="Entries up to this id were pruned (AUDIT_RETENTION_DAYS)"
    )
