"""Users as the API shows them: never with a password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.security import USERNAME_PATTERN, Role
from app.schemas.auth import NewPassword

Username = Annotated[
    str,
    Field(
        pattern=USERNAME_PATTERN,
        description="2-64 characters: letters, digits, `_ . @ -`, starting with a letter or "
        "digit; unique regardless of case",
        examples=["alice"],
    ),
]


RoleField = Annotated[
    Role,
    Field(
        description="Global role: `viewer` < `operator` < `admin`; `none`: only the projects "
        "the user is bound to (`PUT /users/{username}/projects/{project}`)"
    ),
]
ProjectRole = Literal["viewer", "operator"]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: NewPassword
    role: RoleField = Role.viewer


class UserUpdate(BaseModel):
    """Any of the three; each change cuts off the user's current tokens."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "operator"}, {"is_active": False}, {"password": "n3w-passw0rd"}]
        },
    )

    role: RoleField | None = None
    is_active: bool | None = None
    password: NewPassword | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    role: Role
    is_active: bool
    created_at: datetime
    projects: dict[str, ProjectRole] = Field(
        default_factory=dict,
        description="The user's role per project, beside its global role",
        examples=[{"tenant-a": "operator"}],
    )


class ProjectRoleSet(BaseModel):
    """`PUT /users/{username}/projects/{project}`: the user's role in that project (admin is
    global only)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "operator"}]}
    )

    role: ProjectRole
