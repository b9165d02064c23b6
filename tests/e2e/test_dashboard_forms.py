"""Forms a user fills in: sign-up, and the submit form built from the API's job types."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.config import DASHBOARD_URL, PASSWORD
from tests.e2e.pages import ME_URL, Snap, choose_type, log_in, row_named, rows
from tests.e2e.seeding import Api

pytestmark = pytest.mark.e2e


def test_sign_up_then_land_on_an_empty_dashboard(page: Page, api: Api, snap: Snap) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    with page.expect_response(lambda r: r.url == ME_URL):
        page.goto("/login")
    page.get_by_test_id("signup-link").click()
    expect(page).to_have_url(f"{DASHBOARD_URL}/signup")

    # A password the API refuses: its rule, said plainly, and no account.
    page.get_by_test_id("signup-email").fill(email)
    page.get_by_test_id("signup-password").fill("short")
    page.get_by_test_id("signup-submit").click()
    error = page.get_by_test_id("signup-error")
    expect(error).to_have_text("Password: must be at least 8 characters long")
    snap("refused")

    page.get_by_test_id("signup-name").fill("Grace Hopper")
    page.get_by_test_id("signup-password").fill(PASSWORD)
    page.get_by_test_id("signup-submit").click()

    expect(page).to_have_url(f"{DASHBOARD_URL}/dashboard")
    expect(page.get_by_test_id("user-email")).to_have_text(email)
    expect(page.get_by_test_id("jobs-empty")).to_be_visible()
    expect(page.get_by_test_id("stat-total")).to_have_text("0")
    assert api.login(email, PASSWORD)  # the account is real, with that password

    # The same email again is refused with the API's reason.
    page.get_by_test_id("logout-button").click()
    expect(page).to_have_url(f"{DASHBOARD_URL}/login")
    page.goto("/signup")
    page.get_by_test_id("signup-email").fill(email.upper())
    page.get_by_test_id("signup-password").fill(PASSWORD)
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("signup-error")).to_be_visible()
    expect(page).to_have_url(f"{DASHBOARD_URL}/signup")


def test_submit_form_is_built_from_the_job_types(
    page: Page, make_user, api: Api, snap: Snap
) -> None:
    user = make_user()
    types = api.http.get(
        "/api/job-types", headers={"Authorization": f"Bearer {user.token}"}
    ).json()["job_types"]
    with page.expect_response(lambda r: r.url.endswith("/api/job-types")):
        log_in(page, user)

    select = page.get_by_test_id("job-type-input")
    expect(select.locator("option")).to_have_text([t["name"] for t in types])
    simple = next(t for t in types if t["name"] == "simple")
    choose_type(page, "simple")
    expect(page.get_by_test_id("job-type-description")).to_have_text(simple["description"])

    # One field per parameter, with the schema's default and bounds.
    properties = simple["parameters_schema"]["properties"]
    seconds = page.get_by_test_id("param-seconds")
    expect(seconds).to_have_attribute("type", "number")
    expect(seconds).to_have_value(str(properties["seconds"]["default"]))
    expect(seconds).to_have_attribute("min", str(properties["seconds"]["minimum"]))
    expect(seconds).to_have_attribute("max", str(properties["seconds"]["maximum"]))
    fail = page.get_by_test_id("param-fail")
    expect(fail).to_have_attribute("type", "checkbox")
    expect(fail).not_to_be_checked()
    snap("form")

    # Out of bounds: a readable message naming the field, no regex or pydantic wording.
    page.get_by_test_id("job-name-input").fill("Too long a wait")
    seconds.fill("99999")
    page.get_by_test_id("job-submit").click()
    error = page.get_by_test_id("job-submit-error")
    expect(error).to_have_text("seconds: must be less than or equal to 3600")
    expect(rows(page)).to_have_count(0)

    # A blank name says so plainly, and replaces the earlier message.
    page.get_by_test_id("job-name-input").fill("   ")
    seconds.fill("5")
    page.get_by_test_id("job-submit").click()
    expect(error).to_have_text("Name: is required")
    snap("invalid")

    # The next success clears the message; the job carries what the form said.
    page.get_by_test_id("job-name-input").fill("Five second wait")
    fail.check()
    page.get_by_test_id("job-submit").click()
    expect(page.get_by_test_id("job-submit-success")).to_contain_text("Five second wait")
    expect(error).to_have_count(0)
    row = row_named(page, "Five second wait")
    expect(row).to_have_count(1)
    row.get_by_test_id("job-details").click()
    parameters = page.get_by_test_id("detail-parameters")
    expect(parameters).to_contain_text('"seconds": 5')
    expect(parameters).to_contain_text('"fail": true')
