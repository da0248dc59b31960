"""Listing LXD collections the same way for every resource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.services.exceptions import LXDNotFound
from app.services.lxd_client import LXDClient, lxd_path
from app.utils.pagination import name_from_url, paginate


async def ensure_project(lxd: LXDClient, project: str) -> None:
    """404 for an unknown project (LXD 5.0 answers lists in one with 200 and nothing)."""
    try:
        await lxd.get(lxd_path("projects", project))
    except LXDNotFound as exc:
        raise LXDNotFound(f"Project {project!r} not found") from exc


async def list_collection(
    lxd: LXDClient,
    path: str,
    *,
    project: str | None,
    expand: bool,
    filter_: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """GET an LXD collection (`recursion=1` or names only), then page it.

    An empty answer in a named project costs one more request to tell "none there" from
    "no such project"; a non-empty one proves the project exists.
    """
    query = {"recursion": 1 if expand else 0, "filter": filter_ or None, **(params or {})}
    response = await lxd.get(path, project=project, params=query)
    raw = response.metadata or []
    if not raw and project:
        await ensure_project(lxd, project)
    items = raw if expand else [name_from_url(str(url)) for url in raw]
    return paginate(items, limit=limit, offset=offset)


def collection(*segments: str) -> str:
    return lxd_path(*segments)
