"""What the dashboard's pages look like to the tests: how to log in, find a row, read the totals.

Shared by the tests/e2e/test_dashboard*.py files; the test ids are listed in
examples/dashboard/README.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Locator, Page, Request, Route, expect

from tests.e2e.config import API_URL, ARTIFACTS, DASHBOARD_URL, DOCS, UPDATE_DOCS_IMAGES
from tests.e2e.seeding import E2EUser, SeededJob

Snap = Callable[[str], None]
JOBS_URL = f"{API_URL}/api/users/jobs"
STATS_URL = f"{API_URL}/api/users/jobs/stats"
EVENTS_URL = f"{API_URL}/api/users/jobs/events"
ME_URL = f"{API_URL}/api/users/me"
NO_VALUE = "\N{EN DASH}"  # what a total shows when there is no current number
STATUSES = ("pending", "running", "completed", "failed", "cancelled")


def docs_image(name: str) -> Path:
    """Where a README screenshot goes: docs/ only when asked (E2E_UPDATE_DOCS_IMAGES=1)."""
    return (DOCS if UPDATE_DOCS_IMAGES else ARTIFACTS) / name


def log_in(page: Page, user: E2EUser) -> None:
    """Log in through the login page and wait for the dashboard to show this user."""
    # The session check (GET /api/users/me) runs once React has hydrated the page: after it,
    # typing goes to React's state rather than to a not-yet-live form.
    with page.expect_response(lambda r: r.url == ME_URL):
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
    """The total and the count of every status, as these jobs make them."""
    statuses = [job.status for job in jobs]
    expect(page.get_by_test_id("stat-total")).to_have_text(str(len(statuses)))
    for status in STATUSES:
        expect(page.get_by_test_id(f"stat-{status}")).to_have_text(str(statuses.count(status)))


def choose_type(page: Page, job_type: str) -> None:
    """Pick a type in the submit form (its options come from GET /api/job-types)."""
    select = page.get_by_test_id("job-type-input")
    expect(select.locator(f'option[value="{job_type}"]')).to_have_count(1)
    select.select_option(job_type)


def submit_in_form(page: Page, name: str, job_type: str = "simple") -> None:
    page.get_by_test_id("job-name-input").fill(name)
    choose_type(page, job_type)
    page.get_by_test_id("job-submit").click()


def expect_live(page: Page) -> None:
    """The event stream is open and the list caught up with it: changes now arrive by events."""
    expect(page.get_by_test_id("feed-mode")).to_have_text("Live")


@contextmanager
def jobs_api_requests(page: Page) -> Iterator[list[str]]:
    """The URLs of the jobs API requests the page sends meanwhile (list, totals, details), the
    event stream aside."""
    sent: list[str] = []

    def record(request: Request) -> None:
        if request.url.startswith(JOBS_URL) and not request.url.startswith(EVENTS_URL):
            sent.append(request.url)

    page.on("request", record)
    try:
        yield sent
    finally:
        page.remove_listener("request", record)


def refuse_event_stream(page: Page, how: str) -> None:
    """From now on this page's requests for the event stream fail: `how` is "500" (an answer,
    with the CORS headers the page may read) or "abort" (no answer)."""

    def refuse(route: Route) -> None:
        if how == "abort":
            route.abort()
        else:
            route.fulfill(
                status=int(how),
                json={"detail": "stream unavailable"},
                headers={
                    "Access-Control-Allow-Origin": DASHBOARD_URL,
                    "Access-Control-Allow-Credentials": "true",
                },
            )

    page.route(EVENTS_URL, refuse)
