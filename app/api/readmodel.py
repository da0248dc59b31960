"""The read model at the HTTP edge: who may be answered from it, and this API's own writes.

* `ReadModelDep`: the app's `ReadModel`, or None when the request asks for a fresh read
  (`Cache-Control: no-cache`, `no-store` or `max-age=0`): then LXD answers.
* `ReadModelMiddleware`: for every request that may change something (not GET, HEAD or
  OPTIONS) under `/api/v1`, tells the model (`note_write`) as the response starts, so that
  this replica's next read shows the write: an instance route (`/instances/{name}`, its
  state, config, snapshots...) re-reads that instance; anything else in the project (a
  create, a rename or copy, a volume or NIC attach, a profile) reloads the project's
  instances. Auth, users, tokens, audit and
  policy checks change no instance.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.audit.middleware import SAFE_METHODS, entry_project
from app.core.config import API_V1_PREFIX
from app.metrics.middleware import route_template
from app.services.readmodel import ReadModel

INSTANCE_ROUTE = f"{API_V1_PREFIX}/instances/{{name}}"
# Routes under these change no instance.
UNRELATED = tuple(
    f"{API_V1_PREFIX}/{area}" for area in ("auth", "users", "audit", "policy", "metrics")
)
# Instance routes that make or name another instance: the project is reloaded.
RELOADING_SUFFIXES = ("/rename", "/copy")
_FRESH = ("no-cache", "no-store", "max-age=0")


async def get_read_model(request: Request) -> ReadModel | None:
    cache_control = request.headers.get("cache-control", "").lower()
    if any(directive in cache_control for directive in _FRESH):
        return None
    model: ReadModel | None = getattr(request.app.state, "read_model", None)
    return model


ReadModelDep = Annotated[ReadModel | None, Depends(get_read_model)]


class ReadModelMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        model: ReadModel | None = getattr(scope["app"].state, "read_model", None)
        if model is None:
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            # Before the client hears the answer: its next request must see the write.
            if message["type"] == "http.response.start":
                written(model, scope)
            await send(message)

        await self.app(scope, receive, sending)


def written(model: ReadModel, scope: Scope) -> None:
    """Tell the model what the finished request may have changed."""
    path: str = scope.get("path", "")
    if not path.startswith(API_V1_PREFIX + "/") or path.startswith(UNRELATED):
        return
    params: dict[str, Any] = scope.get("path_params") or {}
    template = route_template(scope)
    default: str = scope["app"].state.settings.DEFAULT_PROJECT
    project = entry_project(scope, default) or default
    if template.startswith(f"{API_V1_PREFIX}/projects/{{project}}"):
        model.note_write(str(params.get("project", project)), None)
        return
    if template.startswith(INSTANCE_ROUTE) and not template.endswith(RELOADING_SUFFIXES):
        model.note_write(project, str(params.get("name", "")) or None)
        return
    model.note_write(project, None)
