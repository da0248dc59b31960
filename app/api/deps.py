"""Annotated dependencies, declared once: `LXDDep`, `ProjectDep`, `ListParams`, `WaitParams`,
and (below) the users and roles every route declares.

They are all `async def`: FastAPI runs a plain `def` dependency in its thread pool, which costs
about a millisecond per request for nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

import structlog
from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.db.crud import Standing
from app.db.models import User
from app.lxd import LXDClient
from app.schemas.common import PROJECT_PATTERN
from app.utils.pagination import ListQuery

log = structlog.get_logger(__name__)
UserT = TypeVar("UserT", User, Standing)


async def get_app_settings(connection: HTTPConnection) -> Settings:
    """The app's own settings (`create_app(settings)` may differ from the environment's)."""
    settings: Settings = connection.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_lxd(connection: HTTPConnection) -> LXDClient:
    client: LXDClient = connection.app.state.lxd
    return client


LXDDep = Annotated[LXDClient, Depends(get_lxd)]


async def get_project(
    settings: SettingsDep,
    project: Annotated[
        str | None,
        Query(
            pattern=PROJECT_PATTERN,
            description="LXD project to scope the request to (default: DEFAULT_PROJECT)",
            examples=["default"],
        ),
    ] = None,
) -> str:
    return project or settings.DEFAULT_PROJECT


ProjectDep = Annotated[str, Depends(get_project)]


# Paging bounds: an offset past what the user store (SQLite: 64-bit) or a list can hold is a 422,
# not an OverflowError deep in the driver.
MAX_PAGE_SIZE = 1000
MAX_OFFSET = 2**31 - 1
PageLimit = Annotated[
    int | None, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Page size (1-{MAX_PAGE_SIZE})")
]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]


async def get_list_query(
    expand: Annotated[
        bool, Query(description="Full objects (LXD recursion=1); false: names only")
    ] = True,
    filter_: Annotated[
        str | None,
        Query(
            alias="filter",
            max_length=1024,
            description="LXD filter, passed through (e.g. `status eq Running`)",
        ),
    ] = None,
    limit: PageLimit = None,
    offset: PageOffset = 0,
) -> ListQuery:
    return ListQuery(expand=expand, filter=filter_, limit=limit, offset=offset)


ListParams = Annotated[ListQuery, Depends(get_list_query)]


@dataclass(frozen=True, slots=True)
class WaitQuery:
    wait: bool
    timeout: int


async def get_wait_query(
    wait: Annotated[
        bool,
        Query(description="Wait for the LXD operation and answer with it (200) instead of 202"),
    ] = False,
    timeout: Annotated[
        int, Query(ge=1, le=3600, description="With wait=true: seconds to wait at most")
    ] = 60,
) -> WaitQuery:
    return WaitQuery(wait=wait, timeout=timeout)


WaitParams = Annotated[WaitQuery, Depends(get_wait_query)]


# --- database, current user, roles ---------------------------------------------------------------
async def get_session(connection: HTTPConnection) -> AsyncIterator[AsyncSession]:
    sessionmaker: async_sessionmaker[AsyncSession] = connection.app.state.db_sessionmaker
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
