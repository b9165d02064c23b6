"""The auth feature's metrics, registered with the app's at start-up (app/main.py)."""

from prometheus_client import Counter

FAILED_LOGINS = Counter("login_failures_total", "Failed logins", ["reason"], registry=None)
