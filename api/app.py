"""The FastAPI application: ``uvicorn api.app:app``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.errors import ApiError
from api.routes import health, jobs, speech


def create_app() -> FastAPI:
    app = FastAPI(
        title="Lyre",
        version="0.1.0",
        description="Long-form speech synthesis: submit a text, poll or get a webhook.",
    )
    app.include_router(jobs.router)
    app.include_router(speech.router)
    app.include_router(health.router)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = ["{}: {}".format(".".join(map(str, e["loc"])), e["msg"]) for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(reasons)}, status_code=422)

    return app


app = create_app()
