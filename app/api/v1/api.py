"""`v1_router`: every resource router under `/api/v1`."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.v1.routes.auth import router as auth_router
from app.api.v1.routes.projects import router as projects_router
from app.api.v1.routes.system import router as system_router
from app.api.v1.routes.users import router as users_router

v1_router = APIRouter(prefix="/api/v1")
v1_router.include_router(auth_router)
v1_router.include_router(users_router)
v1_router.include_router(system_router)
v1_router.include_router(projects_router)
