"""Operation references and the secrets that never leave this API."""

from __future__ import annotations

from typing import Any

from app.lxd import public_operation
from app.services.operations import operation_ref


def test_operation_reference_has_the_four_fields() -> None:
    assert operation_ref("abc-123") == {
        "operation_id": "abc-123",
        "operation_url": "/1.0/operations/abc-123",
        "poll_url": "/api/v1/operations/abc-123",
        "wait_url": "/api/v1/operations/abc-123/wait",
    }


def test_websocket_and_token_secrets_are_stripped() -> None:
    exec_op: dict[str, Any] = {
        "id": "1",
        "class": "websocket",
        "metadata": {"fds": {"0": "s0", "control": "sc"}, "command": ["sh"]},
    }
    token_op: dict[str, Any] = {
        "id": "2",
        "class": "token",
        "metadata": {"secret": "t0k3n", "fingerprint": "ab"},
    }
    assert public_operation(exec_op) == {
        "id": "1",
        "class": "websocket",
        "metadata": {"command": ["sh"]},
    }
    assert public_operation(token_op)["metadata"] == {"fingerprint": "ab"}
    assert exec_op["metadata"]["fds"] == {"0": "s0", "control": "sc"}  # the input is untouched
    assert public_operation(None) is None
