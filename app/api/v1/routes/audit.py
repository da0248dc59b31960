"""The audit log: `/api/v1/audit` (admin): list, export, verify.

Each route first waits (up to a few seconds) for this process's queued entries to be written,
so an admin sees the requests it just made; other replicas' appear as soon as they wrote them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.requests import HTTPConnection

from app.api.deps import MAX_PAGE_SIZE, AdminUser, PageOffset
from app.api.responses import error_responses
from app.audit import AuditLog, store
from app.audit.chain import public
from app.audit.export import MEDIA_TYPES, ExportFormat, export_lines
from app.core.config import API_V1_PREFIX
from app.schemas.audit import AuditPage, AuditVerification

router = APIRouter(prefix=API_V1_PREFIX + "/audit", tags=["audit"])

FLUSH_SECONDS = 3.0


async def get_audit_log(connection: HTTPConnection) -> AuditLog:
    audit: AuditLog = connection.app.state.audit_log
    await audit.flush(FLUSH_SECONDS)
    return audit


AuditDep = Annotated[AuditLog, Depends(get_audit_log)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def audit_filter(
    actor: Annotated[
        str | None, Query(max_length=64, description="Username (exact)", examples=["alice"])
    ] = None,
    method: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z]{2,10}$", description="HTTP method, or WS", examples=["POST"]),
    ] = None,
    status: Annotated[
        int | None, Query(ge=100, le=4999, description="HTTP status (WS: close code)")
    ] = None,
    project: Annotated[str | None, Query(max_length=64, description="LXD project")] = None,
    target: Annotated[
        str | None,
        Query(
            max_length=512,
            description="This target and everything under it (`instances/web1` also matches "
            "`instances/web1/snapshots/s1`)",
            examples=["instances/web1"],
        ),
    ] = None,
    since: Annotated[
        datetime | None,
        Query(description="From this time on (ISO 8601; UTC when no offset is given)"),
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Before this time (ISO 8601; UTC when no offset)")
    ] = None,
) -> store.AuditFilter:
    return store.AuditFilter(
        actor=actor,
        method=method,
        status=status,
        project=project,
        target=target,
        since=_utc(since),
        until=_utc(until),
    )


AuditFilterDep = Annotated[store.AuditFilter, Depends(audit_filter)]
_FILTERS = (
    "Filters (all optional, combined): `actor`, `method`, `status`, `project`, `target`, "
    "`since`, `until` (ISO 8601); a bad value is a 422."
)


@router.get(
    "",
    response_model=AuditPage,
    summary="List audit entries",
    description="Every request that is not GET/HEAD/OPTIONS (refused ones too), login and "
    "WebSocket session, newest first, with `?limit=` (1-1000, default 100) and `?offset=`. "
    f"{_FILTERS} Never a password, a token, a query string or a request body. Admin.",
    responses=error_responses(422, lxd=False),
)
async def list_audit(
    _: AdminUser,
    audit: AuditDep,
    where: AuditFilterDep,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (1-{MAX_PAGE_SIZE})")
    ] = 100,
    offset: PageOffset = 0,
) -> dict[str, Any]:
    rows, total = await store.list_entries(audit.reader, where, limit=limit, offset=offset)
    items = [public(row) for row in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/export",
    response_class=StreamingResponse,
    summary="Export audit entries (JSON lines or CSV)",
    description="Everything that matches the filters, oldest first (chain order), streamed "
    "(read in batches: constant memory), as a `Content-Disposition: attachment` file. "
    "`format=jsonl` (default): one JSON object per line, with `prev_hash` and `hash`, so that "
    "the chain can be checked offline; `format=csv`: a header row, then one row per entry "
    f"(cells a spreadsheet would run as a formula start with `'`). {_FILTERS} Admin.",
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "The entries, one per line",
        },
        **error_responses(422, lxd=False),
    },
)
async def export_audit(
    _: AdminUser,
    audit: AuditDep,
    where: AuditFilterDep,
    format_: Annotated[ExportFormat, Query(alias="format", description="jsonl or csv")] = "jsonl",
) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        export_lines(audit.reader, where, format_),
        media_type=MEDIA_TYPES[format_],
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.{format_}"'},
    )


@router.get(
    "/verify",
    response_model=AuditVerification,
    response_model_exclude_none=True,
    summary="Verify the audit chain",
    description="Walks the whole log in id order from its start (or, after pruning, from the "
    "anchor: the last pruned entry's hash): each entry must have the next id, name the "
    'previous hash and hash to its own. `{"ok": true, "checked": N}`, or `{"ok": false, '
    '"first_bad_id": ID, "checked": N}`: the first entry that does not hold (an edited entry '
    "is named itself; for a deleted one, the entry after the gap). Also `last_id` and "
    "`last_hash`: keep them elsewhere to tell later that no newest entries went missing. Admin.",
    responses=error_responses(lxd=False),
)
async def verify_audit(_: AdminUser, audit: AuditDep) -> AuditVerification:
    result = await store.verify(audit.reader)
    return AuditVerification(
        ok=result.ok,
        checked=result.checked,
        first_bad_id=result.first_bad_id,
        last_id=result.last_id,
        last_hash=result.last_hash,
        anchor_id=result.anchor_id,
    )
