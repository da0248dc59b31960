"""API tokens: what `POST /auth/tokens` takes and what the token routes answer (the secret
only once, in the creation answer)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.core.security import Role
from app.schemas.common import PROJECT_PATTERN

TOKEN_ID_PATTERN = r"^tok_[0-9a-f]{16}$"  # noqa: S105 (a format, not a secret)
ProjectName = Annotated[str, Field(pattern=PROJECT_PATTERN)]


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "ci-deploy", "role": "operator", "projects": ["staging"]},
                {"name": "dashboard", "role": "viewer", "expires_in_days": 30},
            ]
        },
    )

    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w .:@+-]+$")
    role: Role | None = Field(
        default=None, description="Default: your own highest role; never above it"
    )
    projects: list[ProjectName] | None = Field(
        default=None,
        max_length=100,
        description="Only these projects (each one you have a role in); none: server-wide "
        "routes are then out of reach too. Default: wherever you have a role",
    )
    expires_in_days: int | None = Field(
        default=None, ge=1, description="Default and upper bound: `API_TOKEN_MAX_DAYS` (365)"
    )


class TokenPublic(BaseModel):
    """A token as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["tok_3f2a9c1d0b8e7a65"])
    name: str
    role: Role
    projects: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Kept to the minute")


class TokenCreated(TokenPublic):
    token: str = Field(
        description="The secret (`lxa_...`): shown here only, stored hashed. Send it as "
        "`Authorization: Bearer <token>` (or `?token=` on a WebSocket)",
        examples=["lxa_Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"],
    )
