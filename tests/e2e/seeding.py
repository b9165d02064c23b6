"""Test data through the API, as seeding scripts and other clients see it: Bearer tokens over
httpx, users made with `python -m app create-user`."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from tests.e2e.config import API_URL, PASSWORD, ROOT
from tests.e2e.processes import api_env, run


@dataclass
class SeededJob:
    id: int
    name: str
    type: str
    status: str


@dataclass
class E2EUser:
    email: str
    password: str
    token: str
    jobs: list[SeededJob] = field(default_factory=list)


def create_user(email: str, password: str, *, admin: bool = False) -> None:
    argv = [sys.executable, "-m", "app", "create-user", "--email", email, "--password", password]
    if admin:
        argv.append("--admin")
    run(argv, cwd=ROOT, env=api_env(), timeout=60, what="create-user")


class Api:
    """The API as seeding scripts and other clients see it: Bearer tokens over httpx."""

    def __init__(self) -> None:
        self.http = httpx.Client(base_url=API_URL, timeout=10)
        self._admin_token: str | None = None

    def close(self) -> None:
        self.http.close()

    def login(self, email: str, password: str) -> str:
        response = self.http.post("/api/auth/login", json={"email": email, "password": password})
        # Seeding authenticates with Bearer tokens only. A stored login cookie would make the next
        # login a cookie-carrying write without an Origin, which the API's CSRF guard refuses.
        self.http.cookies.clear()
        response.raise_for_status()
        return str(response.json()["access_token"])

    def _auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
            create_user(email, PASSWORD, admin=True)
            self._admin_token = self.login(email, PASSWORD)
        return self._admin_token

    def submit(
        self, token: str, name: str, job_type: str, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"job_name": name, "job_type": job_type}
        if parameters is not None:
            body["parameters"] = parameters
        response = self.http.post("/api/users/jobs", json=body, headers=self._auth(token))
        response.raise_for_status()
        return dict(response.json()["job"])

    def cancel(self, token: str, job_id: int) -> None:
        response = self.http.post(f"/api/users/jobs/{job_id}/cancel", headers=self._auth(token))
        response.raise_for_status()

    def set_status(self, job_id: int, status: str) -> None:
        response = self.http.patch(
            f"/api/admin/jobs/{job_id}",
            json={"status": status},
            headers=self._auth(self.admin_token),
        )
        response.raise_for_status()

    # pending -> running -> completed | failed; cancelled through the owner's own route.
    _PATHS: ClassVar[dict[str, tuple[str, ...]]] = {
        "pending": (),
        "running": ("running",),
        "completed": ("running", "completed"),
        "failed": ("running", "failed"),
    }

    def seed_job(self, user: E2EUser, name: str, job_type: str, status: str) -> SeededJob:
        job_id = int(self.submit(user.token, name, job_type)["job_id"])
        if status == "cancelled":
            self.cancel(user.token, job_id)
        else:
            for step in self._PATHS[status]:
                self.set_status(job_id, step)
        job = SeededJob(id=job_id, name=name, type=job_type, status=status)
        user.jobs.append(job)
        return job


UserFactory = Callable[..., E2EUser]
