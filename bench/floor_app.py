"""The FastAPI floor for the benchmark: this very app (app.main.create_app, its settings, its
middleware, its error handlers) with one more route that does nothing but answer with the bytes
in the file named by BENCH_BARE_BODY, the body the real list returned at the start of the run.

Between the bare ceiling and this floor lies what the framework and the middleware cost;
between this floor and the real route, what authentication, the database and the answer cost.
"""

import os
from pathlib import Path

from fastapi import APIRouter, Response

from app.main import create_app

FLOOR_PATH = "/bench/floor"
_BODY = Path(os.environ["BENCH_BARE_BODY"]).read_bytes()

router = APIRouter()


@router.get(FLOOR_PATH, include_in_schema=False)
async def floor() -> Response:
    return Response(_BODY, media_type="application/json")


app = create_app()
app.include_router(router)
