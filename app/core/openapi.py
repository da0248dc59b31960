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
    {
        "name": "instances",
        "description": "Containers and VMs: list (filter, paging, `instance-type`), create "
        "(`start: true` creates, then starts), get with `ETag`, PUT/PATCH with `If-Match` (412 "
        "when stale), rename, delete (`force=true` stops first), runtime state, lifecycle "
        "(`PUT .../state` and the start/stop/restart/freeze/unfreeze shortcuts), log files and "
        "the console log (text). Changes are LXD operations: 202 + reference, or `wait=true`.",
    },
    {
        "name": "snapshots",
        "description": "Instance snapshots: create (stateful, expiry), rename or change the "
        "expiry (PATCH), delete, restore. All are LXD operations (202, or `wait=true`).",
    },
    {
        "name": "backups",
        "description": "Instance backups: create (compression, instance only, optimized "
        "storage; an operation), delete, and export: the tarball streams from LXD to the "
        "client with `Content-Length` and a `Content-Disposition` file name.",
    },
]
