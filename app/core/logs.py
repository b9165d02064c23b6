"""Logging: JSON lines in production, readable lines in development, each with its request id."""

import logging
import sys

from asgi_correlation_id import CorrelationIdFilter
from pythonjsonlogger.json import JsonFormatter

from app.core.config import Settings

CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s%(context)s"
# What every log record has; anything else on a record is an extra field its caller added
# (`extra={...}`: an access line's method and status, a job's id), shown after the message.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "context",
    "correlation_id",
    "request_id",
}


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = [
            f"{name}={value}"
            for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and not name.startswith("_") and value is not None
        ]
        record.context = (" " + " ".join(fields)) if fields else ""
        return super().format(record)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stdout)
    request_ids = CorrelationIdFilter(default_value="-")
    handler.addFilter(request_ids)
    # The filter names its field correlation_id; the logs call it request_id.
    handler.addFilter(_RenameRequestId())
    formatter: logging.Formatter
    if settings.resolved_log_format == "json":
        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            timestamp=False,
        )
    else:
        formatter = _ConsoleFormatter(CONSOLE_FORMAT)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_jobs_api", False):
            root.removeHandler(existing)
    handler._jobs_api = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # One access line per request comes from the app; uvicorn's own would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


class _RenameRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "correlation_id", "-")
        return True
