"""The audit log as a file: JSON lines (one entry per line, verifiable offline) or CSV.

Both stream in chain order (oldest first) from `store.iter_entries`: constant memory however
large the log. Every line holds `PUBLIC_FIELDS` (the entry, `prev_hash` and `hash`).

CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab
or a carriage return: a path or a tried username is the client's text) get a leading `'`, as
OWASP advises; the JSON lines are the exact, verifiable form.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.chain import PUBLIC_FIELDS, public
from app.audit.store import AuditFilter, iter_entries

ExportFormat = Literal["jsonl", "csv"]
MEDIA_TYPES: dict[str, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LINES_PER_CHUNK = 200


def csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


async def export_lines(
    engine: AsyncEngine, where: AuditFilter, fmt: ExportFormat
) -> AsyncIterator[str]:
    """The export, in chunks of a few hundred lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if fmt == "csv":
        writer.writerow(PUBLIC_FIELDS)
    lines = 0
    async for row in iter_entries(engine, where):
        entry = public(row)
        if fmt == "csv":
            writer.writerow([csv_cell(entry[name]) for name in PUBLIC_FIELDS])
        else:
            buffer.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        lines += 1
        if lines % _LINES_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()
