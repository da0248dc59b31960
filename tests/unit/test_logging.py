"""Secrets in log lines, by the name a server decodes: `?tok%65n=<jwt>` is `?token=` to
Starlette (it authenticates a WebSocket), so it must be redacted like `?token=`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest
import structlog
from asgi_lifespan import LifespanManager
from starlette.datastructures import QueryParams

from app.core.config import Settings
from app.core.logging import is_secret_param, redact_query, redact_text
from app.main import create_app
from tests.support.fake_lxd import fake_lxd_handler

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"tok%65n={JWT}", "tok%65n=[REDACTED]"),
        (f"%74oken={JWT}&type=lifecycle", "%74oken=[REDACTED]&type=lifecycle"),
        (f"%74%6F%6B%65%6E={JWT}", "%74%6F%6B%65%6E=[REDACTED]"),
        (f"to%6Ben={JWT}", "to%6Ben=[REDACTED]"),  # lower-case hex
        (f"TOKEN={JWT}", "TOKEN=[REDACTED]"),
        (f"ToK%45n={JWT}", "ToK%45n=[REDACTED]"),
        (f"token=a{JWT}&token=b{JWT}", "token=[REDACTED]&token=[REDACTED]"),
        (f"+token={JWT}", "+token=[REDACTED]"),
        (
            f"access_token={JWT}&refresh%5Ftoken={JWT}",
            "access_token=[REDACTED]&refresh%5Ftoken=[REDACTED]",
        ),
        ("password=hunter2&secret=s3", "password=[REDACTED]&secret=[REDACTED]"),
        ("password=ab=cd&x=1", "password=[REDACTED]&x=1"),  # a value may hold `=`
        (f"project=default&token={JWT}&width=80", "project=default&token=[REDACTED]&width=80"),
        ("project=default&type=operation,lifecycle", "project=default&type=operation,lifecycle"),
        ("tokens_left=3&tokenish=1", "tokens_left=3&tokenish=1"),
        ("token=&x=1", "token=&x=1"),
    ],
)
def test_query_secrets_are_redacted_by_decoded_name(query: str, expected: str) -> None:
    assert redact_query(query) == expected
    assert redact_text(query) == expected
    assert JWT not in redact_text(f'"GET /api/v1/operations/ws?{query} HTTP/1.1" 101')


def test_starlette_reads_these_names_as_token() -> None:
    """Why decoding matters: these all authenticate a WebSocket (`query_params["token"]`)."""
    for name in ("tok%65n", "%74oken", "%74%6f%6b%65%6e"):
        assert QueryParams(f"{name}={JWT}")["token"] == JWT
        assert is_secret_param(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f'127.0.0.1:5000 - "WebSocket /api/v1/instances/c1/exec/ws?tok%65n={JWT}" [accepted]',
            '127.0.0.1:5000 - "WebSocket /api/v1/instances/c1/exec/ws?tok%65n=[REDACTED]" '
            "[accepted]",
        ),
        (
            f"GET /x?a=1&%74oken={JWT}&b=2 HTTP/1.1",
            "GET /x?a=1&%74oken=[REDACTED]&b=2 HTTP/1.1",
        ),
        ("next=/login?password=hunter2 done", "next=/login?password=[REDACTED] done"),
        (f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED]"),
        ("nothing to hide here = really", "nothing to hide here = really"),
    ],
)
def test_free_text_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redaction_is_linear() -> None:
    """No backtracking blow-up on long texts without or with many `=` (log lines can be big)."""
    import time

    started = time.perf_counter()
    redact_text("a" * 200_000)
    redact_text("a=" * 50_000)
    redact_text("%" * 200_000 + "=x")
    assert time.perf_counter() - started < 2


def log_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("name", ["tok%65n", "%74oken", "TOKEN", "token"])
async def test_request_log_line_redacts_encoded_names(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str], name: str
) -> None:
    app = create_app(make_settings(), lxd_transport=httpx.MockTransport(fake_lxd_handler))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await http.get(f"/health/live?{name}={JWT}&x=1&{name}=second{JWT}")
    output = capsys.readouterr().out
    assert JWT not in output
    lines = [line for line in log_lines(output) if line.get("event") == "http.request"]
    assert lines[-1]["query"] == f"{name}=[REDACTED]&x=1&{name}=[REDACTED]"


def test_uvicorn_and_exception_lines_are_redacted(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    create_app(make_settings(), lxd_transport=httpx.MockTransport(fake_lxd_handler))
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/api/v1/operations/ws?tok%65n={JWT}"
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s" %d', "127.0.0.1", "GET", f"/x?%74oken={JWT}", 200
    )
    try:
        raise ValueError(f"could not open /x?TOKEN={JWT}")
    except ValueError as exc:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        structlog.get_logger("t").error("t.failed", exc_info=exc)
    output = capsys.readouterr().out
    assert JWT not in output
    assert "tok%65n=[REDACTED]" in output
    assert "TOKEN=[REDACTED]" in output
