"""The dashboard's static page and assets (``function/_ui/``), served at ``/ui``.

The page is a small script with no dependencies and no CDN: everything it shows it asks
the REST API for, with the person's bearer token when authentication is on, so it holds
no data and no secret itself and can do only what the API lets that person do. The
Content-Security-Policy allows nothing but this origin's own script, style and API.
"""

from __future__ import annotations

import functools
from importlib import resources

import flask

from ._errors import NotFound

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # an upgraded image serves its new assets at once
}


@functools.cache
def _asset(name: str) -> tuple[bytes, str] | None:
    kind = next((kind for suffix, kind in _TYPES.items() if name.endswith(suffix)), None)
    if kind is None or "/" in name or name.startswith("."):
        return None
    path = resources.files("jobfn").joinpath("_ui", name)
    if not path.is_file():
        return None
    return path.read_bytes(), kind


def response(name: str) -> flask.Response:
    """The asset ``name`` of the dashboard; NotFound for anything else."""
    found = _asset(name)
    if found is None:
        raise NotFound(f"the dashboard has no asset {name[:80]!r}")
    body, kind = found
    return flask.Response(body, headers=_HEADERS, content_type=f"{kind}; charset=utf-8")
