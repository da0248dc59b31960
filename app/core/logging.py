"""Structured JSON logs (structlog) for our own lines and for every stdlib logger.

Every line is one JSON object with the request ID bound. Secrets never reach a line: values of
secret-looking keys are masked, and `token=`/`secret=` in any text (uvicorn's own access and
websocket lines included) are redacted, however the server was started.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from asgi_correlation_id.context import correlation_id

REDACTED = "[REDACTED]"
_SECRET_IN_TEXT = re.compile(
    r"(?i)((?:access_token|refresh_token|token|secret|password)=)[^&\s\"']+"
)
_BEARER_IN_TEXT = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_KEYS = re.compile(r"(?i)password|secret|token|authorization|private_key|fds")


def redact_text(text: str) -> str:
    return _BEARER_IN_TEXT.sub(r"\1" + REDACTED, _SECRET_IN_TEXT.sub(r"\1" + REDACTED, text))


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and not isinstance(value, bool | int | float):
        return REDACTED if value else value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {key: _redact_value(key, value) for key, value in event_dict.items()}


def _add_request_id(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = correlation_id.get()
    if request_id and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


class _RedactRecordFilter(logging.Filter):
    """Redacts the rendered message of stdlib records (uvicorn's lines carry raw paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def configure_logging(level: str = "INFO") -> None:
    """Route structlog and the stdlib (uvicorn included) into one JSON stream on stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            _redact_processor,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _redact_processor],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    handler.addFilter(_RedactRecordFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    # Our request log (app.core.middleware) writes one redacted line per request instead.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in (
        "httpx",
        "httpcore",
        "websockets",
        "aiosqlite",
        "asyncio",
        "alembic.runtime.plugins",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
