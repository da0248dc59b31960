"""The least role of every route, as API.md's "Routes and the least role for each" says.

Keys are (method, full path template); WebSockets use the method "WS". Values are "public",
"none" (any logged-in user, global role `none` included), "viewer", "operator" or "admin".

Viewer and operator routes check the role in the request's project (API.md, "Per-project
roles"), except the server-wide ones in `SERVER_WIDE`; admin routes and "none" routes check the
global role. `tests/unit/test_role_table.py` checks every route of the app
against this table: a route missing here fails, and so does a route whose declared role
(`require_role(...)` / `require_ws_role(...)` in its dependencies) differs. Entries for routes
not written yet are ignored. When you add a route, add it here with API.md's role.

Path parameter names: {name} (instance), {snapshot}, {backup}, {file}, {pool}, {volume},
{network}, {profile}, {project}, {fingerprint}, {alias}, {operation_id}, {username}.
"""

from __future__ import annotations

from typing import Final

PUBLIC: Final = "public"
LOGIN: Final = "none"
VIEWER: Final = "viewer"
OPERATOR: Final = "operator"
ADMIN: Final = "admin"

V1 = "/api/v1"
INSTANCE = f"{V1}/instances/{{name}}"
POOL = f"{V1}/storage/pools/{{pool}}"
VOLUME = f"{POOL}/volumes/{{volume}}"
NETWORK = f"{V1}/networks/{{network}}"
PROFILE = f"{V1}/profiles/{{profile}}"
PROJECT = f"{V1}/projects/{{project}}"
ALIAS = f"{V1}/images/aliases/{{alias}}"
OPERATION = f"{V1}/operations/{{operation_id}}"

