"""Every curl example in the README reaches a real route with a body the route accepts.

The README's examples are highlights of api.http (which tests/integration/test_api_http.py runs
against a real LXD); here each is sent to an app whose LXD is a stub, and must not be refused
for its own shape: no unknown route (404 "Not Found"), no wrong method (405), no 422.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.auth import auth_for
from tests.support.fake_lxd import fake_lxd_handler
from tests.support.lxd_replies import error

README = Path(__file__).resolve().parents[2] / "README.md"


def curl_examples() -> list[list[str]]:
    text = README.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        match = re.search(r"curl (.*localhost:8000.*)", line)
        if match:
            command = match.group(1).split(")", 1)[0] if "$(curl" in line else match.group(1)
            commands.append(shlex.split(command.split("|", 1)[0]))
    return commands


def as_request(args: list[str], token: str) -> tuple[str, str, dict[str, str], str | None]:
    method, url, body = "GET", "", None
    headers: dict[str, str] = {}
    words = iter(args)
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            key, _, value = next(words).partition(":")
            headers[key.strip()] = value.strip().replace("$TOKEN", token)
        elif word == "-d":
            body = next(words).replace("$REFRESH", "not-a-real-refresh-token")
            method = "POST" if method == "GET" else method
        elif word.startswith(("-", "--")):
            continue
        elif "localhost:8000" in word:
            url = word.split("localhost:8000", 1)[1].replace("<id>", str(uuid.uuid4()))
    return method, url, headers, body


def test_readme_has_examples() -> None:
    assert len(curl_examples()) >= 15


def stub_lxd(request: httpx.Request) -> httpx.Response:
    """Answers `GET /1.0`; refuses everything else with a message no route of ours uses."""
    if request.url.path == "/1.0":
        return fake_lxd_handler(request)
    return error(400, "refused by the stub")


async def test_every_readme_example_fits_its_route(make_unit_app: Callable[..., Any]) -> None:
    app = await make_unit_app(lxd_handler=stub_lxd)
    token = (await auth_for(app)).token("admin")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for args in curl_examples():
            method, url, headers, body = as_request(args, token)
            reply = await client.request(method, url, headers=headers, content=body)
            where = f"{method} {url} -> {reply.status_code} {reply.text[:200]}"
            detail: Any = reply.json().get("detail") if reply.content else None
            assert reply.status_code != 500, where
            assert not (reply.status_code == 404 and detail == "Not Found"), where
            assert reply.status_code not in {405, 422}, where


@pytest.mark.parametrize("bad", ["/api/v1/nowhere", "/api/v1/instances/a/b/c/d"])
async def test_the_check_catches_unknown_routes(unit_client: httpx.AsyncClient, bad: str) -> None:
    reply = await unit_client.get(bad)
    assert reply.status_code == 404
    assert reply.json()["detail"] == "Not Found"
