"""The marks in event ids (app/jobs/marks.py): every id the stream sends reads back as the mark
it came from, or as an earlier one that replays more and misses nothing; every id the parser
accepts, PostgreSQL accepts too."""

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.jobs.marks import MAX_XIPS, Counter, Snapshot, event_id, parse_event_id


@pytest.mark.parametrize(
    "mark",
    [Snapshot(1, 1), Snapshot(7, 12, (7, 9, 11)), Snapshot(2**63 - 1, 2**63 - 1), Counter(0)],
)
def test_an_id_reads_back_as_its_mark(mark: Snapshot | Counter) -> None:
    assert parse_event_id(event_id(mark), type(mark)) == mark


def test_an_id_is_only_read_by_its_kind_of_database() -> None:
    assert parse_event_id(event_id(Counter(5)), Snapshot) is None
    assert parse_event_id(event_id(Snapshot(5, 6)), Counter) is None


def test_a_snapshot_with_too_many_transactions_in_progress_goes_out_as_an_earlier_one() -> None:
    busy = Snapshot(100, 1000, tuple(range(100, 100 + MAX_XIPS + 1)))
    sent = parse_event_id(event_id(busy), Snapshot)

    # Everything before xmin was visible to both; from xmin on, the sent mark counts nothing as
    # seen, so a replay from it holds every change the busy one would, and some again.
    assert sent == Snapshot(100, 100)


ACCEPTED = [
    "pg:1:1:",
    "pg:1:4294967297:4294967296",  # an in-progress id may have its low 32 bits 0
    "pg:3:10:3,4,9",
    f"pg:{2**63 - 1}:{2**63 - 1}:",
    f"pg:1:{MAX_XIPS + 1}:" + ",".join(str(xid) for xid in range(1, MAX_XIPS + 1)),
]


@pytest.mark.postgres_only
@pytest.mark.parametrize("sent", ACCEPTED)
async def test_what_the_parser_accepts_postgresql_accepts(sent: str, engine: AsyncEngine) -> None:
    mark = parse_event_id(sent, Snapshot)
    assert isinstance(mark, Snapshot)
    async with engine.connect() as connection:
        read = await connection.scalar(
            text("SELECT CAST(CAST(:mark AS text) AS pg_snapshot)::text"), {"mark": mark.text()}
        )
    assert read == mark.text()