ROLE_TABLE: Final[dict[tuple[str, str], str]] = {
    # --- docs and health (public) ---
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/static/{path}"): PUBLIC,  # Swagger UI and ReDoc assets (app/static/)
    ("GET", "/health"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # no user token opens it: METRICS_TOKEN only (or off)
    # --- auth ---
    ("POST", f"{V1}/auth/login"): PUBLIC,
    ("POST", f"{V1}/auth/token"): PUBLIC,  # the form login behind Swagger's Authorize
    ("POST", f"{V1}/auth/refresh"): PUBLIC,
    ("POST", f"{V1}/auth/logout"): LOGIN,
    ("GET", f"{V1}/auth/me"): LOGIN,
    ("PUT", f"{V1}/auth/me/password"): LOGIN,
    ("POST", f"{V1}/auth/register"): ADMIN,
    ("POST", f"{V1}/auth/tokens"): LOGIN,
    ("GET", f"{V1}/auth/tokens"): LOGIN,
    ("DELETE", f"{V1}/auth/tokens/{{token_id}}"): LOGIN,
    ("GET", f"{V1}/users/{{username}}/tokens"): ADMIN,
    # --- users ---
    ("GET", f"{V1}/users"): ADMIN,
    ("GET", f"{V1}/users/{{username}}"): ADMIN,
    ("PATCH", f"{V1}/users/{{username}}"): ADMIN,
    ("DELETE", f"{V1}/users/{{username}}"): ADMIN,
    ("PUT", f"{V1}/users/{{username}}/projects/{{project}}"): ADMIN,
    ("DELETE", f"{V1}/users/{{username}}/projects/{{project}}"): ADMIN,
    # --- instances ---
    ("GET", f"{V1}/instances"): VIEWER,
    ("GET", INSTANCE): VIEWER,
    ("GET", f"{INSTANCE}/state"): VIEWER,
    ("GET", f"{INSTANCE}/logs"): VIEWER,
    ("GET", f"{INSTANCE}/logs/{{file}}"): VIEWER,
    ("GET", f"{INSTANCE}/console/log"): VIEWER,
    ("POST", f"{V1}/instances"): OPERATOR,
    ("PUT", INSTANCE): OPERATOR,
    ("PATCH", INSTANCE): OPERATOR,
    ("DELETE", INSTANCE): OPERATOR,
    ("POST", f"{INSTANCE}/rename"): OPERATOR,
    # --- operator policy ---
    ("GET", f"{V1}/policy"): VIEWER,
    ("POST", f"{V1}/policy/check"): VIEWER,
    # --- lifecycle ---
    ("PUT", f"{INSTANCE}/state"): OPERATOR,
    ("POST", f"{INSTANCE}/start"): OPERATOR,
    ("POST", f"{INSTANCE}/stop"): OPERATOR,
    ("POST", f"{INSTANCE}/restart"): OPERATOR,
    ("POST", f"{INSTANCE}/freeze"): OPERATOR,
    ("POST", f"{INSTANCE}/unfreeze"): OPERATOR,
    # --- exec and console ---
    ("POST", f"{INSTANCE}/exec"): OPERATOR,
    ("WS", f"{INSTANCE}/exec/ws"): OPERATOR,
    ("WS", f"{INSTANCE}/console/ws"): OPERATOR,
    # --- snapshots ---
    ("GET", f"{INSTANCE}/snapshots"): VIEWER,
    ("GET", f"{INSTANCE}/snapshots/{{snapshot}}"): VIEWER,
    ("POST", f"{INSTANCE}/snapshots"): OPERATOR,
    ("PATCH", f"{INSTANCE}/snapshots/{{snapshot}}"): OPERATOR,
    ("DELETE", f"{INSTANCE}/snapshots/{{snapshot}}"): OPERATOR,
    ("POST", f"{INSTANCE}/snapshots/{{snapshot}}/restore"): OPERATOR,
    # --- backups ---
    ("GET", f"{INSTANCE}/backups"): VIEWER,
    ("GET", f"{INSTANCE}/backups/{{backup}}"): VIEWER,
    ("POST", f"{INSTANCE}/backups"): OPERATOR,
    ("DELETE", f"{INSTANCE}/backups/{{backup}}"): OPERATOR,
    ("GET", f"{INSTANCE}/backups/{{backup}}/export"): OPERATOR,
    # --- files (issue 16) ---
    ("GET", f"{INSTANCE}/files"): VIEWER,
    ("PUT", f"{INSTANCE}/files"): OPERATOR,
    ("DELETE", f"{INSTANCE}/files"): OPERATOR,
    # --- storage ---
    ("GET", f"{V1}/storage/pools"): VIEWER,
    ("GET", POOL): VIEWER,
    ("GET", f"{POOL}/volumes"): VIEWER,
    ("GET", VOLUME): VIEWER,
    ("POST", f"{V1}/storage/pools"): ADMIN,
    ("PUT", POOL): ADMIN,
    ("PATCH", POOL): ADMIN,
    ("DELETE", POOL): ADMIN,
    ("POST", f"{POOL}/volumes"): ADMIN,
    ("PUT", VOLUME): ADMIN,
    ("PATCH", VOLUME): ADMIN,
    ("DELETE", VOLUME): ADMIN,
    ("POST", f"{VOLUME}/rename"): ADMIN,  # "POST ... on pools and volumes"
    ("POST", f"{VOLUME}/resize"): ADMIN,
    ("POST", f"{VOLUME}/attach"): OPERATOR,
    ("POST", f"{VOLUME}/detach"): OPERATOR,
    # --- networks ---
    ("GET", f"{V1}/networks"): VIEWER,
    ("GET", NETWORK): VIEWER,
    ("GET", f"{NETWORK}/state"): VIEWER,
    ("GET", f"{NETWORK}/leases"): VIEWER,
    ("POST", f"{V1}/networks"): ADMIN,
    ("PUT", NETWORK): ADMIN,
    ("PATCH", NETWORK): ADMIN,
    ("DELETE", NETWORK): ADMIN,
    ("POST", f"{NETWORK}/rename"): ADMIN,  # "POST ... on networks"
    ("POST", f"{NETWORK}/attach"): OPERATOR,
    ("POST", f"{NETWORK}/detach"): OPERATOR,
    # --- profiles (admin-owned: API.md, operator policy) ---
    ("GET", f"{V1}/profiles"): VIEWER,
    ("GET", PROFILE): VIEWER,
    ("POST", f"{V1}/profiles"): ADMIN,
    ("PUT", PROFILE): ADMIN,
    ("PATCH", PROFILE): ADMIN,
    ("DELETE", PROFILE): ADMIN,
    ("POST", f"{PROFILE}/rename"): ADMIN,
    # --- projects ---
    ("GET", f"{V1}/projects"): LOGIN,
    ("GET", PROJECT): VIEWER,
    ("GET", f"{PROJECT}/state"): VIEWER,  # a read, like GET /projects/{project}
    ("POST", f"{V1}/projects"): ADMIN,
    ("PUT", PROJECT): ADMIN,
    ("PATCH", PROJECT): ADMIN,
    ("DELETE", PROJECT): ADMIN,
    ("POST", f"{PROJECT}/rename"): ADMIN,
    # --- images ---
    ("GET", f"{V1}/images"): VIEWER,
    ("GET", f"{V1}/images/{{fingerprint}}"): VIEWER,
    ("GET", f"{V1}/images/aliases"): VIEWER,
    ("GET", ALIAS): VIEWER,
    ("POST", f"{V1}/images/aliases"): ADMIN,
    ("PATCH", ALIAS): ADMIN,
    ("POST", f"{ALIAS}/rename"): ADMIN,
    ("DELETE", ALIAS): ADMIN,
    ("POST", f"{V1}/images"): ADMIN,
    ("DELETE", f"{V1}/images/{{fingerprint}}"): ADMIN,
    # --- operations and events ---
    ("GET", f"{V1}/operations"): VIEWER,
    ("GET", OPERATION): VIEWER,
    ("GET", f"{OPERATION}/wait"): VIEWER,
    ("DELETE", OPERATION): OPERATOR,
    ("WS", f"{V1}/operations/ws"): VIEWER,
    # --- audit log ---
    ("GET", f"{V1}/audit"): ADMIN,
    ("GET", f"{V1}/audit/export"): ADMIN,
    ("GET", f"{V1}/audit/verify"): ADMIN,
    # --- metrics ---
    ("GET", f"{V1}/metrics/lxd"): LOGIN,  # then only the projects the caller has a role in
    # --- system ---
    ("GET", f"{V1}/system/info"): VIEWER,
    ("GET", f"{V1}/system/health"): VIEWER,
}

ROLE_LEVELS: Final = {PUBLIC: 0, LOGIN: 0, VIEWER: 1, OPERATOR: 2, ADMIN: 3}

# Viewer routes that check the global role: LXD objects that belong to no project.
SERVER_WIDE: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("GET", f"{V1}/storage/pools"),
        ("GET", POOL),
        ("GET", f"{V1}/system/info"),
        ("GET", f"{V1}/system/health"),
    }
)


def expected_scope(method: str, path: str) -> str:
    """ "global" or "project": where the route looks up the caller's role."""
    role = ROLE_TABLE[(method, path)]
    if role in (ADMIN, LOGIN) or (method, path) in SERVER_WIDE:
        return "global"
    return "project"
