"""The open dashboard keeps up with the jobs: changes appear without a reload, every job is
reachable with Load more, the status filter and the detail panel show what the API holds."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Response, expect

from tests.e2e.config import TIMEOUT_MS
from tests.e2e.pages import (
    JOBS_URL,
    STATS_URL,
    Snap,
    expect_table,
    expect_totals,
    log_in,
    row_for,
    rows,
)
from tests.e2e.processes import ServerProcess
from tests.e2e.seeding import Api, E2EUser, SeededJob

pytestmark = pytest.mark.e2e

# The dashboard asks every 1.5 s; a change must be on screen within about 2 s of it.
LIVE_MS = 2_500


def test_a_status_change_shows_in_the_open_dashboard_without_a_reload(
    page: Page, make_user, api: Api, snap: Snap
) -> None:
    user = make_user(
        [
            ("Nightly export", "simple", "pending"),
            ("Thumbnail batch", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    export, thumbnails = user.jobs
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    api.set_status(export.id, "running")
    export.status = "running"
    row = row_for(page, export.id)
    expect(row.get_by_test_id("job-status")).to_have_text("running", timeout=LIVE_MS)
    expect(page.get_by_test_id("stat-running")).to_have_text("1", timeout=LIVE_MS)
    expect(page.get_by_test_id("stat-pending")).to_have_text("1")
    # A running row carries a progress bar, with the handler's percentage (none reported: 0%).
    expect(row.get_by_test_id("job-progress")).to_be_visible()
    expect(row.get_by_test_id("job-progress-text")).to_have_text("0%")
    expect(row.get_by_test_id("cancel-job")).to_be_visible()  # running may still be cancelled
    snap("running")

    api.set_status(export.id, "completed")
    export.status = "completed"
    expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=LIVE_MS)
    expect(row.get_by_test_id("job-progress")).to_have_count(0)
    expect(row.get_by_test_id("cancel-job")).to_have_count(0)  # nothing left to cancel
    expect_totals(page, user.jobs)
    expect(row_for(page, thumbnails.id).get_by_test_id("job-status")).to_have_text("pending")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"


def wait_for_status(api: Api, user: E2EUser, job_id: int, status: str) -> None:
    """Until the API itself holds the job in this status (the worker moves it)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        job = api.http.get(
            f"/api/users/jobs/{job_id}", headers={"Authorization": f"Bearer {user.token}"}
        ).json()["job"]
        if job["status"] == status:
            return
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}, not {status}"
        time.sleep(0.05)


def test_a_job_the_worker_runs_shows_its_progress_and_outcome_live(
    page: Page, make_user, api: Api, worker: ServerProcess, snap: Snap
) -> None:
    user = make_user()
    log_in(page, user)
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()

    job_id = int(api.submit(user.token, "Real work", "simple", {"seconds": 4})["job_id"])
    row = row_for(page, job_id)

    wait_for_status(api, user, job_id, "running")
    expect(row.get_by_test_id("job-status")).to_have_text("running", timeout=LIVE_MS)
    # The handler reports progress each second; the bar follows it.
    expect(row.get_by_test_id("job-progress-text")).to_have_text(
        re.compile(r"^[1-9]\d?% · slept \d of 4 s$"), timeout=4_000
    )
    snap("progress")

    wait_for_status(api, user, job_id, "completed")
    expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=LIVE_MS)
    expect(page.get_by_test_id("stat-completed")).to_have_text("1")
    row.get_by_test_id("job-details").click()
    panel = page.get_by_test_id("job-detail")
    expect(panel.get_by_test_id("detail-result")).to_contain_text('"slept": 4')
    expect(panel.get_by_test_id("detail-attempts")).to_have_text("1")
    expect(panel.get_by_test_id("detail-error")).to_have_text("none")


def test_unchanged_jobs_are_asked_for_with_their_etag_and_a_304_changes_nothing(
    page: Page, make_user
) -> None:
    user = make_user([("Quiet job", "simple", "pending")])
    log_in(page, user)
    expect_table(page, user.jobs)

    def conditional(response: Response) -> bool:
        return response.url in (JOBS_URL, STATS_URL) and response.status == 304

    # With nothing changing, the polls carry If-None-Match and come back empty-handed.
    with page.expect_response(conditional) as first:
        pass
    assert first.value.request.header_value("if-none-match")
    with page.expect_response(conditional):
        pass
    expect_table(page, user.jobs)
    expect_totals(page, user.jobs)


