"""The parameters many routes share: the path names (`InstanceName`, `PoolName`, `Fingerprint`)
and, as dependencies, `?project=`, a list's paging and filter, `?wait=&timeout=`. The aliases of
the dependencies are in `app.api.deps`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.schemas.common import (
    FINGERPRINT_PATTERN,
    INSTANCE_NAME_PATTERN,
    NAME_PATTERN,
    PROJECT_PATTERN,
)
from app.utils.pagination import ListQuery

InstanceName = Annotated[
    str, Path(pattern=INSTANCE_NAME_PATTERN, description="Instance name", examples=["web1"])
]
PoolName = Annotated[
    str, Path(pattern=NAME_PATTERN, description="Storage pool name", examples=["default"])
]
Fingerprint = Annotated[
    str, Path(pattern=FINGERPRINT_PATTERN, description="Image fingerprint or a unique prefix")
]


async def get_project(
    connection: HTTPConnection,
    project: Annotated[
        str | None,
        Query(
            pattern=PROJECT_PATTERN,
            description="LXD project to scope the request to (default: DEFAULT_PROJECT)",
            examples=["default"],
        ),
    ] = None,
) -> str:
    settings: Settings = connection.app.state.settings
    return project or settings.DEFAULT_PROJECT


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
