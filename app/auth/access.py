"""Who may do what where (API.md, Part 2, "Per-project roles"): pure functions over a user's
global role and its project bindings, no I/O. `require()` is the check every role dependency
runs (HTTP, WebSocket, the session poller).

A caller's role in project P is the higher of its global role and its binding for P. A global
`none` means "only the bound projects". A project in which the caller has no role at all is
not shown: routes answer it exactly like a project that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

from app.auth.errors import PermissionDeniedError
from app.core.security import Role
from app.errors import LXDNotFound

Scope = Literal["project", "global"]


class Member(Protocol):
    """What the checks need of a user (the ORM `User`, or the `Standing` read beside a request)."""

    @property
    def role(self) -> str: ...

    @property
    def projects(self) -> Mapping[str, str]: ...


def role_in(member: Member, project: str) -> Role:
    """The caller's role in `project`."""
    role = Role(member.role)
    bound = member.projects.get(project)
    if bound is not None and Role(bound).level > role.level:
        return Role(bound)
    return role


def global_role(member: Member) -> Role:
    """The role server-wide routes check (storage pools, users, system, project CRUD)."""
    return Role(member.role)


def sees(member: Member, project: str) -> bool:
    """Whether `project` exists for the caller at all."""
    return role_in(member, project).admits(Role.viewer)


def sees_every_project(member: Member) -> bool:
    return global_role(member).admits(Role.viewer)


def visible(member: Member, projects: Iterable[str]) -> list[str]:
    """The names in `projects` the caller may see, in their order."""
    if sees_every_project(member):
        return list(projects)
    return [name for name in projects if sees(member, name)]


def project_not_found(project: str) -> LXDNotFound:
    """What a project the caller has no role in answers: the same as a missing one."""
    return LXDNotFound(f"Project {project!r} not found")


def require(member: Member, min_role: Role, scope: Scope, project: str | None) -> None:
    """The one role check: 404 for an unseen project, 403 for a role too low, nothing when
    `member` may. `scope="global"` (or no project): the global role."""
    if scope == "global" or project is None:
        if not global_role(member).admits(min_role):
            raise PermissionDeniedError(f"This action needs the {min_role} role")
        return
    role = role_in(member, project)
    if not role.admits(Role.viewer):
        raise project_not_found(project)
    if not role.admits(min_role):
        raise PermissionDeniedError(f"This action needs the {min_role} role in project {project!r}")


def _lower(one: Role, other: Role) -> Role:
    return one if one.level <= other.level else other


def highest_role(member: Member) -> Role:
    """The most the member may do anywhere: its global role or its best project role."""
    roles = [Role(member.role), *(Role(role) for role in member.projects.values())]
    return max(roles, key=lambda role: role.level)


def token_rights(
    member: Member, role: str, projects: Iterable[str] | None
) -> tuple[Role, dict[str, str]]:
    """What an API token of `member` may do: (global role, {project: role}), the least of the
    token's own `role` and `projects` and the member's rights now. A token limited to projects
    has no server-wide rights at all."""
    cap = Role(role)
    if projects is None:
        bound = {name: _lower(Role(r), cap) for name, r in member.projects.items()}
        global_role = _lower(Role(member.role), cap)
    else:
        bound = {name: _lower(role_in(member, name), cap) for name in projects}
        global_role = Role.none
    return global_role, {name: r.value for name, r in bound.items() if r.admits(Role.viewer)}
