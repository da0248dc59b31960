"""Auth requests and replies: login, tokens, refresh, logout, own password change."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.security import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH

# A password as stored from now on: 8 to 128 characters (else 422).
NewPassword = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description=f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters",
        examples=["correct-horse-battery"],
    ),
]
# A password as typed at login: only bounded, so that a huge body costs no hashing time.
GivenPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
TokenString = Annotated[str, Field(min_length=1, max_length=4096)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Request):
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: GivenPassword


class TokenPair(BaseModel):
    access_token: str = Field(description="JWT for `Authorization: Bearer` (and `?token=`)")
    refresh_token: str = Field(description="JWT for `POST /auth/refresh`; single use")
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 scheme name
    expires_in: int = Field(description="Seconds until the access token expires")


class RefreshRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "eyJhbGciOi..."}]})

    refresh_token: TokenString


class LogoutRequest(_Request):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refresh_token": "eyJhbGciOi..."}]})

    refresh_token: TokenString


class PasswordChange(_Request):
    current_password: GivenPassword
    new_password: NewPassword
