"""What a user of the reference dashboard sees, against the real API and database.

Each test makes its own users (unique emails), so the tests do not depend on each other's data.
"""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route, expect

from tests.e2e.config import API_URL, DASHBOARD_URL, TIMEOUT_MS
from tests.e2e.conftest import Stack
from tests.e2e.pages import (
    JOBS_URL,
    ME_URL,
    NO_VALUE,
    Snap,
    expect_table,
    expect_totals,
    log_in,
    refuse_event_stream,
    row_for,
    row_named,
    rows,
    submit_in_form,
)
from tests.e2e.seeding import Api, SeededJob

pytestmark = pytest.mark.e2e


# --------------------------------------------------------------------------- helpers


def access_token_cookie(context: BrowserContext) -> str:
    cookies = [c for c in context.cookies(API_URL) if c["name"] == "access_token"]
    assert len(cookies) == 1, f"expected one access_token cookie, got {cookies}"
    return cookies[0]["value"]


def retry_and_hold_the_answer(page: Page) -> None:
    """Click Retry with the API up, holding back the jobs list's answer for a while.

    Until that answer arrives the error stays on screen, with no table and no totals: nothing
    from before the outage may be shown as if it were current. Then the answers go through (the
    event stream, opening meanwhile, asks for the list once more).
    """
    held: list[Route] = []
    released = False

    def hold(route: Route, request: Request) -> None:
        if request.method == "GET" and not released:
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
            released = True
            for route in held:
                route.continue_()
    finally:
        page.unroute_all(behavior="ignoreErrors")


# --------------------------------------------------------------------------- tests


def test_login_shows_exactly_my_jobs_and_totals(page: Page, make_user, snap: Snap) -> None:
    user = make_user(
        [
            ("Nightly sales report", "simple", "completed"),
            ("Resize product photos", "simple", "running"),
            ("Rebuild search index", "simple", "pending"),
            ("Export invoices", "simple", "completed"),
            ("Train ranking model", "simple", "failed"),
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
    submit_in_form(page, name)

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
    submit_in_form(page, "My new job")
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


def test_refused_cancel_message_stays_and_an_outage_shows_without_a_click(
    page: Page, make_user, api: Api, stack: Stack, snap: Snap
) -> None:
    user = make_user(
        [
            ("Finished behind my back", "simple", "pending"),
            ("Queued during the outage", "simple", "pending"),
        ]
    )
    # Without the event stream: its job events would take the Cancel button away before the
    # click, and the refreshes this test holds back and waits for are the polls.
    refuse_event_stream(page, "500")
    log_in(page, user)
    expect_table(page, user.jobs)
    finished, _queued = user.jobs
    action_error = page.get_by_test_id("action-error")
    error = page.get_by_test_id("jobs-error")
    retry = page.get_by_test_id("retry-button")

    # The job finishes while the page still offers Cancel (its refreshes held back, so the
    # click comes first): the API refuses, and the row shows the job as it now is.
    held: list[Route] = []
    page.route(JOBS_URL, lambda route, request: (
        held.append(route) if request.method == "GET" else route.fallback()
    ))  # fmt: skip
    api.set_status(finished.id, "running")
    api.set_status(finished.id, "completed")
    finished.status = "completed"
    cancel_url = f"{JOBS_URL}/{finished.id}/cancel"
    with page.expect_response(lambda r: r.url == cancel_url and r.status == 409):
        row_for(page, finished.id).get_by_test_id("cancel-job").click()
    expect(row_for(page, finished.id).get_by_test_id("job-status")).to_have_text("completed")
    expect(row_for(page, finished.id).get_by_test_id("cancel-job")).to_have_count(0)
    expect(action_error).to_contain_text(f"Could not cancel job {finished.id}")
    for route in held:
        route.continue_()
    page.unroute(JOBS_URL)  # the stream stays refused

    # Background refreshes do not hide the message: only the user's next action does.
    for _ in range(2):
        with page.expect_response(lambda r: r.url == JOBS_URL and r.status in (200, 304)):
            pass
    expect(action_error).to_contain_text(f"Could not cancel job {finished.id}")
    expect_totals(page, user.jobs)

    stack.api.stop()
    try:
        # The open dashboard notices the outage by itself: no rows or totals that look current.
        expect(error).to_contain_text("could not reach the API")
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
        expect(page.get_by_test_id("stat-total")).to_have_text(NO_VALUE)
        expect(action_error).to_contain_text(f"Could not cancel job {finished.id}")
        snap("api-down")

        # A Retry that fails changes nothing.
        with page.expect_event("requestfailed", lambda r: r.url == JOBS_URL):
            retry.click()
        expect(retry).to_be_enabled()
        expect(error).to_be_visible()
        expect(page.get_by_test_id("jobs-table")).to_have_count(0)
    finally:
        stack.api.start()

    # While the answer is on its way the old table must not come back without the error.
    retry_and_hold_the_answer(page)

    expect(error).to_have_count(0)
    expect(action_error).to_have_count(0)  # Retry was the user's next action
    expect_table(page, user.jobs)
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
