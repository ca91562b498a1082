"""/dashboard: finance's page in the browser — static files shipped in the package.

The page is plain HTML, CSS and one JavaScript module beside a vendored Chart.js; it reads
everything it shows from `/admin/usage` and `/admin/gpu` in the browser, so nothing here
queries the ledger and nothing is built at run time. With auth on, the page and the reports
need the master key (api/auth.py: HTTP Basic is accepted there, GET only, for browsers).
Its URLs are relative, so the gateway may sit behind a path prefix.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "dashboard" / "static"

# The page runs only its own files and talks only to its own origin: no CDN, no inline code.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


async def page(request: Request) -> Response:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
