"""`/docs` and `/redoc` in a real headless Chromium (Debian's `chromium`, driven by Playwright),
as they are used where the API is deployed: without internet. Every request the page makes to a
host other than the API is blocked and recorded, and a page that asked for one fails the test.

Swagger UI must render the operations, and its Authorize button must log in (the OAuth2
password form posts to `/api/v1/auth/token`) so that "Try it out" on `GET /auth/me` answers the
user. ReDoc must render the operations too. Runs in both connection modes (the server is the
integration `app`, served by uvicorn).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.auth import TEST_USER_PASSWORD

pytestmark = pytest.mark.integration

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _chromium() -> str:
    if Path(CHROMIUM).is_file() or shutil.which(CHROMIUM):
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)"
    if os.environ.get("LXD_REQUIRED") == "1":  # CI: a missing browser is a failure
        pytest.fail(reason)
    pytest.skip(reason)


class Page:
    """A Playwright page that only reaches the API: anything else is aborted and recorded."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.foreign: list[str] = []
        self.failed: list[str] = []

    async def block_foreign_hosts(self) -> None:
        ours = urlsplit(self.base).netloc

        async def route(route: Any) -> None:
            url = route.request.url
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob") or parts.netloc == ours:
                await route.continue_()
            else:
                self.foreign.append(url)
                await route.abort()

        await self.page.context.route("**/*", route)
        self.page.on(
            "requestfailed",
            lambda request: self.failed.append(f"{request.url}: {request.failure}"),
        )


@pytest.fixture
async def browser_page(live_url: str) -> AsyncIterator[Page]:
    from playwright.async_api import async_playwright

    executable = _chromium()
    base = live_url.replace("ws://", "http://", 1)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            context = await browser.new_context()
            page = Page(await context.new_page(), base)
            await page.block_foreign_hosts()
            yield page
            assert page.foreign == [], f"the page asked for other hosts: {page.foreign}"
            assert page.failed == [], f"requests that failed: {page.failed}"
        finally:
            await browser.close()


async def test_swagger_ui_renders_offline_and_authorize_logs_in(
    browser_page: Page, auth_headers: Callable[..., dict[str, str]]
) -> None:
    auth_headers("viewer")  # the user exists
    page = browser_page.page
    response = await page.goto(f"{browser_page.base}/docs")
    assert response is not None
    assert response.status == 200
    # The operations are rendered (the spec was fetched and laid out by the local bundle).
    await page.locator(".opblock").first.wait_for(timeout=30_000)
    assert await page.locator(".opblock").count() > 50
    assert await page.locator(".opblock-summary-path", has_text="/api/v1/instances").count() > 0

    # Authorize: the OAuth2 password flow against /api/v1/auth/token.
    await page.locator("button.authorize").first.click()
    modal = page.locator(".modal-ux")
    await modal.locator("#oauth_username").fill("test-viewer")
    await modal.locator("#oauth_password").fill(TEST_USER_PASSWORD)
    # Two schemes are offered (OAuth2 password and BearerToken for API tokens): the first.
    assert await modal.locator("button.authorize").count() == 2
    await modal.get_by_role("button", name="Apply given OAuth2 credentials").click()
    await modal.locator("button", has_text="Logout").wait_for(timeout=15_000)
    await modal.locator("button.btn-done, button.close-modal").first.click()

    # "Try it out" on GET /api/v1/auth/me: the request carries the token, the answer is us.
    operation = page.locator("#operations-auth-me_api_v1_auth_me_get")
    if await operation.count() == 0:
        operation = page.locator(".opblock-get").filter(has_text="/api/v1/auth/me").first
    await operation.locator(".opblock-summary").first.click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    answer = operation.locator(".live-responses-table tr.response")
    await answer.first.wait_for(timeout=15_000)
    status = answer.locator(".response-col_status").first
    body = answer.locator(".response-col_description")
    assert (await status.inner_text()).strip() == "200"
    assert '"username": "test-viewer"' in await body.first.inner_text()


async def test_redoc_renders_offline(browser_page: Page) -> None:
    page = browser_page.page
    response = await page.goto(f"{browser_page.base}/redoc")
    assert response is not None
    assert response.status == 200
    await page.locator("h1", has_text="lxd-api").first.wait_for(timeout=30_000)
    # An operation of the spec is laid out (its summary as a heading).
    await page.locator("h2", has_text="Log in").first.wait_for(timeout=30_000)
    assert await page.locator("[data-section-id^='tag/']").count() > 5
