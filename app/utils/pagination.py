"""Our own paging on top of an LXD list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What a list request asks for: full objects or names, LXD's filter, and our paging."""

    expand: bool
    filter: str | None
    limit: int | None
    offset: int


def paginate(items: list[T], *, limit: int | None, offset: int) -> dict[str, Any]:
    window = items[offset : offset + limit] if limit is not None else items[offset:]
    return {"items": window, "total": len(items), "limit": limit, "offset": offset}
