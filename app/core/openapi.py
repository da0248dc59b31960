"""What `/docs` and `/redoc` say about the API as a whole and about each tag."""

from __future__ import annotations

DESCRIPTION = """
A REST API that manages an LXD server: instances, storage, networks, projects, images,
async operations, exec and console over WebSocket, snapshots and backups.

* **Auth**: `POST /api/v1/auth/login` gives a bearer token; click *Authorize* and paste it.
  WebSockets take it as `?token=<jwt>`.
* **Roles**: `viewer` < `operator` < `admin`; a route for a role admits every role above it.
  A user may also have a role per project (`PUT /api/v1/users/{username}/projects/{project}`);
  the global role `none` means "only the bound projects". Project-scoped routes check the role
  in the request's project; a project without a role for the caller is a 404.
* **Projects**: every LXD-backed route takes `?project=NAME`.
* **Operator policy**: below admin, instance config and devices that reach the LXD host are
  refused (403 `policy_violation`); see `GET /api/v1/policy`.
* **Errors**: always `{"detail", "code", "request_id"}`; every response has `X-Request-ID`.
* **Async**: long LXD actions answer `202` with an operation reference; many routes take
  `?wait=true&timeout=N` to answer with the finished operation instead.
"""

OPENAPI_TAGS: list[dict[str, str]] = [
    {
        "name": "health",
        "description": "Public probes: `/health` checks LXD (`GET /1.0`; 503 `degraded` with "
        "the reason when LXD is unreachable), `/health/live` only the process.",
    },
    {
        "name": "auth",
        "description": "Log in with username and password (`/auth/login`, JSON; `/auth/token`, "
        "the form Swagger's *Authorize* button uses) for an access token (send it as "
        "`Authorization: Bearer <token>`, or `?token=` on WebSockets) and a refresh token. "
        "Refreshing rotates the refresh token; using a rotated one again revokes its whole "
        "family. Login and refresh are rate-limited (429 with `Retry-After`). A password change "
        "cuts off every token issued before it; a logout ends the refresh token's login and the "
        "access token it was sent with.",
    },
    {
        "name": "users",
        "description": "User management (admin): list, get, change role / active flag / "
        "password, delete, and roles per project (`PUT`/`DELETE "
        "/users/{username}/projects/{project}`, viewer or operator; admin is global only). A "
        "change to a user's role, active flag, password or project roles takes effect on "
        "their next request. The last active admin cannot be deleted, disabled or demoted "
        "(409). No answer ever carries a password hash.",
    },
    {
        "name": "system",
        "description": "What the LXD server is (versions, API extensions, storage and kernel; "
        "never certificates or keys) and whether it answers.",
    },
    {
        "name": "projects",
        "description": "LXD projects: CRUD, rename (an operation; empty projects only), resource "
        "usage. PATCH merges config on every LXD version. The default project cannot be "
        "deleted or renamed (409).",
    },
    {
        "name": "images",
        "description": "Images (by fingerprint or a unique prefix), copies from other image "
        "servers (`server`+`protocol`, or `remote: ubuntu|images`; an operation), and aliases. "
        "Alias names with `/` are refused in paths: such aliases are list-only here.",
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
        "name": "policy",
        "description": "The operator policy: LXD makes whoever may set any instance config or "
        "device root on the host, so every caller below admin is held to a policy that mirrors "
        "LXD's `restricted=true` project defaults (no privileged or nesting containers, no "
        "`raw.*` or idmap keys, disks from a storage pool only, NICs on managed networks only, "
        "no passthrough or proxy devices, images from the configured servers only). It is "
        "checked on instance create, PUT, PATCH and the attach routes before anything reaches "
        "LXD; a refusal is a 403 `policy_violation` listing every violation. `GET /policy` "
        "shows the policy in force, `POST /policy/check` tries a write without making it. "
        "`OPERATOR_POLICY=unrestricted` turns it off (unsafe).",
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
    {
        "name": "files",
        "description": "Files in an instance (`?path=/abs/path`, absolute and normalised): "
        "download a file (streamed, with `X-File-Uid`/`-Gid`/`-Mode`), list a directory, see "
        "a symlink's target (not followed); upload (streamed to LXD, owner and mode, "
        "`mkdir=true` for missing parents) and delete a file or an empty directory. Viewer "
        "reads, operator writes; the path is in the audit entry.",
    },
    {
        "name": "storage",
        "description": "Storage pools (CRUD, `If-Match` passed on) and their custom volumes "
        "(filesystem or block): CRUD, rename, resize (sizes checked: an integer and a unit), "
        "attach to an instance at a path and detach (safe device edits: ETag, `If-Match`, "
        "retries; operator). Deleting a pool or volume in use is a 409 naming its users.",
    },
    {
        "name": "networks",
        "description": "Networks (bridge, macvlan, sriov, ovn, physical; config passed "
        "through): CRUD, rename, state, DHCP leases (managed networks only: a host interface "
        "is a 400), NIC attach/detach on instances (operator). Deleting a network in use is a "
        "409 naming its users.",
    },
    {
        "name": "profiles",
        "description": "Profiles (config and devices that instances take from the profiles "
        "they name; `?project=`): list and get (viewer), CRUD and rename (admin only: what a "
        "profile holds is the admin's grant; operators may only name profiles). PUT/PATCH take "
        "`If-Match` (412 on mismatch). Deleting a profile in use is a 409 listing its "
        "instances; the `default` profile cannot be deleted or renamed (409).",
    },
    {
        "name": "operations",
        "description": "LXD background operations: list (one list, each item with its "
        "`status`), get, wait (`?timeout=`: 200 with the operation, `Running` if the timeout "
        "passed first), cancel (operator; only what LXD can cancel, else 400 with its reason). "
        "Finished operations expire from LXD after a few seconds (then 404). No answer ever "
        "carries websocket secrets (`metadata.fds`) or token secrets.\n\n"
        "**Event relay** `WS /api/v1/operations/ws?token=<jwt>&type=operation,lifecycle,logging"
        "&project=NAME` (viewer in that project; `&all-projects=true` instead: every project's "
        "events, for a global viewer): one JSON text frame per LXD event, as LXD sends it, with "
        "one "
        "change: secrets are removed (`fds` and token `secret` from operation events, `secret=` "
        "values from logging text). No `type`: all three. One upstream LXD connection per "
        "(project, types) is shared by every subscriber and reconnects by itself when LXD "
        "restarts (events during the gap are lost; the socket stays open). Close codes: 4401 "
        "no/invalid token, or the user was disabled, deleted or had its password or role "
        "changed while connected, 4403 role too low, 4429 too many sessions (more than "
        "`WS_MAX_SESSIONS_PER_USER` open exec, console and event sockets), 4400 unknown `type` "
        "or bad project name, 4404 unknown project, 1011 LXD failed, 1013 the client read too "
        "slowly (more than 1024 events waiting), 1001 server shutting down.",
    },
    {
        "name": "exec",
        "description": "Run commands in an instance (operator).\n\n"
        "`POST /instances/{name}/exec`: non-interactive, output recorded by LXD and returned "
        "as `{return_code, stdout, stderr}` (text, or base64 with `output: base64`).\n\n"
        "**WebSocket** `WS /api/v1/instances/{name}/exec/ws?token=<jwt>&project=NAME`:\n"
        '1. The client\'s first frame is JSON text: `{"command": ["sh"], "interactive": '
        'true, "width": 80, "height": 24, "environment": {}, "cwd"?, "user"?, '
        '"group"?}`.\n'
        "2. Binary frames carry stdin to the command and, when `interactive`, the terminal's "
        "output back. With `interactive: false`, output arrives as text frames "
        '`{"type": "stdout"|"stderr", "data": "<base64>"}`.\n'
        '3. Control frames (JSON text): `{"type": "resize", "width", "height"}`, '
        '`{"type": "signal", "signal": 15}`, and `{"type": "eof"}` for end of '
        "stdin (a pipe is closed; on a terminal it types Ctrl-D). A bad control frame is "
        'answered `{"type": "error", "detail"}` and the session goes on.\n'
        '4. When the command ends and all its output was sent: `{"type": "exit", '
        '"return_code": N}` (128+N after signal N), then close 1000.\n\n'
        "Closing the client socket kills the command (LXD's control socket is closed: 137). "
        "Close codes: 4401 no/invalid token, 4403 role too low, 4429 too many sessions (more "
        "than `WS_MAX_SESSIONS_PER_USER` open exec, console and event sockets per user), 4404 "
        "unknown instance, 4400 bad start frame or name, or LXD refused the request (e.g. the "
        "instance is not running; reason given), 1011 LXD failed (reason given).\n\n"
        "Open sessions are checked against the user store every 0.5 s: a user disabled or "
        "deleted, or whose password or role changed (each cuts off its tokens), is closed "
        "with 4401 (4403 if its role no longer admits the route while its tokens stand), and "
        "the command is killed as when the client leaves.",
    },
    {
        "name": "console",
        "description": "**WebSocket** `WS /api/v1/instances/{name}/console/ws?token=<jwt>"
        "&width=80&height=24&project=NAME` (operator): the instance's console (LXD "
        "`POST /instances/{name}/console`, type console). Binary frames both ways; "
        '`{"type": "resize", "width", "height"}` text frames resize it. Closing '
        "the client socket detaches from the console on LXD's side; if LXD ends it first, the "
        "socket is closed with 1000. Close codes as for exec (4401, 4403, 4429, 4404, 4400, "
        "1011), and the same end for a user cut off while connected. "
        "What the console shows depends on the instance: a container without a getty on its "
        "console may print nothing until it boots or logs something.",
    },
    {
        "name": "audit",
        "description": "The audit log (admin): one entry for every request that is not "
        "GET/HEAD/OPTIONS (refused ones too), every login and WebSocket session: who "
        "(`actor`, `token_id`), from where (`client_ip`, `request_id`), what (`method`, `path` "
        "without its query, `project`, `target` such as `instances/web1`), and how it ended "
        "(`status`, `operation_id`, `duration_ms`, the error `code` in `detail`). Never a "
        "password, a token, a query string or a body. Tamper-evident: each entry's `hash` is "
        "SHA-256 over the previous entry's hash and its canonical JSON; `GET /audit/verify` "
        "checks the chain and names the first entry that does not hold. `GET /audit/export` "
        "streams JSON lines or CSV. `AUDIT_RETENTION_DAYS` prunes old entries and keeps the "
        "chain verifiable (an anchor holds the last pruned hash).",
    },
    {
        "name": "metrics",
        "description": "Prometheus text format. `GET /metrics`: the API's own figures "
        "(requests by route template, LXD calls by endpoint, sessions, event hub, audit), for "
        "a scraper holding `METRICS_TOKEN` (off without it). `GET /api/v1/metrics/lxd`: LXD's "
        "per-instance metrics, only of the projects the caller has a role in.",
    },
]
