"""`GET /metrics/lxd`: LXD's own metrics, only of the projects the caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.api.deps import LoginUser, LXDDep
from app.api.responses import error_responses
from app.auth import access
from app.core.config import API_V1_PREFIX
from app.errors import LXDNotFound
from app.metrics import CONTENT_TYPE
from app.schemas.common import PROJECT_PATTERN
from app.services import lxd_metrics as service

router = APIRouter(prefix=API_V1_PREFIX + "/metrics", tags=["metrics"])


@router.get(
    "/lxd",
    response_class=Response,
    summary="LXD's metrics, of the projects you may see",
    description="`GET /1.0/metrics` (CPU, memory, disk, network and processes per instance), "
    "relayed in the Prometheus text format with only the samples of the projects the caller "
    "has a role in (`project` label); LXD's server-wide samples (no `project` label) only for "
    "a caller whose global role is viewer or higher. `?project=` narrows it to one project "
    "(404 if the caller has no role there, as for a missing one). LXD refreshes its figures "
    "every few seconds. Role: any logged-in user (what is shown depends on the roles).",
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(404, 422),
    },
)
async def lxd_metrics(
    lxd: LXDDep,
    user: LoginUser,
    project: Annotated[
        str | None,
        Query(pattern=PROJECT_PATTERN, max_length=63, description="Only this project"),
    ] = None,
) -> Response:
    if project is not None and not access.sees(user, project):
        raise LXDNotFound("Project not found")
    every = access.sees_every_project(user)

    def keep(name: str) -> bool:
        return name == project if project is not None else every or access.sees(user, name)

    text = await service.read_metrics(lxd)
    body = service.visible_metrics(text, keep=keep, server_wide=every and project is None)
    return Response(body, media_type=CONTENT_TYPE)
