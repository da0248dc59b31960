"""Settings, read once from the environment and `.env` (see `.env.example`).

Every variable of the README's configuration table lives here with the same name and default.
`get_settings()` validates them at start; a bad value stops the start with a message that names
the variable.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

import limits
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The path every route of this API's version 1 lives under.
API_V1_PREFIX = "/api/v1"

APP_VERSION = "1.0.0"
JWT_SECRET_PLACEHOLDER = "change-me-to-a-long-random-secret"  # noqa: S105 - a known placeholder
MIN_JWT_SECRET_BYTES = 32
MIN_METRICS_TOKEN_LENGTH = 24
JWT_SECRET_COMMAND = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"  # noqa: S105


class AppEnv(StrEnum):
    development = "development"
    production = "production"


class ConnectionMode(StrEnum):
    local = "local"
    remote = "remote"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=True)

    # --- Application -----------------------------------------------------------------------
    APP_ENV: AppEnv = AppEnv.development
    APP_HOST: str = "0.0.0.0"  # noqa: S104 - a server's bind address, set by the operator
    APP_PORT: Annotated[int, Field(ge=1, le=65535)] = 8000
    LOG_LEVEL: str = "INFO"
    CORS_ORIGINS: str = "*"
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"

    # --- LXD connection --------------------------------------------------------------------
    LXD_CONNECTION_MODE: ConnectionMode = ConnectionMode.local
    LXD_SOCKET_PATH: str = "/var/snap/lxd/common/lxd/unix.socket"
    LXD_REMOTE_URL: str = "https://lxd-host:8443"
    LXD_CLIENT_CERT_PATH: str = ""
    LXD_CLIENT_KEY_PATH: str = ""
    LXD_TRUSTED_CA_PATH: str = ""
    LXD_TIMEOUT: Annotated[float, Field(gt=0)] = 30
    DEFAULT_PROJECT: str = "default"

    # --- Image servers for `"remote": "<name>"` in image copies ----------------------------
    IMAGE_REMOTE_UBUNTU_URL: str = "https://cloud-images.ubuntu.com/releases"
    IMAGE_REMOTE_UBUNTU_PROTOCOL: str = "simplestreams"
    IMAGE_REMOTE_IMAGES_URL: str = "https://images.linuxcontainers.org"
    IMAGE_REMOTE_IMAGES_PROTOCOL: str = "simplestreams"

    # --- Operator policy (README "Security model") -----------------------------------------
    # `default`: every role below admin is held to the policy; `unrestricted` turns it off
    # (unsafe: an operator can then become root on the LXD host).
    OPERATOR_POLICY: Literal["default", "unrestricted"] = "default"
    # Image servers non-admins may create instances from (`source.server`), comma-separated,
    # besides IMAGE_REMOTE_UBUNTU_URL and IMAGE_REMOTE_IMAGES_URL (always allowed).
    IMAGE_SERVERS_ALLOWED: str = ""

    # --- User store and tokens -------------------------------------------------------------
    DATABASE_URL: str = "sqlite+aiosqlite:///./data/lxd_api.db"
    # No usable default: the API refuses to start without a secret of its own.
    JWT_SECRET: SecretStr = SecretStr("")
    JWT_ACCESS_TOKEN_EXPIRE_MINUTES: Annotated[int, Field(gt=0)] = 30
    JWT_REFRESH_TOKEN_EXPIRE_DAYS: Annotated[int, Field(gt=0)] = 7
    SEED_ADMIN_USERNAME: str = ""
    SEED_ADMIN_PASSWORD: SecretStr = SecretStr("")

    # --- Rate limits (login and refresh) ---------------------------------------------------
    # Failed logins (and password checks) per (username, client address).
    RATE_LIMIT_LOGIN: str = "5/minute"
    # Failed logins per client address, whatever the username.
    RATE_LIMIT_LOGIN_IP: str = "5/minute"
    # Failed logins per username from every address it has not logged in from in 30 days.
    RATE_LIMIT_LOGIN_USER: str = "100/hour"
    # Successful logins per client address.
    RATE_LIMIT_LOGIN_SUCCESS: str = "60/minute"
    RATE_LIMIT_REFRESH: str = "30/minute"
    RATE_LIMIT_STORAGE_URI: str = "memory://"

    # --- API tokens (scripts, CI) --------------------------------------------------------------
    # The longest life a token may be given (and the default when it asks for none).
    API_TOKEN_MAX_DAYS: Annotated[int, Field(gt=0, le=3650)] = 365

    # --- Request bodies and WebSocket sessions ---------------------------------------------
    # Refused with 413 before anything reads or parses them (app.core.bodylimit).
    MAX_BODY_BYTES: Annotated[int, Field(gt=0)] = 1024 * 1024
    # /api/v1/auth/* (public: login, refresh) takes only small JSON bodies.
    MAX_AUTH_BODY_BYTES: Annotated[int, Field(gt=0)] = 16 * 1024
    # PUT /api/v1/instances/{name}/files: the upload is streamed to LXD, never held in memory.
    MAX_FILE_UPLOAD_BYTES: Annotated[int, Field(gt=0)] = 4 * 1024**3
    # Open exec, console and event sockets per user and replica; over it: close 4429.
    WS_MAX_SESSIONS_PER_USER: Annotated[int, Field(gt=0)] = 16

    # --- Audit log (README "Audit log") ------------------------------------------------------
    # Days to keep audit entries; 0 keeps everything. Pruning keeps the chain verifiable.
    AUDIT_RETENTION_DAYS: Annotated[int, Field(ge=0, le=36500)] = 0

    # --- Metrics (README "Metrics") ------------------------------------------------------------
    # GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty: /metrics is off
    # (404). At least 24 characters (`openssl rand -hex 32`).
    METRICS_TOKEN: SecretStr = SecretStr("")

    # --- Read model (README "Lists at scale") ----------------------------------------------
    # Instance lists and gets answered from memory, kept in step with LXD's event stream;
    # false: every read goes to LXD.
    READ_MODEL: bool = True

    @field_validator(
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_LOGIN_IP",
        "RATE_LIMIT_LOGIN_USER",
        "RATE_LIMIT_LOGIN_SUCCESS",
        "RATE_LIMIT_REFRESH",
    )
    @classmethod
    def _one_rate_limit(cls, value: str) -> str:
        try:
            items = limits.parse_many(value)
        except ValueError:
            items = []
        if len(items) != 1 or items[0].amount < 1:
            raise ValueError(f"{value!r} is not one rate limit such as 5/minute or 100/hour")
        return value

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value()
        if token and len(token) < MIN_METRICS_TOKEN_LENGTH:
            raise ValueError(
                f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
                "(`openssl rand -hex 32`), or empty to turn /metrics off"
            )
        return value

    @field_validator("LOG_LEVEL")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.LXD_CONNECTION_MODE is ConnectionMode.remote:
            if not self.LXD_REMOTE_URL.startswith("https://"):
                raise ValueError("LXD_REMOTE_URL must be an https:// URL in remote mode")
            for name in ("LXD_CLIENT_CERT_PATH", "LXD_CLIENT_KEY_PATH"):
                path = getattr(self, name)
                if not path:
                    raise ValueError(f"{name} is required when LXD_CONNECTION_MODE=remote")
                if not Path(path).is_file():
                    raise ValueError(f"{name} points to a missing file: {path}")
            if self.LXD_TRUSTED_CA_PATH and not Path(self.LXD_TRUSTED_CA_PATH).is_file():
                raise ValueError(
                    f"LXD_TRUSTED_CA_PATH points to a missing file: {self.LXD_TRUSTED_CA_PATH}"
                )
        return self

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.CORS_ORIGINS.split(",") if origin.strip()]

    @property
    def jwt_secret_problem(self) -> str | None:
        """Why the API must not start with this `JWT_SECRET` (in every `APP_ENV`: whoever knows
        the secret forges an admin token), or None. Checked by `create_app()`, not here, so
        that `alembic` and the tools that only read the database need no secret."""
        secret = self.JWT_SECRET.get_secret_value()
        if not secret:
            problem = "JWT_SECRET is not set"
        elif secret == JWT_SECRET_PLACEHOLDER:
            problem = "JWT_SECRET is the public placeholder from .env.example"
        elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            problem = f"JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes"
        else:
            return None
        return (
            f"{problem}: set a random value of at least {MIN_JWT_SECRET_BYTES} bytes "
            f"(`{JWT_SECRET_COMMAND}`); `make run` and `make dev` make one themselves"
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
