"""Projects made straight at LXD for integration tests, and their clean-up (checked)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


async def raw_project(raw: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    reply = await raw.get(f"/1.0/projects/{name}")
    if reply.status_code == 404:
        return None
    assert reply.status_code == 200, reply.text
    return dict(reply.json()["metadata"])


async def remove_projects(raw: httpx.AsyncClient, names: list[str]) -> None:
    """Remove whatever of `names` exists (with the profile tests put in them), and check."""
    for name in names:
        await raw.delete("/1.0/profiles/extra", params={"project": name})
        await raw.delete(f"/1.0/projects/{name}")
        assert await raw_project(raw, name) is None, f"project {name} left behind"


def new_name(projects: list[str], prefix: str = "tp") -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    projects.append(name)
    return name


async def make_project(
    raw: httpx.AsyncClient, projects: list[str], config: dict[str, str] | None = None
) -> str:
    name = new_name(projects)
    reply = await raw.post("/1.0/projects", json={"name": name, "config": config or {}})
    assert reply.status_code == 201, reply.text
    return name
