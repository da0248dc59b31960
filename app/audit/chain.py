"""What an audit entry is made of, and how it is chained: pure functions, no I/O.

`hash = sha256(prev_hash + canonical_json(entry))`, hex, where the canonical JSON holds every
field of `CHAIN_FIELDS` (`hash` itself excluded, `prev_hash` included), keys sorted, no
whitespace, UTF-8, the time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. The first entry ever written
links to `GENESIS_HASH`; after pruning, the first kept entry links to the anchor's hash.

An export line (`GET /audit/export?format=jsonl`) holds the same fields plus `hash`, so anyone
can check a chain offline: `chain_hash(line["prev_hash"], line) == line["hash"]`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

# Every field an entry carries besides `id`, `prev_hash` and `hash`, with its longest value
# (the column's length: a longer value is cut before it is hashed, so what is stored is what
# was hashed on every database).
ENTRY_LIMITS: dict[str, int | None] = {
    "time": None,
    "actor": 64,
    "token_id": 32,
    "client_ip": 64,
    "request_id": 128,
    "method": 16,
    "path": 1024,
    "project": 64,
    "target": 512,
    "status": None,
    "operation_id": 64,
    "duration_ms": None,
    "detail": 512,
}
ENTRY_FIELDS = tuple(ENTRY_LIMITS)
CHAIN_FIELDS = ("id", *ENTRY_FIELDS, "prev_hash")
PUBLIC_FIELDS = (*CHAIN_FIELDS, "hash")

# Credentials that must never be stored, wherever a client put them (a path, a name...):
# API tokens, JWTs (three base64url parts, the first one `{"` encoded) and `secret=` values
# (LXD's websocket secrets in an operation URL).
_SECRETS = (
    (re.compile(r"lxa_[A-Za-z0-9_\-]+"), "lxa_[redacted]"),
    (re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "[redacted-jwt]"),
    (re.compile(r"(secret=)[^&\s\"']+", re.IGNORECASE), r"\1[redacted]"),
)
# NUL and other control characters: PostgreSQL refuses NUL in text, and none belongs in a log.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def scrub(value: str) -> str:
    """`value` without credentials or control characters."""
    for pattern, replacement in _SECRETS:
        value = pattern.sub(replacement, value)
    return _CONTROL.sub("?", value)


def format_time(value: datetime | str) -> str:
    """The one text form of an entry's time (UTC, microseconds, `Z`)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime given for an audit entry")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normalize(fields: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as it will be stored: every field of `ENTRY_FIELDS` (missing ones None), texts
    scrubbed and cut to their column, `status` an int, `duration_ms` a float (3 decimals), the
    time an aware UTC datetime with microseconds. Unknown fields are refused (TypeError)."""
    unknown = set(fields) - set(ENTRY_FIELDS)
    if unknown:
        raise TypeError(f"unknown audit fields: {', '.join(sorted(unknown))}")
    entry: dict[str, Any] = {}
    for name, limit in ENTRY_LIMITS.items():
        value = fields.get(name)
        if value is not None and limit is not None:
            text = scrub(str(value))
            value = text.encode("utf-8", "replace").decode("utf-8")[:limit]
        entry[name] = value
    time = entry["time"] or datetime.now(UTC)
    if time.tzinfo is None:
        raise ValueError("naive datetime given for an audit entry")
    entry["time"] = time.astimezone(UTC)
    if entry["method"] is None or entry["path"] is None:
        raise TypeError("an audit entry needs a method and a path")
    entry["method"] = entry["method"].upper()
    if entry["status"] is not None:
        entry["status"] = int(entry["status"])
    if entry["duration_ms"] is not None:
        entry["duration_ms"] = round(float(entry["duration_ms"]), 3)
    return entry


def canonical_json(row: Mapping[Any, Any]) -> str:
    """`row`'s `CHAIN_FIELDS` as canonical JSON (sorted keys, no whitespace)."""
    data = {name: row.get(name) for name in CHAIN_FIELDS}
    data["time"] = format_time(row["time"])
    if data["duration_ms"] is not None:
        data["duration_ms"] = float(data["duration_ms"])
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, row: Mapping[Any, Any]) -> str:
    """SHA-256 (hex) over the previous entry's hash and `row`'s canonical JSON."""
    payload = prev_hash + canonical_json(row)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def public(row: Mapping[Any, Any]) -> dict[str, Any]:
    """What the API shows of a stored row: `PUBLIC_FIELDS`, the time as text."""
    data = {name: row.get(name) for name in PUBLIC_FIELDS}
    data["time"] = format_time(row["time"])
    return data
