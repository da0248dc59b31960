"""The docs pages load nothing from the internet: their HTML names only this server, and the
vendored assets are the pinned releases `scripts/docs-assets.sh` wrote (app/static/SHA256SUMS).
The browser side (render, Authorize, every foreign request blocked) is
tests/integration/test_docs_browser.py."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest

from app.api.docs import STATIC_DIR

URL_ATTRIBUTE = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'" )>]+)""", re.IGNORECASE)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_name_only_this_server(unit_client: httpx.AsyncClient, path: str) -> None:
    response = await unit_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = URL_ATTRIBUTE.findall(response.text)
    foreign = [u for u in urls if re.match(r"(?i)(https?:)?//", u)]
    assert foreign == []
    assert "fonts.googleapis" not in response.text
    if path != "/docs/oauth2-redirect":
        assert any(u.startswith("/static/") for u in urls)


async def test_the_assets_are_served_with_validators(unit_client: httpx.AsyncClient) -> None:
    response = await unit_client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert response.status_code == 200
    assert response.headers["etag"]
    again = await unit_client.get(
        "/static/swagger-ui/swagger-ui-bundle.js",
        headers={"If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304
    assert (await unit_client.get("/static/../app/main.py")).status_code == 404


def test_the_vendored_assets_are_the_recorded_ones() -> None:
    recorded = {}
    for line in (STATIC_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    on_disk = {
        str(path.relative_to(STATIC_DIR)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and path.name != "SHA256SUMS"
    }
    assert on_disk == recorded
    # Licences ship with the code they cover.
    assert {"swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"} <= on_disk.keys()
    assert "cdn.redoc.ly" not in (STATIC_DIR / "redoc/redoc.standalone.js").read_text()
