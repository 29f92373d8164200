"""The read-only HTTP API: /last, /history and /schema of the stored monitors."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
import redis
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.responses import Response

from chomp_tasks.config import Settings, get_settings
from chomp_tasks.errors import (
    ChompError,
    InvalidName,
    InvalidQuery,
    StorageUnavailable,
    TooManyRows,
    UnknownMonitor,
)
from chomp_tasks.history import INTERVALS, MAX_HISTORY_ROWS, parse_query, read_history
from chomp_tasks.last import read_last, split_names
from chomp_tasks.names import check_table_name
from chomp_tasks.reading import read_connection, require_monitors
from chomp_tasks.schema_info import describe_monitors

logger = logging.getLogger(__name__)

STATUS_OF_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (InvalidName, 400),
    (InvalidQuery, 400),
    (UnknownMonitor, 404),
    (TooManyRows, 422),
    (StorageUnavailable, 503),
)
"""The HTTP status of each error the read side raises on purpose; the first match wins."""


class ErrorBody(BaseModel):
    """The body of every error response."""

    detail: str


class JsonResponse(Response):
    """A JSON response encoded by orjson, which also writes NaN as null instead of failing."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("A malformed monitor name, date or interval"),
    404: _error("A monitor that no worker has stored yet"),
    422: _error(f"A parameter of the wrong shape, or a history of over {MAX_HISTORY_ROWS} rows"),
    503: _error("PostgreSQL or Redis is unreachable"),
}

NAMES_PARAM = PathParam(
    description="Monitor names, comma-separated, such as BinanceETH_monitor",
    examples=["BinanceETH_monitor", "BinanceETH_monitor,chomp_worker_01_monitor"],
)
DATE_DOC = "ISO-8601 date or timestamp; one without a time zone is taken as UTC"


def _settings(request: Request) -> Settings:
    settings: Settings | None = request.app.state.settings
    return settings or get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def last(names: Annotated[str, NAMES_PARAM], settings: SettingsDep) -> Response:
    """Return the latest row of one monitor, or of several keyed by name."""
    wanted = split_names(names)
    with read_connection(settings) as conn:
        require_monitors(conn, wanted)
    return JsonResponse(read_last(settings, wanted))


def history(
    name: Annotated[str, PathParam(description="One monitor name, such as BinanceETH_monitor")],
    settings: SettingsDep,
    from_date: Annotated[str | None, Query(description=f"{DATE_DOC}; a day before to_date")] = None,
    to_date: Annotated[str | None, Query(description=f"{DATE_DOC}; now if absent")] = None,
    interval: Annotated[
        str | None,
        Query(
            description="Bucket width; without it the stored rows are returned",
            json_schema_extra={"enum": list(INTERVALS)},
        ),
    ] = None,
) -> Response:
    """Return a monitor's rows from from_date (included) to to_date (excluded), oldest first.

    With an interval, one row per bucket that holds data: numbers averaged, texts the bucket's
    latest value, `ts` the bucket's start (UTC) and `count` its number of rows. More than
    10,000 rows is refused with 422: narrow the range or choose a wider interval.
    """
    query = parse_query(check_table_name(name), from_date, to_date, interval)
    return JsonResponse(read_history(settings, query))


def schema_of(names: Annotated[str, NAMES_PARAM], settings: SettingsDep) -> Response:
    """Describe the named monitors: kind, table, fields and when each was first seen."""
    return JsonResponse(describe_monitors(settings, split_names(names)))


def schema_all(settings: SettingsDep) -> Response:
    """Describe every monitor stored so far, keyed by name."""
    return JsonResponse(describe_monitors(settings))


def create_app(settings: Settings | None = None) -> FastAPI:
    """Return the read-only API; without settings it reads them from the environment."""
    app = FastAPI(
        title="chomp_tasks",
        summary="Latest values, history and schema of request and instance monitors",
        version="0.1.0",
    )
    app.state.settings = settings
    options: dict[str, Any] = {"response_class": JsonResponse, "responses": ERROR_RESPONSES}
    app.get("/last/{names}", **options)(last)
    app.get("/history/{name}", **options)(history)
    app.get("/schema/{names}", **options)(schema_of)
    app.get("/schema", **options)(schema_all)
    _add_error_handlers(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ChompError, _chomp_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for outage in (sa.exc.OperationalError, sa.exc.InterfaceError, redis.RedisError):
        app.add_exception_handler(outage, _outage)


async def _chomp_error(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in STATUS_OF_ERROR if isinstance(exc, kind)), 500)
    if isinstance(exc, StorageUnavailable):
        return await _outage(request, exc)
    if status >= 500:
        logger.error("Request %s failed: %s", request.url.path, exc)
    return JsonResponse({"detail": str(exc)}, status_code=status)


async def _validation_error(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = [f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in errors]
    return JsonResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        return JsonResponse({"detail": "internal error"}, status_code=500)
    body = {"detail": str(exc.detail)}
    return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _outage(request: Request, exc: Exception) -> Response:
    # Driver messages can name hosts and users; the client only learns which service is away.
    service = "Redis" if isinstance(exc, redis.RedisError) else "PostgreSQL"
    logger.warning("Request %s failed, %s is unreachable: %s", request.url.path, service, exc)
    return JsonResponse({"detail": f"{service} is unreachable; try again later"}, status_code=503)
