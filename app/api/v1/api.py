"""Every resource router of `/api/v1`, in the order they are matched (app/api/routing.py)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.v1.routes.audit import router as audit_router
from app.api.v1.routes.auth import router as auth_router
from app.api.v1.routes.backups import router as backups_router
from app.api.v1.routes.console import router as console_router
from app.api.v1.routes.events import router as events_router
from app.api.v1.routes.exec import router as exec_router
from app.api.v1.routes.files import router as files_router
from app.api.v1.routes.image_aliases import router as image_aliases_router
from app.api.v1.routes.images import router as images_router
from app.api.v1.routes.instance_lifecycle import router as instance_lifecycle_router
from app.api.v1.routes.instance_logs import router as instance_logs_router
from app.api.v1.routes.instances import router as instances_router
from app.api.v1.routes.metrics import router as metrics_router
from app.api.v1.routes.networks import router as networks_router
from app.api.v1.routes.operations import router as operations_router
from app.api.v1.routes.policy import router as policy_router
from app.api.v1.routes.profiles import router as profiles_router
from app.api.v1.routes.projects import router as projects_router
from app.api.v1.routes.snapshots import router as snapshots_router
from app.api.v1.routes.storage import router as storage_router
from app.api.v1.routes.storage_volumes import router as storage_volumes_router
from app.api.v1.routes.system import router as system_router
from app.api.v1.routes.tokens import router as tokens_router
from app.api.v1.routes.users import router as users_router

# Matched in this order, first match wins: the instance routes (the most read) first, the
# aliases before `/images/{fingerprint}`. Every router declares its full path (`API_V1_PREFIX`).
V1_ROUTERS: tuple[APIRouter, ...] = (
    instances_router,
    instance_lifecycle_router,
    instance_logs_router,
    snapshots_router,
    backups_router,
    files_router,
    exec_router,
    console_router,
    operations_router,
    events_router,
    auth_router,
    tokens_router,
    users_router,
    system_router,
    projects_router,
    image_aliases_router,
    images_router,
    policy_router,
    storage_router,
    storage_volumes_router,
    networks_router,
    profiles_router,
    audit_router,
    metrics_router,
)
