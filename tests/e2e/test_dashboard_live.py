"""The open dashboard keeps up with the jobs: changes arrive by the event stream without a reload
(and by polling when the stream fails), every job is reachable with Load more, the status filter
and the detail panel show what the API holds."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, Response, expect

from tests.e2e.config import TIMEOUT_MS
from tests.e2e.pages import (
    EVENTS_URL,
    JOBS_URL,
    STATS_URL,
    Snap,
    expect_live,
    expect_table,
    expect_totals,
    jobs_api_requests,
    log_in,
    refuse_event_stream,
    row_for,
    rows,
)
from tests.e2e.processes import ServerProcess
from tests.e2e.seeding import Api, E2EUser, SeededJob

pytestmark = pytest.mark.e2e

# By the event stream a change is on screen within a second of its commit.
STREAM_MS = 1_000
# Without the stream the dashboard asks every 1.5 s: a change is on screen within about 2 s.
LIVE_MS = 2_500
# A refused stream is tried again after 2 s, then 4, 8, 16, ... s: once the refusal is lifted,
# the next try comes within this.
RETRY_MS = 40_000


def test_a_status_change_arrives_by_the_stream_within_a_second_without_a_reload(
    page: Page, make_user, api: Api, snap: Snap
) -> None:
    """An admin moves the job through the API (PATCH /api/admin/jobs/{id}); the worker's own
    changes are the next test's."""
    user = make_user(
        [
            ("Nightly export", "simple", "pending"),
            ("Thumbnail batch", "simple", "pending"),
        ]
    )
    log_in(page, user)
    expect_table(page, user.jobs)
    expect_live(page)
    export, thumbnails = user.jobs
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    with jobs_api_requests(page) as polled:
        api.set_status(export.id, "running")
        export.status = "running"
        row = row_for(page, export.id)
        expect(row.get_by_test_id("job-status")).to_have_text("running", timeout=STREAM_MS)
        expect(page.get_by_test_id("stat-running")).to_have_text("1", timeout=STREAM_MS)
        expect(page.get_by_test_id("stat-pending")).to_have_text("1")
        # A running row carries a progress bar, with the event's percentage (none reported: 0%).
        expect(row.get_by_test_id("job-progress")).to_be_visible()
        expect(row.get_by_test_id("job-progress-text")).to_have_text("0%")
        expect(row.get_by_test_id("cancel-job")).to_be_visible()  # running may still be cancelled
        snap("running")

        api.set_status(export.id, "completed")
        export.status = "completed"
        expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=STREAM_MS)
        expect(row.get_by_test_id("job-progress")).to_have_count(0)
        expect(row.get_by_test_id("cancel-job")).to_have_count(0)  # nothing left to cancel
        expect_totals(page, user.jobs)
        expect(row_for(page, thumbnails.id).get_by_test_id("job-status")).to_have_text("pending")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    # Rows, totals and progress all came by the stream: not one list, totals or detail request.
    assert polled == [], f"the page polled while the stream was up: {polled}"


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
    expect_live(page)

    with jobs_api_requests(page) as polled:
        job_id = int(api.submit(user.token, "Real work", "simple", {"seconds": 4})["job_id"])
        row = row_for(page, job_id)

        wait_for_status(api, user, job_id, "running")
        expect(row.get_by_test_id("job-status")).to_have_text("running", timeout=STREAM_MS)
        # The handler reports progress each second; the bar follows it.
        expect(row.get_by_test_id("job-progress-text")).to_have_text(
            re.compile(r"^[1-9]\d?% · slept \d of 4 s$"), timeout=4_000
        )
        snap("progress")

        wait_for_status(api, user, job_id, "completed")
        expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=STREAM_MS)
        expect(page.get_by_test_id("stat-completed")).to_have_text("1")
    assert polled == [], f"the page polled while the stream was up: {polled}"
    row.get_by_test_id("job-details").click()
    panel = page.get_by_test_id("job-detail")
    expect(panel.get_by_test_id("detail-result")).to_contain_text('"slept": 4')
    expect(panel.get_by_test_id("detail-attempts")).to_have_text("1")
    expect(panel.get_by_test_id("detail-error")).to_have_text("none")


@pytest.mark.parametrize("failure", ["500", "abort"])
def test_without_the_stream_the_dashboard_polls_with_etags_and_goes_live_when_it_is_back(
    page: Page, make_user, api: Api, failure: str
) -> None:
    refuse_event_stream(page, failure)
    user = make_user([("Quiet job", "simple", "pending"), ("Moving job", "simple", "pending")])
    log_in(page, user)
    expect_table(page, user.jobs)
    quiet, moving = user.jobs
    expect(page.get_by_test_id("feed-mode")).to_have_text("Polling")
    with page.expect_request(EVENTS_URL, timeout=RETRY_MS):
        pass  # the refused stream is tried again

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

    # A change shows by polling, its progress from the job's detail.
    api.set_status(moving.id, "running")
    moving.status = "running"
    row = row_for(page, moving.id)
    expect(row.get_by_test_id("job-status")).to_have_text("running", timeout=LIVE_MS)
    expect(row.get_by_test_id("job-progress-text")).to_have_text("0%")
    expect_totals(page, user.jobs)
    expect(page.get_by_test_id("feed-mode")).to_have_text("Polling")

    # Once the stream answers again the dashboard goes live and stops polling.
    page.unroute(EVENTS_URL)
    expect(page.get_by_test_id("feed-mode")).to_have_text("Live", timeout=RETRY_MS)
    with jobs_api_requests(page) as polled:
        api.set_status(moving.id, "completed")
        moving.status = "completed"
        expect(row.get_by_test_id("job-status")).to_have_text("completed", timeout=STREAM_MS)
        expect_totals(page, user.jobs)
    assert polled == [], f"the page polled while the stream was up: {polled}"
    expect(row_for(page, quiet.id).get_by_test_id("job-status")).to_have_text("pending")


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
