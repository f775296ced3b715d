"""``GET /dashboard``: the analysts' web page and its static assets, from the package
``services.ingress.dashboard``.

The page is plain files (HTML, ES modules, CSS, the vendored chart library): nothing is built at
run time and nothing is fetched from outside. It holds no data: it asks for an API key in the
browser and reads the usage API (``/v1/usage/query``, ``/v1/usage/requests``) with it, so these
routes need no key themselves.

Only the files of the package are served, from a table made once on first use (the bytes, their
gzip form and an ETag), never a path joined from the URL. The page's own files are revalidated
on every load (``no-cache`` with an ETag: an upgraded ingress serves the new page at once); the
vendored library sits under a versioned folder and is cached for good.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

router = APIRouter()

PACKAGE = "services.ingress.dashboard"
INDEX = "index.html"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Served as text: the vendored library's licence goes wherever the library does. Any other file
# without a known type (``__init__.py``) is not served at all.
_LICENCE_NAMES = frozenset({"LICENSE", "NOTICE", "LICENSE-d3"})
_VENDOR = "vendor/"
# Compressing below this saves less than the header costs.
_GZIP_MIN_BYTES = 1024

# The page handles an API key: it runs only its own scripts, talks only to its own origin, and
# may not be framed. ECharts writes style attributes (tooltips), hence 'unsafe-inline' for
# styles only.
_SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    media_type: str
    etag: str
    immutable: bool


def _media_type(name: str) -> str | None:
    if name in _LICENCE_NAMES:
        return "text/plain; charset=utf-8"
    suffix = name[name.rfind(".") :] if "." in name else ""
    return _MEDIA_TYPES.get(suffix)


def _walk(folder: Traversable, prefix: str) -> dict[str, Asset]:
    assets: dict[str, Asset] = {}
    for entry in folder.iterdir():
        path = prefix + entry.name
        if entry.is_dir():
            assets.update(_walk(entry, path + "/"))
            continue
        media_type = _media_type(entry.name)
        if media_type is None:  # __init__.py and anything else that is not the page
            continue
        body = entry.read_bytes()
        gzipped = gzip.compress(body, mtime=0) if len(body) >= _GZIP_MIN_BYTES else None
        assets[path] = Asset(
            body=body,
            gzipped=gzipped,
            media_type=media_type,
            etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
            immutable=path.startswith(_VENDOR),
        )
    return assets


@cache
def assets() -> dict[str, Asset]:
    """Every servable file of the dashboard package, by its path under ``/dashboard/``."""
    return _walk(resources.files(PACKAGE), "")


def _answer(request: Request, asset: Asset) -> Response:
    headers = {
        **_SECURITY_HEADERS,
        "etag": asset.etag,
        "vary": "accept-encoding",
        "cache-control": "public, max-age=31536000, immutable" if asset.immutable else "no-cache",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


@router.get("/dashboard", include_in_schema=False)
async def dashboard_root() -> Response:
    # The page's URLs are relative to its folder, so it is always served at the trailing slash.
    return RedirectResponse("dashboard/", status_code=308)


@router.get("/dashboard/{path:path}", include_in_schema=False)
async def dashboard_file(path: str, request: Request) -> Response:
    asset = assets().get(path or INDEX)
    if asset is None:
        raise HTTPException(status_code=404)
    return _answer(request, asset)
