"""The functions-framework target: ``functions-framework --target handle --source function/main.py``.

functions-framework loads this file as a top-level module named ``main`` (not as
``jobfn.main``), so the imports below are absolute: they need ``jobfn`` installed
(``pip install .``, as the images and ``make install`` do).

Importing it only reads the settings (a wrong variable stops the start here) and sets up
logging. The rest of jobfn is imported by the first request: functions-framework imports
this module in gunicorn's arbiter, before it forks the worker that serves, so whatever is
imported here is held by both processes (python -X importtime and /proc: the arbiter held
7 MiB more than a hello-world's), while the worker alone needs it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from jobfn._logs import configure_logging
from jobfn._settings import load_settings

if TYPE_CHECKING:
    from jobfn._service import Service

SETTINGS = load_settings()  # a wrong variable stops the start here, naming the variable
configure_logging(SETTINGS.log_level)
_SERVICE: Service | None = None
_LOCK = threading.Lock()


def _service() -> Service:
    global _SERVICE
    if _SERVICE is None:
        with _LOCK:
            if _SERVICE is None:
                from jobfn._service import Service

                _SERVICE = Service(SETTINGS)
    return _SERVICE


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """Every request: CloudEvents, the REST API and the AWS Batch API."""
    from jobfn._routing import dispatch  # imported once, by the first request

    return dispatch(request, _service())


def _json_error(error: Exception) -> flask.Response:
    from jobfn._web import REQUEST_ID_HEADER, begin_request, error_response

    request_id = begin_request(flask.request.headers.get(REQUEST_ID_HEADER))
    response = error_response(error)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


# Answers Flask gives on its own (functions-framework's 404 for /robots.txt and
# /favicon.ico, a crash outside ``handle``) take the same JSON shape as every other error.
functions_framework.errorhandler(HTTPException)(_json_error)
functions_framework.errorhandler(Exception)(_json_error)
