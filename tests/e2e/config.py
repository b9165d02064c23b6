"""Where the end-to-end stack lives: paths, ports, the database, the browser. Everything listens
on loopback only; the browser and the test clients use "localhost" for both the dashboard and the
API, like a user would, so the SameSite=Lax login cookie flows."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = ROOT / "examples" / "dashboard"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
LOGS = ARTIFACTS / "logs"
DOCS = ROOT / "docs"
UPDATE_DOCS_IMAGES = os.environ.get("E2E_UPDATE_DOCS_IMAGES") == "1"

API_PORT = 8000
DASHBOARD_PORT = 3000
# The browser and the test clients use "localhost" for both, like a user would.
API_URL = f"http://localhost:{API_PORT}"
DASHBOARD_URL = f"http://localhost:{DASHBOARD_PORT}"

PG_SERVER = os.environ.get("E2E_POSTGRES", "postgres@127.0.0.1:5432")
E2E_DATABASE = "jobs_e2e"
DATABASE_URL = f"postgresql+asyncpg://{PG_SERVER}/{E2E_DATABASE}"
SECRET_KEY = "e2e-only-secret-key-0123456789-abcdefghi"  # 40 characters, never used elsewhere
PASSWORD = "e2e-password-123"

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000
