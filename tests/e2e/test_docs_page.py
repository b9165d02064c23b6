"""The API's docs page as a developer meets it on a machine that reaches no CDN: Swagger UI
loads, Authorize logs in with the password flow, and Try it out lists the user's jobs."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect

from tests.e2e.config import API_URL
from tests.e2e.seeding import UserFactory

pytestmark = pytest.mark.e2e

LOCAL_HOSTS = {"localhost", "127.0.0.1"}


def _block_other_hosts(page: Page) -> list[str]:
    """Every request to another host fails, as on a closed network; the list says which."""
    blocked: list[str] = []

    def handle(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", handle)
    return blocked


def test_docs_authorize_and_try_it_out_with_no_cdn(page: Page, make_user: UserFactory) -> None:
    user = make_user(jobs=[("docs job", "simple", "pending")], prefix="docs")
    blocked = _block_other_hosts(page)

    page.goto(f"{API_URL}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Jobs Dashboard API")

    page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    expect(dialog.locator("#oauth_username")).to_be_visible()
    # Only what works is offered: no client id/secret, no cookie value box.
    expect(dialog.locator("[data-name=clientId]")).to_be_hidden()
    expect(dialog.locator("[data-name=clientSecret]")).to_be_hidden()
    expect(dialog.locator("[data-name=passwordType]")).to_be_hidden()
    expect(dialog.locator("input:visible")).to_have_count(2)
    dialog.locator("#oauth_username").fill(user.email)
    dialog.locator("#oauth_password").fill(user.password)
    dialog.locator("button.authorize").click()
    expect(dialog.locator("button", has_text="Logout")).to_be_visible()
    dialog.locator("button.btn-done").click()

    operation = page.locator("#operations-jobs-list_my_jobs_api_users_jobs_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    answer = operation.locator(".live-responses-table tbody .response")
    expect(answer.locator(".response-col_status")).to_have_text("200")
    expect(answer.locator(".response-col_description")).to_contain_text("docs job")
    assert blocked == []
