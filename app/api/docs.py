"""`/docs` (Swagger UI) and `/redoc`, served with their assets from `app/static/` so that they
work where the API is deployed, without internet: no CDN, no web fonts, no validator badge.
The assets are pinned npm releases (`scripts/docs-assets.sh`, `app/static/SHA256SUMS`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.api.routing import add_routes

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"

router = APIRouter(include_in_schema=False)


@router.get(DOCS_URL)
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="lxd-api - Swagger UI",
        swagger_js_url=f"{STATIC_URL}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        # validatorUrl null: no badge fetched from validator.swagger.io. persistAuthorization:
        # a reload keeps the token the Authorize button got.
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="lxd-api - ReDoc",
        redoc_js_url=f"{STATIC_URL}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{STATIC_URL}/swagger-ui/favicon-32x32.png",
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """The docs pages and `/static` (the app must be built with `docs_url=None,
    redoc_url=None`, so that FastAPI's CDN pages are not registered)."""
    add_routes(app, router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
