"""The list's keyset cursors: where the next page starts, as opaque text."""

import base64
import binascii
import json
from datetime import UTC, datetime

from app.core.errors import InvalidInput


class InvalidCursor(InvalidInput):
    detail = "Invalid cursor"


def encode_cursor(created_at: datetime, job_id: int) -> str:
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at_text, job_id = json.loads(raw)
        created_at = datetime.fromisoformat(created_at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidCursor from exc
    if created_at.tzinfo is None or not isinstance(job_id, int) or isinstance(job_id, bool):
        raise InvalidCursor
    try:
        created_at = created_at.astimezone(UTC)
    except OverflowError as exc:  # e.g. year 1 east of Greenwich
        raise InvalidCursor from exc
    if not 0 < job_id < 2**63:
        raise InvalidCursor
    return created_at, job_id
