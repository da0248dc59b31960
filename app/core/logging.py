"""Structured JSON logs (structlog) for our own lines and for every stdlib logger.

Every line is one JSON object with the request ID bound. Secrets never reach a line: values of
secret-looking keys are masked, and in any text (uvicorn's own access and websocket lines and
exception messages included) the value of every `name=` whose name, percent-decoded as Starlette
decodes it (`tok%65n`, `%74oken`, `+`, any case), is a secret's (`token`, `access_token`,
`password`, `secret`...) is redacted, as are bearer tokens, however the server was started.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote_plus

import structlog
from asgi_correlation_id.context import correlation_id

REDACTED = "[REDACTED]"
# A parameter whose name, percent-decoded and lowercased, ends with one of these (so also
# `access_token`, `refresh_token`, `client_secret`) has its value redacted.
SECRET_PARAM_SUFFIXES = ("token", "secret", "password")
# `name=` in free text (a query string, a request line): the name starts after a separator
# and holds no `=`, so each `=` is looked at once (linear time, whatever the text).
_PARAM_CHARS = "[^\\s?&=;#\"'<>]"
_PARAM_IN_TEXT = re.compile(rf"(?<!{_PARAM_CHARS})({_PARAM_CHARS}+)=")
# A value runs to the next `&`, whitespace or quote.
_VALUE_IN_TEXT = re.compile(r"[^&\s\"']*")
_BEARER_IN_TEXT = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_SECRET_KEYS = re.compile(r"(?i)password|secret|token|authorization|private_key|fds")
# Decoding twice more than a server does: `%2574oken` is not `token` to Starlette, but costs
# nothing to hide.
_DECODE_ROUNDS = 3


def is_secret_param(name: str) -> bool:
    """Whether a query parameter named `name` (as sent: `tok%65n`, `TOKEN`, `+token`) carries
    a secret. Starlette percent-decodes names (and `+`), so `?tok%65n=<jwt>` authenticates."""
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return name.strip().lower().endswith(SECRET_PARAM_SUFFIXES)


def _redact_params(text: str) -> str:
    if "=" not in text:
        return text
    parts: list[str] = []
    done = 0  # text[:done] is in `parts`
    for match in _PARAM_IN_TEXT.finditer(text):
        if match.start() < done or not is_secret_param(match.group(1)):
            continue  # inside a value already redacted, or not a secret
        value = _VALUE_IN_TEXT.match(text, match.end())
        end = value.end() if value else match.end()
        if end > match.end():
            parts.append(text[done : match.end()])
            parts.append(REDACTED)
            done = end
    parts.append(text[done:])
    return "".join(parts)


def redact_text(text: str) -> str:
    """`text` with the values of secret parameters (`token=`, `tok%65n=`, `password=`, ...)
    and bearer tokens replaced by `[REDACTED]`."""
    return _BEARER_IN_TEXT.sub(r"\1" + REDACTED, _redact_params(text))


def redact_query(query: str) -> str:
    """A raw query string for a log line: each parameter whose decoded name is a secret's
    keeps its name (as sent) and loses its value; the others are kept as they came."""
    pairs = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        if sep and value and is_secret_param(name):
            value = REDACTED
        pairs.append(f"{name}{sep}{value}")
    return redact_text("&".join(pairs))


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
            structlog.processors.format_exc_info,
            _redact_processor,  # after format_exc_info: exception messages are text too
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
            _redact_processor,  # stdlib records' tracebacks (uvicorn's included)
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
