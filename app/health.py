from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.db import get_database

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up. Touches no database, so a load balancer never restarts it for one."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The database does not answer"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers: this instance can take traffic."""
    engine = get_database(request).engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "detail": "Database unavailable", "success": False},
            status_code=503,
        )
    return JSONResponse({"status": "ok"})
