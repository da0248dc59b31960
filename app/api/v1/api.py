"""`v1_router`: every resource router under `/api/v1`."""

from __future__ import annotations

from fastapi import APIRouter

v1_router = APIRouter(prefix="/api/v1")
