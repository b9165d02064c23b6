"""Where a client's copy of its jobs stands: the mark an events stream carries in its event ids.

- PostgreSQL: a snapshot, as pg_current_snapshot() gives it (xmin, xmax, the transactions in
  progress). A job changed since a snapshot exactly when the transaction that last wrote it
  (jobs.changed_in, migration b7d2e5a1c308) was not visible in that snapshot, whatever order
  transactions committed in.
- SQLite: the change counter (job_change_counter.last); SQLite commits one writer at a time,
  so the counter's order is commit order.

In an event id a mark is text tagged with its kind ("pg:xmin:xmax:xip,..." or "sqlite:N"), so
one database's mark is never read against the other's. `parse_event_id` is the only way back
from text: strict, bounded, and it never raises.
"""

import re
from dataclasses import dataclass
from itertools import pairwise

# Transactions in progress an event id lists at most. A snapshot with more (a very busy
# database) goes out as the earlier snapshot "everything before xmin", which replays a few
# changes twice and misses none, so ids stay short enough for any proxy's header limits.
MAX_XIPS = 64
_NUMBER = r"(?:0|[1-9][0-9]{0,18})"  # at most 19 digits: within a bigint, as changed_in is
_XIPS = rf"(?:{_NUMBER}(?:,{_NUMBER}){{0,{MAX_XIPS - 1}}})?"
_SNAPSHOT_ID = re.compile(rf"pg:({_NUMBER}):({_NUMBER}):({_XIPS})")
_COUNTER_ID = re.compile(rf"sqlite:({_NUMBER})")
MAX_EVENT_ID_LENGTH = 3 + 2 * 20 + MAX_XIPS * 20
_MAX_BIGINT = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A PostgreSQL snapshot: transactions below xmin are visible, those from xmax on are not,
    and of those between, all but the ones in xip (in progress when it was taken)."""

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    @classmethod
    def from_text(cls, text: str) -> "Snapshot":
        """pg_snapshot's own text form, as PostgreSQL writes it."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), tuple(int(x) for x in xip.split(",") if x))

    def text(self) -> str:
        """pg_snapshot's text form, as PostgreSQL reads it."""
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, self.xip))}"


@dataclass(frozen=True, slots=True)
class Counter:
    """A SQLite change counter: changes numbered above `last` are new."""

    last: int


Mark = Snapshot | Counter


def is_from_the_future(mark: Mark, current: Mark) -> bool:
    """A mark past the database's present: the database was restored from an older backup, or
    the mark is another database's."""
    if isinstance(mark, Snapshot) and isinstance(current, Snapshot):
        return mark.xmax > current.xmax
    if isinstance(mark, Counter) and isinstance(current, Counter):
        return mark.last > current.last
    return True


def event_id(mark: Mark) -> str:
    if isinstance(mark, Counter):
        return f"sqlite:{mark.last}"
    if len(mark.xip) > MAX_XIPS:
        mark = Snapshot(mark.xmin, mark.xmin)
    return f"pg:{mark.text()}"


def parse_event_id(text: str, kind: type[Snapshot] | type[Counter]) -> Mark | None:
    """The mark an event id of ours carries, if `text` is one for this kind of database; None
    for anything else (garbage, another database's kind, a snapshot that cannot be)."""
    if len(text) > MAX_EVENT_ID_LENGTH:
        return None
    if kind is Counter:
        counter = _COUNTER_ID.fullmatch(text)
        return None if counter is None else _counter(int(counter[1]))
    snapshot = _SNAPSHOT_ID.fullmatch(text)
    if snapshot is None:
        return None
    xmin, xmax = int(snapshot[1]), int(snapshot[2])
    xip = tuple(int(x) for x in snapshot[3].split(",") if x)
    # As pg_snapshot's input demands: xmin and xmax valid transaction ids (their low 32 bits
    # not 0), xmin <= xip < xmax; ascending, as PostgreSQL writes them.
    if not 0 < xmin <= xmax <= _MAX_BIGINT or not xmin % 2**32 or not xmax % 2**32:
        return None
    if any(not xmin <= x < xmax for x in xip) or any(a >= b for a, b in pairwise(xip)):
        return None
    return Snapshot(xmin, xmax, xip)


def _counter(last: int) -> Counter | None:
    return Counter(last) if last <= _MAX_BIGINT else None
