"""What a user of the reference dashboard sees, against the real API and database.

Each test makes its own users (unique emails), so the tests do not depend on each other's data.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Request, Route, expect

from tests.e2e.conftest import (
    API_URL,
    DASHBOARD_URL,
    DOCS,
    TIMEOUT_MS,
    Api,
    E2EUser,
    SeededJob,
    Stack,
)

pytestmark = pytest.mark.e2e

Snap = Callable[[str], None]
JOBS_URL = f"{API_URL}/api/users/jobs"
ME_URL = f"{API_URL}/api/users/me"
NO_VALUE = "\N{EN DASH}"  # what a total shows when there is no current number


# --------------------------------------------------------------------------- helpers


def log_in(page: Page, user: E2EUser) -> None:
    """Log in through the login page and wait for the dashboard to show this user."""
    # The session check (GET /api/users/me) runs once React has hydrated the page: after it,
    # typing goes to React's state rather than to a not-yet-live form.
    with page.expect_response(lambda r: r.url == f"{API_URL}/api/users/me"):
        page.goto("/login")
    page.get_by_test_id("login-email").fill(user.email)
    page.get_by_test_id("login-password").fill(user.password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")
    expect(page.get_by_test_id("user-email")).to_have_text(user.email)


def rows(page: Page) -> Locator:
    return page.get_by_test_id("job-row")


def row_for(page: Page, job_id: int) -> Locator:
    return page.locator(f'[data-testid="job-row"][data-job-id="{job_id}"]')


def row_named(page: Page, name: str) -> Locator:
    return rows(page).filter(has=page.get_by_test_id("job-name").get_by_text(name, exact=True))


def expect_table(page: Page, jobs: list[SeededJob]) -> None:
    """The table shows exactly these jobs, newest first, each with its status."""
    expect(page.get_by_test_id("jobs-table")).to_be_visible()
    expect(rows(page)).to_have_count(len(jobs))
    newest_first = list(reversed(jobs))
    expect(page.get_by_test_id("job-name")).to_have_text([job.name for job in newest_first])
    expect(page.get_by_test_id("job-status")).to_have_text([job.status for job in newest_first])
    shown_ids = [row.get_attribute("data-job-id") for row in rows(page).all()]
    assert shown_ids == [str(job.id) for job in newest_first]


def expect_totals(page: Page, jobs: list[SeededJob]) -> None:
    statuses = [job.status for job in jobs]
    expect(page.get_by_test_id("stat-total")).to_have_text(str(len(statuses)))
    expect(page.get_by_test_id("stat-completed")).to_have_text(str(statuses.count("completed")))
    expect(page.get_by_test_id("stat-running")).to_have_text(str(statuses.count("running")))


def access_token_cookie(context: BrowserContext) -> str:
    cookies = [c for c in context.cookies(API_URL) if c["name"] == "access_token"]
    assert len(cookies) == 1, f"expected one access_token cookie, got {cookies}"
    return cookies[0]["value"]


def retry_and_hold_the_answer(page: Page) -> None:
    """Click Retry with the API up, holding back the jobs list's answer for a while.

    Until that answer arrives the error stays on screen, with no table and no totals: nothing
    from before the outage may be shown as if it were current. Then the answer goes through.
    """
    held: list[Route] = []

    def hold(route: Route, request: Request) -> None:
        if request.method == "GET":
            held.append(route)
        else:
            route.fallback()

    page.route(JOBS_URL, hold)
    try:
        page.get_by_test_id("retry-button").click()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not held:  # the handler runs while Playwright waits
            assert time.monotonic() < deadline, "Retry never asked the API for the jobs list"
            page.wait_for_timeout(25)

        expect(page.get_by_test_id("jobs-error")).to_be_visible()
        expect(page.get_by_test_id("retry-button")).to_be_disabled()  # "Retrying…"
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        expect(page.get_by_test_id("jobs-loading")).to_have_count(0)
        expect(page.get_by_test_id("stat-total")).to_have_text(NO_VALUE)

        with page.expect_response(lambda r: r.url == JOBS_URL and r.status == 200):
            held[0].continue_()
    finally:
        page.unroute_all(behavior="ignoreErrors")


# --------------------------------------------------------------------------- tests


def test_login_shows_exactly_my_jobs_and_totals(page: Page, make_user, snap: Snap) -> None:
    user = make_user(
        [
            ("Nightly sales report", "simple", "completed"),
            ("Resize product photos", "image-resize", "running"),
            ("Rebuild search index", "simple", "pending"),
            ("Export invoices", "simple", "completed"),
            ("Train ranking model", "ml-train", "failed"),
            ("Purge temp files", "simple", "cancelled"),
            ("Warm CDN cache", "simple", "running"),
        ]
    )

    log_in(page, user)

    expect_table(page, user.jobs)
    expect_totals(page, user.jobs)  # 7 total, 2 completed, 2 running
    expect(page.get_by_test_id("jobs-error")).to_have_count(0)
    snap("dashboard")


def test_submit_then_cancel_a_job(page: Page, make_user, snap: Snap) -> None:
    user = make_user(
        [
            ("Existing finished job", "simple", "completed"),
            ("Existing queued job", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    expect(page.get_by_test_id("stat-total")).to_have_text("2")

    name = "Submitted from the browser"
    page.get_by_test_id("job-name-input").fill(name)
    page.get_by_test_id("job-type-input").fill("simple")
    page.get_by_test_id("job-submit").click()

    expect(page.get_by_test_id("job-submit-success")).to_contain_text(name)
    expect(page.get_by_test_id("job-submit-error")).to_have_count(0)
    new_row = row_named(page, name)
    expect(new_row).to_have_count(1)
    expect(new_row.get_by_test_id("job-status")).to_have_text("pending")
    expect(rows(page)).to_have_count(3)
    expect(rows(page).first).to_have_attribute("data-job-id", new_row.get_attribute("data-job-id"))
    expect(page.get_by_test_id("stat-total")).to_have_text("3")
    expect(page.get_by_test_id("job-name-input")).to_have_value("")
    snap("submitted")

    new_row.get_by_test_id("cancel-job").click()

    expect(new_row.get_by_test_id("job-status")).to_have_text("cancelled")
    expect(new_row.get_by_test_id("cancel-job")).to_have_count(0)
    expect(page.get_by_test_id("action-error")).to_have_count(0)
    expect(page.get_by_test_id("stat-total")).to_have_text("3")
    # The other jobs are untouched.
    for job in user.jobs:
        expect(row_for(page, job.id).get_by_test_id("job-status")).to_have_text(job.status)
    snap("cancelled")


def test_other_users_jobs_never_appear(page: Page, make_user) -> None:
    me = make_user(
        [
            ("My weekly digest", "simple", "completed"),
            ("My photo import", "simple", "running"),
            ("My backup", "simple", "pending"),
        ],
        prefix="me",
    )
    other = make_user(
        [
            ("ZZ-OTHER-USER payroll export", "simple", "completed"),
            ("ZZ-OTHER-USER secret audit", "simple", "running"),
            ("ZZ-OTHER-USER pending upload", "simple", "pending"),
            ("ZZ-OTHER-USER failed sync", "simple", "failed"),
        ],
        prefix="other",
    )

    log_in(page, me)

    expect_table(page, me.jobs)
    expect_totals(page, me.jobs)
    body = page.locator("body")
    for job in other.jobs:
        expect(body).not_to_contain_text(job.name)
        expect(row_for(page, job.id)).to_have_count(0)
    expect(body).not_to_contain_text("ZZ-OTHER-USER")
    expect(body).not_to_contain_text(other.email)

    # Still true after the list reloads (a submit refreshes jobs and totals).
    page.get_by_test_id("job-name-input").fill("My new job")
    page.get_by_test_id("job-type-input").fill("simple")
    page.get_by_test_id("job-submit").click()
    expect(rows(page)).to_have_count(len(me.jobs) + 1)
    expect(page.get_by_test_id("stat-total")).to_have_text(str(len(me.jobs) + 1))
    expect(body).not_to_contain_text("ZZ-OTHER-USER")


def test_reload_during_api_outage_shows_error_and_retry_recovers(
    page: Page, make_user, api: Api, stack: Stack, snap: Snap
) -> None:
    user = make_user(
        [
            ("Outage report", "simple", "completed"),
            ("Outage queued job", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    expect_totals(page, user.jobs)
    error = page.get_by_test_id("jobs-error")
    retry = page.get_by_test_id("retry-button")

    stack.api.stop()
    try:
        # A reload re-checks the session. No answer from the API is not "signed out": the
        # dashboard shows the error instead of sending the user to the login page.
        with page.expect_event("requestfailed", lambda r: r.url == ME_URL):
            page.reload()
        expect(error).to_be_visible()
        expect(error).to_contain_text("could not reach the API")
        expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")
        expect(retry).to_be_enabled()
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        expect(page.get_by_test_id("stat-total")).to_have_text(NO_VALUE)
        snap("api-down")

        # Retrying while the API is still down ends in the error state again.
        with page.expect_event("requestfailed", lambda r: r.url == ME_URL):
            retry.click()
        expect(retry).to_have_text("Retry")
        expect(retry).to_be_enabled()
        expect(error).to_contain_text("could not reach the API")
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")

        # The home page does not take the user to the login page either.
        with page.expect_event("requestfailed", lambda r: r.url == ME_URL):
            page.goto("/")
        expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")
        expect(error).to_contain_text("could not reach the API")
    finally:
        stack.api.start()

    # The data changes while the page still shows the error, so the table after Retry can
    # only be fresh data, never the rows from before the outage.
    name = "Submitted after the outage"
    job = api.submit(user.token, name, "simple")
    user.jobs.append(SeededJob(id=int(job["job_id"]), name=name, type="simple", status="pending"))

    retry_and_hold_the_answer(page)

    expect(error).to_have_count(0)
    expect(page.get_by_test_id("user-email")).to_have_text(user.email)
    expect_table(page, user.jobs)  # the new job first
    expect_totals(page, user.jobs)  # 3 total, 1 completed, 0 running
    expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")
    snap("recovered")


def test_cancel_error_stays_until_a_later_refresh_succeeds(
    page: Page, make_user, api: Api, stack: Stack, snap: Snap
) -> None:
    user = make_user(
        [
            ("Finished behind my back", "simple", "pending"),
            ("Queued during the outage", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    finished, queued = user.jobs
    action_error = page.get_by_test_id("action-error")
    error = page.get_by_test_id("jobs-error")
    retry = page.get_by_test_id("retry-button")

    # The job finishes while the page still offers Cancel: the API refuses, and the refresh
    # that follows the refusal shows why. That refresh must not hide the message.
    api.set_status(finished.id, "running")
    api.set_status(finished.id, "completed")
    finished.status = "completed"
    cancel_url = f"{JOBS_URL}/{finished.id}/cancel"
    with page.expect_response(lambda r: r.url == cancel_url and r.status == 409):
        row_for(page, finished.id).get_by_test_id("cancel-job").click()
    expect(row_for(page, finished.id).get_by_test_id("job-status")).to_have_text("completed")
    expect(page.get_by_test_id("jobs-loading")).to_have_count(0)
    expect(action_error).to_contain_text(f"Could not cancel job {finished.id}")

    stack.api.stop()
    try:
        # Cancelling fails, and the refresh after it shows the error state.
        with page.expect_event("requestfailed", lambda r: r.url == JOBS_URL):
            row_for(page, queued.id).get_by_test_id("cancel-job").click()
        expect(action_error).to_contain_text(f"Could not cancel job {queued.id}")
        expect(error).to_contain_text("could not reach the API")
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        snap("api-down")

        # A Retry that fails changes nothing: both messages stay.
        with page.expect_event("requestfailed", lambda r: r.url == JOBS_URL):
            retry.click()
        expect(retry).to_be_enabled()
        expect(error).to_be_visible()
        expect(action_error).to_contain_text(f"Could not cancel job {queued.id}")
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
    finally:
        stack.api.start()

    # While the answer is on its way the old table must not come back without the error.
    retry_and_hold_the_answer(page)

    expect(error).to_have_count(0)
    expect(action_error).to_have_count(0)  # the successful refresh clears the old message
    expect_table(page, user.jobs)  # the failed cancel changed nothing
    expect_totals(page, user.jobs)
    snap("recovered")


def test_logout_returns_to_login_and_old_cookie_is_rejected(
    page: Page, context: BrowserContext, make_user
) -> None:
    user = make_user([("Before logout", "simple", "pending")])
    log_in(page, user)
    expect_table(page, user.jobs)

    token = access_token_cookie(context)
    cookie_header = {"Cookie": f"access_token={token}"}
    before = httpx.get(f"{API_URL}/api/users/jobs", headers=cookie_header, timeout=10)
    assert before.status_code == 200, before.text  # the captured cookie is the live session

    page.get_by_test_id("logout-button").click()

    expect(page).to_have_url(f"{DASHBOARD_URL}/login")
    expect(page.get_by_test_id("login-email")).to_be_visible()
    assert not [c for c in context.cookies(API_URL) if c["name"] == "access_token"]
    # The dashboard itself sends a logged-out browser back to the login page.
    page.goto("/dashboard")
    expect(page).to_have_url(f"{DASHBOARD_URL}/login")

    # Server side: the token from before logout must be dead, not just deleted in the browser.
    after = httpx.get(f"{API_URL}/api/users/jobs", headers=cookie_header, timeout=10)
    assert after.status_code == 401, (
        f"the API still accepts the cookie from before logout: {after.status_code} {after.text}"
    )


def test_docs_screenshot_of_dashboard_with_data(page: Page, make_user) -> None:
    """Writes docs/dashboard.png: a dashboard with real data in every status."""
    user = make_user(
        [
            ("Quarterly revenue report", "simple", "completed"),
            ("Import customer CSV", "simple", "completed"),
            ("Resize product images", "image-resize", "failed"),
            ("Send weekly newsletter", "simple", "completed"),
            ("Clean up old uploads", "simple", "cancelled"),
            ("Rebuild search index", "simple", "running"),
            ("Train recommendation model", "ml-train", "running"),
            ("Export invoices to accounting", "simple", "pending"),
            ("Generate sitemap", "simple", "pending"),
        ],
        email="ada@example.com",
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    expect_totals(page, user.jobs)  # 9 total, 3 completed, 2 running

    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=DOCS / "dashboard.png", full_page=True)
    assert (DOCS / "dashboard.png").stat().st_size > 10_000
