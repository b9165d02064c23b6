"""How the dashboard looks: on a phone, with data in every status (the README's screenshots),
and when the browser cannot use the API."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.config import API_URL, DASHBOARD_PORT, TIMEOUT_MS
from tests.e2e.pages import (
    ME_URL,
    docs_image,
    expect_live,
    expect_table,
    expect_totals,
    log_in,
    rows,
)
from tests.e2e.seeding import E2EUser

pytestmark = pytest.mark.e2e

# Jobs in every status, as the README's screenshots show them.
SHOWCASE = [
    ("Quarterly revenue report", "simple", "completed"),
    ("Import customer CSV", "simple", "completed"),
    ("Resize product images", "simple", "failed"),
    ("Send weekly newsletter", "simple", "completed"),
    ("Clean up old uploads", "simple", "cancelled"),
    ("Rebuild search index", "simple", "running"),
    ("Train recommendation model", "simple", "running"),
    ("Export invoices to accounting", "simple", "pending"),
    ("Generate sitemap", "simple", "pending"),
]
PHONE = {"width": 390, "height": 844}


def test_screenshot_of_dashboard_with_data(page: Page, make_user) -> None:
    """docs/dashboard.png, when E2E_UPDATE_DOCS_IMAGES=1 (else test-artifacts/e2e/)."""
    user = make_user(SHOWCASE, email="ada@example.com")
    log_in(page, user)
    expect_table(page, user.jobs)
    expect_totals(page, user.jobs)
    expect(rows(page).get_by_test_id("job-progress")).to_have_count(2)
    expect_live(page)

    path = docs_image("dashboard.png")
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000


def test_phone_width_shows_status_and_actions_of_every_job(browser: Browser, make_user) -> None:
    """docs/dashboard-phone.png, when E2E_UPDATE_DOCS_IMAGES=1 (else test-artifacts/e2e/)."""
    user = make_user(SHOWCASE, email="grace@example.com")
    context = browser.new_context(
        base_url=f"http://localhost:{DASHBOARD_PORT}",
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
        timezone_id="UTC",
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        log_in(page, user)
        expect_table(page, user.jobs)
        expect_totals(page, user.jobs)
        expect_live(page)

        # Nothing runs off the side of the screen, and every row's status and actions are
        # on it: a Cancel where the status allows one, and none where it does not.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        for job in user.jobs:
            row = page.locator(f'[data-testid="job-row"][data-job-id="{job.id}"]')
            row.scroll_into_view_if_needed()
            status = row.get_by_test_id("job-status")
            expect(status).to_be_in_viewport()
            box = status.bounding_box()
            assert box is not None
            assert 0 <= box["x"] <= box["x"] + box["width"] <= PHONE["width"]
            expect(row.get_by_test_id("job-details")).to_be_in_viewport()
            cancel = row.get_by_test_id("cancel-job")
            if job.status in ("pending", "running"):
                expect(cancel).to_be_in_viewport()
            else:
                expect(cancel).to_have_count(0)

        # The screen a user scrolls to: the list, its first jobs as cards.
        page.get_by_role("heading", name="Jobs", exact=True).evaluate(
            "heading => heading.closest('section').scrollIntoView({block: 'start'})"
        )
        path = docs_image("dashboard-phone.png")
        page.screenshot(path=path)
        assert path.stat().st_size > 10_000
    finally:
        context.close()


def test_another_host_name_is_told_apart_from_an_unreachable_api(
    browser: Browser, make_user
) -> None:
    user: E2EUser = make_user([("Hidden by CORS", "simple", "pending")])
    # The dashboard opened on 127.0.0.1 while the API is at localhost: the API answers, but
    # not for this origin, so the browser keeps the answer from the page.
    context = browser.new_context(base_url=f"http://127.0.0.1:{DASHBOARD_PORT}")
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        with page.expect_event("requestfailed", lambda r: r.url == ME_URL):
            page.goto("/dashboard")
        error = page.get_by_test_id("jobs-error")
        expect(error).to_contain_text(f"The API at {API_URL} answered")
        expect(error).to_contain_text("CORS")
        expect(error).to_contain_text("same host name")
        expect(error).not_to_contain_text("could not reach the API")
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        expect(page.locator("body")).not_to_contain_text(user.jobs[0].name)
    finally:
        context.close()
