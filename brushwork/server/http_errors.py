"""Every error a client sees is a JSON object `{"error": "one line"}` with a 4xx status (5xx: the server's fault).

Routes raise `fail(status, message)` for what only the server checks (its limits, unknown names,
missing fields); the library's own checks of options raise `BrushworkError`, which one handler turns
into a 422, so the server does not check those again.
"""

from __future__ import annotations

import json
import logging
import re
from typing import NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from brushwork.errors import BrushworkError

log = logging.getLogger("brushwork.server")

# The library's messages name command-line flags ("--refine-steps is for --method adain or wct");
# over HTTP the same names are form fields, written without the dashes.
CLI_FLAG_DASHES = re.compile(r"--(?=[a-z])")


def fail(status: int, message: str, headers: dict | None = None) -> NoReturn:
    raise HTTPException(status_code=status, detail=message, headers=headers)


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def send_error(send, status: int, message: str) -> None:
    """The same JSON error, sent from ASGI middleware (before any route runs); the connection is closed
    because the rest of the request body is not read."""
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def validation_message(errors) -> str:
    """FastAPI's list of form validation errors as one line."""
    parts = []
    for e in errors:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header")]
        name = ".".join(loc) or "request"
        if e.get("type") == "missing":
            parts.append(f"missing field '{name}'")
        else:
            parts.append(f"{name}: {e.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def request_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return error_response(422, validation_message(exc.errors()))


async def brushwork_error(request: Request, exc: BrushworkError) -> JSONResponse:
    # What reaches here is the library refusing a request's options or style; an upload it cannot
    # decode is answered (400 or 413) where it is decoded.
    return error_response(422, CLI_FLAG_DASHES.sub("", str(exc)))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(BrushworkError, brushwork_error)
    app.add_exception_handler(Exception, internal_error)
