"""`v1_router`: every resource router under `/api/v1`."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.v1.routes.audit import router as audit_router
from app.api.v1.routes.auth import router as auth_router
from app.api.v1.routes.backups import router as backups_router
from app.api.v1.routes.console import router as console_router
from app.api.v1.routes.events import router as events_router
from app.api.v1.routes.exec import router as exec_router
from app.api.v1.routes.files import router as files_router
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
from app.core.config import API_V1_PREFIX

v1_router = APIRouter(prefix=API_V1_PREFIX)
v1_router.include_router(auth_router)
v1_router.include_router(tokens_router)
v1_router.include_router(users_router)
v1_router.include_router(system_router)
v1_router.include_router(projects_router)
v1_router.include_router(images_router)
v1_router.include_router(instances_router)
v1_router.include_router(policy_router)
v1_router.include_router(instance_lifecycle_router)
v1_router.include_router(instance_logs_router)
v1_router.include_router(snapshots_router)
v1_router.include_router(backups_router)
v1_router.include_router(files_router)
v1_router.include_router(storage_router)
v1_router.include_router(storage_volumes_router)
v1_router.include_router(networks_router)
v1_router.include_router(profiles_router)
v1_router.include_router(operations_router)
v1_router.include_router(events_router)
v1_router.include_router(exec_router)
v1_router.include_router(console_router)
v1_router.include_router(audit_router)
v1_router.include_router(metrics_router)
