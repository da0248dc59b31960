"""Users as the API shows them: never with a password hash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

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


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: NewPassword
    role: Role = Role.viewer


class UserUpdate(BaseModel):
    """Any of the three; each change cuts off the user's current tokens."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "operator"}, {"is_active": False}, {"password": "n3w-passw0rd"}]
        },
    )

    role: Role | None = None
    is_active: bool | None = None
    password: NewPassword | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    role: Role
    is_active: bool
    created_at: datetime
