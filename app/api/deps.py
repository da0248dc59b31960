"""Annotated dependencies, declared once: what a route may ask for in its signature.

The functions behind them: the app's shared clients (below), the shared query parameters
(`app.api.params`), the caller and its role (`app.api.access`, over `app.auth`). They are all
`async def`: FastAPI runs a plain `def` dependency in its thread pool, which costs about a
millisecond per request for nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.api.access import (
    LoginOnlyRequirement,
    PathProjectRequirement,
    ProjectReadAccess,
    ReadAccess,
    get_current_user,
    require_project_role,
    require_role,
    require_ws_role,
)
from app.api.params import (
    MAX_PAGE_SIZE,
    PageLimit,
    PageOffset,
    WaitQuery,
    get_list_query,
    get_project,
    get_wait_query,
)
from app.core.config import Settings
from app.core.security import Role
from app.db.models import User
from app.lxd import LXDClient
from app.utils.pagination import ListQuery

__all__ = [
    "MAX_PAGE_SIZE",
    "AdminUser",
    "CurrentUser",
    "GlobalViewerRead",
    "GlobalViewerUser",
    "LXDDep",
    "ListParams",
    "LoginUser",
    "OperatorUser",
    "PageLimit",
    "PageOffset",
    "PasswordLoginUser",
    "PathProjectViewer",
    "ProjectDep",
    "SessionDep",
    "SettingsDep",
    "ViewerRead",
    "ViewerUser",
    "WSOperatorUser",
    "WSViewerUser",
    "WaitParams",
    "WaitQuery",
]


async def get_app_settings(connection: HTTPConnection) -> Settings:
    """The app's own settings (`create_app(settings)` may differ from the environment's)."""
    settings: Settings = connection.app.state.settings
    return settings


async def get_lxd(connection: HTTPConnection) -> LXDClient:
    client: LXDClient = connection.app.state.lxd
    return client


async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.db_sessionmaker
    async with sessionmaker() as session:
        yield session


# --- the app's clients and the shared query parameters ------------------------------------------
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LXDDep = Annotated[LXDClient, Depends(get_lxd)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
ProjectDep = Annotated[str, Depends(get_project)]
ListParams = Annotated[ListQuery, Depends(get_list_query)]
WaitParams = Annotated[WaitQuery, Depends(get_wait_query)]

# --- the caller and its role (API.md, "Per-project roles"; `app.api.access`) --------------------
CurrentUser = Annotated[User, Depends(get_current_user)]  # any valid token, no role check
# Server-wide routes: the global role.
LoginUser = Annotated[User, Depends(require_role(Role.none))]
PasswordLoginUser = Annotated[User, Depends(LoginOnlyRequirement(Role.none))]  # not a token
GlobalViewerUser = Annotated[User, Depends(require_role(Role.viewer))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]
# Project-scoped routes: the role in `?project=` (or the path's project).
ViewerUser = Annotated[User, Depends(require_project_role(Role.viewer))]
OperatorUser = Annotated[User, Depends(require_project_role(Role.operator))]
PathProjectViewer = Annotated[User, Depends(PathProjectRequirement(Role.viewer))]
# JSON reads: the user's standing is read while the endpoint asks LXD (`ReadAccess`).
GlobalViewerRead = Annotated[None, Depends(ReadAccess(Role.viewer), scope="function")]
ViewerRead = Annotated[None, Depends(ProjectReadAccess(Role.viewer), scope="function")]
# WebSockets (`?token=`, always project-scoped): refusals close with 4401/4403/4404.
WSViewerUser = Annotated[User, Depends(require_ws_role(Role.viewer))]
WSOperatorUser = Annotated[User, Depends(require_ws_role(Role.operator))]
