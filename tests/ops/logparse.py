"""Reading the app's log output back: console lines and JSON lines."""

import json
import re
from dataclasses import dataclass
from typing import Any

# CONSOLE_FORMAT in app/core/logs.py: time, level, [request id], logger: message, then the
# access fields as key=value.
_CONSOLE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) +\[(?P<request_id>[^\]]*)\] "
    r"(?P<logger>[\w.]+): (?P<message>.*)$"
)
_FIELD = re.compile(r"(\w+)=(\S+)")


@dataclass
class ConsoleLine:
    level: str
    request_id: str
    logger: str
    message: str
    fields: dict[str, str]


def console_lines(output: str) -> list[ConsoleLine]:
    """Every line that starts a log record (traceback lines are not records)."""
    records = []
    for line in output.splitlines():
        match = _CONSOLE_LINE.match(line)
        if match:
            records.append(
                ConsoleLine(
                    level=match["level"],
                    request_id=match["request_id"],
                    logger=match["logger"],
                    message=match["message"],
                    fields=dict(_FIELD.findall(match["message"])),
                )
            )
    return records


def console_access_lines(output: str) -> list[ConsoleLine]:
    return [line for line in console_lines(output) if line.logger == "app.access"]


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every non-empty stdout line, each of which must be one JSON object."""
    records = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not a JSON log line: {line!r}") from exc
        assert isinstance(record, dict), line
        records.append(record)
    return records


def json_access_lines(output: str) -> list[dict[str, Any]]:
    return [record for record in json_lines(output) if record.get("name") == "app.access"]
