"""What the hostile-input tests share: the URLs they attack and how a refusal must look."""

import base64
import json
from typing import Any

from httpx import AsyncClient, Response

from app.core.config import Settings
from app.models import User
from tests.factories import bearer

JOBS_URL = "/api/users/jobs"
REGISTER_URL = "/api/auth/register"
LOGIN_URL = "/api/auth/login"
TOKEN_URL = "/api/auth/token"
JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024  # settings.max_body_bytes
TOO_LARGE = {"detail": "Request body too large", "success": False}


def assert_client_error(response: Response, *allowed: int) -> None:
    assert response.status_code != 500, response.text
    if allowed:
        assert response.status_code in allowed, (response.status_code, response.text)
    else:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["success"] is False


async def job_total(client: AsyncClient, user: User, settings: Settings) -> int:
    response = await client.get(JOBS_URL, headers=bearer(user, settings))
    assert response.status_code == 200
    total: int = response.json()["total"]
    return total


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def job_with(parameters: Any) -> bytes:
    return json.dumps({"job_name": "x", "job_type": "simple", "parameters": parameters}).encode()
