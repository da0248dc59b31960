"""The application factory: settings, logging, middleware, error handlers, lifespan, routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import structlog
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import ValidationError

from app.api import health, metrics
from app.api.docs import install_docs
from app.api.readmodel import ReadModelMiddleware
from app.api.routing import add_routes
from app.api.sessions import SessionRegistry
from app.api.v1.api import V1_ROUTERS
from app.api.websockets import refuse_upgrade
from app.audit import AuditMiddleware, open_log
from app.core.bodylimit import FILE_UPLOAD_ROUTE, BodyLimitMiddleware
from app.core.config import APP_VERSION, Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import RawPathGuardMiddleware, RequestLogMiddleware
from app.core.openapi import DESCRIPTION, OPENAPI_TAGS
from app.core.ratelimit import RateLimiter
from app.core.security import WebSocketAuthError
from app.db.migrations import upgrade_to_head
from app.db.seed import seed_admin
from app.db.session import make_engine, make_sessionmaker
from app.lxd import LXDClient
from app.metrics import APIMetrics, MetricsMiddleware
from app.services.events import EventHub
from app.services.readmodel import ReadModel

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_MAX_REQUEST_ID = 128


def _sane_request_id(value: str) -> bool:
    """Echo a client's request ID only when it cannot pollute logs or headers."""
    return 0 < len(value) <= _MAX_REQUEST_ID and all(c.isalnum() or c in "-_.:" for c in value)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # The user store: schema at head (as `alembic upgrade head`) before serving, then the seed.
    await anyio.to_thread.run_sync(upgrade_to_head, settings.DATABASE_URL)
    app.state.db_engine = make_engine(settings.DATABASE_URL)
    app.state.db_sessionmaker = make_sessionmaker(app.state.db_engine)
    try:
        await seed_admin(app.state.db_sessionmaker, settings)
    except BaseException:
        await app.state.db_engine.dispose()
        raise
    app.state.rate_limiter = RateLimiter(settings.RATE_LIMIT_STORAGE_URI)
    app.state.lxd = LXDClient(settings, transport=app.state.lxd_transport)
    app.state.lxd.observer = app.state.metrics.observe_lxd
    # The event relay's shared LXD connections open with their first subscriber.
    app.state.event_hub = EventHub(app.state.lxd)
    # Instance lists from memory, kept in step with LXD's events (app.services.readmodel).
    app.state.read_model = ReadModel(app.state.lxd, enabled=settings.READ_MODEL)
    app.state.read_model.start()
    # Open WebSockets per user: the cap, and an end for those of a user cut off meanwhile.
    app.state.ws_sessions = SessionRegistry(
        app.state.db_engine, max_per_user=settings.WS_MAX_SESSIONS_PER_USER
    )
    app.state.ws_sessions.start()
    # The audit log's one writer per process (a queue and a task; app.audit.appender).
    app.state.audit_log = open_log(settings, app.state.db_engine)
    log.info(
        "app.started",
        version=APP_VERSION,
        env=str(settings.APP_ENV),
        lxd_mode=str(settings.LXD_CONNECTION_MODE),
    )
    if settings.OPERATOR_POLICY == "unrestricted":
        log.warning(
            "app.operator_policy_off",
            hint="OPERATOR_POLICY=unrestricted: every operator can become root on the LXD host",
        )
    try:
        yield
    finally:
        await app.state.ws_sessions.close()
        await app.state.event_hub.close()
        await app.state.read_model.close()
        await app.state.audit_log.close()  # writes what is still queued
        await app.state.lxd.close()
        await app.state.rate_limiter.close()
        await app.state.db_engine.dispose()
        log.info("app.stopped")


def create_app(
    settings: Settings | None = None, *, lxd_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the app. `lxd_transport` replaces the LXD transport (tests inject faults with it)."""
    try:
        settings = settings or get_settings()
    except ValidationError as exc:
        problems = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in exc.errors())
        raise SystemExit(f"lxd-api: invalid configuration: {problems}") from None
    if settings.jwt_secret_problem:
        raise SystemExit(f"lxd-api: invalid configuration: {settings.jwt_secret_problem}")
    configure_logging(settings.LOG_LEVEL)

    app = FastAPI(
        title="lxd-api",
        version=APP_VERSION,
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
        docs_url=None,  # app.api.docs serves both from app/static/ (offline)
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.lxd_transport = lxd_transport
    app.state.metrics = APIMetrics(app)
    install_error_handlers(app)
    app.add_exception_handler(WebSocketAuthError, refuse_upgrade)

    # Innermost of ours (added first): a 413 still gets CORS headers, the request ID and its
    # log line, and comes before any route, dependency (auth) or body parser.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.MAX_BODY_BYTES,
        max_auth_body_bytes=settings.MAX_AUTH_BODY_BYTES,
        route_limits={FILE_UPLOAD_ROUTE: settings.MAX_FILE_UPLOAD_BYTES},
    )
    origins = settings.cors_origins
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials="*" not in origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=[REQUEST_ID_HEADER, "ETag", "Retry-After", "Content-Disposition"],
    )
    app.add_middleware(RawPathGuardMiddleware)
    # Once a write's response is sent, this replica's read model re-reads what it changed.
    app.add_middleware(ReadModelMiddleware)
    # Outside the guard and the body limit (their 422/413 are audited), inside the request ID.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name=REQUEST_ID_HEADER,
        validator=_sane_request_id,
        transformer=lambda value: value,
    )

    add_routes(app, health.router, metrics.router, *V1_ROUTERS)
    install_docs(app)
    return app


def __getattr__(name: str) -> FastAPI:
    """`app.main:app` (uvicorn) builds the app from the environment on first use, not at
    import: importing this module needs no settings, so tests and tools can import
    `create_app` without a JWT secret."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    application = globals().get("_app")
    if application is None:
        application = globals()["_app"] = create_app()
    return application
