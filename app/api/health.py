"""Unversioned health probes: `/health` (deep: checks LXD) and `/health/live` (process only)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import LXDDep
from app.core.config import APP_VERSION
from app.core.ratelimit import RateLimiter
from app.errors import LXDError
from app.lxd import LXDClient
from app.services.system import server_info

router = APIRouter(tags=["health"])

HEALTH_TIMEOUT = 5.0


class LXDHealth(BaseModel):
    status: Literal["ok", "unavailable"]
    mode: str
    api_version: str | None = None
    server_version: str | None = None
    reason: str | None = None


class RateLimitHealth(BaseModel):
    """The shared rate-limit storage (only with `RATE_LIMIT_STORAGE_URI` on Redis)."""

    status: Literal["ok", "unavailable"]
    storage: str
    reason: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    lxd: LXDHealth
    rate_limits: RateLimitHealth | None = None


class Live(BaseModel):
    status: Literal["ok"]
    version: str


async def lxd_health(lxd: LXDClient) -> LXDHealth:
    try:
        server = await server_info(lxd, timeout=min(HEALTH_TIMEOUT, lxd.timeout))
    except LXDError as exc:
        return LXDHealth(status="unavailable", mode=str(lxd.mode), reason=exc.detail)
    environment = server.get("environment") or {}
    return LXDHealth(
        status="ok",
        mode=str(lxd.mode),
        api_version=server.get("api_version"),
        server_version=environment.get("server_version"),
    )


async def rate_limit_health(limiter: RateLimiter) -> RateLimitHealth | None:
    if not limiter.shared:
        return None
    reason = await limiter.check()
    status: Literal["ok", "unavailable"] = "ok" if reason is None else "unavailable"
    return RateLimitHealth(status=status, storage=limiter.kind, reason=reason)


@router.get(
    "/health",
    response_model=Health,
    summary="Deep health check",
    description="Checks that LXD answers `GET /1.0`. 200 when it does; 503 with "
    '`"status": "degraded"` and the reason when it does not. With the rate limits on Redis, '
    '`rate_limits` says whether Redis answers: Redis down is `"status": "degraded"` with '
    "200 (logins are refused meanwhile, everything else is served; every replica shares that "
    "Redis, so taking this one out of a load balancer would not help). Public.",
    responses={503: {"model": Health, "description": "LXD is unreachable"}},
)
async def health(request: Request, lxd: LXDDep) -> JSONResponse:
    lxd_state, limits_state = await asyncio.gather(
        lxd_health(lxd), rate_limit_health(request.app.state.rate_limiter)
    )
    lxd_ok = lxd_state.status == "ok"
    ok = lxd_ok and (limits_state is None or limits_state.status == "ok")
    body = Health(
        status="ok" if ok else "degraded",
        version=APP_VERSION,
        lxd=lxd_state,
        rate_limits=limits_state,
    )
    return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if lxd_ok else 503)


@router.get(
    "/health/live",
    response_model=Live,
    summary="Liveness probe",
    description="Answers as long as the process serves requests; touches no dependency. Public.",
)
async def live() -> Live:
    return Live(status="ok", version=APP_VERSION)
