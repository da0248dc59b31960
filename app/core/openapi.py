"""What `/docs` and `/redoc` say about the API as a whole and about each tag."""

from __future__ import annotations

DESCRIPTION = """
A REST API that manages an LXD server: instances, storage, networks, projects, images,
async operations, exec and console over WebSocket, snapshots and backups.

* **Auth**: `POST /api/v1/auth/login` gives a bearer token; click *Authorize* and paste it.
  WebSockets take it as `?token=<jwt>`.
* **Roles**: `viewer` < `operator` < `admin`; a route for a role admits every role above it.
* **Projects**: every LXD-backed route takes `?project=NAME`.
* **Errors**: always `{"detail", "code", "request_id"}`; every response has `X-Request-ID`.
* **Async**: long LXD actions answer `202` with an operation reference; many routes take
  `?wait=true&timeout=N` to answer with the finished operation instead.
"""

OPENAPI_TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "Liveness and a deep check of the LXD connection."},
    {
        "name": "projects",
        "description": "LXD projects: CRUD, rename (an operation; empty projects only), resource "
        "usage. PATCH merges config on every LXD version. The default project cannot be "
        "deleted or renamed (409).",
    },
]
