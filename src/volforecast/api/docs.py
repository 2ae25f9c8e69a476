"""``/docs`` and ``/redoc`` from assets the service serves itself, so they work offline.

FastAPI's own pages load Swagger UI and ReDoc from a CDN: without internet ``/docs`` is a
blank page. The assets come from the ``fastapi-offline`` package (Swagger UI 5, ReDoc 2, a
favicon), mounted as static files and wired in the way FastAPI documents for custom assets.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
"""Where the Swagger UI and ReDoc files are served."""


def install(app: FastAPI) -> None:
    """Serve the assets and the two documentation pages; ``app`` has ``docs_url=None``."""
    # The folder of swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js and a favicon.
    assets = StaticFiles(directory=Path(str(files("fastapi_offline") / "static")))
    app.mount(ASSETS_URL, assets, name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    def _prefix(request: Request) -> str:
        # Behind a proxy that strips a path prefix, every URL the page loads must carry it.
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI over the service's own schema."""
        root = _prefix(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            # Swagger UI would send the schema to validator.swagger.io for a badge: never.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        """ReDoc over the service's own schema, without Google Fonts."""
        root = _prefix(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
