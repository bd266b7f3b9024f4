"""The FastAPI application: ``uvicorn api.app:app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import handlers
from api.problems import document_problems
from api.routes import chunks, health, jobs, speech, tenants
from api.schemas import JobCreate
from api.services.readers import Readers
from api.web import actions, live, pages
from shared.farm.hearing import start_decoders
from shared.infra.settings import get_settings

# Swagger UI's scripts and styles, from a package that ships them (FastAPI's own /docs loads
# them from a CDN: a blank page where there is no internet). Swagger UI 5: OpenAPI 3.1.
SWAGGER_UI = Path(str(resources.files("fastapi_swagger.resources")))
STATIC = Path(__file__).parent / "web" / "static"
API_PREFIX = "/v1"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The connections a job's poll reads through, on the loop that serves the requests; the
    processes that decode live streams, started."""
    app.state.readers = Readers()
    decoders = start_decoders(get_settings())
    try:
        yield
    finally:
        await app.state.readers.close()
        for process in decoders:
            process.close()


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=lifespan,
        title="Lyre",
        version="0.1.0",
        description="Long-form speech synthesis: submit a text, poll or get a webhook.",
        docs_url=None,  # served below, from this app's own copy of Swagger UI
        redoc_url=None,  # ReDoc has no packaged copy: /docs is the reference
    )
    for versioned in (jobs, chunks, tenants, speech):  # the API, OpenAI's speech endpoint among it
        app.include_router(versioned.router, prefix=API_PREFIX)
    app.include_router(health.router)  # for probes and scrapers, unversioned
    for web in (pages, actions, live):
        app.include_router(web.router)
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Lyre — API reference",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    handlers.install(app)
    document_problems(app, inputs=[JobCreate])
    return app


app = create_app()
