import pytest

from app.jobs import events
from tests.jobs.event_streams import EVENT_BOUND


@pytest.fixture
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Event streams read only when woken: their clock is put out of the tests' reach, so an
    event that arrives came from the wake under test (app/jobs/events.py)."""
    monkeypatch.setattr(events, "POLL_SECONDS", 10 * EVENT_BOUND)
