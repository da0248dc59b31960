"""`lxd_answer()` (app/api/responses.py): the one way a route answers an LXD object or a page
of them. Headers only when given, the status asked for, the body rendered by pydantic-core as
given, or through the route's model exactly as FastAPI's `response_model` would have sent it."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic_core
import pytest
from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError

from app.api.responses import LXDJSONResponse, lxd_answer
from app.schemas.common import Page
from app.schemas.operations import OperationPublic
from app.schemas.profiles import ProfilePublic

# As LXD may send it: fields the model does not declare, and declared ones left out.
PROFILE: dict[str, Any] = {"name": "web", "project": "default", "config": {"limits.cpu": "2"}}
OPERATION: dict[str, Any] = {"id": "op-1", "class": "task", "status": "Running", "status_code": 103}


def test_without_headers_it_sends_the_body_as_given() -> None:
    response = lxd_answer({"name": "wéb", "zz": [1, None], "a": {}})

    assert isinstance(response, LXDJSONResponse)
    assert response.status_code == 200
    assert response.body == pydantic_core.to_json({"name": "wéb", "zz": [1, None], "a": {}})
    assert response.body == '{"name":"wéb","zz":[1,null],"a":{}}'.encode()
    assert response.headers["content-type"] == "application/json"
    for header in ("etag", "age", "location"):
        assert header not in response.headers


def test_headers_and_status_when_given() -> None:
    response = lxd_answer(
        PROFILE, etag='"abc"', age=0, location="/api/v1/profiles/web", status_code=201
    )

    assert response.status_code == 201
    assert response.headers["etag"] == '"abc"'
    assert response.headers["age"] == "0"  # an answer from a model loaded this second
    assert response.headers["location"] == "/api/v1/profiles/web"
    assert response.body == pydantic_core.to_json(PROFILE)


def test_an_empty_etag_is_not_sent() -> None:
    assert "etag" not in lxd_answer(PROFILE, etag="").headers


def test_a_page_without_model_is_sent_as_given() -> None:
    page = {"items": [PROFILE, "other"], "total": 2, "limit": None, "offset": 0}
    assert lxd_answer(page).body == pydantic_core.to_json(page)


async def _both_ways(model: Any, body: Any) -> tuple[bytes, bytes]:
    """The body as FastAPI's `response_model` sends it, and as `lxd_answer(model=)` does."""
    app = FastAPI()

    @app.get("/validated", response_model=model)
    async def validated() -> Any:
        return body

    @app.get("/answered", response_model=model)
    async def answered() -> LXDJSONResponse:
        return lxd_answer(body, model=model)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        validated_reply = await client.get("/validated")
        answered_reply = await client.get("/answered")
    return validated_reply.content, answered_reply.content


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (ProfilePublic, PROFILE),
        (Page[ProfilePublic | str], {"items": [PROFILE, "b"], "total": 2, "limit": 1, "offset": 0}),
        (OperationPublic, OPERATION),  # `class` is an alias
    ],
)
async def test_with_model_the_body_is_what_response_model_gave(model: Any, body: Any) -> None:
    validated, answered = await _both_ways(model, body)

    assert answered == validated
    assert answered != pydantic_core.to_json(body)  # the model filled in defaults


def test_with_model_defaults_and_aliases_are_filled_in() -> None:
    profile = lxd_answer(PROFILE, model=ProfilePublic).body
    assert profile == pydantic_core.to_json(
        {
            "name": "web",
            "description": "",
            "config": {"limits.cpu": "2"},
            "devices": {},
            "used_by": None,
            "project": "default",
        }
    )
    operation = pydantic_core.from_json(lxd_answer(OPERATION, model=OperationPublic).body)
    assert operation["class"] == "task"
    assert "class_" not in operation
    assert operation["may_cancel"] is False
    assert operation["err"] == ""


def test_with_model_a_body_that_does_not_fit_fails_as_response_model_does() -> None:
    with pytest.raises(ResponseValidationError):
        lxd_answer({"description": "no name"}, model=ProfilePublic)