def seed_many(api: Api, user: E2EUser, count: int) -> None:
    for number in range(1, count + 1):
        job = api.submit(user.token, f"Bulk job {number:03d}", "simple")
        user.jobs.append(
            SeededJob(id=int(job["job_id"]), name=job["job_name"], type="simple", status="pending")
        )


def test_load_more_reaches_all_150_jobs(page: Page, make_user, api: Api, snap: Snap) -> None:
    user = make_user()
    seed_many(api, user, 150)
    log_in(page, user)

    count = page.get_by_test_id("jobs-count")
    expect(count).to_have_text("Showing 100 of 150")
    expect(rows(page)).to_have_count(100)
    expect(page.get_by_test_id("stat-total")).to_have_text("150")

    page.get_by_test_id("load-more").click()
    expect(count).to_have_text("Showing 150 of 150")
    expect(page.get_by_test_id("load-more")).to_have_count(0)  # nothing more to load
    expect_table(page, user.jobs)  # all 150, newest first, none twice

    # Refreshes keep all 150 rows, and a new job joins at the top without losing the oldest.
    job = api.submit(user.token, "Arrived after Load more", "simple")
    expect(rows(page).first).to_have_attribute("data-job-id", str(job["job_id"]), timeout=LIVE_MS)
    expect(count).to_have_text("Showing 151 of 151")
    expect(row_for(page, user.jobs[0].id)).to_have_count(1)
    snap("all")


def test_status_filter_shows_only_that_status(page: Page, make_user, api: Api) -> None:
    user = make_user(
        [
            ("Done one", "simple", "completed"),
            ("Waiting one", "simple", "pending"),
            ("Broken one", "simple", "failed"),
            ("Done two", "simple", "completed"),
            ("Waiting two", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    completed = [job for job in user.jobs if job.status == "completed"]
    pending = [job for job in user.jobs if job.status == "pending"]

    page.get_by_test_id("status-filter").select_option("completed")
    expect_table(page, completed)
    expect(page.get_by_test_id("jobs-count")).to_have_text("Showing 2 of 2")
    expect_totals(page, user.jobs)  # the totals are still every job's

    page.get_by_test_id("status-filter").select_option("pending")
    expect_table(page, pending)

    # A job that leaves the filtered status leaves the filtered list by itself.
    api.set_status(pending[0].id, "running")
    expect(row_for(page, pending[0].id)).to_have_count(0, timeout=LIVE_MS)
    expect(page.get_by_test_id("jobs-count")).to_have_text("Showing 1 of 1")

    page.get_by_test_id("status-filter").select_option("cancelled")
    expect(page.get_by_test_id("jobs-empty")).to_have_text("No cancelled jobs.")

    page.get_by_test_id("status-filter").select_option("")
    expect(rows(page)).to_have_count(len(user.jobs))


def test_detail_panel_shows_parameters_timings_attempts_and_the_error(
    page: Page, make_user, api: Api, snap: Snap
) -> None:
    user = make_user()
    job = api.submit(user.token, "Slow import", "simple", {"seconds": 42, "fail": True})
    job_id = int(job["job_id"])
    log_in(page, user)

    row = row_for(page, job_id)
    row.get_by_test_id("job-details").click()
    panel = page.get_by_test_id("job-detail")
    expect(panel.get_by_test_id("detail-name")).to_have_text("Slow import")
    expect(panel.get_by_test_id("detail-status")).to_have_text("pending")
    expect(panel.get_by_test_id("detail-parameters")).to_contain_text('"seconds": 42')
    expect(panel.get_by_test_id("detail-parameters")).to_contain_text('"fail": true')
    expect(panel.get_by_test_id("detail-attempts")).to_have_text("0")
    expect(panel.get_by_test_id("detail-started")).to_have_text("\N{EN DASH}")
    expect(panel.get_by_test_id("detail-result")).to_have_text("none")
    expect(panel.get_by_test_id("detail-error")).to_have_text("none")

    # The panel follows the job while it is open.
    api.set_status(job_id, "running")
    expect(panel.get_by_test_id("detail-status")).to_have_text("running", timeout=LIVE_MS)
    expect(panel.get_by_test_id("detail-started")).not_to_have_text("\N{EN DASH}")
    api.set_status(job_id, "failed")
    expect(panel.get_by_test_id("detail-status")).to_have_text("failed", timeout=LIVE_MS)
    expect(panel.get_by_test_id("detail-finished")).not_to_have_text("\N{EN DASH}")
    expect(panel.get_by_test_id("detail-error")).to_have_text("Marked failed by an administrator")
    snap("failed")

    panel.get_by_test_id("detail-close").click()
    expect(panel).to_have_count(0)
