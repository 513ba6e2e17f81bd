"""The functions-framework target: ``functions-framework --target handle --source function/main.py``.

functions-framework loads this file as a top-level module named ``main`` (not as
``function.main``), with its folder on ``sys.path``, so the imports below are absolute.
Importing it does only cheap work — settings, logging, the route table; the Kubernetes
client is loaded by the first request that needs it, which keeps cold starts short.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:
    # Loaded from its file: make the project importable even where it is not installed
    # as a package (a buildpack image runs the source tree as it is).
    _PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
    if _PROJECT_ROOT not in sys.path:
        sys.path.append(_PROJECT_ROOT)

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from function.logs import configure_logging
from function.routing import dispatch
from function.service import Service
from function.settings import load_settings
from function.web import REQUEST_ID_HEADER, begin_request, error_response

SETTINGS = load_settings()  # a wrong variable stops the start here, naming the variable
configure_logging(SETTINGS.log_level)
SERVICE = Service(SETTINGS)


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    """Every request: CloudEvents, the REST API and the AWS Batch API."""
    return dispatch(request, SERVICE)


def _json_error(error: Exception) -> flask.Response:
    request_id = begin_request(flask.request.headers.get(REQUEST_ID_HEADER))
    response = error_response(error)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


# Answers Flask gives on its own (functions-framework's 404 for /robots.txt and
# /favicon.ico, a crash outside ``handle``) take the same JSON shape as every other error.
functions_framework.errorhandler(HTTPException)(_json_error)
functions_framework.errorhandler(Exception)(_json_error)
