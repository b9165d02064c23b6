"""The Dockerfile, read as text (no Docker engine here)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    parsed = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        parsed.append((instruction.upper(), arguments.strip()))
    return parsed


def _all(instructions: list[tuple[str, str]], name: str) -> list[str]:
    return [arguments for instruction, arguments in instructions if instruction == name]


def test_it_is_a_multi_stage_build(instructions: list[tuple[str, str]]) -> None:
    assert len(_all(instructions, "FROM")) > 1


def test_it_has_a_healthcheck_on_healthz(instructions: list[tuple[str, str]]) -> None:
    [healthcheck] = _all(instructions, "HEALTHCHECK")
    assert "/healthz" in healthcheck
    assert "CMD" in healthcheck


def test_it_runs_as_a_non_root_user(instructions: list[tuple[str, str]]) -> None:
    users = _all(instructions, "USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    # The last USER is set in the final stage, after its FROM.
    names = [instruction for instruction, _ in instructions]
    last_from = len(names) - 1 - names[::-1].index("FROM")
    assert names.index("USER", last_from) > last_from


def test_it_migrates_before_it_serves(instructions: list[tuple[str, str]]) -> None:
    command = _all(instructions, "CMD")[-1]
    assert "alembic upgrade head" in command
    assert "python -m app serve" in command
    assert command.index("alembic upgrade head") < command.index("python -m app serve")
    # Serving only after a successful migration, with the server as the signalled process.
    assert "alembic upgrade head && exec python -m app serve" in command
