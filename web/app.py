"""Assembling the browser: pages, API, static files, error pages, the guard; and serving it."""
from __future__ import annotations

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.archive import queries
from pipeline.archive.db import redact_url
from pipeline.reading.profile import load_profile
from web import api, pages
from web.readonly import open_readonly
from web.security import Guard, check_binding

STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)


def create_app(engine: Engine, profile: str = "cpsia", token: str | None = None,
               bound_host: str = "127.0.0.1") -> FastAPI:
    """The ASGI app over a read-only engine (see web.readonly.open_readonly)."""
    portal = load_profile(profile)
    app = FastAPI(
        title="portal-archive",
        version="1",
        description=f"Read-only access to the versioned archive of {portal.site_name}: articles and their "
                    "versions, diffs between versions, the change feed, crawl runs and quarantine.",
        openapi_url="/api/openapi.json",
        # The interactive docs pages load their scripts from a CDN: not here.
        docs_url=None,
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.profile = portal
    app.state.tz = ZoneInfo(portal.timezone)
    app.state.counts = queries.ArchiveCounts()
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(Guard, token=token, bound_host=bound_host)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return pages.render(request, "error.html", status_code=exc.status_code, title=str(exc.status_code),
                            message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": jsonable(exc.errors())}, status_code=422)
        # Pages take only integers in their paths (aid, version, raw page id).
        return pages.render(request, "error.html", status_code=404, title="Not found",
                            message="There is no such page in the archive.")

    return app


def jsonable(errors) -> list:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors)


def serve(db_url: str, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
          profile: str = "cpsia", echo=print) -> None:
    """Check the binding, open the archive read-only, serve until interrupted."""
    import uvicorn

    token = check_binding(host, token)
    engine = open_readonly(db_url)
    app = create_app(engine, profile=profile, token=token, bound_host=host)
    shown = f"[{host}]" if ":" in host else host
    echo(f"serving {redact_url(db_url)} read-only at http://{shown}:{port}/"
         + (" (token required)" if token else ""))
    try:
        # No access log: a `?token=` in a logged URL would leak the secret.
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                    server_header=False, proxy_headers=False)
    finally:
        engine.dispose()
