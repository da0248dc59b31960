"""`GET /metrics`: the API's own metrics (app.metrics) in the Prometheus text format.

Off unless METRICS_TOKEN is set (404, as if there were no such route); then only
`Authorization: Bearer <METRICS_TOKEN>` gets it (a scraper's credential, not a user's: it
grants nothing else, and no user token grants this). Route templates, LXD endpoints and
counts only: no names, users or projects.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from app.api.responses import error_responses
from app.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="The API's own metrics (Prometheus)",
    description="Requests by route template and status with latency histograms, LXD calls by "
    "endpoint with latency, open exec/console/events sessions, event-hub connections and "
    "subscribers, audit entries written, dropped and queued, in the Prometheus text format "
    "(version 0.0.4). Off (404) unless `METRICS_TOKEN` is set; then it needs "
    "`Authorization: Bearer <METRICS_TOKEN>` (401 otherwise). Not a user route: user tokens "
    "do not open it.",
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
        **error_responses(401, 404),
    },
)
async def metrics(request: Request) -> Response:
    app = request.app
    expected = app.state.settings.METRICS_TOKEN.get_secret_value()
    if not expected:
        raise HTTPException(404, "Metrics are off: set METRICS_TOKEN to serve them")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        raise HTTPException(
            401, "The metrics token is missing or wrong", headers={"WWW-Authenticate": "Bearer"}
        )
    return Response(app.state.metrics.render(), media_type=CONTENT_TYPE)
