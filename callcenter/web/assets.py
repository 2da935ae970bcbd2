"""What every page shares: the one number and date formatter, and the definitions page.

Each page's ``setup`` calls :func:`add_shared`; the routes are added once however many pages
an app serves (tests serve one page alone).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
# path -> file under static/
_SHARED = {
    "/assets/format.js": "format.js",
    "/assets/definitions.css": "definitions.css",
    "/definitions": "definitions.html",
}


def _file(name: str) -> web.FileResponse:
    path = STATIC / name
    return web.FileResponse(path, headers={"Content-Type": _TYPES[path.suffix]})


def add_shared(app: web.Application) -> None:
    """Adds the shared formatter and the definitions page unless the app already has them."""
    have = {getattr(r, "canonical", None) for r in app.router.resources()}
    for route, name in _SHARED.items():
        if route in have:
            continue

        async def serve(request: web.Request, name: str = name) -> web.FileResponse:
            return _file(name)

        app.router.add_get(route, serve)
