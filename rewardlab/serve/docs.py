"""The server's API docs routes (/openapi.json, /docs, /redoc), behind the same token as every other
endpoint (docs/serving.md). (No ``from __future__ import annotations``: FastAPI reads the annotations.)"""

from typing import Any


def docs_routes(app: Any, auth: list) -> Any:
    """/openapi.json, /docs and /redoc as FastAPI serves them, but behind the token (docs/serving.md)."""
    from fastapi import APIRouter
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import JSONResponse

    router = APIRouter(dependencies=auth, include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger() -> Any:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title + " - Swagger UI")

    @router.get("/redoc")
    async def redoc() -> Any:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title + " - ReDoc")

    return router
