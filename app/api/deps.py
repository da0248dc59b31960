"""Annotated dependencies, declared once: `LXDDep`, `ProjectDep`, `ListParams`, and (below) the
users and roles every route declares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

from app.core.config import Settings, get_settings
from app.schemas.common import PROJECT_PATTERN
from app.services.lxd_client import LXDClient

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_lxd(connection: HTTPConnection) -> LXDClient:
    client: LXDClient = connection.app.state.lxd
    return client


LXDDep = Annotated[LXDClient, Depends(get_lxd)]


def get_project(
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


@dataclass(frozen=True, slots=True)
class ListQuery:
    expand: bool
    filter: str | None
    limit: int | None
    offset: int


def get_list_query(
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
    limit: Annotated[int | None, Query(ge=1, le=1000, description="Page size (1-1000)")] = None,
    offset: Annotated[int, Query(ge=0, description="Items to skip")] = 0,
) -> ListQuery:
    return ListQuery(expand=expand, filter=filter_, limit=limit, offset=offset)


ListParams = Annotated[ListQuery, Depends(get_list_query)]


@dataclass(frozen=True, slots=True)
class WaitQuery:
    wait: bool
    timeout: int


def get_wait_query(
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
